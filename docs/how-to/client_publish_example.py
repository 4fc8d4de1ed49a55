"""Publish over the WebSocket and over HTTP, and read the per-event results.

Set APPSYNC_HTTP_ENDPOINT and APPSYNC_API_KEY first (the emulator's banner shows both).
"""

from __future__ import annotations

import asyncio
import os

import appsync_events
from appsync_events import RawJSON, authorizer

HTTP_ENDPOINT = os.environ["APPSYNC_HTTP_ENDPOINT"]
API_KEY = os.environ["APPSYNC_API_KEY"]


async def main() -> None:
    authz = authorizer.ApiKey(API_KEY)
    async with appsync_events.connect(HTTP_ENDPOINT, authorizer=authz) as client:
        # Over the WebSocket: 1 to 5 events in one publish.  Any JSON value is encoded (a
        # str becomes a JSON string); bytes and RawJSON are JSON texts sent as they are.
        result = await client.publish(
            "default/chat", {"text": "hi"}, "a string", b'{"raw": 1}', RawJSON('{"raw": 2}')
        )
        for ok in result.successful:  # PublishedEvent(identifier, index)
            print("published", ok.index)
        for bad in result.failed:  # FailedEvent(identifier, index, code, message)
            print("failed", bad.index, bad.code, bad.message)

    # Over HTTP (POST /event), no WebSocket needed: the same result type and errors.
    result = await appsync_events.publish_http(
        HTTP_ENDPOINT, "default/chat", {"text": "over HTTP"}, authorizer=authz
    )
    print("published over HTTP", len(result.successful))

    # Many HTTP publishes: one HttpPublisher keeps its connections alive between them.
    async with appsync_events.HttpPublisher(HTTP_ENDPOINT, authorizer=authz) as publisher:
        for n in range(3):
            await publisher.publish("default/counter", {"n": n})
    print("published 3 events with one HttpPublisher")

    # Mistakes are refused before anything is signed or sent.
    try:
        await appsync_events.publish_http(
            HTTP_ENDPOINT, "default/chat", *range(6), authorizer=authz
        )
    except appsync_events.ConfigurationError as exc:
        print("refused:", exc)


if __name__ == "__main__":
    asyncio.run(main())
