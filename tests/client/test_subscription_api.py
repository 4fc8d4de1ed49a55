"""The subscription API: ``async with client.subscribe()``, broadcast errors while
iterating, and the subscription's states (reconnection included)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

import appsync_events
from appsync_events.errors import (
    BroadcastError,
    ConfigurationError,
    ConnectionClosedError,
    SubscriptionClosedError,
    SubscriptionInboxFullError,
)
from appsync_events.reconnect import ConnectionState, Reconnect
from appsync_events.subscription import (
    MAX_BROADCAST_ERRORS,
    Subscription,
    SubscriptionSettings,
    SubscriptionState,
)

from . import conftest
from .helpers import MS, WAIT, PeerConnection, ScriptedServer, scripted

pytestmark = pytest.mark.asyncio

ERRORS = [{"errorType": "MessageProcessingError", "message": "could not process"}]
FAST = Reconnect(initial_delay=10 * MS, max_delay=50 * MS, random=lambda: 0.5)


async def open_client(
    server: ScriptedServer, **kwargs: Any
) -> tuple[appsync_events.Client, PeerConnection]:
    """A client whose heartbeat cannot time out on a loaded machine (not tested here)."""
    kwargs.setdefault("heartbeat_timeout", WAIT)
    return await conftest.open_client(server, **kwargs)


async def broadcast_error(peer: PeerConnection, sub_id: str) -> None:
    await peer.send({"type": "broadcast_error", "id": sub_id, "errors": ERRORS})


# --- subscribe() as an async context manager --------------------------------------------------


async def test_subscribe_as_context_manager_unsubscribes_on_exit(server: ScriptedServer) -> None:
    """``async with client.subscribe()`` yields the active subscription and unsubscribes."""
    client, peer = await open_client(server)
    async with client:
        request = client.subscribe("default/a")
        entering = asyncio.ensure_future(request.__aenter__())
        sub_id = (await peer.subscribed())["id"]
        sub = await entering
        assert isinstance(sub, Subscription)
        assert (sub.id, sub.state) == (sub_id, SubscriptionState.ACTIVE)
        await peer.data(sub_id, "1")
        assert (await sub.next()).data == "1"
        await request.__aexit__(None, None, None)
        assert (await peer.unsubscribed())["id"] == sub_id
        assert sub.state is SubscriptionState.CLOSED
        assert client.subscriptions == ()


async def test_subscribe_context_manager_unsubscribes_on_exception(
    server: ScriptedServer,
) -> None:
    """An exception leaving the block unsubscribes, and the exception propagates."""
    client, peer = await open_client(server)
    async with client:
        seen: list[Subscription] = []

        async def body() -> None:
            async with client.subscribe("default/a") as sub:
                seen.append(sub)
                raise LookupError("boom")

        task = asyncio.ensure_future(body())
        sub_id = (await peer.subscribed())["id"]
        with pytest.raises(LookupError, match="boom"):
            await task
        assert (await peer.unsubscribed())["id"] == sub_id
        assert seen[0].state is SubscriptionState.CLOSED


async def test_subscribe_context_manager_unsubscribes_on_cancellation(
    server: ScriptedServer,
) -> None:
    """Cancelling the task inside the block unsubscribes before the task ends."""
    client, peer = await open_client(server)
    async with client:
        entered = asyncio.Event()
        seen: list[Subscription] = []

        async def body() -> None:
            async with client.subscribe("default/a") as sub:
                seen.append(sub)
                entered.set()
                await sub.next()  # waits until cancelled

        task = asyncio.ensure_future(body())
        sub_id = (await peer.subscribed())["id"]
        async with asyncio.timeout(WAIT):
            await entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await peer.unsubscribed())["id"] == sub_id
        assert seen[0].state is SubscriptionState.CLOSED


async def test_subscribe_context_manager_keeps_body_error_over_unsubscribe_error() -> None:
    """A refused unsubscribe while an exception leaves the block does not mask it."""
    async with scripted(auto_unsubscribe=False) as server:
        client, peer = await open_client(server)
        async with client:

            async def body() -> None:
                async with client.subscribe("default/a"):
                    raise LookupError("boom")

            task = asyncio.ensure_future(body())
            await peer.subscribed()
            message = await peer.recv("unsubscribe")
            await peer.send({"type": "unsubscribe_error", "id": message["id"], "errors": ERRORS})
            with pytest.raises(LookupError, match="boom"):
                await task


async def test_subscription_request_is_single_use(server: ScriptedServer) -> None:
    """A SubscriptionRequest can be awaited once; a second use raises RuntimeError."""
    client, peer = await open_client(server)
    async with client:
        request = client.subscribe("default/a")
        subscribing = asyncio.ensure_future(_await(request))
        await peer.subscribed()
        await subscribing
        with pytest.raises(RuntimeError, match="already used"):
            await request
        with pytest.raises(RuntimeError, match="already used"):
            async with request:
                pass  # pragma: no cover


async def _await(request: Any) -> Subscription:
    sub: Subscription = await request
    return sub


async def test_subscribe_sends_nothing_until_awaited(server: ScriptedServer) -> None:
    """Calling subscribe() without awaiting sends nothing and warns about nothing."""
    client, peer = await open_client(server)
    async with client:
        client.subscribe("default/unused")
        sub = asyncio.ensure_future(client.subscribe("default/used"))
        assert (await peer.subscribed())["channel"] == "default/used"
        await sub


async def test_on_broadcast_error_must_be_callable(server: ScriptedServer) -> None:
    """A non-callable on_broadcast_error is refused before anything is sent."""
    client, _ = await open_client(server)
    async with client:
        with pytest.raises(ConfigurationError, match="on_broadcast_error"):
            await client.subscribe("default/a", on_broadcast_error=42)  # type: ignore[arg-type]


# --- broadcast_error while iterating ----------------------------------------------------------


async def iterate(sub: Subscription, count: int) -> list[str]:
    """The data of the first ``count`` events ``async for`` gives (bounded by WAIT)."""
    received: list[str] = []
    async with asyncio.timeout(WAIT):
        async for message in sub:
            received.append(message.data)
            if len(received) == count:
                break
    return received


async def test_iteration_skips_broadcast_error(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    """async for goes on after a broadcast_error: logged, recorded, passed to the callback."""
    calls: list[tuple[Subscription, BroadcastError]] = []
    client, peer = await open_client(server)
    async with client:
        subscribing = asyncio.ensure_future(
            client.subscribe("default/a", on_broadcast_error=lambda s, e: calls.append((s, e)))
        )
        sub_id = (await peer.subscribed())["id"]
        sub = await subscribing
        await peer.data(sub_id, "1")
        await broadcast_error(peer, sub_id)
        await peer.data(sub_id, "2")
        with caplog.at_level(logging.WARNING, logger="appsync_events.client"):
            assert await iterate(sub, 2) == ["1", "2"]
        assert len(calls) == 1
        assert calls[0][0] is sub
        assert calls[0][1].errors[0].error_type == "MessageProcessingError"
        assert sub.broadcast_errors == (calls[0][1],)
        assert sub.broadcast_error_count == 1
        assert any("skipping" in r.getMessage() for r in caplog.records)
        assert sub.state is SubscriptionState.ACTIVE


async def test_iteration_skips_a_buffered_broadcast_error(server: ScriptedServer) -> None:
    """async for over an inbox holding an event, a broadcast_error and an event: the two
    events in order, the error skipped and recorded."""
    client, peer = await open_client(server)
    async with client:
        subscribing = asyncio.ensure_future(client.subscribe("default/a"))
        sub_id = (await peer.subscribed())["id"]
        sub = await subscribing
        await peer.data(sub_id, "1")
        await broadcast_error(peer, sub_id)
        await peer.data(sub_id, "2")
        # A second subscribe is answered after those frames: once it returns, all three
        # are in the inbox.
        second = asyncio.ensure_future(client.subscribe("default/b"))
        await peer.subscribed()
        await second
        assert sub.pending == 3
        assert await iterate(sub, 2) == ["1", "2"]
        assert sub.broadcast_error_count == 1
        assert sub.pending == 0


async def test_next_still_raises_broadcast_error(server: ScriptedServer) -> None:
    """next() raises the broadcast_error (recorded too) and the callback is not called."""
    calls: list[BroadcastError] = []
    client, peer = await open_client(server)
    async with client:
        subscribing = asyncio.ensure_future(
            client.subscribe("default/a", on_broadcast_error=lambda s, e: calls.append(e))
        )
        sub_id = (await peer.subscribed())["id"]
        sub = await subscribing
        await broadcast_error(peer, sub_id)
        await peer.data(sub_id, "after")
        with pytest.raises(BroadcastError) as info:
            await sub.next()
        assert sub.broadcast_errors == (info.value,)
        assert (await sub.next()).data == "after"
        assert calls == []


async def test_failing_broadcast_error_callback_is_logged(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    """An exception from on_broadcast_error is logged; the iteration goes on."""

    def callback(sub: Subscription, error: BroadcastError) -> None:
        raise RuntimeError("callback broke")

    client, peer = await open_client(server)
    async with client:
        subscribing = asyncio.ensure_future(
            client.subscribe("default/a", on_broadcast_error=callback)
        )
        sub_id = (await peer.subscribed())["id"]
        sub = await subscribing
        await broadcast_error(peer, sub_id)
        await peer.data(sub_id, "next")
        with caplog.at_level(logging.WARNING, logger="appsync_events.client"):
            async with asyncio.timeout(WAIT):
                message = await sub.__anext__()
        assert message.data == "next"
        assert any("on_broadcast_error" in r.getMessage() for r in caplog.records)


async def test_broadcast_error_record_is_bounded(server: ScriptedServer) -> None:
    """broadcast_errors keeps the last MAX_BROADCAST_ERRORS; the count keeps going."""
    total = MAX_BROADCAST_ERRORS + 3
    client, peer = await open_client(
        server, backpressure=appsync_events.Backpressure(subscription_events=total + 1)
    )
    async with client:
        subscribing = asyncio.ensure_future(client.subscribe("default/a"))
        sub_id = (await peer.subscribed())["id"]
        sub = await subscribing
        for _ in range(total):
            await broadcast_error(peer, sub_id)
        await peer.data(sub_id, "end")
        async with asyncio.timeout(WAIT):
            assert (await sub.__anext__()).data == "end"
        assert sub.broadcast_error_count == total
        assert len(sub.broadcast_errors) == MAX_BROADCAST_ERRORS


async def test_iteration_still_ends_quietly_on_close(server: ScriptedServer) -> None:
    """Skipping broadcast errors does not change how iteration ends on close."""
    client, peer = await open_client(server)
    async with client:
        subscribing = asyncio.ensure_future(client.subscribe("default/a"))
        sub_id = (await peer.subscribed())["id"]
        sub = await subscribing
        await broadcast_error(peer, sub_id)
        await peer.data(sub_id, "1")
        received = []
        async with asyncio.timeout(WAIT):
            async for message in sub:
                received.append(message.data)
                await sub.close()
        assert received == ["1"]


# --- states ---------------------------------------------------------------------------------


async def test_states_pending_active_closing_closed() -> None:
    """PENDING until subscribe_success, ACTIVE, CLOSING during the unsubscribe, CLOSED."""
    async with scripted(auto_unsubscribe=False) as server:
        client, peer = await open_client(server)
        async with client:
            subscribing = asyncio.ensure_future(client.subscribe("default/a"))
            message = await peer.recv("subscribe")
            (pending,) = client.subscriptions
            assert pending.state is SubscriptionState.PENDING
            assert not pending.active
            assert not pending.closed
            await peer.send({"type": "subscribe_success", "id": message["id"]})
            sub = await subscribing
            assert sub is pending
            assert sub.state is SubscriptionState.ACTIVE
            assert sub.active
            closing = asyncio.ensure_future(sub.close())
            await peer.recv("unsubscribe")
            assert sub.state is SubscriptionState.CLOSING
            assert sub.closed
            await sub.close()  # a second close() while closing returns at once
            assert sub.state is SubscriptionState.CLOSING
            await peer.send({"type": "unsubscribe_success", "id": message["id"]})
            await closing
            assert sub.state is SubscriptionState.CLOSED
            assert repr(sub).endswith(" closed>")
            with pytest.raises(SubscriptionClosedError):
                await sub.next()


async def test_state_failed_on_overflow_then_closed_by_caller(server: ScriptedServer) -> None:
    """Inbox overflow: FAILED (reads raise after the buffer); close() makes it CLOSED."""
    client, peer = await open_client(
        server, backpressure=appsync_events.Backpressure(subscription_events=1)
    )
    async with client:
        subscribing = asyncio.ensure_future(client.subscribe("default/a"))
        sub_id = (await peer.subscribed())["id"]
        sub = await subscribing
        await peer.data(sub_id, "1")
        await peer.data(sub_id, "2")
        assert (await peer.unsubscribed())["id"] == sub_id  # the client dropped it
        assert sub.state is SubscriptionState.FAILED
        assert (await sub.next()).data == "1"
        with pytest.raises(SubscriptionInboxFullError):
            await sub.next()
        await sub.close()
        assert sub.state is SubscriptionState.CLOSED


async def test_state_failed_on_connection_loss_without_reconnect(
    server: ScriptedServer,
) -> None:
    """Without reconnection a lost connection fails every subscription."""
    client, peer = await open_client(server)
    subscribing = asyncio.ensure_future(client.subscribe("default/a"))
    await peer.subscribed()
    sub = await subscribing
    await peer.ws.close()
    async with asyncio.timeout(WAIT):
        await client.wait_closed()
    assert sub.state is SubscriptionState.FAILED
    with pytest.raises(ConnectionClosedError):
        await sub.next()


async def test_state_closed_with_the_client(server: ScriptedServer) -> None:
    """Client.close() closes every subscription quietly."""
    client, peer = await open_client(server)
    subscribing = asyncio.ensure_future(client.subscribe("default/a"))
    await peer.subscribed()
    sub = await subscribing
    await client.close()
    assert sub.state is SubscriptionState.CLOSED
    assert [m async for m in sub] == []


async def test_state_suspended_then_active_with_the_same_id(server: ScriptedServer) -> None:
    """A reconnection suspends the subscription and resumes it with the same id."""
    seen: list[ConnectionState] = []
    changed = asyncio.Event()

    def on_state_change(state: ConnectionState) -> None:
        seen.append(state)
        changed.set()

    client, peer = await open_client(server, reconnect=FAST, on_state_change=on_state_change)
    async with client:
        subscribing = asyncio.ensure_future(client.subscribe("default/a"))
        sub_id = (await peer.subscribed())["id"]
        sub = await subscribing
        await peer.data(sub_id, "before")  # read by the client before the close frame
        await peer.ws.close(1011)
        second = await server.connection()
        resubscribe = await second.recv("subscribe")
        assert resubscribe["id"] == sub_id
        assert sub.state is SubscriptionState.SUSPENDED
        assert not sub.active
        assert not sub.closed
        assert client.subscriptions == (sub,)
        await second.send({"type": "subscribe_success", "id": sub_id})
        async with asyncio.timeout(WAIT):
            while ConnectionState.CONNECTED not in seen:
                changed.clear()
                await changed.wait()
        assert sub.state is SubscriptionState.ACTIVE
        assert sub.id == sub_id
        await second.data(sub_id, "after")
        assert [(await sub.next()).data, (await sub.next()).data] == ["before", "after"]


async def test_suspended_subscription_closed_by_caller_is_not_resumed(
    server: ScriptedServer,
) -> None:
    """close() while SUSPENDED: CLOSED at once, and unsubscribed if the resume succeeds."""
    client, peer = await open_client(server, reconnect=FAST)
    async with client:
        subscribing = asyncio.ensure_future(client.subscribe("default/a"))
        sub_id = (await peer.subscribed())["id"]
        sub = await subscribing
        await peer.ws.close(1011)
        second = await server.connection()
        await second.recv("subscribe")
        assert sub.state is SubscriptionState.SUSPENDED
        await sub.close()
        assert sub.state is SubscriptionState.CLOSED
        await second.send({"type": "subscribe_success", "id": sub_id})
        assert (await second.unsubscribed())["id"] == sub_id
        assert sub.state is SubscriptionState.CLOSED


async def test_state_methods_ignore_moves_after_the_end() -> None:
    """Once ended, a subscription stays ended: late answers and failures change nothing."""

    async def unsubscribe(sub: Subscription) -> None:  # pragma: no cover - never called
        pass

    sub = Subscription(
        "s",
        "default/a",
        SubscriptionSettings(
            capacity=1,
            authorizer=appsync_events.authorizer.ApiKey(
                api_key="da2-x", endpoint="https://example.com/event"
            ),
            unsubscribe=unsubscribe,
            on_overflow=lambda s: None,
        ),
    )
    assert sub.state is SubscriptionState.PENDING
    assert not sub._suspend()  # never accepted: nothing to resume
    sub._close_now("closed")
    assert sub.state is SubscriptionState.CLOSED
    assert not sub._accepted()  # a late subscribe_success
    sub._fail(ConnectionClosedError(1006, ""))
    assert not sub._begin_close("closed")
    sub._finish_close()
    assert sub.state is SubscriptionState.CLOSED
