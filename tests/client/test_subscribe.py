"""Subscriptions: subscribe, next/decode_next/iteration, errors, cancellation, close."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any, NotRequired

import pytest
from typing_extensions import TypedDict  # pydantic needs it on Python 3.11

import appsync_events
from appsync_events import authorizer
from appsync_events.errors import (
    BroadcastError,
    ConnectionClosedError,
    CredentialsError,
    DecodeError,
    InvalidChannelError,
    OperationTimeoutError,
    SubscribeError,
    SubscribeUnauthorizedError,
    SubscriptionClosedError,
    UnsubscribeError,
)
from appsync_events.protocol.client import SubscribeAccepted

from .conftest import api_key, open_client
from .helpers import API_KEY, MS, WAIT, ScriptedServer, scripted
from .test_connect import Recording

pytestmark = pytest.mark.asyncio


async def subscribe(
    client: Any, peer: Any, channel: str = "default/a", **kw: Any
) -> tuple[Any, str]:
    subscribing = asyncio.ensure_future(client.subscribe(channel, **kw))
    message = await peer.subscribed()
    return await subscribing, message["id"]


async def test_subscribe_frame_and_message(server: ScriptedServer) -> None:
    """subscribe sends channel + authorization; data arrives as Message with .data/.json()."""
    authz = Recording(api_key(server))
    client, peer = await open_client(server, authorizer=authz)
    async with client:
        sub, sub_id = await subscribe(client, peer, "/default/*")
        frame = peer.received[-1]
        assert frame["type"] == "subscribe"
        assert frame["channel"] == "/default/*"
        assert frame["authorization"]["x-api-key"] == API_KEY
        assert authz.requests[-1] == authorizer.AuthorizeRequest(
            operation=authorizer.Operation.SUBSCRIBE,
            channel="/default/*",
            host=f"127.0.0.1:{server.port}",
        )
        assert sub.id == sub_id
        assert sub.channel == "/default/*"
        assert client.subscriptions == (sub,)
        await peer.data(sub_id, '{"message":"hi","n":[1,2]}')
        message = await sub.next()
        assert message.data == '{"message":"hi","n":[1,2]}'
        assert message.json() == {"message": "hi", "n": [1, 2]}
        assert message.subscription_id == sub_id
        assert message.channel == "/default/*"
        assert message == appsync_events.Message(
            data='{"message":"hi","n":[1,2]}', subscription_id=sub_id, channel="/default/*"
        )


async def test_subscribe_many_on_one_connection(server: ScriptedServer) -> None:
    """Subscriptions share the connection; data is routed by id."""
    client, peer = await open_client(server)
    async with client:
        a, id_a = await subscribe(client, peer, "default/a")
        b, id_b = await subscribe(client, peer, "default/b")
        await peer.data(id_b, '"to b"')
        await peer.data(id_a, '"to a"')
        assert (await a.next()).json() == "to a"
        assert (await b.next()).json() == "to b"


async def test_subscribe_invalid_channel_sends_nothing(server: ScriptedServer) -> None:
    """An invalid channel raises InvalidChannelError and sends nothing."""
    client, peer = await open_client(server)
    async with client:
        with pytest.raises(InvalidChannelError) as info:
            await client.subscribe("default/not_valid")
        assert info.value.channel == "default/not_valid"
        assert [f["type"] for f in peer.received] == ["connection_init"]


@pytest.mark.parametrize(
    ("errors", "expected"),
    [
        ([{"errorType": "SubscriptionProcessingError", "message": "no"}], SubscribeError),
        (
            [{"errorType": "UnauthorizedException", "message": "no", "errorCode": 401}],
            SubscribeUnauthorizedError,
        ),
    ],
)
async def test_subscribe_error(
    server: ScriptedServer, errors: Any, expected: type[Exception]
) -> None:
    """subscribe_error raises SubscribeError (an unauthorized one is also an
    UnauthorizedError) with .errors."""
    client, peer = await open_client(server)
    async with client:
        subscribing = asyncio.ensure_future(client.subscribe("default/a"))
        message = await peer.recv("subscribe")
        await peer.send({"type": "subscribe_error", "id": message["id"], "errors": errors})
        with pytest.raises(expected) as info:
            await subscribing
        assert type(info.value) is expected
        assert isinstance(info.value, SubscribeError)
        assert info.value.errors[0].error_type == errors[0]["errorType"]  # type: ignore[attr-defined]
        assert client.subscriptions == ()
        assert not client.closed


async def test_subscribe_error_frame_routed_by_id(server: ScriptedServer) -> None:
    """A generic error frame with the subscribe's id rejects it."""
    client, peer = await open_client(server)
    async with client:
        subscribing = asyncio.ensure_future(client.subscribe("default/a"))
        message = await peer.recv("subscribe")
        errors = [{"errorType": "BadRequestException", "message": "Invalid Channel Format"}]
        await peer.send({"type": "error", "id": message["id"], "errors": errors})
        with pytest.raises(SubscribeError, match="Invalid Channel Format"):
            await subscribing


