"""WebSocket publish: batches, local refusal, results, errors, per-operation authorizers."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

import pytest

from appsync_events import RawJSON, authorizer
from appsync_events.errors import (
    ConfigurationError,
    InvalidChannelError,
    OperationTimeoutError,
    PublishError,
    UnauthorizedError,
)
from appsync_events.protocol.messages import FailedEvent, PublishedEvent

from .conftest import api_key, open_client
from .helpers import MS, WAIT, ScriptedServer
from .test_connect import Recording

pytestmark = pytest.mark.asyncio


async def publish(client: Any, peer: Any, *events: Any, **kw: Any) -> tuple[Any, dict[str, Any]]:
    publishing = asyncio.ensure_future(client.publish("default/a", *events, **kw))
    frame = await peer.published()
    return await publishing, frame


async def test_publish_five_events_in_one_frame(server: ScriptedServer) -> None:
    """Up to 5 events go in ONE publish frame, encoded as documented."""
    authz = Recording(api_key(server))
    client, peer = await open_client(server, authorizer=authz)
    async with client:
        events = ({"message": "hi", "é": "ü"}, b'{"raw": 1}', "text", [1, None], bytearray(b"true"))
        result, frame = await publish(client, peer, *events)
        assert frame["events"] == [
            '{"message":"hi","é":"ü"}',
            '{"raw": 1}',
            '"text"',
            "[1,null]",
            "true",
        ]
        assert frame["channel"] == "default/a"
        assert frame["authorization"]["x-authorizer"] == "rec"
        assert [f["type"] for f in peer.received].count("publish") == 1
        request = authz.requests[-1]
        assert request.operation is authorizer.Operation.PUBLISH
        assert request.channel == "default/a"
        assert request.events == tuple(frame["events"])
        assert result.successful == tuple(
            PublishedEvent(identifier=f"id-{i}", index=i) for i in range(5)
        )
        assert result.failed == ()
        assert result.ok


async def test_publish_str_rawjson_and_bytes(server: ScriptedServer) -> None:
    """A str is JSON-encoded as a string; RawJSON and bytes are JSON texts sent as they are."""
    client, peer = await open_client(server)
    async with client:
        _, frame = await publish(client, peer, '{"a": 1}', RawJSON('{"a": 1}'), b'{"a": 1}')
        assert frame["events"] == ['"{\\"a\\": 1}"', '{"a": 1}', '{"a": 1}']


async def test_publish_checks_each_raw_event_once(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A publish parses each pre-encoded event once, and parses the channel once (a
    channel seen before is not parsed again)."""
    from appsync_events.protocol import codec, publish as publish_module

    event_checks: list[str] = []
    channel_checks: list[str] = []
    check_event, check_channel = codec.event_json_error, publish_module.parse_channel
    monkeypatch.setattr(
        codec, "event_json_error", lambda t: event_checks.append(t) or check_event(t)
    )
    monkeypatch.setattr(
        publish_module, "parse_channel", lambda c: channel_checks.append(c) or check_channel(c)
    )
    monkeypatch.setattr(publish_module, "_known_channels", set())
    client, peer = await open_client(server)
    async with client:
        await publish(client, peer, RawJSON("[1]"), b"2", {"n": 3})
        assert event_checks == ["[1]", "2"]
        assert channel_checks == ["default/a"]
        await publish(client, peer, {"n": 4})
    assert channel_checks == ["default/a"]


async def test_publish_authorize_request_has_the_host(server: ScriptedServer) -> None:
    """The publish AuthorizeRequest carries the API's host (with its port)."""
    authz = Recording(api_key(server))
    client, peer = await open_client(server, authorizer=authz)
    async with client:
        await publish(client, peer, 1)
        request = authz.requests[-1]
        assert request.operation is authorizer.Operation.PUBLISH
        assert request.host == urlsplit(server.url).netloc


@pytest.mark.parametrize(
    ("events", "match"),
    [
        ((), "at least one event"),
        ((1, 2, 3, 4, 5, 6), "6 events in one publish; at most 5"),
        ((b'{"broken"',), "event 0 is not valid JSON"),
        ((b"\xff",), "event 0 is not UTF-8"),
        (({"x": "y" * (240 * 1024)},), "event 0 is 245768 bytes"),
        ((object(),), "cannot be encoded as JSON"),
        ((float("nan"),), "cannot be encoded as JSON"),
    ],
)
async def test_publish_refused_locally(server: ScriptedServer, events: Any, match: str) -> None:
    """Bad events raise ConfigurationError and nothing is signed or sent."""
    authz = Recording(api_key(server))
    client, peer = await open_client(server, authorizer=authz)
    async with client:
        with pytest.raises(ConfigurationError, match=match):
            await client.publish("default/a", *events)
        assert [f["type"] for f in peer.received] == ["connection_init"]
        assert [r.operation for r in authz.requests] == [authorizer.Operation.CONNECT]


