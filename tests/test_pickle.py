"""Every public exception of both packages survives a pickle round trip.

Exceptions cross process boundaries in pytest-xdist, multiprocessing and task queues.  The
classes are found by walking every module's ``__all__``, so a new public exception without
an example below fails :func:`test_every_public_exception_has_an_example`.
"""

from __future__ import annotations

import importlib
import pickle
import pkgutil
from collections.abc import Callable
from typing import Any

import pytest

import appsync_emulator
import appsync_events
from appsync_emulator.appsync_js.transform import CodeError
from appsync_events.errors import ErrorDetail

DETAIL = ErrorDetail(
    error_type="UnauthorizedException", message="You are not authorized.", error_code=401
)
OTHER = ErrorDetail(error_type="BadRequestException", message="Invalid channel")

Example = Callable[[type[Any]], BaseException]

EXAMPLES: dict[str, Example] = {
    # appsync_events.errors
    "AppSyncEventsError": lambda cls: cls("something failed"),
    "ConfigurationError": lambda cls: cls("bad endpoint"),
    "InvalidChannelError": lambda cls: cls("a//b", "segment 2 is empty"),
    "AuthorizationError": lambda cls: cls("refused"),
    "CredentialsError": lambda cls: cls("no credentials"),
    "UnauthorizedError": lambda cls: cls([DETAIL], status=401, operation="connect"),
    "PublishUnauthorizedError": lambda cls: cls([DETAIL], id="p1", channel="d/a", status=401),
    "SubscribeUnauthorizedError": lambda cls: cls([DETAIL], id="s1", channel="d/*"),
    "UnsubscribeUnauthorizedError": lambda cls: cls([DETAIL], id="s1"),
    "ProtocolError": lambda cls: cls("broken"),
    "LocalProtocolError": lambda cls: cls("not connected"),
    "RemoteProtocolError": lambda cls: cls("missing field", frame_type="data", id="s1"),
    "ConnectionLostError": lambda cls: cls("gone"),
    "ConnectionClosedError": lambda cls: cls(1011, "internal", message="closed", errors=[OTHER]),
    "HandshakeError": lambda cls: cls("refused", [DETAIL]),
    "HandshakeTimeoutError": lambda cls: cls(1.5),
    "HeartbeatTimeoutError": lambda cls: cls(0.3),
    "OperationTimeoutError": lambda cls: cls("subscribe", "s1", 2.0),
    "SubscriptionInboxFullError": lambda cls: cls("s1", "d/a", 100),
    "SubscriptionClosedError": lambda cls: cls("s1", "d/a", "unsubscribed"),
    "DecodeError": lambda cls: cls('{"a":1}', "Point", "missing field 'x'"),
    "OperationError": lambda cls: cls([OTHER], id="o1", channel="d/a", status=400),
    "SubscribeError": lambda cls: cls([OTHER], id="s1", channel="d/a"),
    "PublishError": lambda cls: cls([OTHER], channel="d/a", status=400),
    "UnsubscribeError": lambda cls: cls([OTHER], id="s1"),
    "BroadcastError": lambda cls: cls([OTHER], id="s1"),
    # appsync_events._transport (internal, turned into ConnectionClosedError)
    "TransportClosed": lambda cls: cls(),
    # appsync_emulator
    "ConfigError": lambda cls: cls("namespaces: must not be empty"),
    "Unauthorized": lambda cls: cls("go away"),
    "HandlerError": lambda cls: cls("no", "CustomError"),
    "HandlerFailure": lambda cls: cls("onPublish raised"),
    "HandlerLoadError": lambda cls: cls("namespace 'chat': chat.js:1:1: SyntaxError"),
    "HandlerRejection": lambda cls: cls([DETAIL, OTHER], status=403),
    "Rejection": lambda cls: cls([DETAIL], status=401),
    "AuthFailure": lambda cls: cls([DETAIL], status=403),
    "LoopScopeError": lambda cls: cls("different loops"),
    "RecorderAssertionError": lambda cls: cls("no publish on 'd/a'"),
    "FaultNotDoneError": lambda cls: cls("DropKeepAlives()", 0, "was not done within 1.0 s"),
    "RecordingFormatError": lambda cls: cls("rec.jsonl", 3, "frame: missing field 'conn'"),
    "ReplayMismatchError": lambda cls: cls(["connection 1: unexpected publish frame"]),
    # appsync_emulator.appsync_js
    "EngineFailure": lambda cls: cls("out of memory", memory=True),
    "EngineTimeout": lambda cls: cls("ran past 1.0 s"),
    "LoadFailure": lambda cls: cls("SyntaxError: Unexpected token", 2),
    "JsCodeError": lambda cls: cls(
        "h.js", (CodeError(error_type="PARSER_ERROR", value="Unexpected '}'", line=3, column=1),)
    ),
}
"""Class name -> how to build a representative instance of it."""


def public_exceptions() -> dict[str, type[BaseException]]:
    """Every exception class named in a module's ``__all__``, in both packages."""
    found: dict[str, type[BaseException]] = {}
    for package in (appsync_events, appsync_emulator):
        names = [package.__name__]
        names += [
            info.name
            for info in pkgutil.walk_packages(package.__path__, package.__name__ + ".")
            if not info.name.endswith("__main__")
        ]
        for name in names:
            module = importlib.import_module(name)
            for attr in getattr(module, "__all__", ()):
                value = getattr(module, attr)
                if isinstance(value, type) and issubclass(value, BaseException):
                    other = found.setdefault(value.__name__, value)
                    assert other is value, f"two public exceptions named {value.__name__}"
    return found


PUBLIC = public_exceptions()


def test_every_public_exception_has_an_example() -> None:
    """The examples cover exactly the public exception classes (add one for a new class)."""
    assert sorted(PUBLIC) == sorted(EXAMPLES)


def state(exc: BaseException) -> tuple[Any, ...]:
    """What must survive: the type, message, args, attributes, and the builtin fields."""
    return (type(exc), str(exc), exc.args, vars(exc), getattr(exc, "errno", None))


@pytest.mark.parametrize("name", sorted(set(PUBLIC) & set(EXAMPLES)))
@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_exception_round_trips_through_pickle(name: str, protocol: int) -> None:
    """Message, args and every attribute (notes included) come back equal."""
    exc = EXAMPLES[name](PUBLIC[name])
    assert type(exc) is PUBLIC[name]
    exc.add_note("while testing")
    copy = pickle.loads(pickle.dumps(exc, protocol=protocol))
    assert state(copy) == state(exc)
    assert copy.__notes__ == ["while testing"]
