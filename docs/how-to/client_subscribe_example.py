"""Subscribe in the three ways the client offers, and decode events into a type.

Set APPSYNC_HTTP_ENDPOINT and APPSYNC_API_KEY first (the emulator's banner shows both).
Decoding into a type needs pydantic: pip install 'appsync-events[pydantic]'.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os

import appsync_events
from appsync_events import authorizer

HTTP_ENDPOINT = os.environ["APPSYNC_HTTP_ENDPOINT"]
API_KEY = os.environ["APPSYNC_API_KEY"]


@dataclasses.dataclass
class Notification:
    message: str


def on_broadcast_error(sub: appsync_events.Subscription, error: Exception) -> None:
    # Called for each broadcast_error that `async for` skips; must not block.
    print("skipped", error)


async def main() -> None:
    authz = authorizer.ApiKey(API_KEY)
    async with appsync_events.connect(HTTP_ENDPOINT, authorizer=authz) as client:
        # 1. A block: subscribed on entry, unsubscribed on exit (also on an error).
        async with client.subscribe("default/notifications") as sub:
            await client.publish("default/notifications", {"message": "hi"})
            note = await sub.decode_next(Notification)  # validated by pydantic
            print("decoded", note)

        # 2. Awaited: the subscription lives until you close it.
        sub = await client.subscribe("default/*", on_broadcast_error=on_broadcast_error)
        print("state", sub.state.name)  # ACTIVE
        await client.publish("default/a", {"n": 1}, {"n": 2})
        async for message in sub:  # ends quietly when the subscription is closed
            print("received", message.json())
            if message.json() == {"n": 2}:
                await sub.close()
        print("state", sub.state.name)  # CLOSED

        # 3. A task that subscribes in the background.
        pending = asyncio.ensure_future(client.subscribe("default/later"))
        sub = await pending
        await sub.close()


if __name__ == "__main__":
    asyncio.run(main())
