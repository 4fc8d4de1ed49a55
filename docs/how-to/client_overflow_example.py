"""Choose what a subscription does when its consumer falls behind.

Set APPSYNC_HTTP_ENDPOINT and APPSYNC_API_KEY first (the emulator's banner shows both).
"""

from __future__ import annotations

import asyncio
import os

import appsync_events
from appsync_events import Backpressure, Overflow, authorizer

HTTP_ENDPOINT = os.environ["APPSYNC_HTTP_ENDPOINT"]
API_KEY = os.environ["APPSYNC_API_KEY"]


async def publish_numbers(client: appsync_events.Client, channel: str, count: int) -> None:
    for start in range(0, count, 5):  # up to 5 events per publish
        await client.publish(channel, *range(start, min(start + 5, count)))


async def main() -> None:
    authz = authorizer.ApiKey(API_KEY)
    # Publish on a connection of its own: while a connection's reading is paused, the
    # answers to its publishes wait too.
    async with (
        appsync_events.connect(HTTP_ENDPOINT, authorizer=authz) as publisher,
        appsync_events.connect(
            HTTP_ENDPOINT,
            authorizer=authz,
            # The default of every subscription of this connection: never lose an event,
            # stop reading the socket while an inbox of 10 is full.
            backpressure=Backpressure(subscription_events=10, overflow=Overflow.PAUSE),
        ) as client,
    ):
        orders = await client.subscribe("default/orders")
        # Only the latest prices matter: keep the newest 5, drop (and count) the others.
        prices = await client.subscribe("default/prices", overflow=Overflow.DROP_OLDEST, capacity=5)

        await publish_numbers(publisher, "default/orders", 50)  # 5 inboxes' worth
        await publish_numbers(publisher, "default/prices", 50)
        await publisher.publish("default/orders", "done")  # arrives after every price

        received = []
        async for message in orders:  # reading resumes as the inbox empties
            if message.json() == "done":
                break
            received.append(message.json())
        print("orders:", len(received), "in order:", received == list(range(50)))

        latest = [(await prices.next()).json() for _ in range(prices.pending)]
        print("prices kept:", latest, "dropped:", prices.dropped)  # [45, ..., 49] 45


if __name__ == "__main__":
    asyncio.run(main())
