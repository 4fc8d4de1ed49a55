"""operation_deadline: asyncio.timeout's behaviour, with the client's error."""

from __future__ import annotations

import asyncio

import pytest

from appsync_events.connection import operation_deadline
from appsync_events.errors import OperationTimeoutError

from .helpers import WAIT

pytestmark = pytest.mark.asyncio


async def test_expiry_raises_operation_timeout_chained_like_asyncio_timeout() -> None:
    with pytest.raises(OperationTimeoutError) as info:
        async with operation_deadline("publish", "op-1", 0.01):
            await asyncio.sleep(WAIT)
    error = info.value
    assert (error.operation, error.id, error.timeout) == ("publish", "op-1", 0.01)
    assert isinstance(error.__cause__, TimeoutError)
    assert isinstance(error.__cause__.__cause__, asyncio.CancelledError)
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0  # the deadline's own cancellation was taken back


@pytest.mark.parametrize("limit", [0, -1.0])
async def test_a_spent_limit_expires_at_the_first_wait(limit: float) -> None:
    with pytest.raises(OperationTimeoutError):
        async with operation_deadline("subscribe", "s", limit):
            await asyncio.sleep(WAIT)


async def test_no_limit_and_no_expiry_change_nothing() -> None:
    async with operation_deadline("publish", "a", None):
        await asyncio.sleep(0)
    async with operation_deadline("publish", "b", WAIT):
        await asyncio.sleep(0)
    with pytest.raises(ValueError, match="inner"):
        async with operation_deadline("publish", "c", WAIT):
            raise ValueError("inner")


async def test_an_inner_timeout_propagates_as_it_is() -> None:
    async def operation() -> None:
        async with operation_deadline("publish", "op", WAIT), asyncio.timeout(0.01):
            await asyncio.sleep(WAIT)

    with pytest.raises(TimeoutError) as info:
        await operation()
    assert not isinstance(info.value, OperationTimeoutError)


async def test_an_outside_cancellation_wins_over_the_expiry() -> None:
    """Cancelled from elsewhere as the deadline expires: the cancellation propagates."""
    started = asyncio.Event()

    async def operation() -> None:
        async with operation_deadline("publish", "op", 0):
            started.set()
            await asyncio.sleep(WAIT)

    task = asyncio.ensure_future(operation())
    await started.wait()  # the deadline has expired and cancelled the task...
    task.cancel()  # ...and someone else cancels it too, before it runs again
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_expired_but_finished_otherwise_keeps_the_outcome() -> None:
    """The deadline expired, but the body ended with another error: that error."""

    async def operation() -> None:
        async with operation_deadline("publish", "op", 0):
            try:
                await asyncio.sleep(WAIT)
            except asyncio.CancelledError:
                raise KeyError("other") from None

    with pytest.raises(KeyError):
        await operation()


async def test_expired_while_the_body_swallowed_the_cancellation() -> None:
    """Like asyncio.timeout: a body that swallows the cancellation ends normally."""
    async with operation_deadline("publish", "op", 0):
        try:
            await asyncio.sleep(WAIT)
        except asyncio.CancelledError:
            pass
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0
