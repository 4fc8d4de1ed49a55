"""Host the emulator in your event loop or on a background thread, inject faults, assert."""

from __future__ import annotations

import asyncio

import appsync_events
from appsync_emulator import EmulatorConfig, EmulatorServer, EmulatorThread, NamespaceConfig
from appsync_emulator.faults import DelayReply
from appsync_events import authorizer


async def in_your_event_loop() -> None:
    config = EmulatorConfig(
        namespaces=(NamespaceConfig(name="default"), NamespaceConfig(name="chat")),
        keepalive_interval=0.05,
        connection_timeout_ms=300,
    )
    async with EmulatorServer(config) as server:  # 127.0.0.1, a free port
        print("serving", server.http_endpoint, server.realtime_endpoint, server.region)
        authz = authorizer.ApiKey(server.api_key)
        async with appsync_events.connect(server.http_endpoint, authorizer=authz) as client:
            await client.publish("chat/lobby", {"text": "hi"})
            await server.wait_published("chat/lobby", count=1)  # waits, never sleeps
        server.assert_published("/chat/lobby", events=[{"text": "hi"}])
        server.check()  # re-raises what a handler or the server raised


def on_a_background_thread() -> None:
    # Its own thread and event loop: usable from sync code, any event loop, and freezegun.
    with EmulatorThread(tls=True) as server:
        context = server.client_ssl_context()  # or trust server.ca_cert_path

        async def client_code() -> None:
            authz = authorizer.ApiKey(server.api_key)
            async with appsync_events.connect(
                server.http_endpoint, authorizer=authz, ssl=context
            ) as client:
                with server.inject(DelayReply(0.2, match="subscribe_success")):
                    async with client.subscribe("default/*"):  # answered 0.2 s late
                        server.assert_subscribed("/default/*")

        asyncio.run(client_code())
        server.assert_no_errors()
        print("recorded", len(server.recorder.subscriptions), "subscription(s) over TLS")


if __name__ == "__main__":
    asyncio.run(in_your_event_loop())
    on_a_background_thread()