async def test_publish_invalid_channel(server: ScriptedServer) -> None:
    """A wildcard or invalid channel cannot be published to."""
    client, peer = await open_client(server)
    async with client:
        for channel in ("default/*", "default/a.b", "a/b/c/d/e/f"):
            with pytest.raises(InvalidChannelError):
                await client.publish(channel, 1)
        assert [f["type"] for f in peer.received] == ["connection_init"]


async def test_publish_reports_failed_events(server: ScriptedServer) -> None:
    """publish_success with failed entries is a result, not an exception."""
    client, peer = await open_client(server)
    async with client:
        publishing = asyncio.ensure_future(client.publish("default/a", 1, 2))
        frame = await peer.recv("publish")
        failed = [
            {
                "identifier": "f",
                "index": 1,
                "code": "EventTooLargeException",
                "message": "Transformed event is larger than 240KB",
            }
        ]
        await peer.send(
            {
                "type": "publish_success",
                "id": frame["id"],
                "successful": [{"identifier": "s", "index": 0}],
                "failed": failed,
            }
        )
        result = await publishing
        assert result.successful == (PublishedEvent(identifier="s", index=0),)
        assert result.failed == (
            FailedEvent(
                identifier="f",
                index=1,
                code="EventTooLargeException",
                message="Transformed event is larger than 240KB",
            ),
        )
        assert not result.ok


@pytest.mark.parametrize(
    ("frame_type", "errors", "expected"),
    [
        ("publish_error", [{"errorType": "HandlerError", "message": "no"}], PublishError),
        (
            "publish_error",
            [{"errorType": "UnauthorizedException", "message": "no"}],
            UnauthorizedError,
        ),
        ("error", [{"errorType": "BadRequestException", "message": "signature"}], PublishError),
    ],
)
async def test_publish_error(
    server: ScriptedServer, frame_type: str, errors: Any, expected: type[Exception]
) -> None:
    """publish_error (or an error frame with the id) raises with .errors."""
    client, peer = await open_client(server)
    async with client:
        publishing = asyncio.ensure_future(client.publish("default/a", 1))
        frame = await peer.recv("publish")
        await peer.send({"type": frame_type, "id": frame["id"], "errors": errors})
        with pytest.raises(expected) as info:
            await publishing
        assert isinstance(info.value, expected)
        assert isinstance(info.value, UnauthorizedError) == (expected is UnauthorizedError)
        assert info.value.errors[0].error_type == errors[0]["errorType"]  # type: ignore[attr-defined]
        assert not client.closed


async def test_error_without_id_goes_to_oldest_pending(server: ScriptedServer) -> None:
    """An error frame without id fails the oldest pending operation only."""
    client, peer = await open_client(server)
    async with client:
        first = asyncio.ensure_future(client.publish("default/a", 1))
        await peer.recv("publish")
        second = asyncio.ensure_future(client.publish("default/a", 2))
        frame2 = await peer.recv("publish")
        await peer.send(
            {"type": "error", "errors": [{"errorType": "BadRequestException", "message": "x"}]}
        )
        with pytest.raises(PublishError):
            await first
        await peer.send(
            {"type": "publish_success", "id": frame2["id"], "successful": [], "failed": []}
        )
        assert (await second).ok


async def test_error_without_id_nothing_pending_fails_connection(server: ScriptedServer) -> None:
    """An error frame without id and nothing pending is a connection failure."""
    client, peer = await open_client(server)
    errors = [
        {
            "errorType": "UnsupportedOperation",
            "message": "Operation not supported through the realtime channel",
        }
    ]
    await peer.send({"type": "error", "errors": errors})
    await client.wait_closed()
    assert client.failure is not None
    assert "UnsupportedOperation" in str(client.failure)
    with pytest.raises(type(client.failure)):
        await client.publish("default/a", 1)


async def test_publish_timeout(server: ScriptedServer) -> None:
    """No answer within operation_timeout gives OperationTimeoutError; a late answer is ignored."""
    client, peer = await open_client(server, operation_timeout=100 * MS)
    async with client:
        with pytest.raises(OperationTimeoutError) as info:
            await client.publish("default/a", 1)
        frame = await peer.recv("publish")
        assert (info.value.operation, info.value.id) == ("publish", frame["id"])
        assert isinstance(info.value.__cause__, TimeoutError)
        assert frame["id"] not in client._connection.protocol.pending  # abandoned
        await peer.send(
            {"type": "publish_success", "id": frame["id"], "successful": [], "failed": []}
        )
        result, _ = await publish(client, peer, 2)  # the connection is fine
        assert result.ok