async def test_subscribe_timeout_then_late_success_unsubscribes(server: ScriptedServer) -> None:
    """No answer within operation_timeout gives OperationTimeoutError; a late success is undone."""
    client, peer = await open_client(server, operation_timeout=100 * MS)
    async with client:
        with pytest.raises(OperationTimeoutError) as info:
            await client.subscribe("default/a")
        message = await peer.recv("subscribe")
        assert (info.value.operation, info.value.id) == ("subscribe", message["id"])
        assert isinstance(info.value, TimeoutError)
        await peer.send({"type": "subscribe_success", "id": message["id"]})
        unsubscribe = await peer.recv("unsubscribe")
        assert unsubscribe == {"type": "unsubscribe", "id": message["id"]}
        await peer.data(message["id"], "1")  # late data for it is dropped quietly
        assert client.subscriptions == ()
        assert not client.closed


async def test_subscribe_cancelled_after_success_unsubscribes(server: ScriptedServer) -> None:
    """A subscribe cancelled right as it succeeds is unsubscribed, not leaked."""
    client, peer = await open_client(server)
    async with client:
        subscribing = asyncio.ensure_future(client.subscribe("default/a"))
        connection = client._connection
        answer = connection._answer

        def answer_then_cancel(event: Any) -> None:
            answer(event)  # the subscription is now active and the caller's future resolved
            if isinstance(event, SubscribeAccepted):
                subscribing.cancel()  # ... but the caller is cancelled before it resumes

        connection._answer = answer_then_cancel  # type: ignore[method-assign]
        message = await peer.recv("subscribe")
        await peer.send({"type": "subscribe_success", "id": message["id"]})
        with pytest.raises(asyncio.CancelledError):
            await subscribing
        assert (await peer.recv("unsubscribe"))["id"] == message["id"]


async def test_next_cancellation_loses_nothing(server: ScriptedServer) -> None:
    """Cancelling next() (e.g. by a timeout) never loses an event."""
    client, peer = await open_client(server)
    async with client:
        sub, sub_id = await subscribe(client, peer)
        for _ in range(5):
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(10 * MS):
                    await sub.next()
        waiting = asyncio.ensure_future(sub.next())
        await asyncio.sleep(0)
        waiting.cancel()
        await peer.data(sub_id, "1")
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await peer.data(sub_id, "2")
        assert [(await sub.next()).data for _ in range(2)] == ["1", "2"]
        assert sub.pending == 0


async def test_next_concurrent_readers_share_events(server: ScriptedServer) -> None:
    """Several tasks may wait on one subscription; each event goes to exactly one."""
    client, peer = await open_client(server)
    async with client:
        sub, sub_id = await subscribe(client, peer)
        readers = [asyncio.ensure_future(sub.next()) for _ in range(3)]
        await asyncio.sleep(0)
        for n in range(3):
            await peer.data(sub_id, str(n))
        got = sorted(m.data for m in await asyncio.wait_for(asyncio.gather(*readers), WAIT))
        assert got == ["0", "1", "2"]


async def test_iteration_ends_quietly_on_close(server: ScriptedServer) -> None:
    """async for yields events and stops when the subscription is closed."""
    client, peer = await open_client(server)
    async with client:
        sub, sub_id = await subscribe(client, peer)
        got: list[str] = []

        async def consume() -> None:
            async for message in sub:
                got.append(message.data)
                if len(got) == 3:
                    await sub.close()

        consumer = asyncio.ensure_future(consume())
        for n in range(3):
            await peer.data(sub_id, str(n))
        await asyncio.wait_for(consumer, WAIT)
        assert got == ["0", "1", "2"]
        assert (await peer.unsubscribed())["id"] == sub_id


