"""Authorizers: one per auth mode, and one that chooses per operation.

Set APPSYNC_HTTP_ENDPOINT and APPSYNC_API_KEY first (the emulator's banner shows both).
"""

from __future__ import annotations

import asyncio
import os

import appsync_events
from appsync_events import authorizer

HTTP_ENDPOINT = os.environ["APPSYNC_HTTP_ENDPOINT"]
API_KEY = os.environ["APPSYNC_API_KEY"]


async def fetch_token() -> str:
    # Called for every operation (it may be sync too): return a fresh token each time,
    # so a long-lived connection survives token expiry.
    return "eyJ..."


# API key; Cognito, OpenID Connect or Lambda token; IAM with botocore's credential chain
# (environment, profiles, SSO, container and instance roles).
api_key = authorizer.ApiKey(API_KEY)
token = authorizer.Token("eyJ...")
refreshing_token = authorizer.Token(fetch_token)
iam = authorizer.IAM()  # the region is read from an AWS host; IAM("eu-central-1") otherwise


class PerOperation:
    """Anything with this method is an authorizer.Authorizer."""

    def __init__(self) -> None:
        self.api_key = authorizer.ApiKey(API_KEY)
        self.iam = authorizer.IAM()

    async def authorize(self, request: authorizer.AuthorizeRequest) -> authorizer.AuthorizeResult:
        # request.operation: CONNECT, SUBSCRIBE, PUBLISH or UNSUBSCRIBE; request.host is the
        # API's HTTP host; request.channel and request.events are set when they apply.
        print("authorizing", request.operation.name, request.channel or "")
        return await self.api_key.authorize(request)


async def main() -> None:
    async with appsync_events.connect(HTTP_ENDPOINT, authorizer=PerOperation()) as client:
        async with client.subscribe("default/audit") as sub:
            # authorizer= overrides the client's authorizer for one call.
            await client.publish("default/audit", {"by": "api key"}, authorizer=api_key)
            print("received", (await sub.next()).json())


if __name__ == "__main__":
    asyncio.run(main())
