"""Assert on what the emulator saw, and wait for it instead of sleeping."""

from __future__ import annotations

import json
import threading
import urllib.request

import pytest


@pytest.mark.appsync(namespaces=["default", "chat"])
@pytest.mark.asyncio
async def test_recorder(appsync_server, appsync_client):
    sub = await appsync_client.subscribe("chat/*")
    appsync_server.assert_subscribed("/chat/*")
    await appsync_client.publish("chat/lobby", {"text": "hi"}, {"text": "bye"})
    await appsync_server.wait_published("chat/lobby", count=2)
    appsync_server.assert_published("/chat/lobby", events=[{"text": "hi"}, {"text": "bye"}])
    appsync_server.assert_no_errors()
    # the whole log stays on appsync_server.recorder
    assert appsync_server.recorder.published[0].transport == "websocket"
    assert (await sub.next()).json() == {"text": "hi"}


def test_recorder_from_a_sync_test(appsync_server):
    # code under test publishes from another thread; the _sync waits block until it has
    def publish_later():
        body = json.dumps({"channel": "default/jobs", "events": ['{"job": 1}']}).encode()
        request = urllib.request.Request(appsync_server.http_endpoint, body, method="POST")
        request.add_header("x-api-key", appsync_server.api_key)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxies
        opener.open(request, timeout=5).close()

    worker = threading.Thread(target=publish_later)
    worker.start()
    appsync_server.wait_published_sync("default/jobs")
    worker.join()
    appsync_server.assert_published("/default/jobs", events=[{"job": 1}])