async def test_subscription_close_is_idempotent(server: ScriptedServer) -> None:
    """close() unsubscribes once; reads after it raise SubscriptionClosedError."""
    authz = Recording(api_key(server))
    client, peer = await open_client(server, authorizer=authz)
    async with client:
        sub, sub_id = await subscribe(client, peer)
        await peer.data(sub_id, "1")
        await sub.close()
        await sub.close()
        assert sub.closed
        assert (await peer.unsubscribed()) == {"type": "unsubscribe", "id": sub_id}
        assert authz.requests[-1] == authorizer.AuthorizeRequest(
            operation=authorizer.Operation.UNSUBSCRIBE,
            channel="default/a",
            host=f"127.0.0.1:{server.port}",
        )
        with pytest.raises(SubscriptionClosedError) as info:
            await sub.next()
        assert (info.value.subscription_id, info.value.channel) == (sub_id, "default/a")
        assert [m async for m in sub] == []
        assert client.subscriptions == ()
        assert [f["type"] for f in peer.received].count("unsubscribe") == 1


async def test_subscription_async_with(server: ScriptedServer) -> None:
    """async with await client.subscribe(...) unsubscribes on exit, even on error."""
    client, peer = await open_client(server)
    async with client:
        subscribing = asyncio.ensure_future(client.subscribe("default/a"))
        message = await peer.subscribed()
        with pytest.raises(RuntimeError, match="boom"):
            async with await subscribing as sub:
                raise RuntimeError("boom")
        assert sub.closed
        assert (await peer.unsubscribed())["id"] == message["id"]


async def test_unsubscribe_error_raised_by_close() -> None:
    """unsubscribe_error surfaces from close(); the subscription is closed anyway."""
    async with scripted(auto_unsubscribe=False) as server:
        client, peer = await open_client(server)
        async with client:
            sub, sub_id = await subscribe(client, peer)
            closing = asyncio.ensure_future(sub.close())
            await peer.recv("unsubscribe")
            errors = [
                {"errorType": "UnknownOperationError", "message": f"Unknown operation id {sub_id}"}
            ]
            await peer.send({"type": "unsubscribe_error", "id": sub_id, "errors": errors})
            with pytest.raises(UnsubscribeError, match="Unknown operation id"):
                await closing
            assert sub.closed
            assert client.subscriptions == ()


async def test_unsubscribe_timeout() -> None:
    """An unanswered unsubscribe raises OperationTimeoutError from close()."""
    async with scripted(auto_unsubscribe=False) as server:
        client, peer = await open_client(server, operation_timeout=100 * MS)
        async with client:
            sub, _ = await subscribe(client, peer)
            with pytest.raises(OperationTimeoutError) as info:
                await sub.close()
            assert info.value.operation == "unsubscribe"


async def test_unsubscribe_authorizer_failure_still_unsubscribes(server: ScriptedServer) -> None:
    """Unsubscribe needs no authorization: an authorizer failure is logged, not fatal."""

    class FailsOnUnsubscribe:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        async def authorize(
            self, request: authorizer.AuthorizeRequest
        ) -> authorizer.AuthorizeResult:
            if request.operation is authorizer.Operation.UNSUBSCRIBE:
                raise CredentialsError("expired")
            result: authorizer.AuthorizeResult = await self.inner.authorize(request)
            return result

    client, peer = await open_client(server, authorizer=FailsOnUnsubscribe(api_key(server)))
    async with client:
        sub, sub_id = await subscribe(client, peer)
        await sub.close()
        assert (await peer.unsubscribed())["id"] == sub_id


async def test_broadcast_error_delivered_in_band(server: ScriptedServer) -> None:
    """broadcast_error is raised by the read that reaches it; later events still flow."""
    client, peer = await open_client(server)
    async with client:
        sub, sub_id = await subscribe(client, peer)
        errors = [
            {
                "errorType": "MessageProcessingError",
                "message": "There was an error processing the message",
            }
        ]
        await peer.data(sub_id, "1")
        await peer.send({"type": "broadcast_error", "id": sub_id, "errors": errors})
        await peer.data(sub_id, "2")
        assert (await sub.next()).data == "1"
        with pytest.raises(BroadcastError) as info:
            await sub.next()
        assert info.value.errors[0].error_type == "MessageProcessingError"
        assert info.value.channel == "default/a"
        assert (await sub.next()).data == "2"
        assert not sub.closed


async def test_data_for_unknown_id_is_ignored(server: ScriptedServer) -> None:
    """data for an unknown id is dropped; the connection stays up (unlike the Go client)."""
    client, peer = await open_client(server)
    async with client:
        sub, sub_id = await subscribe(client, peer)
        await peer.data("not-a-subscription", "1")
        await peer.data(sub_id, "2")
        assert (await sub.next()).data == "2"
        assert not client.closed


