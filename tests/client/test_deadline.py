"""OperationDeadlines: asyncio.timeout's behaviour, with the client's error."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import pytest

from appsync_events.connection import EXPIRED, OperationDeadlines, loop_clock
from appsync_events.errors import OperationTimeoutError

from .helpers import MS, WAIT

pytestmark = pytest.mark.asyncio

Deadline = Callable[[str, str, float | None], contextlib.AbstractAsyncContextManager[None]]


def _queued(operation: str, operation_id: str, limit: float | None) -> Any:
    return OperationDeadlines().enter(operation, operation_id, limit)


@pytest.fixture(params=["own", "shared"])
def deadline(request: pytest.FixtureRequest) -> Deadline:
    """Each test runs with a set of deadlines per operation and with one shared by all the
    test's operations (as a client's): they behave the same."""
    return _queued if request.param == "own" else OperationDeadlines().enter


async def test_expiry_raises_operation_timeout_chained_like_asyncio_timeout(
    deadline: Deadline,
) -> None:
    with pytest.raises(OperationTimeoutError) as info:
        async with deadline("publish", "op-1", 0.01):
            await asyncio.sleep(WAIT)
    error = info.value
    assert (error.operation, error.id, error.timeout) == ("publish", "op-1", 0.01)
    assert isinstance(error.__cause__, TimeoutError)
    assert isinstance(error.__cause__.__cause__, asyncio.CancelledError)
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0  # the deadline's own cancellation was taken back


@pytest.mark.parametrize("limit", [0, -1.0])
async def test_a_spent_limit_expires_at_the_first_wait(deadline: Deadline, limit: float) -> None:
    with pytest.raises(OperationTimeoutError):
        async with deadline("subscribe", "s", limit):
            await asyncio.sleep(WAIT)


async def test_no_limit_and_no_expiry_change_nothing(deadline: Deadline) -> None:
    async with deadline("publish", "a", None):
        await asyncio.sleep(0)
    async with deadline("publish", "b", WAIT):
        await asyncio.sleep(0)
    with pytest.raises(ValueError, match="inner"):
        async with deadline("publish", "c", WAIT):
            raise ValueError("inner")


async def test_an_inner_timeout_propagates_as_it_is(deadline: Deadline) -> None:
    async def operation() -> None:
        async with deadline("publish", "op", WAIT), asyncio.timeout(0.01):
            await asyncio.sleep(WAIT)

    with pytest.raises(TimeoutError) as info:
        await operation()
    assert not isinstance(info.value, OperationTimeoutError)


async def test_an_outside_cancellation_wins_over_the_expiry(deadline: Deadline) -> None:
    """Cancelled from elsewhere as the deadline expires: the cancellation propagates."""
    started = asyncio.Event()

    async def operation() -> None:
        async with deadline("publish", "op", 0):
            started.set()
            await asyncio.sleep(WAIT)

    task = asyncio.ensure_future(operation())
    await started.wait()  # the deadline has expired and cancelled the task...
    task.cancel()  # ...and someone else cancels it too, before it runs again
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_expired_but_finished_otherwise_keeps_the_outcome(deadline: Deadline) -> None:
    """The deadline expired, but the body ended with another error: that error."""

    async def operation() -> None:
        async with deadline("publish", "op", 0):
            try:
                await asyncio.sleep(WAIT)
            except asyncio.CancelledError:
                raise KeyError("other") from None

    with pytest.raises(KeyError):
        await operation()


async def test_expired_while_the_body_swallowed_the_cancellation(deadline: Deadline) -> None:
    """Like asyncio.timeout: a body that swallows the cancellation ends normally."""
    async with deadline("publish", "op", 0):
        try:
            await asyncio.sleep(WAIT)
        except asyncio.CancelledError:
            pass
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0


# --- OperationDeadlines: one timer for deadlines in start order ----------------------------


async def test_queued_deadlines_share_one_timer_and_expire_in_order() -> None:
    deadlines = OperationDeadlines()
    loop = asyncio.get_running_loop()
    outcomes: dict[str, str] = {}
    release = asyncio.Event()

    async def operation(name: str, limit: float, wait: bool) -> None:
        try:
            with deadlines.enter("publish", name, limit):
                if wait:
                    await asyncio.sleep(WAIT)
                else:
                    await release.wait()
            outcomes[name] = "done"
        except OperationTimeoutError as exc:
            outcomes[name] = f"timeout {exc.timeout}"

    timers = len(loop._scheduled)  # type: ignore[attr-defined]
    first = asyncio.ensure_future(operation("first", 20 * MS, False))
    second = asyncio.ensure_future(operation("second", 30 * MS, True))
    third = asyncio.ensure_future(operation("third", 40 * MS, True))
    await asyncio.sleep(0)
    # Three deadlines, one timer (and the sleeps' own).
    assert len(loop._scheduled) == timers + 3  # type: ignore[attr-defined]
    release.set()  # the oldest ends first: the timer fires for it, then re-arms
    await asyncio.wait_for(asyncio.gather(first, second, third), WAIT)
    assert outcomes == {"first": "done", "second": "timeout 0.03", "third": "timeout 0.04"}
    assert not deadlines._queue


async def test_deadlines_that_expire_together_all_raise() -> None:
    deadlines = OperationDeadlines()

    async def operation(name: str) -> str:
        try:
            with deadlines.enter("publish", name, 10 * MS):
                await asyncio.sleep(WAIT)
        except OperationTimeoutError:
            return "timeout"
        return "done"  # pragma: no cover - the deadline expires

    results = await asyncio.wait_for(asyncio.gather(*(operation(f"op{i}") for i in range(5))), WAIT)
    assert results == ["timeout"] * 5
    assert not deadlines._queue


async def test_a_lowered_limit_gets_a_timer_of_its_own() -> None:
    """A deadline before the newest queued one is not queued: it expires on time."""
    deadlines = OperationDeadlines()
    waiting = asyncio.Event()

    async def slow() -> None:
        with deadlines.enter("publish", "slow", WAIT):
            waiting.set()
            await asyncio.sleep(2 * WAIT)

    task = asyncio.ensure_future(slow())
    await waiting.wait()
    with pytest.raises(OperationTimeoutError):
        with deadlines.enter("publish", "quick", 10 * MS):
            await asyncio.sleep(WAIT)
    assert [d.operation_id for d in deadlines._queue] == ["slow"]
    with deadlines.enter("publish", "ok", 10 * MS):  # ended before its own timer
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not deadlines._queue


async def test_a_finished_operation_leaves_the_queue_when_older_ones_end() -> None:
    deadlines = OperationDeadlines()
    with deadlines.enter("publish", "a", WAIT):
        with deadlines.enter("publish", "b", WAIT):
            pass
        assert [d.operation_id for d in deadlines._queue] == ["a", "b"]
    assert not deadlines._queue
    with deadlines.enter("publish", "unbounded", None):
        assert not deadlines._queue


async def test_an_expiry_also_clears_the_finished_operations_queued_behind() -> None:
    deadlines = OperationDeadlines()
    started = asyncio.Event()

    async def slow() -> None:
        with deadlines.enter("publish", "slow", 10 * MS):
            started.set()
            await asyncio.sleep(WAIT)

    task = asyncio.ensure_future(slow())
    await started.wait()
    with deadlines.enter("publish", "quick", 10 * MS):
        pass  # done, but queued behind the slow one
    assert [d.operation_id for d in deadlines._queue] == ["slow", "quick"]
    with pytest.raises(OperationTimeoutError):
        await asyncio.wait_for(task, WAIT)
    assert not deadlines._queue


# --- OperationDeadlines.watch: a deadline on a wait, without cancelling the task ----------


async def test_watched_waits_share_one_timer_and_expire_in_order() -> None:
    deadlines = OperationDeadlines()
    loop = asyncio.get_running_loop()
    timers = len(loop._scheduled)  # type: ignore[attr-defined]
    answered, late, later = loop.create_future(), loop.create_future(), loop.create_future()
    assert deadlines.watch(answered, 10 * MS)
    assert deadlines.watch(late, 20 * MS)
    assert deadlines.watch(later, 30 * MS)
    assert len(loop._scheduled) == timers + 1  # type: ignore[attr-defined]
    answered.set_result("answer")  # the oldest ends first: the timer fires, then re-arms
    assert await asyncio.wait_for(late, WAIT) is EXPIRED
    assert not later.done()  # its deadline is later
    assert await asyncio.wait_for(later, WAIT) is EXPIRED
    assert answered.result() == "answer"  # never overwritten
    assert not deadlines._waits
    assert repr(EXPIRED) == "EXPIRED"


async def test_watched_waits_that_ended_leave_the_queue_at_the_next_watch() -> None:
    deadlines = OperationDeadlines()
    loop = asyncio.get_running_loop()
    first, second, third = loop.create_future(), loop.create_future(), loop.create_future()
    assert deadlines.watch(first, WAIT)
    assert deadlines.watch(second, WAIT)
    second.set_result(None)  # done, but behind a wait not done
    first.cancel()
    assert deadlines.watch(third, WAIT)
    assert [w for _, w in deadlines._waits] == [third]
    third.set_result(None)
    assert deadlines._wait_timer is not None
    deadlines._wait_timer.cancel()
    deadlines._expire_waits()  # nothing left to wait for: no timer re-armed
    assert not deadlines._waits
    assert deadlines._wait_timer is None


async def test_a_wait_not_watched_in_order_is_left_to_enter() -> None:
    """A deadline before the newest watched one, or a spent limit, is not watched (the
    caller bounds it with enter()); no limit means nothing to watch."""
    deadlines = OperationDeadlines()
    loop = asyncio.get_running_loop()
    slow, quick = loop.create_future(), loop.create_future()
    assert deadlines.watch(slow, WAIT)
    assert not deadlines.watch(quick, 10 * MS)
    assert not deadlines.watch(quick, 0)
    assert deadlines.watch(quick, None)
    assert [w for _, w in deadlines._waits] == [slow]
    slow.set_result(None)
    assert deadlines.watch(quick, 10 * MS)  # in order again once the slow one ended
    assert [w for _, w in deadlines._waits] == [quick]
    assert await asyncio.wait_for(quick, WAIT) is EXPIRED


async def test_watch_uses_the_loop_clock_whichever_comes_first() -> None:
    """watch() and enter() share the deadlines' loop and its clock, whichever ran first."""
    loop = asyncio.get_running_loop()
    for first in ("enter", "watch"):
        deadlines = OperationDeadlines()
        if first == "enter":
            with deadlines.enter("publish", "op", WAIT):
                pass
        waiter = loop.create_future()
        assert deadlines.watch(waiter, WAIT)
        assert deadlines._clock is loop_clock(loop)
        (at, _), now = deadlines._waits[0], loop.time()
        assert now < at <= now + WAIT
        waiter.set_result(None)
