"""The WebSocket side of the emulator over real loopback sockets, frame by frame.

Covers the handshake, every frame and every error the emulator produces, keep-alive and
lifetime (docs: protocol.rst, "The WebSocket handshake", "Messages", "Timing and lifecycle"),
and the emulator's choices about the real-time endpoint
(docs: emulator-fidelity.rst, "Emulator fidelity: where AWS is silent").
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from appsync_emulator import (
    ApiKeyConfig,
    EmulatorServer,
    HandlerError,
    Limits,
    NamespaceConfig,
    Unauthorized,
)
from appsync_emulator.catalogue import (
    BINARY_FRAME,
    DUPLICATE_SUBSCRIPTION,
    INVALID_ID,
    NO_EVENTS,
    UNSUPPORTED_OPERATION,
)
from appsync_emulator.handlers import PUBLISH_FAILURE, HandlerContext
from appsync_emulator.operations import _BLOCK, _POOL, _Identifiers
from appsync_emulator.server import MAX_FRAME_MARGIN
from appsync_events.protocol.subprotocol import PROTOCOL_EVENTS, encode_auth_subprotocol
from tests.conftest import MS

from .conftest import TIMEOUT_MS, WAIT, RawClient, api_auth, fast_config, open_raw

UNAUTHORIZED_FRAME = {
    "type": "connection_error",
    "errors": [
        {
            "errorType": "UnauthorizedException",
            "message": "You are not authorized to make this call.",
            "errorCode": 401,
        }
    ],
}
UNAUTHORIZED_ERRORS = UNAUTHORIZED_FRAME["errors"]


def _errors(frame: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["errorType"], e["message"]) for e in frame["errors"]]


# --- handshake (docs: protocol.rst, "The WebSocket handshake") -------------------------------


@pytest.mark.asyncio
async def test_upgrade_selects_the_events_subprotocol(server: EmulatorServer) -> None:
    """The server answers Sec-WebSocket-Protocol: aws-appsync-event-ws."""
    raw = await open_raw(server)
    assert raw.ws.subprotocol == PROTOCOL_EVENTS
    await raw.ws.close()


@pytest.mark.asyncio
async def test_upgrade_accepts_header_subprotocol_first(server: EmulatorServer) -> None:
    """Subprotocol order does not matter: header- first works (brokgo, wscat)."""
    auth = api_auth(server)
    raw = await open_raw(server, subprotocols=[encode_auth_subprotocol(auth), PROTOCOL_EVENTS])
    assert raw.ws.subprotocol == PROTOCOL_EVENTS
    await raw.init()
    assert (await raw.subscribe("default/x"))["type"] == "subscribe_success"
    await raw.ws.close()


@pytest.mark.asyncio
async def test_upgrade_without_events_subprotocol_is_refused_with_400(
    server: EmulatorServer,
) -> None:
    """Not offering aws-appsync-event-ws gives HTTP 400 before the upgrade."""
    with pytest.raises(InvalidStatus) as info:
        await open_raw(server, subprotocols=[encode_auth_subprotocol(api_auth(server))])
    assert info.value.response.status_code == 400
    body = json.loads(info.value.response.body or b"{}")
    assert body["errors"][0]["errorType"] == "BadRequestException"


@pytest.mark.asyncio
async def test_upgrade_with_no_subprotocol_at_all_is_refused(server: EmulatorServer) -> None:
    """No Sec-WebSocket-Protocol header at all is refused with 400 too."""
    with pytest.raises(InvalidStatus) as info:
        await open_raw(server, subprotocols=[])
    assert info.value.response.status_code == 400


@pytest.mark.asyncio
async def test_plain_get_on_realtime_path_is_400(
    server: EmulatorServer, http: aiohttp.ClientSession
) -> None:
    """A GET without an upgrade gets 400 with a JSON error body, other methods 405."""
    async with http.get(server.http_endpoint + "/realtime") as response:
        assert response.status == 400
        assert (await response.json())["errors"][0]["errorType"] == "BadRequestException"
    async with http.post(server.http_endpoint + "/realtime") as response:
        assert response.status == 405


@pytest.mark.asyncio
async def test_connection_auth_from_upgrade_headers(server: EmulatorServer) -> None:
    """Without a header- subprotocol, auth comes from the upgrade headers (Swift client)."""
    raw = await open_raw(
        server, subprotocols=[PROTOCOL_EVENTS], headers={"x-api-key": server.api_key or ""}
    )
    ack = await raw.init()
    assert ack == {"type": "connection_ack", "connectionTimeoutMs": TIMEOUT_MS}
    assert server.connections[-1].auth_mode == "API_KEY"
    await raw.ws.close()


@pytest.mark.asyncio
async def test_upgrade_headers_without_credentials_are_unauthorized(
    server: EmulatorServer,
) -> None:
    """No header- subprotocol and no credential headers: connection_error, close 1000."""
    raw = await open_raw(server, subprotocols=[PROTOCOL_EVENTS])
    await raw.send({"type": "connection_init"})
    assert await raw.recv() == UNAUTHORIZED_FRAME
    assert await raw.closed() == (1000, "")


@pytest.mark.asyncio
async def test_wrong_api_key_gets_connection_error_then_close_1000(
    server: EmulatorServer,
) -> None:
    """A wrong key still upgrades (101), then connection_error 401 and close 1000
    (docs: protocol.rst, "Connection authorization")."""
    raw = await open_raw(server, auth=api_auth(server, "da2-wrong"))
    assert raw.ws.subprotocol == PROTOCOL_EVENTS
    await raw.send({"type": "connection_init"})
    assert await raw.recv() == UNAUTHORIZED_FRAME
    assert await raw.closed() == (1000, "")
    assert server.recorder.errors[-1].frame_type == "connection_error"


@pytest.mark.asyncio
async def test_wrong_api_key_refuses_an_initless_first_frame(server: EmulatorServer) -> None:
    """With bad connection auth, a first subscribe is answered by connection_error too."""
    raw = await open_raw(server, auth=api_auth(server, "da2-wrong"))
    await raw.subscribe("default/x", auth=api_auth(server))
    assert await raw.closed() == (1000, "")
    sent = [f.frame_type for f in server.recorder.sent_to(server.connections[-1].id)]
    assert sent == ["connection_error"]


@pytest.mark.asyncio
async def test_expired_api_key_on_connect_is_unauthorized() -> None:
    """An expired API key fails connection auth like an unknown one."""
    expired = ApiKeyConfig(key="da2-expired", expires=datetime.now(UTC) - timedelta(hours=1))
    async with EmulatorServer(fast_config(api_keys=(expired,))) as server:
        raw = await open_raw(server, auth=api_auth(server, "da2-expired"))
        await raw.send({"type": "connection_init"})
        assert await raw.recv() == UNAUTHORIZED_FRAME
        assert await raw.closed() == (1000, "")


@pytest.mark.asyncio
async def test_undecodable_header_subprotocol_is_unauthorized(server: EmulatorServer) -> None:
    """A header- token that is not base64url JSON means unauthorized, not a crash."""
    raw = await open_raw(server, subprotocols=[PROTOCOL_EVENTS, "header-!!notbase64"])
    await raw.send({"type": "connection_init"})
    assert await raw.recv() == UNAUTHORIZED_FRAME


@pytest.mark.asyncio
async def test_header_token_with_json_whitespace_is_accepted(server: EmulatorServer) -> None:
    """Pretty-printed JSON with a trailing newline (the docs' bash sample) is tolerated."""
    text = json.dumps({"host": "h", "X-Api-Key": server.api_key}, indent=1) + "\n"
    token = "header-" + base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")
    raw = await open_raw(server, subprotocols=[token, PROTOCOL_EVENTS])
    assert (await raw.init())["type"] == "connection_ack"
    await raw.ws.close()


# --- connection_init, ack, ka ---------------------------------------------------------------
# docs: protocol.rst, "connection_ack", "Keep-alive", "Timing and lifecycle"


@pytest.mark.asyncio
async def test_ack_is_followed_at_once_by_ka(server: EmulatorServer) -> None:
    """The ack has a top-level connectionTimeoutMs and is followed by ka before anything."""
    raw = await open_raw(server)
    await raw.send({"type": "connection_init"})
    first = await raw.recv(skip_ka=False)
    assert first == {"type": "connection_ack", "connectionTimeoutMs": TIMEOUT_MS}
    assert await raw.recv(skip_ka=False) == {"type": "ka"}
    await raw.ws.close()


@pytest.mark.asyncio
async def test_ka_repeats_every_interval(client: RawClient) -> None:
    """ka keeps coming every keepalive_interval (50 ms here)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    for _ in range(4):
        assert await client.recv(skip_ka=False) == {"type": "ka"}
    assert loop.time() - started >= 2 * 50 * MS


@pytest.mark.asyncio
async def test_second_connection_init_is_ignored(client: RawClient) -> None:
    """A second connection_init gets no second ack (EMULATOR-CHOICE,
    docs: emulator-fidelity.rst, "A second connection_init")."""
    await client.send({"type": "connection_init"})
    assert await client.subscribe("default/x") == {"type": "subscribe_success", "id": "s1"}


@pytest.mark.asyncio
async def test_initless_subscribe_and_publish_work(server: EmulatorServer) -> None:
    """subscribe and publish are served without connection_init, and no ack is sent."""
    raw = await open_raw(server)
    assert await raw.subscribe("default/x") == {"type": "subscribe_success", "id": "s1"}
    await raw.publish("default/x", ['{"a":1}'])
    assert (await raw.recv())["type"] == "publish_success"
    assert await raw.recv() == {"type": "data", "id": "s1", "event": '{"a":1}'}
    types = {f.frame_type for f in server.recorder.sent_to(server.connections[-1].id)}
    assert "connection_ack" not in types
    await raw.ws.close()


@pytest.mark.asyncio
async def test_initless_ka_starts_at_first_successful_operation(server: EmulatorServer) -> None:
    """An init-less socket gets no ka until an operation succeeds (EMULATOR-CHOICE,
    docs: emulator-fidelity.rst, "Keep-alive on a connection without connection_init")."""
    raw = await open_raw(server)
    assert (await raw.subscribe("default/bad_channel"))["type"] == "subscribe_error"
    assert (await raw.subscribe("default/x", "s2"))["type"] == "subscribe_success"
    assert await raw.recv(skip_ka=False) == {"type": "ka"}
    sent = [f.frame_type for f in server.recorder.sent_to(server.connections[-1].id)]
    assert sent[:3] == ["subscribe_error", "subscribe_success", "ka"]
    await raw.ws.close()


@pytest.mark.asyncio
async def test_pipelined_frames_are_answered_in_order(server: EmulatorServer) -> None:
    """init, subscribe and publish sent back to back are all answered, in order."""
    raw = await open_raw(server)
    for frame in (
        {"type": "connection_init"},
        {"type": "subscribe", "id": "s1", "channel": "default/p", "authorization": raw.auth},
        {
            "type": "publish",
            "id": "p1",
            "channel": "default/p",
            "events": ['"one"'],
            "authorization": raw.auth,
        },
    ):
        await raw.send(frame)
    await raw.expect("connection_ack")
    await raw.expect("subscribe_success", id="s1")
    await raw.expect("publish_success", id="p1")
    assert await raw.recv() == {"type": "data", "id": "s1", "event": '"one"'}
    await raw.ws.close()


# --- subscribe, publish, data, unsubscribe ------------------------------------------------
# docs: protocol.rst, "Client to server", "Server to client"


@pytest.mark.asyncio
async def test_data_carries_the_event_text_verbatim(client: RawClient) -> None:
    """The event string is passed through byte for byte when no handler runs
    (docs: protocol.rst, "data")."""
    await client.subscribe("default/v")
    event = '{ "msg" : "Hello World!", "n": 1.0, "u": "\\u00e9" }'
    await client.publish("default/v", [event])
    await client.expect("publish_success")
    assert await client.recv() == {"type": "data", "id": "s1", "event": event}


@pytest.mark.asyncio
async def test_publish_success_lists_uuid_identifiers_by_index(client: RawClient) -> None:
    """publish_success has one {identifier, index} per event and an empty failed
    (docs: protocol.rst, "publish_success")."""
    await client.publish("default/ids", ['"a"', '"b"'])
    ack = await client.expect("publish_success", id="p1", failed=[])
    assert [s["index"] for s in ack["successful"]] == [0, 1]
    for entry in ack["successful"]:
        assert uuid.UUID(entry["identifier"]).version == 4


def test_event_identifiers_are_unique_rfc4122_version_4_uuids() -> None:
    """Identifiers are made a pool at a time and share a random prefix per block of
    pools: takes across pools (one bigger than a pool included) stay v4 and distinct."""
    identifiers = _Identifiers()
    sizes = (1, 5, 63, 64, 67, 0, _POOL - 100, 150, 2 * _POOL, 3, 4 * _BLOCK)
    drawn = [i for n in sizes for i in identifiers.take(n)]
    assert len(set(drawn)) == len(drawn) == sum(sizes)
    pools = -(-len(drawn) // _POOL)
    assert len({text[:34] for text in drawn}) == pools  # one head per pool
    assert len({text[:24] for text in drawn}) == -(-pools // _BLOCK)  # blocks used
    for text in [*drawn[:300], *drawn[300::997], drawn[-1]]:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)


@pytest.mark.asyncio
async def test_batch_is_delivered_one_frame_per_event_in_index_order(client: RawClient) -> None:
    """Five events give five data frames, in index order."""
    await client.subscribe("default/batch")
    events = [json.dumps({"i": i}) for i in range(5)]
    await client.publish("default/batch", events)
    await client.expect("publish_success")
    assert [(await client.recv())["event"] for _ in range(5)] == events


@pytest.mark.asyncio
async def test_every_matching_subscription_gets_a_copy(
    server: EmulatorServer, client: RawClient
) -> None:
    """Two subscribers on two connections and a wildcard each receive the event."""
    other = await open_raw(server)
    await other.subscribe("default/*", "w1")
    await client.subscribe("default/fan")
    await client.publish("default/fan", ['"x"'])
    await client.expect("publish_success")
    assert await client.recv() == {"type": "data", "id": "s1", "event": '"x"'}
    assert await other.recv() == {"type": "data", "id": "w1", "event": '"x"'}
    await other.ws.close()


@pytest.mark.asyncio
async def test_wildcard_matches_any_depth_but_not_the_namespace(client: RawClient) -> None:
    """/default/* matches /default/a/b/c but not /default itself (EMULATOR-CHOICE,
    docs: emulator-fidelity.rst, "Channels")."""
    await client.subscribe("/default/*")
    await client.publish("/default", ['"root"'], "p1")
    await client.expect("publish_success", id="p1")
    await client.publish("default/a/b/c", ['"deep"'], "p2")
    await client.expect("publish_success", id="p2")
    assert await client.recv() == {"type": "data", "id": "s1", "event": '"deep"'}


@pytest.mark.asyncio
async def test_leading_slash_is_optional_and_case_matters(client: RawClient) -> None:
    """default/x and /default/x are one channel; default/X is another."""
    await client.subscribe("default/x")
    await client.publish("/default/X", ['"upper"'], "p1")
    await client.expect("publish_success", id="p1")
    await client.publish("/default/x", ['"lower"'], "p2")
    await client.expect("publish_success", id="p2")
    assert await client.recv() == {"type": "data", "id": "s1", "event": '"lower"'}


@pytest.mark.asyncio
async def test_unsubscribe_stops_data_for_that_id(client: RawClient) -> None:
    """After unsubscribe_success no data is sent for the id
    (docs: protocol.rst, "unsubscribe_success and unsubscribe_error")."""
    await client.subscribe("default/a", "sa")
    await client.subscribe("default/b", "sb")
    await client.send({"type": "unsubscribe", "id": "sa"})
    assert await client.recv() == {"type": "unsubscribe_success", "id": "sa"}
    await client.publish("default/a", ['"gone"'], "p1")
    await client.expect("publish_success", id="p1")
    await client.publish("default/b", ['"kept"'], "p2")
    await client.expect("publish_success", id="p2")
    assert await client.recv() == {"type": "data", "id": "sb", "event": '"kept"'}


@pytest.mark.asyncio
async def test_unsubscribe_of_unknown_id(client: RawClient) -> None:
    """unsubscribe_error UnknownOperationError 'Unknown operation id <id>'
    (docs: protocol.rst, "unsubscribe_success and unsubscribe_error")."""
    await client.send({"type": "unsubscribe", "id": "nope"})
    frame = await client.expect("unsubscribe_error", id="nope")
    assert _errors(frame) == [("UnknownOperationError", "Unknown operation id nope")]


@pytest.mark.asyncio
async def test_resubscribe_with_a_freed_id(client: RawClient) -> None:
    """An id can be reused after its unsubscribe_success."""
    await client.subscribe("default/a", "s1")
    await client.send({"type": "unsubscribe", "id": "s1"})
    await client.expect("unsubscribe_success", id="s1")
    assert await client.subscribe("default/b", "s1") == {"type": "subscribe_success", "id": "s1"}


@pytest.mark.asyncio
async def test_duplicate_subscription_id(client: RawClient) -> None:
    """A second subscribe with an active id gets DuplicatedOperationError."""
    await client.subscribe("default/a")
    frame = await client.subscribe("default/b")
    assert frame["type"] == "subscribe_error"
    assert _errors(frame) == [(DUPLICATE_SUBSCRIPTION.error_type, DUPLICATE_SUBSCRIPTION.message)]


@pytest.mark.asyncio
async def test_subscription_limit_per_connection() -> None:
    """Beyond max_subscriptions_per_connection: subscribe_error LimitExceededException."""
    config = fast_config(limits=Limits(max_subscriptions_per_connection=2))
    async with EmulatorServer(config) as server:
        raw = await open_raw(server)
        assert (await raw.subscribe("default/a", "s1"))["type"] == "subscribe_success"
        assert (await raw.subscribe("default/b", "s2"))["type"] == "subscribe_success"
        frame = await raw.subscribe("default/c", "s3")
        assert frame["type"] == "subscribe_error"
        assert frame["errors"][0]["errorType"] == "LimitExceededException"
        await raw.ws.close()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "channel",
    ["default/bad_chan", "default/" + "a" * 51, "default/1/2/3/4/5", "default/-x", "/*", "**"],
)
async def test_invalid_subscribe_channel(client: RawClient, channel: str) -> None:
    """A bad channel gets subscribe_error BadRequestException Invalid Channel Format.

    The rules are described in docs: protocol.rst, "Channels and namespaces".
    """
    frame = await client.subscribe(channel)
    assert frame["type"] == "subscribe_error"
    assert frame["errors"][0]["errorType"] == "BadRequestException"
    assert frame["errors"][0]["message"].startswith("Invalid Channel Format")


@pytest.mark.asyncio
async def test_unknown_namespace_on_subscribe_and_publish(client: RawClient) -> None:
    """A channel outside every defined namespace is refused on subscribe and publish."""
    frame = await client.subscribe("nowhere/x")
    assert frame["type"] == "subscribe_error"
    assert "namespace not found: nowhere" in frame["errors"][0]["message"]
    await client.publish("nowhere/x", ['"e"'])
    frame = await client.expect("publish_error", id="p1")
    assert "namespace not found" in frame["errors"][0]["message"]


@pytest.mark.asyncio
async def test_publish_to_a_wildcard_is_refused(client: RawClient) -> None:
    """Publishing to /default/* is a channel-format error."""
    await client.publish("default/*", ['"e"'])
    frame = await client.expect("publish_error", id="p1")
    assert frame["errors"][0]["message"].startswith("Invalid Channel Format")


@pytest.mark.asyncio
async def test_publish_event_count_limits(client: RawClient) -> None:
    """No events is BadRequestException; six is LimitExceededException."""
    await client.publish("default/x", [], "p0")
    frame = await client.expect("publish_error", id="p0")
    assert _errors(frame) == [(NO_EVENTS.error_type, NO_EVENTS.message)]
    await client.publish("default/x", ['"e"'] * 6, "p6")
    frame = await client.expect("publish_error", id="p6")
    assert frame["errors"][0]["errorType"] == "LimitExceededException"


@pytest.mark.asyncio
async def test_event_that_is_not_json(client: RawClient) -> None:
    """An event string that is not JSON text: publish_error naming its index
    (docs: protocol.rst, "Events")."""
    await client.publish("default/x", ['"ok"', "{not json"])
    frame = await client.expect("publish_error", id="p1")
    assert frame["errors"][0]["errorType"] == "BadRequestException"
    assert "index 1" in frame["errors"][0]["message"]


@pytest.mark.asyncio
async def test_oversized_event_is_reported_in_failed() -> None:
    """An event over the size limit lands in failed[] (EventTooLargeException); others go out."""
    config = fast_config(limits=Limits(max_event_bytes=64))
    async with EmulatorServer(config) as server:
        raw = await open_raw(server)
        await raw.subscribe("default/big")
        big = json.dumps("x" * 100)
        await raw.publish("default/big", ['"small"', big])
        ack = await raw.expect("publish_success")
        assert [s["index"] for s in ack["successful"]] == [0]
        assert ack["failed"][0]["index"] == 1
        assert ack["failed"][0]["code"] == "EventTooLargeException"
        assert ack["failed"][0]["message"] == "Transformed event is larger than 240KB"
        assert await raw.recv() == {"type": "data", "id": "s1", "event": '"small"'}
        server.recorder.assert_published("default/big", events=["small"])
        await raw.ws.close()


@pytest.mark.asyncio
async def test_frame_over_the_request_limit_gets_publish_error() -> None:
    """A frame a little over max_request_bytes is answered with publish_error, no crash."""
    config = fast_config(limits=Limits(max_request_bytes=2000))
    async with EmulatorServer(config) as server:
        raw = await open_raw(server)
        await raw.publish("default/x", [json.dumps("y" * 3000)])
        frame = await raw.expect("publish_error", id="p1")
        assert frame["errors"][0]["errorType"] == "LimitExceededException"
        await raw.publish("default/x", ['"fine"'], "p2")
        await raw.expect("publish_success", id="p2")
        await raw.ws.close()
        server.check()


@pytest.mark.asyncio
async def test_frame_over_max_message_size_is_closed_1009() -> None:
    """A frame beyond the request limit plus margin closes that socket with 1009 only."""
    config = fast_config(limits=Limits(max_request_bytes=2000))
    async with EmulatorServer(config) as server:
        victim = await open_raw(server)
        bystander = await open_raw(server)
        await victim.send("x" * (2000 + MAX_FRAME_MARGIN + 10))
        code, _ = await victim.closed()
        assert code == 1009
        assert (await bystander.subscribe("default/x"))["type"] == "subscribe_success"
        await bystander.ws.close()
        server.check()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "frame", ['{"type":"start","id":"1"}', '{"id":"x"}', '{"type":1}', '{"type":null}']
)
async def test_unknown_or_missing_type_is_unsupported_operation(
    client: RawClient, frame: str
) -> None:
    """An unknown or missing type gets exactly the UnsupportedOperation error frame, no id."""
    await client.send(frame)
    assert await client.recv() == {
        "type": "error",
        "errors": [
            {
                "errorType": UNSUPPORTED_OPERATION.error_type,
                "message": UNSUPPORTED_OPERATION.message,
            }
        ],
    }


@pytest.mark.asyncio
@pytest.mark.parametrize("frame", ["not json", "[1,2]", '"text"', "{"])
async def test_malformed_json_gets_bad_request_error(client: RawClient, frame: str) -> None:
    """Unparseable JSON or a non-object is answered with error BadRequestException."""
    await client.send(frame)
    answer = await client.expect("error")
    assert answer["errors"][0]["errorType"] == "BadRequestException"
    assert "id" not in answer


@pytest.mark.asyncio
async def test_binary_frame_gets_error(client: RawClient) -> None:
    """A binary frame is answered with error (EMULATOR-CHOICE,
    docs: emulator-fidelity.rst, "Messages and operations"); the socket stays up."""
    await client.send(b'{"type":"connection_init"}')
    frame = await client.expect("error")
    assert _errors(frame) == [(BINARY_FRAME.error_type, BINARY_FRAME.message)]
    assert (await client.subscribe("default/x"))["type"] == "subscribe_success"


@pytest.mark.asyncio
async def test_invalid_operation_id(client: RawClient) -> None:
    """An id outside [a-zA-Z0-9-_+]{1,128} gets subscribe_error/publish_error."""
    frame = await client.subscribe("default/x", "bad id!")
    assert frame["type"] == "subscribe_error"
    assert _errors(frame) == [(INVALID_ID.error_type, INVALID_ID.message)]
    await client.publish("default/x", ['"e"'], "p" * 129)
    frame = await client.expect("publish_error")
    assert _errors(frame) == [(INVALID_ID.error_type, INVALID_ID.message)]


@pytest.mark.asyncio
async def test_wrong_field_type_gets_error_with_reason(client: RawClient) -> None:
    """A field of the wrong type gets a BadRequestException naming the field."""
    await client.send({"type": "publish", "id": "p1", "channel": "default/x", "events": "e"})
    frame = await client.recv()
    assert frame["type"] == "publish_error"
    assert "'events'" in frame["errors"][0]["message"]


# --- per-operation authorization ----------------------------------------------------------
# docs: protocol.rst, "Per-operation authorization on the WebSocket"


@pytest.mark.asyncio
async def test_operations_without_authorization_are_unauthorized(client: RawClient) -> None:
    """subscribe/publish without an authorization map get UnauthorizedException 401."""
    await client.send({"type": "subscribe", "id": "s1", "channel": "default/x"})
    frame = await client.expect("subscribe_error", id="s1")
    assert frame["errors"] == UNAUTHORIZED_ERRORS
    await client.send({"type": "publish", "id": "p1", "channel": "default/x", "events": ['"e"']})
    frame = await client.expect("publish_error", id="p1")
    assert frame["errors"] == UNAUTHORIZED_ERRORS


@pytest.mark.asyncio
async def test_wrong_api_key_on_subscribe_and_publish(
    server: EmulatorServer, client: RawClient
) -> None:
    """A wrong key in the message's authorization is refused per operation."""
    wrong = api_auth(server, "da2-wrong")
    frame = await client.subscribe("default/x", auth=wrong)
    assert frame == {"type": "subscribe_error", "id": "s1", "errors": UNAUTHORIZED_ERRORS}
    await client.publish("default/x", ['"e"'], auth=wrong)
    assert await client.recv() == {
        "type": "publish_error",
        "id": "p1",
        "errors": UNAUTHORIZED_ERRORS,
    }
    assert [e.frame_type for e in server.recorder.errors] == ["subscribe_error", "publish_error"]


@pytest.mark.asyncio
async def test_expired_api_key_on_publish() -> None:
    """A key that expired after connect is refused for later operations."""
    good = ApiKeyConfig(key="da2-good")
    expired = ApiKeyConfig(key="da2-old", expires=datetime.now(UTC) - timedelta(seconds=1))
    async with EmulatorServer(fast_config(api_keys=(good, expired))) as server:
        raw = await open_raw(server)
        await raw.publish("default/x", ['"e"'], auth=api_auth(server, "da2-old"))
        frame = await raw.expect("publish_error", id="p1")
        assert frame["errors"] == UNAUTHORIZED_ERRORS
        await raw.ws.close()


@pytest.mark.asyncio
async def test_publish_rate_limit_per_connection() -> None:
    """Beyond max_publish_per_second a publish gets ThrottlingException."""
    async with EmulatorServer(fast_config(limits=Limits(max_publish_per_second=2))) as server:
        raw = await open_raw(server)
        for i in range(3):
            await raw.publish("default/x", ['"e"'], f"p{i}")
        await raw.expect("publish_success", id="p0")
        await raw.expect("publish_success", id="p1")
        frame = await raw.expect("publish_error", id="p2")
        assert frame["errors"][0]["errorType"] == "ThrottlingException"
        await raw.ws.close()


# --- handlers (docs: protocol.rst, "Event handlers") ----------------------------------------


def _deny(ctx: HandlerContext) -> None:
    raise Unauthorized()


def _refuse(ctx: HandlerContext) -> None:
    raise HandlerError("not today")


def _crash(ctx: HandlerContext) -> None:
    raise RuntimeError("handler bug")


def _handler_config() -> Any:
    return fast_config(
        namespaces=(
            NamespaceConfig(name="default"),
            NamespaceConfig(name="deny", on_subscribe=_deny, on_publish=_deny),
            NamespaceConfig(name="refuse", on_publish=_refuse),
            NamespaceConfig(name="crash", on_publish=_crash, on_subscribe=_crash),
        )
    )


@pytest.mark.asyncio
async def test_handler_rejections_map_to_error_frames() -> None:
    """util.unauthorized() and util.error() become subscribe_error/publish_error."""
    async with EmulatorServer(_handler_config()) as server:
        raw = await open_raw(server)
        frame = await raw.subscribe("deny/x")
        assert frame["type"] == "subscribe_error"
        assert frame["errors"][0]["errorType"] == "Unauthorized"
        await raw.publish("deny/x", ['"e"'])
        frame = await raw.expect("publish_error", id="p1")
        assert frame["errors"][0]["errorType"] == "UnauthorizedException"
        await raw.publish("refuse/x", ['"e"'], "p2")
        frame = await raw.expect("publish_error", id="p2")
        assert frame["errors"][0]["message"] == "not today"
        await raw.ws.close()
        server.check()


@pytest.mark.asyncio
async def test_handler_crash_is_collected_and_the_connection_survives() -> None:
    """A crashing handler answers publish_error; check() re-raises the crash afterwards."""
    async with EmulatorServer(_handler_config()) as server:
        raw = await open_raw(server)
        await raw.publish("crash/x", ['"e"'])
        frame = await raw.expect("publish_error", id="p1")
        assert _errors(frame) == [(PUBLISH_FAILURE.error_type, PUBLISH_FAILURE.message)]
        frame = await raw.subscribe("crash/x", "sc")
        assert _errors(frame) == [
            ("SubscriptionProcessingError", "There was an error processing the operation")
        ]
        assert (await raw.subscribe("default/ok"))["type"] == "subscribe_success"
        with pytest.raises(Exception, match="handler bug"):
            server.check()
        server.check()  # reported once
        await raw.ws.close()


@pytest.mark.asyncio
async def test_a_publisher_burst_never_overflows_a_fast_subscriber() -> None:
    """Pipelined publishes fan out more frames than a send queue holds: the publisher's
    connection yields whenever a queue passes half full, so the subscriber drains in time."""
    async with EmulatorServer(fast_config(limits=Limits(send_queue_frames=20))) as server:
        subscriber = await open_raw(server)
        assert (await subscriber.subscribe("default/burst"))["type"] == "subscribe_success"
        publisher = await open_raw(server)
        publishes = [
            json.dumps(
                {
                    "type": "publish",
                    "id": f"p{i}",
                    "channel": "default/burst",
                    "events": [json.dumps(i * 5 + j) for j in range(5)],
                    "authorization": publisher.auth,
                }
            )
            for i in range(40)
        ]
        for text in publishes:  # back to back: they reach the server as one burst
            await publisher.send(text)
        received = [json.loads((await subscriber.expect("data"))["event"]) for _ in range(200)]
        assert received == list(range(200))
        for i in range(40):
            await publisher.expect("publish_success", id=f"p{i}")
        assert [e for e in server.recorder.errors if e.frame_type == "overflow"] == []
        server.check()
        for raw in (subscriber, publisher):
            await raw.ws.close()


@pytest.mark.asyncio
async def test_slow_handler_blocks_only_its_own_connection() -> None:
    """While one connection's on_publish waits, another connection is served."""
    release = asyncio.Event()
    entered = asyncio.Event()

    async def slow(ctx: HandlerContext) -> list[dict[str, Any]]:
        entered.set()
        await release.wait()
        return list(ctx.events or [])

    config = fast_config(
        namespaces=(NamespaceConfig(name="default"), NamespaceConfig(name="slow", on_publish=slow))
    )
    async with EmulatorServer(config) as server:
        stuck = await open_raw(server)
        other = await open_raw(server)
        await stuck.publish("slow/x", ['"wait"'])
        async with asyncio.timeout(2):
            await entered.wait()
        await other.subscribe("default/y")
        await other.publish("default/y", ['"free"'])
        await other.expect("publish_success")
        assert await other.recv() == {"type": "data", "id": "s1", "event": '"free"'}
        release.set()
        await stuck.expect("publish_success", id="p1")
        for raw in (stuck, other):
            await raw.ws.close()


# --- lifecycle (docs: protocol.rst, "Timing and lifecycle", "Close codes") -----------------


@pytest.mark.asyncio
async def test_connection_lifetime_closes_with_1001() -> None:
    """At max_connection_lifetime the server closes with 1001."""
    async with EmulatorServer(fast_config(max_connection_lifetime=200 * MS)) as server:
        raw = await open_raw(server)
        await raw.init()
        code, reason = await raw.closed()
        assert (code, reason) == (1001, "connection lifetime exceeded")
        await server.recorder.wait_for(
            lambda r: r.connections[-1] if not r.connections[-1].open else None
        )
        assert server.connections[-1].close_code == 1001


async def _kas_until_closed(raw: RawClient) -> tuple[int, int | None, str]:
    """Count the ``ka`` frames until the server closes; the count, close code and reason."""
    kas = 0
    async with asyncio.timeout(WAIT):
        while True:
            try:
                frame = json.loads(await raw.ws.recv())
            except ConnectionClosed as exc:
                received = exc.rcvd
                return kas, received.code if received else None, received.reason if received else ""
            kas += frame.get("type") == "ka"


@pytest.mark.asyncio
async def test_keepalives_go_on_until_the_lifetime_ends() -> None:
    """Keep-alive and lifetime share one timer: ``ka`` keeps coming at its interval until
    the lifetime closes the connection with 1001."""
    config = fast_config(keepalive_interval=40 * MS, max_connection_lifetime=400 * MS)
    async with EmulatorServer(config) as server:
        raw = await open_raw(server)
        await raw.init()
        kas, code, reason = await _kas_until_closed(raw)
        assert (code, reason) == (1001, "connection lifetime exceeded")
        assert kas >= 3  # the first at the ack, then every 40 ms for ~400 ms


@pytest.mark.asyncio
async def test_lifetime_shorter_than_the_keepalive_interval() -> None:
    """A lifetime due before the next ``ka`` closes on time, after the first ``ka``."""
    config = fast_config(keepalive_interval=60.0, max_connection_lifetime=150 * MS)
    async with EmulatorServer(config) as server:
        raw = await open_raw(server)
        await raw.init()
        loop = asyncio.get_running_loop()
        started = loop.time()
        kas, code, reason = await _kas_until_closed(raw)
        assert (code, reason) == (1001, "connection lifetime exceeded")
        assert raw.kas + kas == 1
        assert loop.time() - started < 30.0  # not at the next ka, a minute away


@pytest.mark.asyncio
async def test_silent_socket_is_closed_after_init_timeout() -> None:
    """A socket that sends nothing within limits.init_timeout is closed with 1008."""
    async with EmulatorServer(fast_config(limits=Limits(init_timeout=100 * MS))) as server:
        raw = await open_raw(server)
        code, _ = await raw.closed()
        assert code == 1008


@pytest.mark.asyncio
async def test_server_shutdown_closes_sockets_with_1001() -> None:
    """Stopping the server closes live sockets with 1001 'server shutdown', promptly."""
    server = EmulatorServer(fast_config())
    await server.start()
    raw = await open_raw(server)
    await raw.init()
    loop = asyncio.get_running_loop()
    started = loop.time()
    await server.stop()
    assert await raw.closed() == (1001, "server shutdown")
    assert loop.time() - started < WAIT  # a hang guard; speed is benchmarked


@pytest.mark.asyncio
async def test_client_close_code_is_recorded(server: EmulatorServer) -> None:
    """Any client close code is accepted and recorded (Amplify uses 3001)."""
    raw = await open_raw(server)
    await raw.init()
    await raw.ws.close(3001, "bye")
    info = await server.recorder.wait_for(
        lambda r: r.connections[-1] if not r.connections[-1].open else None
    )
    assert info.close_code == 3001


@pytest.mark.asyncio
async def test_many_connections_each_get_their_own_id(server: EmulatorServer) -> None:
    """Connection ids are distinct and listed in opening order."""
    raws = [await open_raw(server) for _ in range(3)]
    await server.recorder.wait_connected(3)
    ids = [c.id for c in server.connections]
    assert len(set(ids)) == 3
    for raw in raws:
        await raw.ws.close()
