"""Test application code that publishes over HTTP from a plain (sync) function."""

from __future__ import annotations

import json
import urllib.request


def notify_shipped(endpoint: str, api_key: str, order_id: int) -> int:
    """The code under test: publish one event with the standard library."""
    body = json.dumps({"channel": "default/orders", "events": [json.dumps({"shipped": order_id})]})
    request = urllib.request.Request(endpoint, body.encode(), method="POST")
    request.add_header("content-type", "application/json")
    request.add_header("x-api-key", api_key)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxies
    with opener.open(request, timeout=5) as response:
        return response.status


def test_notify_shipped(appsync_server):
    assert notify_shipped(appsync_server.http_endpoint, appsync_server.api_key, 42) == 200
    appsync_server.assert_published("/default/orders", events=[{"shipped": 42}])
