"""Fault handles: how many times a fault acted, and waiting until it is done."""

from __future__ import annotations

import asyncio
import pickle
from typing import Any

import pytest

import appsync_events
from appsync_emulator import EmulatorConfig, EmulatorServer, EmulatorThread, FaultNotDoneError
from appsync_emulator.faults import (
    CloseConnection,
    CorruptFrame,
    DelayReply,
    DropConnection,
    DropKeepAlives,
    FloodSubscription,
    RejectSubscribe,
    SendBroadcastError,
    SendError,
    SendRawText,
    Stall,
    StallSubscriber,
    WithholdReply,
)
from appsync_emulator.pytest_plugin import ClientFactory
from appsync_events import (
    Backpressure,
    BroadcastError,
    Client,
    RemoteProtocolError,
    SubscribeError,
    authorizer,
    sync,
)


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
async def test_broadcast_error_is_done_once_queued(
    appsync_server: EmulatorThread, appsync_client: Client
) -> None:
    """A one-shot fault is done once its frame is queued: later replies come after it."""
    sub = await appsync_client.subscribe("default/news")
    handle = await appsync_server.inject(SendBroadcastError(subscription=sub)).wait_done()
    assert (handle.acted, handle.done) == (1, True)
    await appsync_client.publish("default/news", {"n": 1})
    with pytest.raises(BroadcastError):
        await sub.next()
    assert (await sub.next()).json() == {"n": 1}


@pytest.mark.asyncio
async def test_one_shot_counts_each_connection(
    appsync_server: EmulatorThread, appsync_client_factory: ClientFactory
) -> None:
    """A one-shot fault for every connection is done when each one got it."""
    clients = [await appsync_client_factory(appsync_server) for _ in range(3)]
    handle = await appsync_server.inject(SendRawText('{"type":"unknown"}')).wait_done()
    assert handle.acted == len(clients)


@pytest.mark.asyncio
async def test_send_error_is_done(appsync_server: EmulatorThread, appsync_client: Client) -> None:
    """SendError is done once its frame is queued."""
    handle = await appsync_server.inject(SendError(id="nope")).wait_done()
    assert handle.acted == 1


@pytest.mark.asyncio
async def test_one_shot_matching_nothing_fails_at_once(
    appsync_server: EmulatorThread, appsync_client: Client
) -> None:
    """A one-shot fault that matched nothing fails the wait at once, saying so."""
    handle = appsync_server.inject(FloodSubscription(channel="default/nobody", count=5))
    with pytest.raises(FaultNotDoneError, match="matched no open connection or subscription"):
        await handle.wait_done(timeout=60)
    assert not handle.done


@pytest.mark.asyncio
async def test_flood_by_channel_floods_each_subscription(
    appsync_server: EmulatorThread, appsync_client_factory: ClientFactory
) -> None:
    """FloodSubscription(channel=...) floods every subscription to that channel."""
    first = await appsync_client_factory(appsync_server)
    second = await appsync_client_factory(appsync_server)
    subs = [await c.subscribe("default/room") for c in (first, second)]
    other = await first.subscribe("default/other")
    flood = FloodSubscription(channel="/default/room", count=3, event='{"f":1}')
    handle = await appsync_server.inject(flood).wait_done()
    assert handle.acted == 2
    for sub in subs:
        assert [(await sub.next()).json() for _ in range(3)] == [{"f": 1}] * 3
    assert other.pending == 0


@pytest.mark.asyncio
async def test_flood_cut_short_by_unsubscribe_is_done(
    appsync_server: EmulatorThread, appsync_client_factory: ClientFactory
) -> None:
    """A flood whose subscription ends (the client overflowed) is done all the same."""
    client = await appsync_client_factory(
        appsync_server, backpressure=Backpressure(subscription_events=2)
    )
    sub = await client.subscribe("default/flood")
    handle = appsync_server.inject(FloodSubscription(subscription=sub, count=10_000))
    record = await appsync_server.wait_unsubscribed(sub)
    assert not record.active
    await handle.wait_done()


