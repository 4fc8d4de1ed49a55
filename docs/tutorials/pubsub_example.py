"""Subscribe to a channel, publish to it over WebSocket and HTTP, and print what arrives.

Set two environment variables first: APPSYNC_HTTP_ENDPOINT (the HTTP endpoint, ending in
/event) and APPSYNC_API_KEY.  The same script runs against the local emulator and against
a real Event API in AWS.
"""

from __future__ import annotations

import asyncio
import os

import appsync_events
from appsync_events import authorizer

HTTP_ENDPOINT = os.environ["APPSYNC_HTTP_ENDPOINT"]
API_KEY = os.environ["APPSYNC_API_KEY"]
CHANNEL = "default/greetings"


async def main() -> None:
    authz = authorizer.ApiKey(API_KEY)
    # connect() takes the HTTP endpoint and derives the real-time one.
    async with appsync_events.connect(HTTP_ENDPOINT, authorizer=authz) as client:
        async with await client.subscribe(CHANNEL) as sub:
            result = await client.publish(CHANNEL, {"text": "hello"}, {"text": "world"})
            print(f"published {len(result.successful)} events over the WebSocket")
            for _ in range(2):
                message = await sub.next()
                print("received", message.json())

            await appsync_events.publish_http(
                HTTP_ENDPOINT, CHANNEL, {"text": "over HTTP"}, authorizer=authz
            )
            message = await sub.next()
            print("received", message.json())


if __name__ == "__main__":
    asyncio.run(main())
