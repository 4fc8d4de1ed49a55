"""Connect to an emulator started with ``appsync-emulator --tls --ready-file ready.json``.

Run it as ``python tls_client.py ready.json``.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys

import appsync_events
from appsync_events import authorizer


async def main(ready: dict[str, str]) -> None:
    # Trust the emulator's throw-away certificate authority (and nothing else new).
    context = ssl.create_default_context(cafile=ready["ca_cert"])
    endpoint = ready["http_endpoint"]  # https://127.0.0.1:<port>/event
    authz = authorizer.ApiKey(ready["api_key"])
    async with appsync_events.connect(endpoint, authorizer=authz, ssl=context) as client:
        async with client.subscribe("default/secure") as sub:
            await appsync_events.publish_http(
                endpoint, "default/secure", {"n": 1}, authorizer=authz, ssl=context
            )
            print("received", (await sub.next()).json())


if __name__ == "__main__":
    with open(sys.argv[1] if len(sys.argv) > 1 else "ready.json", encoding="utf-8") as file:
        asyncio.run(main(json.load(file)))
