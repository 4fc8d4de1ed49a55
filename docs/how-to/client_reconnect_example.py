"""Reconnect automatically, with bounded buffers and explicit timeouts.

Set APPSYNC_HTTP_ENDPOINT and APPSYNC_API_KEY first (the emulator's banner shows both).
"""

from __future__ import annotations

import asyncio
import os

import appsync_events
from appsync_events import Backpressure, ConnectionState, Reconnect, authorizer

HTTP_ENDPOINT = os.environ["APPSYNC_HTTP_ENDPOINT"]
API_KEY = os.environ["APPSYNC_API_KEY"]


def on_state_change(state: ConnectionState) -> None:
    print("connection", state.value)


async def main() -> None:
    async with appsync_events.connect(
        HTTP_ENDPOINT,
        authorizer=authorizer.ApiKey(API_KEY),
        reconnect=Reconnect(initial_delay=0.1, max_delay=10.0, max_attempts=None),
        on_state_change=on_state_change,
        backpressure=Backpressure(
            connection_outbound=200,  # frames waiting to be sent
            subscription_events=500,  # events buffered per subscription
        ),
        handshake_timeout=10.0,
        operation_timeout=10.0,
        close_timeout=5.0,
    ) as client:
        async with client.subscribe("default/notifications") as sub:
            await client.publish("default/notifications", {"n": 1})
            print("received", (await sub.next()).json())  # keeps going across reconnections
        print("reconnects so far:", client.reconnects)


if __name__ == "__main__":
    asyncio.run(main())