@pytest.mark.asyncio
async def test_flood_ends_with_its_connection(
    appsync_server: EmulatorThread, appsync_client: Client
) -> None:
    """A flood on a connection that closes is done when the connection is gone."""
    sub = await appsync_client.subscribe("default/flood")
    flood = appsync_server.inject(FloodSubscription(subscription=sub, count=1_000_000, rate=10))
    await appsync_server.inject(DropConnection()).wait_done()
    await flood.wait_done()


@pytest.mark.asyncio
async def test_close_is_done_when_the_server_closed(
    appsync_server: EmulatorThread, appsync_client: Client
) -> None:
    """CloseConnection is done once the server closed (and recorded) the connection."""
    await appsync_server.inject(CloseConnection(4000, "bye")).wait_done()
    [info] = appsync_server.connections
    assert (info.open, info.close_code, info.close_reason) == (False, 4000, "bye")


@pytest.mark.asyncio
async def test_drop_is_done_when_the_server_closed(
    appsync_server: EmulatorThread, appsync_client: Client
) -> None:
    """DropConnection is done once the connection is recorded closed."""
    await appsync_server.inject(DropConnection()).wait_done()
    assert not appsync_server.connections[0].open


@pytest.mark.appsync(keepalive_interval=0.02)
@pytest.mark.asyncio
async def test_standing_fault_is_done_at_its_first_action(
    appsync_server: EmulatorThread, appsync_client: Client
) -> None:
    """A standing fault is done the first time it acts (here: the first ka it dropped)."""
    handle = await appsync_server.inject(DropKeepAlives()).wait_done()
    assert handle.acted >= 1


@pytest.mark.asyncio
async def test_counted_corruption_is_done_when_used_up(
    appsync_server: EmulatorThread, appsync_client_factory: ClientFactory
) -> None:
    """CorruptFrame(times=2) is done after its second replaced frame."""
    handle = appsync_server.inject(CorruptFrame(match="publish_success", times=2))
    for _ in range(2):
        client = await appsync_client_factory(appsync_server)
        assert not handle.done
        with pytest.raises(RemoteProtocolError):
            await client.publish("default/x", {"n": 1})
    await handle.wait_done()
    assert handle.acted == 2


@pytest.mark.asyncio
async def test_rejection_counts_each_operation(
    appsync_server: EmulatorThread, appsync_client: Client
) -> None:
    """A refusing fault counts each refused operation."""
    handle = appsync_server.inject(RejectSubscribe())
    for _ in range(2):
        with pytest.raises(SubscribeError):
            await appsync_client.subscribe("default/x")
    await handle.wait_done()
    assert handle.acted == 2


@pytest.mark.asyncio
async def test_withheld_reply_is_done_when_withheld(
    appsync_server: EmulatorThread, appsync_client: Client
) -> None:
    """WithholdReply is done once it withheld a reply (the client is still waiting)."""
    handle = appsync_server.inject(WithholdReply(match="publish_success"))
    publish = asyncio.ensure_future(appsync_client.publish("default/x", {"n": 1}))
    await handle.wait_done()
    assert not publish.done()
    handle.remove()
    publish.cancel()
    with pytest.raises(asyncio.CancelledError):
        await publish


@pytest.mark.asyncio
async def test_stall_counts_each_connection_once(
    appsync_server: EmulatorThread, appsync_client_factory: ClientFactory
) -> None:
    """Stall counts each stalled connection once, however often the flow is re-decided."""
    for _ in range(2):
        await appsync_client_factory(appsync_server)
    with appsync_server.inject(Stall()) as handle:
        await handle.wait_done()
        appsync_server.inject(DelayReply(0)).remove()  # re-decides every connection's flow
        assert handle.acted == 2


@pytest.mark.asyncio
async def test_fault_aimed_at_a_client(
    appsync_server: EmulatorThread, appsync_client_factory: ClientFactory
) -> None:
    """inject(..., connection=client) targets that client's connection only."""
    slow = await appsync_client_factory(appsync_server)
    await appsync_client_factory(appsync_server)
    with appsync_server.inject(StallSubscriber(), connection=slow) as handle:
        await handle.wait_done()
        assert handle.acted == 1