async def test_publish_timeout_after_the_timeout_was_lowered(server: ScriptedServer) -> None:
    """A publish whose deadline comes before one already running still times out at its
    own limit, with the same error; the earlier publish is answered as usual."""
    client, peer = await open_client(server, operation_timeout=WAIT)
    async with client:
        first = asyncio.ensure_future(client.publish("default/a", 1))
        frame = await peer.recv("publish")
        client.operation_timeout = 50 * MS
        with pytest.raises(OperationTimeoutError) as info:
            await client.publish("default/a", 2)
        late = await peer.recv("publish")
        assert (info.value.operation, info.value.id, info.value.timeout) == (
            "publish",
            late["id"],
            0.05,
        )
        assert isinstance(info.value.__cause__, TimeoutError)
        ok = [{"identifier": "x", "index": 0}]
        await peer.send({"type": "publish_success", "id": frame["id"], "successful": ok})
        assert (await asyncio.wait_for(first, WAIT)).ok


async def test_authorizer_timeout_is_operation_timeout(server: ScriptedServer) -> None:
    """A hanging authorizer is bounded by operation_timeout too."""

    class Hangs:
        async def authorize(
            self, request: authorizer.AuthorizeRequest
        ) -> authorizer.AuthorizeResult:
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

    client, peer = await open_client(server, operation_timeout=100 * MS)
    async with client:
        with pytest.raises(OperationTimeoutError):
            await client.publish("default/a", 1, authorizer=Hangs())
        with pytest.raises(OperationTimeoutError):
            await client.subscribe("default/a", authorizer=Hangs())
        assert [f["type"] for f in peer.received] == ["connection_init"]


async def test_per_operation_authorizers(server: ScriptedServer) -> None:
    """subscribe and publish can use other authorizers than the connection's, seen on the wire."""
    connect_authz = Recording(api_key(server), "connect")
    sub_authz = Recording(authorizer.Token(auth_token="sub-token", endpoint=server.http_url), "sub")
    pub_authz = Recording(authorizer.Token(auth_token="pub-token", endpoint=server.http_url), "pub")
    client, peer = await open_client(server, authorizer=connect_authz)
    async with client:
        assert peer.auth["x-authorizer"] == "connect"
        subscribing = asyncio.ensure_future(client.subscribe("default/a", authorizer=sub_authz))
        sub_frame = await peer.subscribed()
        sub = await subscribing
        _, pub_frame = await publish(client, peer, 1, authorizer=pub_authz)
        _, default_frame = await publish(client, peer, 2)
        assert sub_frame["authorization"]["x-authorizer"] == "sub"
        assert sub_frame["authorization"]["Authorization"] == "sub-token"
        assert pub_frame["authorization"]["x-authorizer"] == "pub"
        assert pub_frame["authorization"]["Authorization"] == "pub-token"
        assert default_frame["authorization"]["x-authorizer"] == "connect"
        assert [r.operation for r in connect_authz.requests] == ["connect", "publish"]
        await sub.close()
        assert [r.operation for r in sub_authz.requests] == ["subscribe", "unsubscribe"]
        assert [r.operation for r in pub_authz.requests] == ["publish"]


async def test_publish_and_receive_concurrently(server: ScriptedServer) -> None:
    """Many concurrent publishes are each answered by id."""
    client, peer = await open_client(server)
    async with client:
        publishing = [asyncio.ensure_future(client.publish("default/a", n)) for n in range(20)]
        frames = [await peer.recv("publish") for _ in range(20)]
        for frame in reversed(frames):
            index = json.loads(frame["events"][0])
            await peer.send(
                {
                    "type": "publish_success",
                    "id": frame["id"],
                    "successful": [{"identifier": f"n{index}", "index": 0}],
                    "failed": [],
                }
            )
        results = await asyncio.gather(*publishing)
        assert [r.successful[0].identifier for r in results] == [f"n{n}" for n in range(20)]


async def test_api_key_publishes_share_the_map_of_the_second(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An API key publish reuses the header map made within the same second for the same
    host (made again the next second), and sends what ``_authorize_now`` gives."""
    import time

    now = [1_700_000_000.25]
    monkeypatch.setattr(time, "time", lambda: now[0])
    authz = api_key(server)
    client, peer = await open_client(server, authorizer=authz)
    async with client:
        _, first = await publish(client, peer, 1)
        made = authz._last
        _, second = await publish(client, peer, 2)
        assert authz._last is made  # reused, not made again
        now[0] += 1.0
        _, third = await publish(client, peer, 3)
        assert authz._last is not made
    assert first["authorization"] == second["authorization"]
    assert third["authorization"]["x-amz-date"] != first["authorization"]["x-amz-date"]
    assert third["authorization"]["x-api-key"] == first["authorization"]["x-api-key"]
    assert first["authorization"]["x-amz-date"] == "20231114T221320Z"
