"""asyncio client for AWS AppSync Events.

::

    import appsync_events
    from appsync_events import authorizer

    authz = authorizer.ApiKey("da2-...")
    async with appsync_events.connect(REALTIME_ENDPOINT, authorizer=authz) as client:
        sub = await client.subscribe("default/notifications")
        await client.publish("default/notifications", {"message": "hi"})
        message = await sub.next()

The exceptions are imported with the package; every other name on first use (PEP 562), so
``import appsync_events`` does not load websockets, aiohttp or botocore until it must.
``__version__`` is the installed distribution's version.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Final

from .errors import *  # noqa: F403
from .errors import __all__ as _errors_all

if TYPE_CHECKING:
    from . import authorizer as authorizer
    from ._types import (
        Backpressure as Backpressure,
        JSONValue as JSONValue,
        Message as Message,
        Overflow as Overflow,
        PublishResult as PublishResult,
        RawJSON as RawJSON,
    )
    from .client import Client as Client, connect as connect
    from .http import HttpPublisher as HttpPublisher, publish_http as publish_http
    from .protocol.messages import FailedEvent as FailedEvent, PublishedEvent as PublishedEvent
    from .protocol.subprotocol import PROTOCOL_EVENTS as PROTOCOL_EVENTS
    from .reconnect import ConnectionState as ConnectionState, Reconnect as Reconnect
    from .subscription import Subscription as Subscription

__all__ = [
    "PROTOCOL_EVENTS",
    "Backpressure",
    "Client",
    "FailedEvent",
    "HttpPublisher",
    "JSONValue",
    "Message",
    "Overflow",
    "PublishResult",
    "PublishedEvent",
    "RawJSON",
    "Reconnect",
    "ConnectionState",
    "Subscription",
    "authorizer",
    "connect",
    "publish_http",
    *_errors_all,
]

_LAZY: Final[dict[str, str]] = {
    # public name -> submodule defining it (``authorizer`` is the subpackage itself)
    "PROTOCOL_EVENTS": "protocol.subprotocol",
    "Backpressure": "_types",
    "JSONValue": "_types",
    "Message": "_types",
    "Overflow": "_types",
    "PublishResult": "_types",
    "RawJSON": "_types",
    "Client": "client",
    "connect": "client",
    "FailedEvent": "protocol.messages",
    "PublishedEvent": "protocol.messages",
    "Reconnect": "reconnect",
    "ConnectionState": "reconnect",
    "Subscription": "subscription",
    "publish_http": "http",
    "HttpPublisher": "http",
    "authorizer": "authorizer",
}


__version__: str
"""The version of the installed ``appsync-events`` distribution (read on first use)."""


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("appsync-events")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree, not installed
        return "0+unknown"


def _load(name: str) -> object:
    """Import what defines ``name`` on first use (PEP 562) and keep it in the namespace."""
    if name == "__version__":
        value: object = _version()
    elif name in _LAZY:
        module = importlib.import_module(f"{__name__}.{_LAZY[name]}")
        value = module if _LAZY[name] == name else getattr(module, name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


if not TYPE_CHECKING:  # hidden from type checkers, which see the imports above instead
    __getattr__ = _load

    def __dir__() -> list[str]:
        return sorted({*globals(), *__all__})
