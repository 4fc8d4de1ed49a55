"""Cost of IAM (SigV4) signing per operation, against the API-key map as a baseline.

Run: ``python benchmarks/iam_signing.py [--number N]``.  Prints µs per operation for the
pure builders (:func:`sign_request`, :func:`api_key_headers`) and for the full
``await authorizer.authorize(...)`` path with static credentials, plus the IAM/ApiKey
ratios.  No network, no clock dependence.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import timeit
from collections.abc import Callable
from datetime import UTC, datetime

from botocore.credentials import ReadOnlyCredentials

from appsync_events.authorizer import IAM, ApiKey, Authorizer, AuthorizeRequest, Operation
from appsync_events.authorizer.api_key import api_key_headers
from appsync_events.authorizer.iam import sign_request
from appsync_events.protocol.signing import signing_body

HOST = "example1234567890000.appsync-api.us-east-1.amazonaws.com"
ENDPOINT = f"https://{HOST}/event"
CREDENTIALS = ReadOnlyCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "tok")
NOW = datetime(2020, 4, 1, 0, 10, 10, tzinfo=UTC)
CHANNEL = "default/benchmarks/iam"
EVENTS = tuple(
    json.dumps({"seq": i, "text": "hello <world> & café", "n": [1, 2, 3]}) for i in range(5)
)

SUBSCRIBE = AuthorizeRequest(operation=Operation.SUBSCRIBE, channel=CHANNEL)
PUBLISH = AuthorizeRequest(operation=Operation.PUBLISH, channel=CHANNEL, events=EVENTS)


def per_op_us(func: Callable[[], object], number: int, repeat: int = 5) -> float:
    """Best-of-``repeat`` microseconds per call."""
    return min(timeit.repeat(func, number=number, repeat=repeat)) / number * 1e6


def async_per_op_us(authz: Authorizer, request: AuthorizeRequest, number: int) -> float:
    """Microseconds per ``await authz.authorize(request)``, looping inside one coroutine."""

    async def run() -> float:
        loop = asyncio.get_running_loop()
        best = float("inf")
        for _ in range(5):
            start = loop.time()
            for _ in range(number):
                await authz.authorize(request)
            best = min(best, loop.time() - start)
        return best / number * 1e6

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--number", type=int, default=2000, help="calls per timing run")
    number = parser.parse_args().number

    subscribe_body = signing_body(CHANNEL)
    publish_body = signing_body(CHANNEL, EVENTS)

    def iam(body: str) -> Callable[[], object]:
        return lambda: sign_request(
            credentials=CREDENTIALS, region="us-east-1", host=HOST, body=body, now=NOW
        )

    rows = [
        (
            "pure: ApiKey map (baseline)",
            per_op_us(lambda: api_key_headers(api_key="da2-key", host=HOST, now=NOW), number),
        ),
        ("pure: IAM sign subscribe", per_op_us(iam(subscribe_body), number)),
        (
            f"pure: IAM sign publish, 5 events ({len(publish_body)} B)",
            per_op_us(iam(publish_body), number),
        ),
    ]
    api_key = ApiKey(api_key="da2-key", endpoint=ENDPOINT)
    signer = IAM(endpoint=ENDPOINT, credentials=CREDENTIALS)
    rows += [
        ("authorize(): ApiKey (baseline)", async_per_op_us(api_key, SUBSCRIBE, number)),
        ("authorize(): IAM subscribe", async_per_op_us(signer, SUBSCRIBE, number)),
        ("authorize(): IAM publish, 5 events", async_per_op_us(signer, PUBLISH, number)),
    ]

    width = max(len(name) for name, _ in rows)
    print(f"{'operation':<{width}}  {'µs/op':>9}  {'x ApiKey':>8}")
    for index, (name, micros) in enumerate(rows):
        baseline = rows[0 if index < 3 else 3][1]
        print(f"{name:<{width}}  {micros:9.2f}  {micros / baseline:8.1f}")


if __name__ == "__main__":
    main()
