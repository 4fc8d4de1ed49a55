"""The reconnector in isolation: a fake session and a scripted dial, no sockets."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from appsync_events import authorizer
from appsync_events._reconnector import Reconnector
from appsync_events.connection import ConnectionLogger, OperationDeadlines
from appsync_events.errors import (
    AppSyncEventsError,
    ConnectionClosedError,
    HandshakeError,
    UnauthorizedError,
)
from appsync_events.reconnect import ConnectionState, Reconnect
from appsync_events.subscription import Subscription, SubscriptionSettings, SubscriptionState

from .helpers import WAIT

pytestmark = pytest.mark.asyncio

NOW = Reconnect(initial_delay=0.0, max_delay=0.0, random=lambda: 0.0)
LOST = ConnectionClosedError(1006, "", message="dropped")


class FakeConnection:
    """What the reconnector reads of a lost connection."""

    def __init__(self) -> None:
        self.log = ConnectionLogger(logging.getLogger("appsync_events.client"), {})
        self.suspended: list[Subscription] = []
        self.subscriptions: dict[str, Subscription] = {}
        self.finished = False
        self.closed = True

    async def wait_closed(self) -> None:
        self.finished = True


class FakeSession:
    """Records what the reconnector asks of its client."""

    def __init__(self, connection: FakeConnection) -> None:
        self.connection = connection
        self.states: list[ConnectionState] = []
        self.ended: AppSyncEventsError | None = None
        self.done = asyncio.Event()

    def _current(self) -> Any:
        return self.connection

    def _replace(self, connection: Any, connection_timeout_ms: int | None) -> None:
        raise AssertionError("no dial succeeds in these tests")  # pragma: no cover

    def _set_state(self, state: ConnectionState) -> None:
        self.states.append(state)

    def _end(self, error: AppSyncEventsError) -> None:
        self.ended = error
        self.done.set()

    async def _unsubscribe_quietly(self, sub: Subscription) -> None:  # pragma: no cover
        raise AssertionError("nothing is resumed in these tests")


def suspended_subscription() -> Subscription:
    async def unsubscribe(sub: Subscription) -> None:  # pragma: no cover - never called
        pass

    sub = Subscription(
        "sub-1",
        "default/a",
        SubscriptionSettings(
            capacity=10,
            authorizer=authorizer.ApiKey(api_key="da2-x", endpoint="https://example.com/event"),
            unsubscribe=unsubscribe,
            on_overflow=lambda s: None,
        ),
    )
    assert sub._accepted()
    assert sub._suspend()
    return sub


def failing_dial(*errors: BaseException) -> tuple[Callable[[], Awaitable[Any]], list[int]]:
    calls: list[int] = []

    async def dial() -> Any:
        calls.append(1)
        raise errors[min(len(calls), len(errors)) - 1]

    return dial, calls


def setup(
    policy: Reconnect, dial: Callable[[], Awaitable[Any]]
) -> tuple[Reconnector, FakeSession, FakeConnection, Subscription]:
    lost = FakeConnection()
    sub = suspended_subscription()
    lost.suspended.append(sub)
    session = FakeSession(lost)
    reconnector = Reconnector(
        policy,
        dial,
        session,
        host="example.com",
        operation_timeout=1.0,
        deadlines=OperationDeadlines(),
    )
    return reconnector, session, lost, sub


async def test_non_retryable_loss_is_not_taken_over() -> None:
    """take_over refuses an error that reconnecting would not fix, and starts nothing."""
    dial, calls = failing_dial(HandshakeError("unused"))
    reconnector, session, lost, _ = setup(NOW, dial)
    refused = UnauthorizedError(operation="connect")
    assert not reconnector.take_over(lost, refused)  # type: ignore[arg-type]
    assert session.states == []
    assert reconnector._tasks == set()
    assert calls == []


async def test_gives_up_after_max_attempts_with_the_last_error() -> None:
    """Retryable dial failures are retried max_attempts times; then everything fails."""
    first, last = HandshakeError("first"), HandshakeError("last")
    dial, calls = failing_dial(first, last)
    policy = Reconnect(initial_delay=0.0, max_delay=0.0, max_attempts=3, random=lambda: 0.0)
    reconnector, session, lost, sub = setup(policy, dial)
    assert reconnector.take_over(lost, LOST)  # type: ignore[arg-type]
    async with asyncio.timeout(WAIT):
        await session.done.wait()
    assert len(calls) == 3
    assert session.ended is last
    assert session.states[0] is ConnectionState.DISCONNECTED
    assert session.states.count(ConnectionState.RECONNECTING) == 3
    assert sub.state is SubscriptionState.FAILED
    with pytest.raises(HandshakeError, match="last"):
        await sub.next()
    assert lost.suspended == []
    await reconnector.wait_retired()
    assert lost.finished


async def test_gives_up_at_once_when_the_service_refuses() -> None:
    """A non-retryable dial failure stops after one attempt."""
    refused = UnauthorizedError(operation="connect")
    dial, calls = failing_dial(refused)
    reconnector, session, lost, sub = setup(NOW, dial)
    assert reconnector.take_over(lost, LOST)  # type: ignore[arg-type]
    async with asyncio.timeout(WAIT):
        await session.done.wait()
    assert calls == [1]
    assert session.ended is refused
    assert sub.state is SubscriptionState.FAILED


async def test_a_broken_authorizer_gives_up_with_a_handshake_error() -> None:
    """An exception that is not the library's (a broken authorizer) is not retried."""
    dial, calls = failing_dial(KeyError("credentials"))
    reconnector, session, lost, _ = setup(NOW, dial)
    assert reconnector.take_over(lost, LOST)  # type: ignore[arg-type]
    async with asyncio.timeout(WAIT):
        await session.done.wait()
    assert calls == [1]
    assert isinstance(session.ended, HandshakeError)
    assert isinstance(session.ended.__cause__, KeyError)


async def test_stop_interrupts_the_backoff() -> None:
    """stop() cancels a reconnection waiting in its backoff; nothing is dialed or ended."""
    dial, calls = failing_dial(HandshakeError("unused"))
    slow = Reconnect(initial_delay=60.0, max_delay=60.0, jitter=0.0)
    reconnector, session, lost, sub = setup(slow, dial)
    assert reconnector.take_over(lost, LOST)  # type: ignore[arg-type]
    async with asyncio.timeout(WAIT):
        await reconnector.stop()
    assert reconnector._tasks == set()
    assert calls == []
    assert session.ended is None
    assert sub.state is SubscriptionState.SUSPENDED
