"""Tests of ``appsync_events.protocol.messages``: one frozen dataclass per wire type."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from appsync_events import errors
from appsync_events.protocol import messages
from appsync_events.protocol.messages import (
    BroadcastError,
    ClientMessage,
    ConnectionAck,
    ConnectionErrorMessage,
    ConnectionInit,
    Data,
    ErrorDetail,
    ErrorMessage,
    FailedEvent,
    Frame,
    KeepAlive,
    Publish,
    PublishedEvent,
    PublishError,
    PublishSuccess,
    ServerMessage,
    Subscribe,
    SubscribeError,
    SubscribeSuccess,
    Unsubscribe,
    UnsubscribeError,
    UnsubscribeSuccess,
)
from tests.strategies import CLIENT_TYPES, SERVER_TYPES

CLASSES: dict[str, type] = {
    "connection_init": ConnectionInit,
    "subscribe": Subscribe,
    "unsubscribe": Unsubscribe,
    "publish": Publish,
    "connection_ack": ConnectionAck,
    "ka": KeepAlive,
    "connection_error": ConnectionErrorMessage,
    "subscribe_success": SubscribeSuccess,
    "subscribe_error": SubscribeError,
    "data": Data,
    "broadcast_error": BroadcastError,
    "unsubscribe_success": UnsubscribeSuccess,
    "unsubscribe_error": UnsubscribeError,
    "publish_success": PublishSuccess,
    "publish_error": PublishError,
    "error": ErrorMessage,
}

EXAMPLES: list[object] = [
    ConnectionInit(),
    Subscribe(id="s", channel="default/a"),
    Unsubscribe(id="s"),
    Publish(id="p", channel="default/a", events=("1",)),
    ConnectionAck(connection_timeout_ms=1),
    KeepAlive(),
    ConnectionErrorMessage(),
    SubscribeSuccess(id="s"),
    SubscribeError(id="s"),
    Data(id="s", event="1"),
    BroadcastError(id="s"),
    UnsubscribeSuccess(id="s"),
    UnsubscribeError(id="s"),
    PublishSuccess(id="p"),
    PublishError(id="p"),
    ErrorMessage(),
    PublishedEvent(identifier="u", index=0),
    FailedEvent(identifier="u", index=0),
]


def _pascal(wire_type: str) -> str:
    return "".join(part.capitalize() for part in wire_type.split("_"))


@pytest.mark.parametrize(("wire_type", "cls"), list(CLASSES.items()))
def test_message_type_names(wire_type: str, cls: type) -> None:
    """Each class carries its wire type in TYPE and is named after it
    (docs: design.rst, "Naming")."""
    assert cls.TYPE == wire_type  # type: ignore[attr-defined]
    expected = {"ka": "KeepAlive", "connection_error": "ConnectionErrorMessage"}.get(
        wire_type, _pascal(wire_type)
    )
    if wire_type == "error":
        expected = "ErrorMessage"
    assert cls.__name__ == expected
    assert "TYPE" not in {f.name for f in dataclasses.fields(cls)}


def test_message_unions_cover_every_wire_type() -> None:
    """ClientMessage and ServerMessage hold exactly the client and server types."""
    client = typing.get_args(ClientMessage)
    server = typing.get_args(ServerMessage)
    assert [c.TYPE for c in client] == list(CLIENT_TYPES)
    assert [c.TYPE for c in server] == list(SERVER_TYPES)
    assert set(typing.get_args(Frame)) == set(client) | set(server)
    assert set(CLASSES.values()) == set(client) | set(server)


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: type(m).__name__)
def test_messages_are_frozen_slotted_and_keyword_only(message: object) -> None:
    """Messages are immutable, slotted and built with keywords only (docs: design.rst, "Types")."""
    cls = type(message)
    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    assert params.frozen
    assert "__slots__" in cls.__dict__
    assert all(f.kw_only for f in dataclasses.fields(cls))
    field = next(iter(dataclasses.fields(cls)), None)
    if field is not None:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(message, field.name, None)
        with pytest.raises(TypeError):
            cls(*[getattr(message, f.name) for f in dataclasses.fields(cls)])
    assert message == dataclasses.replace(message)  # type: ignore[type-var]


def test_message_defaults() -> None:
    """Optional fields default to absent / empty."""
    assert Subscribe(id="s", channel="c").authorization is None
    assert Publish(id="p", channel="c", events=()).authorization is None
    assert ConnectionAck().connection_timeout_ms is None
    assert ConnectionErrorMessage().errors == ()
    assert PublishSuccess(id="p").successful == ()
    assert PublishSuccess(id="p").failed == ()
    assert ErrorMessage().id is None
    assert FailedEvent(identifier="u", index=0).code is None
    assert FailedEvent(identifier="u", index=0).message is None


def test_messages_without_mappings_are_hashable() -> None:
    """Messages holding only strings and tuples can go in sets."""
    details = (ErrorDetail(error_type="T", message="m", error_code=1),)
    assert len({Data(id="a", event="1"), Data(id="a", event="1"), SubscribeError(id="a")}) == 2
    assert hash(PublishError(id="p", errors=details)) == hash(PublishError(id="p", errors=details))


def test_connection_ack_timeout_in_seconds() -> None:
    """ConnectionAck exposes connectionTimeoutMs in seconds, as a float.

    Durations are seconds as floats: docs: design.rst, "Naming".
    """
    assert ConnectionAck(connection_timeout_ms=300000).connection_timeout == 300.0
    assert ConnectionAck(connection_timeout_ms=50).connection_timeout == 0.05
    assert ConnectionAck().connection_timeout is None


def test_error_detail_is_the_errors_module_class() -> None:
    """messages re-exports the ErrorDetail of appsync_events.errors."""
    assert messages.ErrorDetail is errors.ErrorDetail
    assert set(messages.__all__) >= {cls.__name__ for cls in CLASSES.values()}
