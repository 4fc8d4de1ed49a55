"""Tests of ``appsync_events.errors``: the exception tree, attributes and messages."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from appsync_events import errors
from appsync_events.errors import (
    AppSyncEventsError,
    AuthorizationError,
    BroadcastError,
    ConfigurationError,
    ConnectionClosedError,
    ConnectionLostError,
    CredentialsError,
    DecodeError,
    ErrorDetail,
    HandshakeError,
    HandshakeTimeoutError,
    HeartbeatTimeoutError,
    InvalidChannelError,
    LocalProtocolError,
    OperationError,
    OperationTimeoutError,
    ProtocolError,
    PublishError,
    PublishUnauthorizedError,
    RemoteProtocolError,
    SubscribeError,
    SubscribeUnauthorizedError,
    SubscriptionClosedError,
    SubscriptionInboxFullError,
    UnauthorizedError,
    UnsubscribeError,
    UnsubscribeUnauthorizedError,
    unauthorized_error,
)

UNAUTHORIZED = ErrorDetail(
    error_type="UnauthorizedException",
    message="You are not authorized to make this call.",
    error_code=401,
)
PROCESSING = ErrorDetail(
    error_type="SubscriptionProcessingError", message="There was an error processing the operation"
)

TREE: list[tuple[type[BaseException], tuple[type[BaseException], ...]]] = [
    (ConfigurationError, (AppSyncEventsError, ValueError)),
    (InvalidChannelError, (ConfigurationError,)),
    (AuthorizationError, (AppSyncEventsError,)),
    (CredentialsError, (AuthorizationError,)),
    (UnauthorizedError, (AuthorizationError,)),
    (ProtocolError, (AppSyncEventsError,)),
    (LocalProtocolError, (ProtocolError,)),
    (RemoteProtocolError, (ProtocolError,)),
    (ConnectionLostError, (AppSyncEventsError, ConnectionError)),
    (ConnectionClosedError, (ConnectionLostError, ConnectionError)),
    (HandshakeError, (AppSyncEventsError,)),
    (HandshakeTimeoutError, (HandshakeError, TimeoutError)),
    (HeartbeatTimeoutError, (ConnectionLostError, ConnectionError, TimeoutError)),
    (OperationTimeoutError, (AppSyncEventsError, TimeoutError)),
    (SubscriptionInboxFullError, (AppSyncEventsError,)),
    (SubscriptionClosedError, (AppSyncEventsError,)),
    (DecodeError, (AppSyncEventsError, ValueError)),
    (OperationError, (AppSyncEventsError,)),
    (SubscribeError, (OperationError,)),
    (PublishError, (OperationError,)),
    (UnsubscribeError, (OperationError,)),
    (BroadcastError, (OperationError,)),
    (PublishUnauthorizedError, (UnauthorizedError, PublishError)),
    (SubscribeUnauthorizedError, (UnauthorizedError, SubscribeError)),
    (UnsubscribeUnauthorizedError, (UnauthorizedError, UnsubscribeError)),
]


@pytest.mark.parametrize(("cls", "bases"), TREE, ids=lambda x: getattr(x, "__name__", ""))
def test_error_tree(cls: type[BaseException], bases: tuple[type[BaseException], ...]) -> None:
    """Each exception sits where the tree in errors.py says, builtin mixins included."""
    for base in bases:
        assert issubclass(cls, base)
    assert issubclass(cls, AppSyncEventsError)
    assert issubclass(AppSyncEventsError, Exception)


def test_every_exception_is_exported_and_drawn() -> None:
    """Every exception class is in __all__ and in the docstring's tree."""
    defined = {
        name
        for name, obj in vars(errors).items()
        if inspect.isclass(obj)
        and issubclass(obj, BaseException)
        and obj.__module__ == errors.__name__
        and not name.startswith("_")
    }
    assert {cls.__name__ for cls, _ in TREE} | {"AppSyncEventsError"} <= defined
    for name in defined:
        assert issubclass(getattr(errors, name), AppSyncEventsError), name
    assert defined <= set(errors.__all__)
    assert errors.__doc__ is not None
    for name in defined:
        assert name in errors.__doc__, name


def test_error_detail() -> None:
    """ErrorDetail is frozen and prints type, code and message."""
    assert str(UNAUTHORIZED) == (
        "UnauthorizedException 401: You are not authorized to make this call."
    )
    assert str(ErrorDetail(error_type="X", message="m")) == "X: m"
    assert ErrorDetail(error_type="X", message="m").error_code is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        UNAUTHORIZED.message = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        ErrorDetail("X", "m")  # type: ignore[misc]


