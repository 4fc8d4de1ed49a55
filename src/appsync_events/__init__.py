"""asyncio client for AWS AppSync Events.

::

    import appsync_events
    from appsync_events import authorizer

    authz = authorizer.ApiKey(api_key="da2-...", endpoint=HTTP_ENDPOINT)
    async with appsync_events.connect(REALTIME_ENDPOINT, authorizer=authz) as client:
        sub = await client.subscribe("default/notifications")
        await client.publish("default/notifications", {"message": "hi"})
        message = await sub.next()

The exceptions are imported with the package; every other name on first use (PEP 562), so
``import appsync_events`` does not load websockets, aiohttp or botocore until it must.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from ._lazy import lazy_exports
from .errors import *  # noqa: F403
from .errors import __all__ as _errors_all

if TYPE_CHECKING:
    from . import authorizer as authorizer
    from ._types import (
        Backpressure as Backpressure,
        JSONValue as JSONValue,
        Message as Message,
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


if not TYPE_CHECKING:  # hidden from type checkers, which see the imports above instead
    __getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), __all__)
