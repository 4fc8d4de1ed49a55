"""Closing: idempotent, unsubscribes, 1000, tasks cleaned up, pending calls fail."""

from __future__ import annotations

import asyncio

import pytest

from appsync_events.errors import ConnectionClosedError, SubscriptionClosedError

from .conftest import open_client
from .helpers import MS, WAIT, ScriptedServer, scripted
from .test_subscribe import subscribe

pytestmark = pytest.mark.asyncio


def client_tasks() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("appsync-events")]


async def test_close_unsubscribes_and_closes_1000(server: ScriptedServer) -> None:
    """close() unsubscribes every live subscription, then closes with 1000."""
    client, peer = await open_client(server)
    a, id_a = await subscribe(client, peer, "default/a")
    b, id_b = await subscribe(client, peer, "default/b")
    got: list[str] = []
    first = asyncio.Event()

    async def consume() -> None:
        async for message in a:
            got.append(message.data)
            first.set()

    consumer = asyncio.ensure_future(consume())
    await peer.data(id_a, "1")
    await asyncio.wait_for(first.wait(), WAIT)
    await client.close()
    await asyncio.wait_for(consumer, WAIT)  # iteration ended quietly
    assert got == ["1"]
    unsubscribed = {(await peer.unsubscribed())["id"] for _ in range(2)}
    assert unsubscribed == {id_a, id_b}
    await asyncio.wait_for(peer.done.wait(), WAIT)
    assert peer.ws.close_code == 1000
    assert client.closed
    assert a.closed
    assert b.closed
    with pytest.raises(SubscriptionClosedError):
        await b.next()
    assert client_tasks() == []


async def test_close_is_idempotent_and_concurrent(server: ScriptedServer) -> None:
    """Concurrent and repeated close() calls all return."""
    client, peer = await open_client(server)
    await subscribe(client, peer)
    await asyncio.wait_for(asyncio.gather(client.close(), client.close(), client.close()), WAIT)
    await client.close()
    await client.wait_closed()
    assert [f["type"] for f in peer.received].count("unsubscribe") == 1


async def test_close_fails_pending_operations(server: ScriptedServer) -> None:
    """A publish waiting for its ack raises ConnectionClosedError when the client closes."""
    client, peer = await open_client(server)
    publishing = asyncio.ensure_future(client.publish("default/a", 1))
    await peer.recv("publish")
    await client.close()
    with pytest.raises(ConnectionClosedError) as info:
        await publishing
    assert info.value.code == 1000


async def test_close_bounded_when_unsubscribes_hang() -> None:
    """Unanswered unsubscribes delay close() by at most close_timeout."""
    async with scripted(auto_unsubscribe=False) as server:
        client, peer = await open_client(server, close_timeout=150 * MS, operation_timeout=4 * WAIT)
        await subscribe(client, peer)
        loop = asyncio.get_running_loop()
        start = loop.time()
        await client.close()
        assert loop.time() - start < 150 * MS + WAIT / 5
        await asyncio.wait_for(peer.done.wait(), WAIT)
        assert peer.ws.close_code == 1000


async def test_close_cancelled_still_closes(server: ScriptedServer) -> None:
    """Cancelling close() leaves the closing to finish in the background."""
    client, peer = await open_client(server)
    await subscribe(client, peer)
    closing = asyncio.ensure_future(client.close())
    await asyncio.sleep(0)
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    await asyncio.wait_for(client.wait_closed(), WAIT)
    await client.close()
    assert client.closed
    await asyncio.wait_for(peer.done.wait(), WAIT)


async def test_no_task_leaks_over_many_cycles(server: ScriptedServer) -> None:
    """Repeated connect/subscribe/close leaves no task behind."""
    for _ in range(10):
        client, peer = await open_client(server)
        _, sub_id = await subscribe(client, peer)
        await peer.data(sub_id, "1")
        await client.close()
    assert client_tasks() == []
