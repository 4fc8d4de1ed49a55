"""Backpressure: bounded subscription inboxes, outbox and receive queue."""

from __future__ import annotations

import asyncio

import pytest

import appsync_events
from appsync_events.connection import _Outbox
from appsync_events.errors import (
    ConnectionClosedError,
    OperationTimeoutError,
    SubscriptionInboxFullError,
)

from .conftest import open_client
from .helpers import MS, WAIT, ScriptedServer, scripted
from .test_subscribe import subscribe

pytestmark = pytest.mark.asyncio


async def test_inbox_full_fails_only_that_subscription(server: ScriptedServer) -> None:
    """An overflowing inbox fails its subscription alone; others and ka keep flowing."""
    client, peer = await open_client(
        server, backpressure=appsync_events.Backpressure(subscription_events=5)
    )
    async with client:
        slow, slow_id = await subscribe(client, peer, "default/slow")
        fast, fast_id = await subscribe(client, peer, "default/fast")
        for n in range(8):  # 3 more than the slow inbox holds
            await peer.data(slow_id, str(n))
            await peer.data(fast_id, str(n))
            assert (await asyncio.wait_for(fast.next(), WAIT)).data == str(n)
        unsubscribe = await peer.recv("unsubscribe")
        assert unsubscribe == {"type": "unsubscribe", "id": slow_id}
        # The slow consumer gets what was buffered, then the overflow error (Go:
        # ErrSubscriptionInboxFull), and keeps getting it.
        assert [(await slow.next()).data for _ in range(5)] == ["0", "1", "2", "3", "4"]
        with pytest.raises(SubscriptionInboxFullError) as info:
            await slow.next()
        assert (info.value.subscription_id, info.value.channel, info.value.capacity) == (
            slow_id,
            "default/slow",
            5,
        )
        with pytest.raises(SubscriptionInboxFullError):
            async for _ in slow:
                pass
        # Twice the heartbeat timeout later the connection is alive: ka was read all along.
        await asyncio.sleep(600 * MS)  # ka flows meanwhile; nothing to synchronise on
        assert not client.closed
        await peer.data(fast_id, "after")
        assert (await asyncio.wait_for(fast.next(), WAIT)).data == "after"
        assert client.subscriptions == (fast,)
        await slow.close()  # quiet: already unsubscribed
        assert [f["type"] for f in peer.received].count("unsubscribe") == 1


async def test_inbox_full_by_broadcast_error(server: ScriptedServer) -> None:
    """broadcast_error entries count against the inbox too."""
    client, peer = await open_client(
        server, backpressure=appsync_events.Backpressure(subscription_events=1)
    )
    async with client:
        sub, sub_id = await subscribe(client, peer)
        errors = [{"errorType": "MessageProcessingError", "message": "x"}]
        await peer.send({"type": "broadcast_error", "id": sub_id, "errors": errors})
        await peer.send({"type": "broadcast_error", "id": sub_id, "errors": errors})
        await peer.recv("unsubscribe")
        with pytest.raises(appsync_events.BroadcastError):
            await sub.next()
        with pytest.raises(SubscriptionInboxFullError):
            await sub.next()


async def test_outbox_bound_with_stalled_peer() -> None:
    """When the peer stops reading, operations wait for outbox room and time out; nothing hangs."""
    async with scripted(max_queue=1) as server:
        client, peer = await open_client(
            server,
            backpressure=appsync_events.Backpressure(connection_outbound=1),
            operation_timeout=300 * MS,
            heartbeat_timeout=WAIT,  # encoding 30 MB of events keeps the loop busy for a while
        )
        async with client:
            peer.reading.clear()
            big = {"x": "y" * (200 * 1024)}
            outbox = client._connection._outbox
            results = await asyncio.gather(
                *(client.publish("default/a", big, big, big, big, big) for _ in range(30)),
                return_exceptions=True,
            )
            kinds = {type(r).__name__ for r in results}
            assert kinds == {"OperationTimeoutError"}, [
                r for r in results if not isinstance(r, OperationTimeoutError)
            ]
            assert len(outbox) <= outbox.capacity
            peer.reading.set()
            subscribing = asyncio.ensure_future(client.subscribe("default/a"))
            await peer.subscribed(within=WAIT * 4)
            await subscribing


async def test_outbox_unit() -> None:
    """_Outbox: producers wait for room, the consumer for frames, a failure wakes producers."""
    outbox = _Outbox(2)
    await outbox.wait_room()
    outbox.put("a")
    outbox.put("b")
    waiting = asyncio.ensure_future(outbox.wait_room())
    await asyncio.sleep(0)
    assert not waiting.done()
    assert await outbox.get() == "a"
    await asyncio.wait_for(waiting, WAIT)
    getter = asyncio.ensure_future(outbox.get())
    assert await outbox.get() == "b"  # direct get does not wait
    await asyncio.sleep(0)
    assert not getter.done()
    outbox.put("c")
    assert await asyncio.wait_for(getter, WAIT) == "c"
    outbox.put("d")
    outbox.put("e")
    cancelled = asyncio.ensure_future(outbox.wait_room())
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    failing = asyncio.ensure_future(outbox.wait_room())
    await asyncio.sleep(0)
    outbox.fail(ConnectionClosedError(1000, "bye"))
    with pytest.raises(ConnectionClosedError):
        await failing
    with pytest.raises(ConnectionClosedError):
        await outbox.wait_room()
