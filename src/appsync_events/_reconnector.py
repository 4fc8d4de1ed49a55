"""The reconnector: after a retryable loss, back off, dial again and resume the subscriptions.

A :class:`~appsync_events.Client` with a :class:`~appsync_events.reconnect.Reconnect`
policy owns one :class:`Reconnector` and drives it: when its connection is lost, the
client asks :meth:`Reconnector.take_over`; when it closes, it calls
:meth:`Reconnector.stop`.  Everything in between (the policy loop, the backoff, dialing,
re-subscribing and giving up) happens here, in one task owned by the reconnector.  The
client is reached only through the narrow :class:`Session` interface.

Theory of operation, one loss:

1. the lost connection has suspended its active subscriptions (their inboxes stay
   readable) and handed them over in ``Connection.suspended``;
2. attempt ``n`` waits ``policy.delay(n)`` (state ``DISCONNECTED``), then dials (state
   ``RECONNECTING``): a retryable failure goes back to 1 with ``n + 1``, anything else
   (or ``max_attempts`` used up) gives up;
3. the new connection replaces the lost one in the client, every subscription still
   ``SUSPENDED`` is registered on it and re-subscribed with the same id and channel,
   concurrently; each becomes ``ACTIVE`` again or fails alone;
4. state ``CONNECTED``.  Losing the new connection during 3 starts again at 1: the
   subscriptions not yet resumed are still ``SUSPENDED`` and carried over.

Giving up fails every carried subscription with the error and closes the client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

from .authorizer import AuthorizeRequest, Operation
from .connection import Connection, OperationDeadlines
from .errors import AppSyncEventsError, ConnectionClosedError, HandshakeError
from .protocol.client import SubscribeAccepted, SubscribeRejected
from .reconnect import ConnectionState, Reconnect, is_retryable
from .subscription import Subscription, SubscriptionState

__all__ = ["Dial", "Reconnector", "Session"]

Dial = Callable[[], Awaitable[tuple[Connection, int | None]]]
"""Opens and handshakes a new connection; returns it with ``connectionTimeoutMs``."""


class Session(Protocol):
    """What the reconnector needs from its client."""

    def _current(self) -> Connection:
        """The connection in use (the lost one until :meth:`_replace`)."""
        ...

    def _replace(self, connection: Connection, connection_timeout_ms: int | None) -> None:
        """Use ``connection`` from now on (it was dialed after a loss)."""
        ...

    def _set_state(self, state: ConnectionState) -> None: ...

    def _end(self, error: AppSyncEventsError) -> None:
        """The client is closed for good with ``error`` (state ``CLOSED``)."""
        ...

    async def _unsubscribe_quietly(self, sub: Subscription) -> None: ...


class Reconnector:
    """Reconnects one client after retryable losses (see the module docstring)."""

    def __init__(
        self,
        policy: Reconnect,
        dial: Dial,
        session: Session,
        *,
        host: str | None,
        operation_timeout: float | None,
        deadlines: OperationDeadlines,
    ) -> None:
        self.policy = policy
        """The backoff policy."""
        self._dial = dial
        self._session = session
        self._host = host
        self._operation_timeout = operation_timeout
        self._deadlines = deadlines
        self._tasks: set[asyncio.Task[None]] = set()
        self._retired: list[Connection] = []

    def take_over(self, lost: Connection, error: AppSyncEventsError) -> bool:
        """Start reconnecting after ``lost`` failed with ``error``, if it is retryable.

        Called synchronously from the lost connection's ``on_lost``; returns whether the
        reconnector took over (then the connection suspends its subscriptions for it).
        """
        if not is_retryable(error):
            return False
        self._retired = [c for c in self._retired if not c.finished]
        self._retired.append(lost)
        self._session._set_state(ConnectionState.DISCONNECTED)
        task = asyncio.get_running_loop().create_task(
            self._run(lost, error), name="appsync-events reconnect"
        )
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return True

    async def stop(self) -> None:
        """Cancel a reconnection under way (backoff, dial or resubscribe) and wait for it."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def wait_retired(self) -> None:
        """Wait until every connection lost so far is closed and cleaned up."""
        retired, self._retired = self._retired, []
        await asyncio.gather(*(c.wait_closed() for c in retired))

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:  # pragma: no cover - a bug
            error = ConnectionClosedError(message=f"internal error while reconnecting: {task!r}")
            error.__cause__ = task.exception()
            self._session._current().log.error("reconnection failed", exc_info=task.exception())
            self._give_up(error)

    async def _run(self, lost: Connection, error: AppSyncEventsError) -> None:
        dialed = await self._redial(lost, error)
        if dialed is not None:
            await self._resume(lost, *dialed)

    async def _redial(
        self, lost: Connection, error: AppSyncEventsError
    ) -> tuple[Connection, int | None] | None:
        """Back off and dial until a connection opens; ``None`` if it gave up."""
        policy, log, session = self.policy, lost.log, self._session
        last, attempt = error, 0
        while policy.max_attempts is None or attempt < policy.max_attempts:
            delay = policy.delay(attempt)
            log.info("= reconnecting in %.3gs (attempt %d) after: %s", delay, attempt + 1, last)
            session._set_state(ConnectionState.DISCONNECTED)
            await asyncio.sleep(delay)
            attempt += 1
            session._set_state(ConnectionState.RECONNECTING)
            try:
                return await self._dial()
            except AppSyncEventsError as exc:
                last = exc
                if not is_retryable(exc):
                    log.warning("= reconnection refused, giving up: %s", exc)
                    self._give_up(exc)
                    return None
            except Exception as exc:  # the authorizer broke: retrying would not help
                failed = HandshakeError(f"reconnecting failed: {exc!r}")
                failed.__cause__ = exc
                log.warning("= %s", failed)
                self._give_up(failed)
                return None
        log.warning("= giving up after %d reconnection attempt(s): %s", attempt, last)
        self._give_up(last)
        return None

    async def _resume(
        self, lost: Connection, connection: Connection, connection_timeout_ms: int | None
    ) -> None:
        """Install ``connection`` and re-subscribe what ``lost`` left suspended."""
        subs = [s for s in lost.suspended if s.state is SubscriptionState.SUSPENDED]
        lost.suspended = []
        for sub in subs:  # registered first, so that a new failure suspends them again
            connection.subscriptions[sub.id] = sub
        self._session._replace(connection, connection_timeout_ms)
        connection.log.info("= reconnected; resubscribing %d subscription(s)", len(subs))
        await asyncio.gather(*(self._resubscribe(connection, sub) for sub in subs))
        if self._session._current() is connection and not connection.closed:
            self._session._set_state(ConnectionState.CONNECTED)  # every subscription resumed

    async def _resubscribe(self, connection: Connection, sub: Subscription) -> None:
        """Re-send ``subscribe`` for ``sub`` (same id and channel) on ``connection``."""

        def send() -> None:
            connection.protocol.send_subscribe(sub.channel, auth.authorization, sub.id)

        error: AppSyncEventsError
        try:
            with self._deadlines.enter("subscribe", sub.id, self._operation_timeout):
                auth = await sub.authorizer.authorize(
                    AuthorizeRequest(
                        operation=Operation.SUBSCRIBE, channel=sub.channel, host=self._host
                    )
                )
                answer = await connection.request(sub.id, send)
        except AppSyncEventsError as exc:
            if exc is connection.failure:
                return  # the connection broke again: the next reconnection resumes it
            error = exc
        except Exception as exc:  # the authorizer broke: this subscription cannot resume
            error = AppSyncEventsError(f"resubscribing {sub.id} failed: {exc!r}")
            error.__cause__ = exc
        else:
            if isinstance(answer, SubscribeAccepted):
                if sub.state is SubscriptionState.CLOSED:  # closed while being resumed
                    await self._session._unsubscribe_quietly(sub)
                return
            assert isinstance(answer, SubscribeRejected)
            error = answer.error
        connection.log.warning("= could not resume subscription %s: %s", sub.id, error)
        if connection.subscriptions.get(sub.id) is sub:
            del connection.subscriptions[sub.id]
        sub._fail(error)

    def _give_up(self, error: AppSyncEventsError) -> None:
        """Stop reconnecting: fail every carried subscription with ``error``; close."""
        connection = self._session._current()
        for sub in (*connection.subscriptions.values(), *connection.suspended):
            sub._fail(error)
        connection.suspended = []
        self._session._end(error)
