"""Shared test helpers: :class:`ProtocolPair` wires the two sans-I/O machines in memory.

Modelled on h11's ``ConnectionPair`` (``h11/tests/helpers.py``): no event loop and no
socket; frames move between :class:`ClientProtocol` and :class:`ServerProtocol` only when a
test asks, so every intermediate state can be asserted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

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
from appsync_events.protocol.messages import Message, PublishedEvent

__all__ = ["ProtocolPair", "ServerPolicy"]


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
    client_sent: list[Message] = field(default_factory=list)
    server_sent: list[Message] = field(default_factory=list)
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
