"""The records the emulator's :class:`~appsync_emulator.recorder.Recorder` keeps.

One frozen value per thing seen: a connection, an accepted subscription, an accepted
publish, a WebSocket frame, an error answer.  Tests read them from ``server.recorder``
(``published``, ``subscriptions``, ``connections``, ``sent``, ``errors`` ...) and get them back
from the assertions and waits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, Protocol

from appsync_events.errors import ErrorDetail
from appsync_events.protocol.messages import FailedEvent

from .config import AuthType
from .verify.base import Identity

__all__ = [
    "ConnectionInfo",
    "Direction",
    "ErrorRecord",
    "FrameRecord",
    "PublishRecord",
    "RecordListener",
    "SubscriptionRecord",
]

Direction = Literal["received", "sent"]
"""Which way a recorded frame went, seen from the server."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionInfo:
    """One WebSocket connection, as fault targets and tests see it."""

    id: str
    """Server-assigned id (``c1``, ``c2``, …), stable for the connection's life."""
    opened_at: float
    """Epoch seconds of the upgrade."""
    subprotocols: tuple[str, ...] = ()
    """The subprotocols the client offered, ``header-`` payloads redacted."""
    auth_mode: AuthType | None = None
    """The mode that authorized the connection, ``None`` if connection auth failed."""
    identity: Identity | None = None
    authorized: bool = True
    remote: str | None = None
    closed_at: float | None = None
    close_code: int | None = None
    close_reason: str | None = None

    @property
    def open(self) -> bool:
        return self.closed_at is None


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscriptionRecord:
    """An accepted subscription."""

    connection_id: str
    id: str
    channel: str
    """The channel exactly as the client sent it."""
    pattern: str
    """The canonical pattern path, e.g. ``/default/*``."""
    identity: Identity | None
    time: float
    unsubscribed_at: float | None = None

    @property
    def active(self) -> bool:
        return self.unsubscribed_at is None


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishRecord:
    """An accepted publish request (WebSocket or HTTP); rejected ones are in ``errors``."""

    channel: str
    """Canonical channel path, e.g. ``/default/chat``."""
    events: tuple[str, ...]
    """The event texts as published."""
    identifiers: tuple[str, ...]
    """The server identifier of each event, by index."""
    auth_mode: AuthType | None
    identity: Identity | None
    transport: Literal["websocket", "http"]
    time: float
    failed: tuple[FailedEvent, ...] = ()
    broadcast: tuple[str, ...] = ()
    """The texts actually fanned out (after the handler)."""
    deliveries: int = 0
    """``data`` frames queued to subscribers."""
    connection_id: str | None = None
    publish_id: str | None = None
    """The ``id`` of the WebSocket ``publish`` frame."""

    @property
    def accepted_events(self) -> tuple[str, ...]:
        """The published events that did not fail, in index order."""
        bad = {f.index for f in self.failed}
        return tuple(e for i, e in enumerate(self.events) if i not in bad)


class FrameRecord(NamedTuple):
    """One WebSocket frame (text, or bytes for a binary frame).

    A named tuple rather than a dataclass: one is made per frame, on the hot path.
    """

    connection_id: str
    direction: Direction
    data: str | bytes
    frame_type: str | None
    id: str | None
    time: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorRecord:
    """An error the server answered with: a WS frame with ``errors`` or an HTTP error."""

    transport: Literal["websocket", "http"]
    frame_type: str
    """The frame type (``subscribe_error``, …) or ``http`` for an HTTP error response."""
    errors: tuple[ErrorDetail, ...]
    time: float
    connection_id: str | None = None
    id: str | None = None
    status: int | None = None
    """The HTTP status (HTTP only)."""

    def __str__(self) -> str:
        where = f"HTTP {self.status}" if self.transport == "http" else f"{self.frame_type}"
        who = f" on {self.connection_id}" if self.connection_id else ""
        op = f" id={self.id}" if self.id else ""
        return f"{where}{who}{op}: " + "; ".join(str(e) for e in self.errors)


class RecordListener(Protocol):
    """Told of the traffic as the recorder sees it: the hook of a recording file.

    Set one as ``recorder.listener``
    (:class:`~appsync_emulator.recording_file.RecordingFile` does).  Every method is
    called on the server's event loop, after the recorder stored the record; it must be
    quick and must not raise.
    """

    def on_connection(self, info: ConnectionInfo) -> None:
        """A WebSocket connection opened (upgraded)."""

    def on_close(
        self, connection_id: str, code: int | None, reason: str | None, by_server: bool | None
    ) -> None:
        """A WebSocket connection ended (``by_server``: the server sent the close)."""

    def on_frame(
        self, connection_id: str, direction: Direction, data: str | bytes, frame_type: str | None
    ) -> None:
        """One frame received (or sent, by the few callers of ``record_frame``)."""

    def on_sent(
        self,
        connection_id: str,
        frames: Sequence[tuple[str | bytes | None, str | None, str | None, Any]],
    ) -> None:
        """A batch of frames about to be written: ``(text, frame type, frame id, _)``."""

    def on_http(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes | None,
        status: int,
        response: str | None,
        duration: float,
    ) -> None:
        """An HTTP request to ``/event`` (or a refused upgrade) and its answer."""

    def on_fault(self, action: str, fault: object, target: object) -> None:
        """A fault was installed (``inject``), removed (``remove``) or all cleared."""

    def close(self) -> None:
        """The server stopped (called once its shutdown closes are recorded)."""