async def test_unknown_frame_type_is_ignored(server: ScriptedServer) -> None:
    """A new frame type does not break the client."""
    client, peer = await open_client(server)
    async with client:
        sub, sub_id = await subscribe(client, peer)
        await peer.send({"type": "something_new", "id": sub_id})
        await peer.data(sub_id, "2")
        assert (await sub.next()).data == "2"


# --- decode_next ---------------------------------------------------------------------------


@dataclasses.dataclass
class Author:
    name: str
    karma: int = 0


@dataclasses.dataclass
class Notification:
    message: str
    author: Author
    tags: list[str]
    score: float | None = None


class NotificationDict(TypedDict):
    message: str
    tags: list[str]
    author: NotRequired[dict[str, Any]]


async def test_decode_next_types(server: ScriptedServer) -> None:
    """decode_next decodes into a dataclass, a TypedDict, plain types or a JSON value."""
    client, peer = await open_client(server)
    async with client:
        sub, sub_id = await subscribe(client, peer)
        text = json.dumps(
            {"message": "hi", "author": {"name": "ada", "extra": 1}, "tags": ["a"], "score": 2}
        )
        for _ in range(4):
            await peer.data(sub_id, text)
        await peer.data(sub_id, "[1, 2]")
        note = await sub.decode_next(Notification)
        assert note == Notification(message="hi", author=Author(name="ada"), tags=["a"], score=2.0)
        assert isinstance(note.score, float)
        typed = await sub.decode_next(NotificationDict)
        assert typed["message"] == "hi"
        assert typed["tags"] == ["a"]
        assert await sub.decode_next(dict) == json.loads(text)
        assert await sub.decode_next() == json.loads(text)
        assert await sub.decode_next(list[int]) == [1, 2]


async def test_decode_next_pydantic(server: ScriptedServer) -> None:
    """decode_next validates into a pydantic model."""
    pydantic = pytest.importorskip("pydantic")

    class Model(pydantic.BaseModel):  # type: ignore[name-defined,misc]
        message: str
        count: int

    client, peer = await open_client(server)
    async with client:
        sub, sub_id = await subscribe(client, peer)
        await peer.data(sub_id, '{"message":"hi","count":3}')
        await peer.data(sub_id, '{"message":"hi","count":"many"}')
        model = await sub.decode_next(Model)
        assert (model.message, model.count) == ("hi", 3)
        with pytest.raises(DecodeError) as info:
            await sub.decode_next(Model)
        assert info.value.data == '{"message":"hi","count":"many"}'
        assert info.value.target == "Model"


@pytest.mark.parametrize(
    ("text", "target", "reason"),
    [
        ('{"message":"hi"}', Notification, "$.author: Field required"),
        (
            '{"message":1,"author":{"name":"a"},"tags":[]}',
            Notification,
            "$.message: Input should be a valid string",
        ),
        ('{"message":"m","author":{"name":"a"},"tags":[true]}', Notification, "$.tags[0]: "),
        ('{"message":"m","author":{"name":"a"},"tags":[],"score":"x"}', Notification, "$.score"),
        ('{"message":"m","author":{},"tags":[]}', Notification, "$.author.name: Field required"),
        ("[1]", Notification, "$: Input should be an object"),
        ('{"tags":[]}', NotificationDict, "$.message: Field required"),
        ("not json", dict, "not valid JSON"),
        ("true", int, "$: Input should be a valid integer"),
        ('"1"', int, "$: Input should be a valid integer"),
        ('{"a":1}', list, "$: Input should be a valid array"),
        ("[1, 2, 3]", tuple[int, int], "at most 2 items"),
    ],
)
async def test_decode_next_mismatch(
    server: ScriptedServer, text: str, target: Any, reason: str
) -> None:
    """A mismatch raises DecodeError naming the problem, with the event text kept."""
    client, peer = await open_client(server)
    async with client:
        sub, sub_id = await subscribe(client, peer)
        await peer.data(sub_id, text)
        with pytest.raises(DecodeError) as info:
            await sub.decode_next(target)
        assert reason in str(info.value)
        assert info.value.data == text
        assert isinstance(info.value, ValueError)


async def test_operations_after_close_raise(server: ScriptedServer) -> None:
    """Calls on a closed client raise ConnectionClosedError."""
    client, _ = await open_client(server)
    await client.close()
    with pytest.raises(ConnectionClosedError):
        await client.subscribe("default/a")
    with pytest.raises(ConnectionClosedError):
        await client.publish("default/a", 1)
