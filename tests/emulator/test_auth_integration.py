"""Every auth mode, per-namespace modes and handlers, end to end over loopback.

Raw ``websockets`` and ``aiohttp`` clients talk to a live :class:`EmulatorServer`; IAM maps
are signed by the client library's botocore-based :class:`appsync_events.authorizer.IAM`.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from botocore.credentials import Credentials
from freezegun import freeze_time
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from appsync_emulator import EmulatorServer, cli
from appsync_emulator.config import (
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_SECRET_ACCESS_KEY,
    AuthType,
    EmulatorConfig,
    LambdaAuthorizerConfig,
    NamespaceConfig,
)
from appsync_emulator.handlers import HandlerContext, HandlerError, HandlerFailure, Unauthorized
from appsync_emulator.issuer import LocalIssuer
from appsync_emulator.verify.iam import SIGNATURE_MISMATCH_MESSAGE
from appsync_events.authorizer import IAM, AuthorizeRequest, Operation
from appsync_events.protocol.subprotocol import PROTOCOL_EVENTS, encode_auth_subprotocol

TIMEOUT = 5.0
ALL = tuple(AuthType)
UNAUTHORIZED = {
    "errorType": "UnauthorizedException",
    "message": "You are not authorized to make this call.",
    "errorCode": 401,
}


def lambda_authorizer(event: dict[str, Any]) -> dict[str, Any]:
    token = event["authorizationToken"]
    if token == "lambda-raise":
        raise RuntimeError("authorizer bug")
    return {"isAuthorized": token.startswith("lambda-ok"), "handlerContext": {"token": token}}


def transform(ctx: HandlerContext) -> list[dict[str, Any]]:
    assert ctx.events is not None
    out = []
    for event in ctx.events:
        payload = event["payload"]
        if payload.get("drop"):
            continue
        if payload.get("bad"):
            out.append({"id": event["id"], "error": "bad event"})
            continue
        out.append({"id": event["id"], "payload": {**payload, "mode": ctx.auth_mode}})
    return out


def guarded_subscribe(ctx: HandlerContext) -> None:
    if ctx.info.channel.segments[-1] == "private":
        raise Unauthorized()
    if ctx.info.channel.segments[-1] == "full":
        raise HandlerError("Room is full")


def crashing_publish(ctx: HandlerContext) -> None:
    raise ZeroDivisionError("handler bug")


CONFIG = EmulatorConfig(
    auth_providers=ALL,
    connection_auth_modes=ALL,
    default_publish_auth_modes=ALL,
    default_subscribe_auth_modes=ALL,
    lambda_authorizer=LambdaAuthorizerConfig(authorizer=lambda_authorizer),
    namespaces=(
        NamespaceConfig(name="default"),
        # Anyone may subscribe with an API key; only IAM may publish.
        NamespaceConfig(
            name="secure",
            publish_auth_modes=(AuthType.AWS_IAM,),
            subscribe_auth_modes=(AuthType.API_KEY, AuthType.AWS_IAM),
        ),
        NamespaceConfig(name="shaped", on_publish=transform, on_subscribe=guarded_subscribe),
        NamespaceConfig(name="buggy", on_publish=crashing_publish),
    ),
    connection_timeout_ms=5000,
    keepalive_interval=1.0,
)


@pytest_asyncio.fixture
async def server() -> AsyncIterator[EmulatorServer]:
    async with EmulatorServer(CONFIG) as srv:
        yield srv


# --- a tiny raw client -------------------------------------------------------------------


def api_key_map(server: EmulatorServer) -> dict[str, str]:
    assert server.api_key is not None
    return {"host": _host(server), "x-api-key": server.api_key}


def _host(server: EmulatorServer) -> str:
    return server.http_endpoint.split("/")[2]


def iam(server: EmulatorServer, secret: str = DEFAULT_SECRET_ACCESS_KEY) -> IAM:
    return IAM(
        region=server.region,
        endpoint=server.http_endpoint,
        credentials=Credentials(DEFAULT_ACCESS_KEY_ID, secret),
    )


async def iam_map(
    server: EmulatorServer,
    operation: Operation,
    channel: str | None = None,
    events: Sequence[str] | None = None,
    *,
    secret: str = DEFAULT_SECRET_ACCESS_KEY,
) -> dict[str, str]:
    request = AuthorizeRequest(
        operation=operation, channel=channel, events=None if events is None else tuple(events)
    )
    return dict((await iam(server, secret).authorize(request)).authorization)


class Raw:
    """One WebSocket with frame helpers that skip ``ka`` and time out."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def send(self, frame: Mapping[str, Any]) -> None:
        await self.ws.send(json.dumps(frame))

    async def recv(self) -> dict[str, Any]:
        async with asyncio.timeout(TIMEOUT):
            while True:
                frame: dict[str, Any] = json.loads(await self.ws.recv())
                if frame.get("type") != "ka":
                    return frame

    async def subscribe(self, channel: str, auth: Mapping[str, str]) -> dict[str, Any]:
        sub_id = uuid.uuid4().hex
        await self.send(
            {"type": "subscribe", "id": sub_id, "channel": channel, "authorization": auth}
        )
        frame = await self.recv()
        assert frame["id"] == sub_id
        return frame

    async def publish(
        self, channel: str, events: Sequence[str], auth: Mapping[str, str]
    ) -> dict[str, Any]:
        pub_id = uuid.uuid4().hex
        await self.send(
            {
                "type": "publish",
                "id": pub_id,
                "channel": channel,
                "events": list(events),
                "authorization": auth,
            }
        )
        frame = await self.recv()
        assert frame["id"] == pub_id
        return frame


