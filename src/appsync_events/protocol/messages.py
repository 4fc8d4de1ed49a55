"""One frozen dataclass per wire message (docs: protocol.rst, "Messages").

Python names are snake_case; the wire names live only in :mod:`.codec`.  Event payloads
(``Publish.events`` and ``Data.event``) stay JSON *text*, exactly as on the wire.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from ..errors import ErrorDetail

__all__ = [
    "BroadcastError",
    "ClientMessage",
    "ConnectionAck",
    "ConnectionErrorMessage",
    "ConnectionInit",
    "Data",
    "ErrorDetail",
    "ErrorMessage",
    "FailedEvent",
    "KeepAlive",
    "Frame",
    "Operation",
    "Outgoing",
    "Publish",
    "PublishError",
    "PublishSuccess",
    "PublishedEvent",
    "ServerMessage",
    "Subscribe",
    "SubscribeError",
    "SubscribeSuccess",
    "Unsubscribe",
    "UnsubscribeError",
    "UnsubscribeSuccess",
]


class Operation(enum.StrEnum):
    """An operation a client asks for: the one name used by the client, its authorizers,
    its core's pending operations and the emulator's verifiers."""

    CONNECT = "connect"
    """The WebSocket upgrade (authorized through the ``header-`` subprotocol)."""
    SUBSCRIBE = "subscribe"
    """A ``subscribe`` message."""
    PUBLISH = "publish"
    """A ``publish`` message, or an HTTP ``POST /event``."""
    UNSUBSCRIBE = "unsubscribe"
    """An ``unsubscribe`` message (it carries no authorization)."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One text frame a protocol core produced, with what a shell needs to know about it.

    Shells write :attr:`text` as it is and read :attr:`kind` and :attr:`id` instead of
    peeking into the text.
    """

    kind: str
    """The frame's wire ``type`` (``"data"``, ``"publish_success"``, ``"ka"``...)."""
    id: str | None
    """The operation or subscription id the frame carries, if any."""
    text: str
    """The encoded frame."""


# --- client -> server -------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionInit:
    """``{"type":"connection_init"}`` (optional, docs: protocol.rst, "connection_init")."""

    TYPE: ClassVar[Literal["connection_init"]] = "connection_init"


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscribe:
    """``subscribe`` (docs: protocol.rst, "subscribe")."""

    TYPE: ClassVar[Literal["subscribe"]] = "subscribe"
    id: str
    channel: str
    authorization: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Unsubscribe:
    """``unsubscribe`` (docs: protocol.rst, "unsubscribe")."""

    TYPE: ClassVar[Literal["unsubscribe"]] = "unsubscribe"
    id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Publish:
    """``publish`` (docs: protocol.rst, "publish"); ``events`` are JSON texts."""

    TYPE: ClassVar[Literal["publish"]] = "publish"
    id: str
    channel: str
    events: tuple[str, ...]
    authorization: Mapping[str, str] | None = None


# --- server -> client -------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionAck:
    """``connection_ack`` with the top-level ``connectionTimeoutMs``
    (docs: protocol.rst, "connection_ack")."""

    TYPE: ClassVar[Literal["connection_ack"]] = "connection_ack"
    connection_timeout_ms: int | None = None

    @property
    def connection_timeout(self) -> float | None:
        """The keep-alive timeout in seconds, or ``None`` when absent."""
        if self.connection_timeout_ms is None:
            return None
        return self.connection_timeout_ms / 1000.0


@dataclass(frozen=True, slots=True, kw_only=True)
class KeepAlive:
    """``{"type":"ka"}`` (docs: protocol.rst, "Keep-alive")."""

    TYPE: ClassVar[Literal["ka"]] = "ka"


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionErrorMessage:
    """``connection_error`` (docs: protocol.rst, "connection_error")."""

    TYPE: ClassVar[Literal["connection_error"]] = "connection_error"
    errors: tuple[ErrorDetail, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscribeSuccess:
    """``subscribe_success`` (docs: protocol.rst, "subscribe_success")."""

    TYPE: ClassVar[Literal["subscribe_success"]] = "subscribe_success"
    id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscribeError:
    """``subscribe_error`` (docs: protocol.rst, "subscribe_error")."""

    TYPE: ClassVar[Literal["subscribe_error"]] = "subscribe_error"
    id: str
    errors: tuple[ErrorDetail, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Data:
    """``data``: one event (JSON text) for subscription ``id`` (docs: protocol.rst, "data")."""

    TYPE: ClassVar[Literal["data"]] = "data"
    id: str
    event: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BroadcastError:
    """``broadcast_error`` (docs: protocol.rst, "broadcast_error")."""

    TYPE: ClassVar[Literal["broadcast_error"]] = "broadcast_error"
    id: str
    errors: tuple[ErrorDetail, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class UnsubscribeSuccess:
    """``unsubscribe_success`` (docs: protocol.rst, "unsubscribe_success and unsubscribe_error")."""

    TYPE: ClassVar[Literal["unsubscribe_success"]] = "unsubscribe_success"
    id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UnsubscribeError:
    """``unsubscribe_error`` (docs: protocol.rst, "unsubscribe_success and unsubscribe_error")."""

    TYPE: ClassVar[Literal["unsubscribe_error"]] = "unsubscribe_error"
    id: str
    errors: tuple[ErrorDetail, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishedEvent:
    """An entry of ``successful``: the server identifier of the event at ``index``."""

    identifier: str
    index: int


@dataclass(frozen=True, slots=True, kw_only=True)
class FailedEvent:
    """An entry of ``failed``: the event at ``index`` was not broadcast."""

    identifier: str
    index: int
    code: str | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishSuccess:
    """``publish_success`` (docs: protocol.rst, "publish_success")."""

    TYPE: ClassVar[Literal["publish_success"]] = "publish_success"
    id: str
    successful: tuple[PublishedEvent, ...] = ()
    failed: tuple[FailedEvent, ...] = field(default=())


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishError:
    """``publish_error`` (docs: protocol.rst, "publish_error")."""

    TYPE: ClassVar[Literal["publish_error"]] = "publish_error"
    id: str
    errors: tuple[ErrorDetail, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorMessage:
    """Generic ``error`` (docs: protocol.rst, "error"), sometimes with an ``id``."""

    TYPE: ClassVar[Literal["error"]] = "error"
    id: str | None = None
    errors: tuple[ErrorDetail, ...] = ()


ClientMessage = ConnectionInit | Subscribe | Unsubscribe | Publish
ServerMessage = (
    ConnectionAck
    | KeepAlive
    | ConnectionErrorMessage
    | SubscribeSuccess
    | SubscribeError
    | Data
    | BroadcastError
    | UnsubscribeSuccess
    | UnsubscribeError
    | PublishSuccess
    | PublishError
    | ErrorMessage
)
Frame = ClientMessage | ServerMessage
"""Any wire message, either way (the received event a user reads is
:class:`appsync_events.Message`)."""
