"""Tests that pass against the emulator and against any running endpoint (--appsync-target).

They use only what every target has: the endpoints, the client fixtures and the default
authorizer (the emulator's API key, or the APPSYNC_API_KEY / APPSYNC_AUTH=iam credentials of
a remote target).  No recorder, no faults, no server configuration in the marks; each test
uses channels of its own, so runs sharing one real Event API never see each other's events.
The last test needs the emulator, and says so with a marker.
"""

from __future__ import annotations

import uuid

import pytest

from appsync_events import UnauthorizedError, authorizer, sync


@pytest.fixture
def channel() -> str:
    """A channel in the ``default`` namespace that no other test or run uses."""
    return f"default/t{uuid.uuid4().hex}"


@pytest.mark.asyncio
async def test_publish_and_subscribe(appsync_client, channel):
    sub = await appsync_client.subscribe(channel)
    result = await appsync_client.publish(channel, {"n": 1}, {"n": 2})
    assert [s.index for s in result.successful] == [0, 1]
    assert [(await sub.next()).json() for _ in range(2)] == [{"n": 1}, {"n": 2}]


@pytest.mark.asyncio
async def test_wildcard_subscription(appsync_client, channel):
    sub = await appsync_client.subscribe(f"{channel}/*")
    await appsync_client.publish(f"{channel}/eu", {"region": "eu"})
    message = await sub.next()
    assert message.json() == {"region": "eu"}


@pytest.mark.asyncio
async def test_publisher_and_subscriber(appsync_server, appsync_client_factory, channel):
    subscriber = await appsync_client_factory(appsync_server)
    publisher = await appsync_client_factory(appsync_server)
    sub = await subscriber.subscribe(channel)
    await publisher.publish(channel, "plain text")
    assert (await sub.next()).json() == "plain text"


def test_sync_http_publish(appsync_server, appsync_authorizer, channel):
    # sync application code: a subscriber on a WebSocket, a publisher over HTTP
    ssl = appsync_server.client_ssl_context() if appsync_server.tls else None
    with (
        sync.connect(
            appsync_server.realtime_endpoint, authorizer=appsync_authorizer, ssl=ssl
        ) as client,
        client.subscribe(channel) as sub,
    ):
        result = sync.publish_http(
            appsync_server.http_endpoint, channel, {"shipped": 42},
            authorizer=appsync_authorizer, ssl=ssl,
        )  # fmt: skip
        assert not result.failed
        assert sub.next(timeout=10).json() == {"shipped": 42}


@pytest.mark.asyncio
async def test_wrong_api_key_is_refused(appsync_server, appsync_client_factory):
    wrong = authorizer.ApiKey(
        "da2-notthekey0000000000000000", endpoint=appsync_server.http_endpoint
    )
    with pytest.raises(UnauthorizedError):
        await appsync_client_factory(appsync_server, authorizer=wrong)


@pytest.mark.appsync_emulator_only(reason="asserts on the emulator's recorder")
@pytest.mark.asyncio
async def test_recorded_by_the_emulator(appsync_server, appsync_client, channel):
    await appsync_client.publish(channel, {"n": 1})
    appsync_server.assert_published(f"/{channel}", events=[{"n": 1}])