async def open_ws(server: EmulatorServer, auth: Mapping[str, str]) -> tuple[Raw, dict[str, Any]]:
    subprotocols = [Subprotocol(PROTOCOL_EVENTS), Subprotocol(encode_auth_subprotocol(auth))]
    ws = await asyncio.wait_for(
        connect(server.realtime_endpoint, subprotocols=subprotocols), TIMEOUT
    )
    raw = Raw(ws)
    await raw.send({"type": "connection_init"})
    return raw, await raw.recv()


async def http_publish(
    server: EmulatorServer, body: bytes, headers: Mapping[str, str]
) -> tuple[int, dict[str, Any]]:
    timeout = aiohttp.ClientTimeout(total=TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with session.post(server.http_endpoint, data=body, headers=dict(headers)) as resp:
            return resp.status, await resp.json(content_type=None)


# --- each mode accepted --------------------------------------------------------------------


@pytest.mark.asyncio
async def test_iam_connect_subscribe_publish_signed_per_operation(server: EmulatorServer) -> None:
    raw, ack = await open_ws(server, await iam_map(server, Operation.CONNECT))
    assert ack["type"] == "connection_ack"
    sub = await raw.subscribe(
        "/default/iam", await iam_map(server, Operation.SUBSCRIBE, "/default/iam")
    )
    assert sub["type"] == "subscribe_success"
    events = ['{"m":"<b>&amp;</b>"}', '"two"']
    auth = await iam_map(server, Operation.PUBLISH, "/default/iam", events)
    result = await raw.publish("/default/iam", events, auth)
    assert result["type"] == "publish_success"
    assert [s["index"] for s in result["successful"]] == [0, 1]
    data = [await raw.recv(), await raw.recv()]
    assert [d["event"] for d in data] == events
    record = server.recorder.published[-1]
    assert record.auth_mode is AuthType.AWS_IAM
    assert record.identity is not None
    assert record.identity.ctx is not None
    assert record.identity.ctx["sourceIp"] == ["127.0.0.1"]
    await raw.ws.close()
    server.check()


@pytest.mark.asyncio
async def test_cognito_oidc_lambda_and_api_key_each_connect(server: EmulatorServer) -> None:
    issuer = server.issuer
    maps = {
        AuthType.API_KEY: api_key_map(server),
        AuthType.AMAZON_COGNITO_USER_POOLS: {
            "host": _host(server),
            "Authorization": issuer.mint("alice", groups=["admins"]),
        },
        AuthType.OPENID_CONNECT: {
            "host": _host(server),
            "Authorization": "Bearer " + issuer.mint("olga", issuer=issuer.oidc_issuer),
        },
        AuthType.AWS_LAMBDA: {"host": _host(server), "Authorization": "lambda-ok-1"},
    }
    for mode, auth in maps.items():
        raw, ack = await open_ws(server, auth)
        assert ack["type"] == "connection_ack", mode
        sub = await raw.subscribe("/default/modes", auth)
        assert sub["type"] == "subscribe_success", mode
        await raw.ws.close()
    info = {c.auth_mode for c in server.connections}
    assert set(maps) <= info


@pytest.mark.asyncio
async def test_http_publish_with_iam_uses_the_real_request(server: EmulatorServer) -> None:
    events = ['{"a":1}']
    headers = await iam_map(server, Operation.PUBLISH, "/default/h", events)
    body = json.dumps({"channel": "/default/h", "events": events}, separators=(",", ":"))
    status, result = await http_publish(server, body.encode(), headers)
    assert status == 200, result
    assert len(result["successful"]) == 1
    tampered = body.replace('\\"a\\":1', '\\"a\\":2').encode()
    status, result = await http_publish(server, tampered, headers)
    assert status == 403
    assert result["errors"][0]["errorType"] == "BadRequestException"
    assert result["errors"][0]["message"].startswith(SIGNATURE_MISMATCH_MESSAGE)


# --- rejections over the wire ------------------------------------------------------------


@pytest.mark.asyncio
async def test_iam_connect_with_a_wrong_secret_gets_the_canonical_string(
    server: EmulatorServer,
) -> None:
    raw, frame = await open_ws(server, await iam_map(server, Operation.CONNECT, secret="wrong"))
    assert frame["type"] == "connection_error"
    (error,) = frame["errors"]
    assert error["errorType"] == "BadRequestException"
    assert error["errorCode"] == 400
    assert f"\nhost:{_host(server)}\n" in error["message"]
    await asyncio.wait_for(raw.ws.wait_closed(), TIMEOUT)
    assert raw.ws.close_code == 1000


@pytest.mark.asyncio
async def test_iam_publish_with_events_changed_after_signing(server: EmulatorServer) -> None:
    raw, _ = await open_ws(server, api_key_map(server))
    auth = await iam_map(server, Operation.PUBLISH, "/default/x", ['{"n":1}'])
    result = await raw.publish("/default/x", ['{"n":2}'], auth)
    assert result["type"] == "publish_error"
    assert result["errors"][0]["errorType"] == "BadRequestException"
    assert result["errors"][0]["message"].startswith(SIGNATURE_MISMATCH_MESSAGE)
    # The connection survives and the next, correctly signed publish works.
    good = await iam_map(server, Operation.PUBLISH, "/default/x", ['{"n":2}'])
    assert (await raw.publish("/default/x", ['{"n":2}'], good))["type"] == "publish_success"
    await raw.ws.close()


@pytest.mark.asyncio
async def test_wrong_api_key_on_connect(server: EmulatorServer) -> None:
    raw, frame = await open_ws(server, {"host": _host(server), "x-api-key": "da2-wrong"})
    assert frame == {"type": "connection_error", "errors": [UNAUTHORIZED]}
    await asyncio.wait_for(raw.ws.wait_closed(), TIMEOUT)


@pytest.mark.asyncio
async def test_lambda_deny_and_raise(server: EmulatorServer) -> None:
    raw, _ = await open_ws(server, api_key_map(server))
    deny = {"Authorization": "lambda-no"}
    assert (await raw.subscribe("/default/l", deny))["errors"] == [UNAUTHORIZED]
    assert (await raw.subscribe("/default/l", {"Authorization": "lambda-raise"}))["errors"] == [
        UNAUTHORIZED
    ]
    with pytest.raises(RuntimeError, match="authorizer bug"):
        server.check()
    ok = await raw.subscribe("/default/l", {"Authorization": "lambda-ok-2"})
    assert ok["type"] == "subscribe_success"
    await raw.ws.close()


@pytest.mark.asyncio
async def test_expired_token_after_time_passes_on_a_live_connection(
    server: EmulatorServer,
) -> None:
    with freeze_time(real_asyncio=True) as frozen:
        token = server.issuer.mint("alice", expires_in=60)
        auth = {"host": _host(server), "Authorization": token}
        raw, ack = await open_ws(server, auth)
        assert ack["type"] == "connection_ack"
        frozen.tick(timedelta(seconds=61))
        frame = await raw.subscribe("/default/t", auth)
    assert frame["type"] == "subscribe_error"
    assert frame["errors"] == [{**UNAUTHORIZED, "message": "Token expired"}]
    await raw.ws.close()


@pytest.mark.asyncio
async def test_clock_offset_makes_a_fresh_signature_stale() -> None:
    async with EmulatorServer(CONFIG.replace(clock_offset=360.0)) as srv:
        raw, frame = await open_ws(srv, await iam_map(srv, Operation.CONNECT))
        assert frame["type"] == "connection_error"
        assert frame["errors"][0]["message"].startswith("Signature expired: ")
        await asyncio.wait_for(raw.ws.wait_closed(), TIMEOUT)


# --- per-namespace modes -------------------------------------------------------------------


@pytest.mark.asyncio
async def test_mode_allowed_on_connect_but_not_on_publish_for_a_namespace(
    server: EmulatorServer,
) -> None:
    key = api_key_map(server)
    raw, ack = await open_ws(server, key)
    assert ack["type"] == "connection_ack"
    assert (await raw.subscribe("/secure/room", key))["type"] == "subscribe_success"
    refused = await raw.publish("/secure/room", ['"hi"'], key)
    assert refused == {"type": "publish_error", "id": refused["id"], "errors": [UNAUTHORIZED]}
    status, body = await http_publish(
        server, b'{"channel":"/secure/room","events":["\\"hi\\""]}', key
    )
    assert status == 401
    assert body["errors"][0]["errorType"] == "UnauthorizedException"
    signed = await iam_map(server, Operation.PUBLISH, "/secure/room", ['"hi"'])
    assert (await raw.publish("/secure/room", ['"hi"'], signed))["type"] == "publish_success"
    assert (await raw.recv())["event"] == '"hi"'
    # The same API key still publishes to the default namespace.
    assert (await raw.publish("/default/room", ['"x"'], key))["type"] == "publish_success"
    await raw.ws.close()


# --- handlers --------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_on_publish_transforms_filters_and_fails_events(server: EmulatorServer) -> None:
    key = api_key_map(server)
    raw, _ = await open_ws(server, key)
    assert (await raw.subscribe("/shaped/room", key))["type"] == "subscribe_success"
    events = ['{"n":0}', '{"n":1,"drop":true}', '{"n":2,"bad":true}', '{"n":3}', '{"n":4}']
    result = await raw.publish("/shaped/room", events, key)
    assert result["type"] == "publish_success"
    assert [s["index"] for s in result["successful"]] == [0, 1, 3, 4]
    (failed,) = result["failed"]
    assert (failed["index"], failed["code"], failed["message"]) == (
        2,
        "EventProcessingError",
        "bad event",
    )
    received = [json.loads((await raw.recv())["event"]) for _ in range(3)]
    assert received == [
        {"n": 0, "mode": "API_KEY"},
        {"n": 3, "mode": "API_KEY"},
        {"n": 4, "mode": "API_KEY"},
    ]
    await raw.ws.close()


@pytest.mark.asyncio
async def test_on_subscribe_rejects(server: EmulatorServer) -> None:
    key = api_key_map(server)
    raw, _ = await open_ws(server, key)
    private = await raw.subscribe("/shaped/private", key)
    assert private["type"] == "subscribe_error"
    assert private["errors"] == [
        {"errorType": "Unauthorized", "message": "You are not authorized to make this call."}
    ]
    full = await raw.subscribe("/shaped/full", key)
    assert full["errors"] == [
        {"errorType": "SubscriptionProcessingError", "message": "Room is full"}
    ]
    assert (await raw.subscribe("/shaped/open", key))["type"] == "subscribe_success"
    await raw.ws.close()


@pytest.mark.asyncio
async def test_crashing_handler_is_collected_and_the_connection_survives(
    server: EmulatorServer,
) -> None:
    key = api_key_map(server)
    raw, _ = await open_ws(server, key)
    result = await raw.publish("/buggy/x", ['"a"'], key)
    assert result["type"] == "publish_error"
    assert result["errors"][0]["errorType"] == "PublishProcessingError"
    with pytest.raises(HandlerFailure) as info:
        server.check()
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert (await raw.publish("/default/x", ['"b"'], key))["type"] == "publish_success"
    await raw.ws.close()


# --- the issuer's documents ---------------------------------------------------------------


@pytest.mark.asyncio
async def test_jwks_and_openid_configuration_are_served(server: EmulatorServer) -> None:
    base = server.http_endpoint.removesuffix("/event")
    timeout = aiohttp.ClientTimeout(total=TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with session.get(base + "/.well-known/jwks.json") as resp:
            assert resp.status == 200
            jwks = await resp.json()
        async with session.get(base + "/.well-known/openid-configuration") as resp:
            doc = await resp.json()
    assert jwks == server.issuer.jwks()
    assert doc["jwks_uri"] == base + "/.well-known/jwks.json"
    assert doc["issuer"] == server.issuer.issuer


# --- the token command against a running emulator ------------------------------------------


@pytest.mark.asyncio
async def test_cli_token_verifies_against_an_emulator_with_the_same_key_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "issuer.pem"
    config_file = tmp_path / "emulator.json"
    config_file.write_text(
        json.dumps(
            {
                "tokenKeyFile": str(key_file),
                "eventConfig": {
                    "authProviders": [{"authType": "AMAZON_COGNITO_USER_POOLS"}],
                    "connectionAuthModes": ["AMAZON_COGNITO_USER_POOLS"],
                    "defaultPublishAuthModes": ["AMAZON_COGNITO_USER_POOLS"],
                    "defaultSubscribeAuthModes": ["AMAZON_COGNITO_USER_POOLS"],
                },
            }
        )
    )
    # Minted before the emulator starts: the key file is created by the CLI.
    assert (
        cli.main(["token", "--sub", "alice", "--groups", "admins", "--config", str(config_file)])
        == 0
    )
    token = capsys.readouterr().out.strip()
    assert key_file.exists()
    async with EmulatorServer(EmulatorConfig.from_file(config_file)) as srv:
        auth = {"host": _host(srv), "Authorization": token}
        raw, ack = await open_ws(srv, auth)
        assert ack["type"] == "connection_ack"
        assert (await raw.subscribe("/default/cli", auth))["type"] == "subscribe_success"
        (record,) = srv.recorder.subscriptions
        assert record.identity is not None
        assert record.identity.ctx is not None
        assert record.identity.ctx["groups"] == ["admins"]
        await raw.ws.close()
    # A token from another key is refused by the same emulator.
    other = LocalIssuer(issuer=srv.issuer.issuer).mint("mallory")
    async with EmulatorServer(EmulatorConfig.from_file(config_file)) as srv:
        raw, frame = await open_ws(srv, {"host": _host(srv), "Authorization": other})
        assert frame == {"type": "connection_error", "errors": [UNAUTHORIZED]}
