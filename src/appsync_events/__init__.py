"""asyncio client for AWS AppSync Events.

::

    import appsync_events
    from appsync_events import authorizer

    authz = authorizer.ApiKey(api_key="da2-...", endpoint=HTTP_ENDPOINT)
    async with appsync_events.connect(REALTIME_ENDPOINT, authorizer=authz) as client:
        sub = await client.subscribe("default/notifications")
        await client.publish("default/notifications", {"message": "hi"})
        message = await sub.next()
"""

from __future__ import annotations

from . import authorizer as authorizer
from ._types import (
    Backpressure as Backpressure,
    JSONValue as JSONValue,
    Message as Message,
    PublishResult as PublishResult,
)
from .client import Client as Client, connect as connect
from .errors import *  # noqa: F403
from .errors import __all__ as _errors_all
from .http import publish_http as publish_http
from .protocol.messages import FailedEvent as FailedEvent, PublishedEvent as PublishedEvent
from .protocol.subprotocol import PROTOCOL_EVENTS as PROTOCOL_EVENTS
from .subscription import Subscription as Subscription

__all__ = [
    "PROTOCOL_EVENTS",
    "Backpressure",
    "Client",
    "FailedEvent",
    "JSONValue",
    "Message",
    "PublishResult",
    "PublishedEvent",
    "Subscription",
    "authorizer",
    "connect",
    "publish_http",
    *_errors_all,
]