@pytest.mark.asyncio
async def test_wait_times_out_naming_the_fault(
    appsync_server: EmulatorThread, appsync_client: Client, ms: float
) -> None:
    """A fault that does not act in time fails the wait, naming it and its count."""
    handle = appsync_server.inject(RejectSubscribe())
    with pytest.raises(FaultNotDoneError) as info:
        await handle.wait_done(timeout=50 * ms)
    assert isinstance(info.value, TimeoutError)
    assert isinstance(info.value, AssertionError)
    assert "RejectSubscribe(" in str(info.value)
    assert "not done within" in str(info.value)
    assert "acted 0 times" in str(info.value)
    copy = pickle.loads(pickle.dumps(info.value))
    assert str(copy) == str(info.value)


@pytest.mark.asyncio
async def test_removed_fault_fails_the_wait_at_once(
    appsync_server: EmulatorThread, appsync_client: Client
) -> None:
    """A standing fault removed (or cleared) before acting fails the wait at once."""
    with appsync_server.inject(RejectSubscribe()) as removed:
        pass
    cleared = appsync_server.inject(DropKeepAlives())
    appsync_server.clear_faults()
    for handle in (removed, cleared):
        with pytest.raises(FaultNotDoneError, match="removed before it was done"):
            await handle.wait_done(timeout=60)


def test_wait_done_sync_in_a_sync_test(appsync_server: EmulatorThread) -> None:
    """wait_done_sync blocks a sync test until the fault acted (here: a sync client)."""
    with sync.connect(
        appsync_server.http_endpoint, authorizer=authorizer.ApiKey(appsync_server.api_key)
    ) as client:
        sub = client.subscribe("default/x")
        handle = appsync_server.inject(SendBroadcastError(channel="default/x"))
        assert handle.wait_done_sync() is handle
        with pytest.raises(BroadcastError):
            sub.next(timeout=5)
        appsync_server.inject(CloseConnection(), connection=client).wait_done_sync()
    assert not appsync_server.connections[0].open


def test_wait_done_sync_times_out(appsync_server: EmulatorThread, ms: float) -> None:
    """The blocking wait fails after its timeout too."""
    with pytest.raises(FaultNotDoneError, match="not done within"):
        appsync_server.inject(RejectSubscribe()).wait_done_sync(timeout=20 * ms)


@pytest.mark.asyncio
async def test_wait_done_sync_refused_on_a_loop(appsync_server: EmulatorThread) -> None:
    """The blocking wait refuses to block a thread that runs an event loop."""
    handle = appsync_server.inject(RejectSubscribe())
    with pytest.raises(RuntimeError, match="use the awaitable twin"):
        handle.wait_done_sync()


@pytest.mark.asyncio
async def test_in_loop_server() -> None:
    """With EmulatorServer (the same loop as the test) handles work the same way."""
    async with EmulatorServer() as server:
        authz = authorizer.ApiKey(server.api_key)
        async with appsync_events.connect(server.http_endpoint, authorizer=authz) as client:
            sub = await client.subscribe("default/x")
            flood = FloodSubscription(subscription=sub, count=3)
            handle = await server.inject(flood, connection=client).wait_done()
            assert [(await sub.next()).data for _ in range(3)] == ["{}"] * 3
            assert "acted 1" in repr(handle)
            await server.inject(CloseConnection()).wait_done()
        assert not server.connections[0].open


@pytest.mark.asyncio
async def test_cancelled_wait_changes_nothing(
    appsync_server: EmulatorThread, appsync_client: Client
) -> None:
    """Cancelling a wait leaves the fault installed and waitable."""
    handle = appsync_server.inject(RejectSubscribe())
    waiter = asyncio.ensure_future(handle.wait_done())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    with pytest.raises(SubscribeError):
        await appsync_client.subscribe("default/x")
    await handle.wait_done()
