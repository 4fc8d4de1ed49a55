"""Shared test helpers: :class:`ProtocolPair` and :class:`ClockLoop`.

:class:`ProtocolPair` wires the two sans-I/O machines in memory, modelled on h11's
``ConnectionPair`` (``h11/tests/helpers.py``): no event loop and no socket; frames move
between :class:`ClientProtocol` and :class:`ServerProtocol` only when a test asks, so every
intermediate state can be asserted.

:class:`ClockLoop` is an event loop whose clock the test moves: timers (the client's
heartbeat, ``asyncio.timeout`` deadlines) fire when the test says so, never because the
machine was slow, so a timing test asserts exact bounds under any
``APPSYNC_TESTS_TIMEOUT_FACTOR``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from appsync_emulator.server_protocol import (
    InitReceived,
    PublishRequested,
    ServerEvent,
    ServerProtocol,
    SubscribeRequested,
    UnsubscribeRequested,
)
from appsync_events.protocol import codec
from appsync_events.protocol.channels import matches
from appsync_events.protocol.client import ClientEvent, ClientProtocol
from appsync_events.protocol.messages import Frame, PublishedEvent

__all__ = ["ClockLoop", "ProtocolPair", "ServerPolicy", "run_on_clock"]

_T = TypeVar("_T")

CLOCK_GUARD = 30.0
"""Real seconds a :class:`ClockLoop` stays frozen without an :meth:`~ClockLoop.advance`
before its clock starts following real time again, so that a test which hangs on a frozen
clock still reaches its ``asyncio.timeout`` bounds (and pytest-timeout's) instead of hanging."""


class ClockLoop(asyncio.SelectorEventLoop):
    """A selector loop whose ``time()`` stands still until the test advances it.

    Sockets work as usual (the selector still waits on them in real time); only timers are
    frozen: ``call_at``/``call_later``, ``asyncio.sleep`` and ``asyncio.timeout`` fire when
    :meth:`advance` moves the clock past them.  If nothing advances the clock for
    :data:`CLOCK_GUARD` real seconds, it follows real time from then on (a hang guard).
    """

    def __init__(self) -> None:
        super().__init__()
        self._virtual = time.monotonic()
        self._real_at = self._virtual
        # Debug mode times callbacks with this clock: an advance inside a step is no slowness.
        self.slow_callback_duration = math.inf

    def time(self) -> float:
        drift = time.monotonic() - self._real_at - CLOCK_GUARD
        return self._virtual + max(0.0, drift)

    async def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` forward; return once every timer due by then has run.

        Timers due at the new time all run in one loop iteration, before the marker timer
        scheduled here wakes this coroutine; so on return, anything a due timer does
        synchronously (a heartbeat failure, a cancelled ``asyncio.timeout``) has happened.
        """
        target = self.time() + seconds
        self._virtual = target
        self._real_at = time.monotonic()
        reached: asyncio.Future[None] = self.create_future()
        self.call_at(target, reached.set_result, None)
        await reached


def run_on_clock(main: Callable[[ClockLoop], Awaitable[_T]]) -> _T:
    """Run ``main(loop)`` to completion on a fresh :class:`ClockLoop`, in debug mode."""

    async def body() -> _T:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, ClockLoop)
        return await main(loop)

    with asyncio.Runner(debug=True, loop_factory=ClockLoop) as runner:
        return runner.run(body())


@dataclass(slots=True)
class ServerPolicy:
    """How :meth:`ProtocolPair.serve` plays the emulator's shell.

    Attributes:
        ack: answer ``connection_init`` with ``connection_ack`` then ``ka``.
        accept_subscribes: accept every requested subscription.
        accept_publishes: accept every requested publish, then fan its events out to
            every matching subscription of this connection, in index order.
        connection_timeout_ms: ``connectionTimeoutMs`` for the ack (``None``: the
            server's own default).
    """

    ack: bool = True
    accept_subscribes: bool = True
    accept_publishes: bool = True
    connection_timeout_ms: int | None = None


@dataclass(slots=True)
class ProtocolPair:
    """A :class:`ClientProtocol` and a :class:`ServerProtocol` connected in memory.

    ``client_sent`` and ``server_sent`` log every frame that crossed, decoded, so tests can
    assert on the wire conversation.  Nothing moves until :meth:`to_server`,
    :meth:`to_client`, :meth:`serve` or :meth:`run` is called.
    """

    client: ClientProtocol = field(default_factory=ClientProtocol)
    server: ServerProtocol = field(default_factory=ServerProtocol)
    policy: ServerPolicy = field(default_factory=ServerPolicy)
    client_sent: list[Frame] = field(default_factory=list)
    server_sent: list[Frame] = field(default_factory=list)
    server_events: list[ServerEvent] = field(default_factory=list)
    """Every server event :meth:`run` saw (and served)."""
    identifier: Callable[[str, int], str] = field(default=lambda id, index: f"{id}:{index}")
    """Builds the ``identifier`` of event ``index`` of publish ``id``."""

    def to_server(self) -> list[ServerEvent]:
        """Deliver the client's queued frames to the server; return the server's events.

        Unsubscribes are accepted at once, as the emulator does without faults.
        """
        self._deliver_to_server()
        events = self.server.events_received()
        for event in events:
            if isinstance(event, UnsubscribeRequested):
                self.server.accept_unsubscribe(event.id)
        return events

    def to_client(self) -> list[ClientEvent]:
        """Deliver the server's queued frames to the client; return the client's events."""
        self._deliver_to_client()
        return self.client.events_received()

    def _deliver_to_server(self) -> int:
        frames = [out.text for out in self.client.data_to_send()]
        for frame in frames:
            self.client_sent.append(codec.decode_client(frame))
            self.server.receive_text(frame)
        return len(frames)

    def _deliver_to_client(self) -> int:
        frames = self.server.data_to_send()
        for frame in frames:
            self.server_sent.append(codec.decode_server(frame.text))
            self.client.receive_text(frame.text)
        return len(frames)

    def serve(self, events: list[ServerEvent]) -> None:
        """Act on server events the way the emulator shell does, per :attr:`policy`."""
        for event in events:
            match event:
                case InitReceived() if self.policy.ack:
                    self.server.send_connection_ack(self.policy.connection_timeout_ms)
                    self.server.send_keepalive()
                case SubscribeRequested(id=id) if self.policy.accept_subscribes:
                    self.server.accept_subscribe(id)
                case UnsubscribeRequested(id=id):
                    self.server.accept_unsubscribe(id)
                case PublishRequested(id=id, channel=channel, message=message) if (
                    self.policy.accept_publishes
                ):
                    successful = [
                        PublishedEvent(identifier=self.identifier(id, index), index=index)
                        for index in range(len(message.events))
                    ]
                    self.server.accept_publish(id, successful, [])
                    for event_text in message.events:
                        for sub_id, pattern in list(self.server.subscriptions.items()):
                            if matches(pattern, channel):
                                self.server.send_data(sub_id, event_text)
                case _:
                    pass

    def run(self, *, max_rounds: int = 10) -> list[ClientEvent]:
        """Move frames both ways, serving requests, until nothing moves; return client events.

        Server events are acted on per :attr:`policy` and collected in
        :attr:`server_events`.

        Raises:
            AssertionError: the exchange did not settle within ``max_rounds``.
        """
        events: list[ClientEvent] = []
        for _ in range(max_rounds):
            moved = self._deliver_to_server()
            server_events = self.server.events_received()
            self.server_events.extend(server_events)
            self.serve(server_events)
            moved += self._deliver_to_client()
            events.extend(self.client.events_received())
            if not moved:
                return events
        raise AssertionError(f"the exchange did not settle in {max_rounds} rounds")
