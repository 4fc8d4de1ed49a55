"""Catch the errors the service reports, and the ones refused before sending.

Set APPSYNC_HTTP_ENDPOINT and APPSYNC_API_KEY first (the emulator's banner shows both).
"""

from __future__ import annotations

import asyncio
import os

import appsync_events
from appsync_events import authorizer

HTTP_ENDPOINT = os.environ["APPSYNC_HTTP_ENDPOINT"]
API_KEY = os.environ["APPSYNC_API_KEY"]


async def main() -> None:
    try:
        await appsync_events.connect(HTTP_ENDPOINT, authorizer=authorizer.ApiKey("da2-wrong"))
    except appsync_events.UnauthorizedError as exc:  # 401/403, UnauthorizedException
        print("connect refused:", [(e.error_type, e.error_code) for e in exc.errors])

    async with appsync_events.connect(
        HTTP_ENDPOINT, authorizer=authorizer.ApiKey(API_KEY)
    ) as client:
        try:
            await client.subscribe("no-such-namespace/x")
        except appsync_events.SubscribeError as exc:  # subscribe_error: .errors
            print("subscribe refused:", exc.errors[0].error_type)
        try:
            await client.subscribe("default/not a channel")
        except appsync_events.InvalidChannelError as exc:  # refused before sending
            print("invalid channel:", exc)
        except appsync_events.ConnectionLostError:  # HeartbeatTimeoutError, ConnectionClosedError
            print("connection lost")


if __name__ == "__main__":
    asyncio.run(main())