def test_invalid_channel_error() -> None:
    """InvalidChannelError carries the channel and the rule."""
    exc = InvalidChannelError("a//b", "segment 2 is empty")
    assert (exc.channel, exc.rule) == ("a//b", "segment 2 is empty")
    assert str(exc) == "invalid channel 'a//b': segment 2 is empty"


def test_unauthorized_error() -> None:
    """UnauthorizedError carries errors, status and operation, all in its message."""
    exc = UnauthorizedError([UNAUTHORIZED], status=401, operation="publish")
    assert exc.errors == (UNAUTHORIZED,)
    assert (exc.status, exc.operation) == (401, "publish")
    assert str(exc) == (
        "publish unauthorized (HTTP 401): "
        "UnauthorizedException 401: You are not authorized to make this call."
    )
    bare = UnauthorizedError()
    assert bare.errors == ()
    assert (bare.status, bare.operation) == (None, None)
    assert str(bare) == "unauthorized: no error details"


@pytest.mark.parametrize(
    ("operation", "cls", "operation_error"),
    [
        ("publish", PublishUnauthorizedError, PublishError),
        ("subscribe", SubscribeUnauthorizedError, SubscribeError),
        ("unsubscribe", UnsubscribeUnauthorizedError, UnsubscribeError),
    ],
)
def test_unauthorized_error_factory_for_operations(
    operation: str, cls: type[UnauthorizedError], operation_error: type[OperationError]
) -> None:
    """A refused operation is both an UnauthorizedError and that operation's error."""
    exc = unauthorized_error([UNAUTHORIZED], operation=operation, id="op-1", channel="default/a")
    assert type(exc) is cls
    assert isinstance(exc, operation_error)
    assert exc.errors == (UNAUTHORIZED,)
    assert exc.operation == operation
    assert (exc.id, exc.channel, exc.status) == ("op-1", "default/a", None)  # type: ignore[attr-defined]
    assert str(exc) == (
        f"{operation} unauthorized on 'default/a': "
        "UnauthorizedException 401: You are not authorized to make this call."
    )
    with pytest.raises(operation_error):
        raise exc
    http = unauthorized_error([UNAUTHORIZED], operation=operation, status=401)
    assert str(http).startswith(f"{operation} unauthorized (HTTP 401): ")
    bare = cls()
    assert (bare.errors, bare.operation, bare.status) == ((), operation, None)
    assert str(bare) == f"{operation} unauthorized: no error details"


def test_unauthorized_error_factory_for_connect() -> None:
    """A refused connection is a plain UnauthorizedError, not an OperationError."""
    exc = unauthorized_error([UNAUTHORIZED], operation="connect", status=403)
    assert type(exc) is UnauthorizedError
    assert not isinstance(exc, OperationError)
    assert (exc.operation, exc.status, exc.errors) == ("connect", 403, (UNAUTHORIZED,))


def test_remote_protocol_error() -> None:
    """RemoteProtocolError carries the reason, frame type and id."""
    exc = RemoteProtocolError("missing field 'id'", frame_type="data", id=None)
    assert (exc.reason, exc.frame_type, exc.id) == ("missing field 'id'", "data", None)
    assert str(exc) == "missing field 'id' in 'data' frame"
    assert str(RemoteProtocolError("invalid JSON")) == "invalid JSON"
    assert RemoteProtocolError("x", id="i").id == "i"


def test_connection_closed_error() -> None:
    """ConnectionClosedError carries code and reason, or a custom message."""
    exc = ConnectionClosedError(1006, "abnormal")
    assert (exc.code, exc.reason) == (1006, "abnormal")
    assert str(exc) == "connection closed (code=1006, reason='abnormal')"
    assert str(ConnectionClosedError()) == "connection closed (code=None, reason='')"
    custom = ConnectionClosedError(1000, message="client closed")
    assert str(custom) == "client closed"
    assert custom.code == 1000
    assert custom.errors == ()


def test_connection_closed_error_with_service_errors() -> None:
    """A connection_error after the ack: ConnectionClosedError carrying .errors."""
    exc = ConnectionClosedError(
        message="the service reported a connection error", errors=[PROCESSING]
    )
    assert exc.errors == (PROCESSING,)
    assert exc.code is None
    assert str(exc) == (
        "the service reported a connection error: "
        "SubscriptionProcessingError: There was an error processing the operation"
    )
    assert str(ConnectionClosedError(1011, "x", errors=iter([PROCESSING]))).startswith(
        "connection closed (code=1011, reason='x'): SubscriptionProcessingError"
    )


