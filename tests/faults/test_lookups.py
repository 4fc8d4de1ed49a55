"""Finding a client's connection and a subscription the way a test knows them."""

from __future__ import annotations

from typing import Any

import pytest

from appsync_emulator import EmulatorConfig, EmulatorThread, RecorderAssertionError
from appsync_emulator.faults import FloodSubscription, SendBroadcastError
from appsync_emulator.pytest_plugin import ClientFactory
from appsync_events import Client, InvalidChannelError, authorizer, sync


@pytest.fixture
def appsync_server_config() -> EmulatorConfig:
    """AWS's timings, not the fast ones of this folder: these tests wait for the faults,
    never for a timeout, and a busy machine must not time their clients out."""
    return EmulatorConfig()


@pytest.fixture
def appsync_client_options() -> dict[str, Any]:
    """The client's default timeouts (see ``appsync_server_config``)."""
    return {}


@pytest.mark.asyncio
async def test_connection_of_a_client(
    appsync_server: EmulatorThread, appsync_client_factory: ClientFactory
) -> None:
    """connection_of finds each client's connection by its local socket address."""
    first = await appsync_client_factory(appsync_server)
    second = await appsync_client_factory(appsync_server)
    ids = [appsync_server.connection_of(c).id for c in (first, second)]
    assert ids == [c.id for c in appsync_server.connections]
    assert first.local_address is not None
    assert appsync_server.connection_of(first.local_address).id == ids[0]


def test_connection_of_a_sync_client(appsync_server: EmulatorThread) -> None:
    """The synchronous client shows its local address too."""
    authz = authorizer.ApiKey(appsync_server.api_key)
    with sync.connect(appsync_server.http_endpoint, authorizer=authz) as client:
        assert appsync_server.connection_of(client).open


@pytest.mark.asyncio
async def test_connection_of_an_unknown_client(
    appsync_server: EmulatorThread, appsync_client: Client
) -> None:
    """An address no connection comes from is a LookupError listing the open ones."""
    with pytest.raises(LookupError, match=r"no open connection from 127\.0\.0\.1:1 \(open: c1"):
        appsync_server.connection_of(("127.0.0.1", 1))


@pytest.mark.asyncio
async def test_connection_of_a_closed_client(
    appsync_server: EmulatorThread, appsync_client_factory: ClientFactory
) -> None:
    """A closed client's connection is not open any more."""
    client = await appsync_client_factory(appsync_server)
    await client.close()
    await appsync_server.wait_for(lambda r: not r.open_connections or None)
    with pytest.raises(LookupError):
        appsync_server.connection_of(client)


def test_inject_refuses_a_bad_connection(appsync_server: EmulatorThread) -> None:
    """connection= of the wrong type is a TypeError naming the accepted ones."""
    with pytest.raises(TypeError, match="a ConnectionInfo, a client"):
        appsync_server.inject(SendBroadcastError(), connection=42)  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_subscription_by_channel(
    appsync_server: EmulatorThread, appsync_client_factory: ClientFactory
) -> None:
    """subscription(channel) is the server's record; connection= picks among several."""
    first = await appsync_client_factory(appsync_server)
    second = await appsync_client_factory(appsync_server)
    sub = await first.subscribe("default/room")
    assert appsync_server.subscription("default/room").id == sub.id
    assert appsync_server.subscription("/default/room").id == sub.id
    other = await second.subscribe("default/room")
    with pytest.raises(LookupError, match="2 active subscriptions to /default/room"):
        appsync_server.subscription("default/room")
    record = appsync_server.subscription("default/room", connection=second)
    assert record.id == other.id
    by_info = appsync_server.subscription("default/room", connection=appsync_server.connections[0])
    assert by_info.id == sub.id


@pytest.mark.asyncio
async def test_subscription_lookup_failures(
    appsync_server: EmulatorThread, appsync_client: Client
) -> None:
    """Missing subscriptions, bad channels and bad targets get clear errors."""
    await appsync_client.subscribe("default/*")
    with pytest.raises(
        LookupError, match=r"no active subscription to /default/x \(active: /default/\*"
    ):
        appsync_server.subscription("default/x")
    with pytest.raises(InvalidChannelError):
        appsync_server.subscription("default//x")
    with pytest.raises(TypeError, match="connection must be"):
        appsync_server.subscription("default/*", connection=lambda c: True)
    with pytest.raises(LookupError, match="no subscription 'nope' was recorded"):
        appsync_server.subscription_of("nope")
    with pytest.raises(TypeError, match="subscription must be a subscription id"):
        appsync_server.subscription_of(42)  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_subscription_of_and_wait_unsubscribed(
    appsync_server: EmulatorThread, appsync_client: Client
) -> None:
    """subscription_of follows a client subscription; wait_unsubscribed waits for its end."""
    sub = await appsync_client.subscribe("default/x")
    assert appsync_server.subscription_of(sub).active
    await sub.close()
    record = await appsync_server.wait_unsubscribed(sub)
    assert record.id == sub.id
    assert not appsync_server.subscription_of(sub.id).active


@pytest.mark.asyncio
async def test_wait_unsubscribed_times_out(
    appsync_server: EmulatorThread, appsync_client: Client, ms: float
) -> None:
    """A subscription still active (or never seen) fails the wait, saying which."""
    sub = await appsync_client.subscribe("default/x")
    with pytest.raises(RecorderAssertionError, match="is still active"):
        await appsync_server.wait_unsubscribed(sub, timeout=20 * ms)
    with pytest.raises(RecorderAssertionError, match="no subscription nope was ever recorded"):
        await appsync_server.wait_unsubscribed("nope", timeout=20 * ms)


def test_wait_unsubscribed_sync(appsync_server: EmulatorThread) -> None:
    """The blocking twin waits in a sync test."""
    authz = authorizer.ApiKey(appsync_server.api_key)
    with sync.connect(appsync_server.http_endpoint, authorizer=authz) as client:
        sub = client.subscribe("default/x")
        record = appsync_server.subscription("default/x")
        sub.close()
        assert not appsync_server.wait_unsubscribed_sync(record).active


def test_fault_targets_validate() -> None:
    """Subscription targets: one way to name it, a valid channel, something with an id."""
    with pytest.raises(ValueError, match="not both"):
        FloodSubscription("s1", channel="default/x")
    with pytest.raises(ValueError, match="name different subscriptions"):
        SendBroadcastError("s1", subscription="s2")
    with pytest.raises(InvalidChannelError):
        FloodSubscription(channel="default/*/x")
    with pytest.raises(TypeError, match="have one in"):
        FloodSubscription(subscription=object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="count must be an int"):
        FloodSubscription(count=1.5)  # type: ignore[arg-type]
    assert FloodSubscription(channel="default/*").channel == "/default/*"
    assert SendBroadcastError(subscription="s1") == SendBroadcastError("s1")