def test_connection_lost_errors_are_builtin_connection_errors() -> None:
    """``except ConnectionError`` catches a closed connection and a heartbeat timeout."""
    for exc in (ConnectionClosedError(1006), HeartbeatTimeoutError(1.0)):
        with pytest.raises(ConnectionError):
            raise exc
        assert str(exc) == exc.args[0]
        assert exc.errno is None
    with pytest.raises(TimeoutError):
        raise HeartbeatTimeoutError(1.0)


def test_handshake_errors() -> None:
    """HandshakeError lists the service's errors; the timeout is also a TimeoutError."""
    exc = HandshakeError("the service refused the connection", [UNAUTHORIZED])
    assert exc.errors == (UNAUTHORIZED,)
    assert str(exc) == (
        "the service refused the connection: "
        "UnauthorizedException 401: You are not authorized to make this call."
    )
    assert str(HandshakeError("refused")) == "refused"
    timeout = HandshakeTimeoutError(1.5)
    assert timeout.timeout == 1.5
    assert timeout.errors == ()
    assert str(timeout) == "timed out after 1.5s waiting for connection_ack"
    with pytest.raises(TimeoutError):
        raise timeout


def test_timeout_errors() -> None:
    """Heartbeat and operation timeouts carry their parameters and read well."""
    heartbeat = HeartbeatTimeoutError(300.0)
    assert heartbeat.timeout == 300.0
    assert str(heartbeat) == "no keep-alive from the service within 300s"
    op = OperationTimeoutError("subscribe", "id-1", 0.25)
    assert (op.operation, op.id, op.timeout) == ("subscribe", "id-1", 0.25)
    assert str(op) == "timed out after 0.25s waiting for the subscribe ack of 'id-1'"


def test_subscription_errors() -> None:
    """Inbox-full and closed-subscription errors name the subscription and channel."""
    full = SubscriptionInboxFullError("s1", "default/a", 100)
    assert (full.subscription_id, full.channel, full.capacity) == ("s1", "default/a", 100)
    assert "inbox of subscription 's1' on 'default/a' is full (100 events)" in str(full)
    closed = SubscriptionClosedError("s1", "default/a")
    assert (closed.subscription_id, closed.channel, closed.reason) == ("s1", "default/a", "closed")
    assert str(closed) == "subscription 's1' on 'default/a' is closed"
    assert str(SubscriptionClosedError("s1", "c", "unsubscribed")).endswith("is unsubscribed")


def test_decode_error() -> None:
    """DecodeError keeps the event text, the target type name and the reason."""
    exc = DecodeError('{"a":1}', "Point", "missing field 'x'")
    assert (exc.data, exc.target, exc.reason) == ('{"a":1}', "Point", "missing field 'x'")
    assert str(exc) == "cannot decode event as Point: missing field 'x'"


@pytest.mark.parametrize(
    ("cls", "operation"),
    [
        (OperationError, "operation"),
        (SubscribeError, "subscribe"),
        (PublishError, "publish"),
        (UnsubscribeError, "unsubscribe"),
        (BroadcastError, "broadcast"),
    ],
)
def test_operation_errors(cls: type[OperationError], operation: str) -> None:
    """Operation errors carry errors, id, channel and status, and name the operation."""
    exc = cls([PROCESSING], id="i", channel="default/a", status=400)
    assert exc.operation == operation
    assert exc.errors == (PROCESSING,)
    assert (exc.id, exc.channel, exc.status) == ("i", "default/a", 400)
    assert str(exc) == (
        f"{operation} failed on 'default/a' (HTTP 400): "
        "SubscriptionProcessingError: There was an error processing the operation"
    )
    bare = cls([])
    assert (bare.id, bare.channel, bare.status) == (None, None, None)
    assert str(bare) == f"{operation} failed: no error details"


def test_errors_accept_any_iterable_of_details() -> None:
    """errors arguments may be any iterable; they are stored as tuples."""
    assert PublishError(iter([PROCESSING])).errors == (PROCESSING,)
    assert HandshakeError("x", (d for d in [UNAUTHORIZED])).errors == (UNAUTHORIZED,)
