"""IAM: the signed ``host`` must be this API's HTTP host (issue 11 item 7).

Maps are signed consistently with plain botocore (:func:`botocore_sign`) for the right
host, another API's host and the real-time host, and sent over WebSocket connect,
subscribe, publish and HTTP publish to a live emulator; the verifier is also checked on its
own for ports, letter case and custom domains.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from appsync_emulator import EmulatorServer
from appsync_emulator.config import AuthType, ConfigError, EmulatorConfig, IamCredentials
from appsync_emulator.verify import AuthFailure, AuthRequest, Operation, Transport
from appsync_emulator.verify.iam import IamVerifier
from appsync_events.protocol.signing import signing_body
from appsync_events.protocol.subprotocol import PROTOCOL_EVENTS, encode_auth_subprotocol

from .auth_helpers import ACCESS_KEY, REGION, SECRET_KEY, botocore_sign

TIMEOUT = 5.0
CUSTOM = "events.example.com"
AWS_HTTP = "emulatorapi.appsync-api.us-east-1.amazonaws.com"
AWS_REALTIME = "emulatorapi.appsync-realtime-api.us-east-1.amazonaws.com"
OTHER_API = "otherapi0000.appsync-api.us-east-1.amazonaws.com"
MODES = (AuthType.API_KEY, AuthType.AWS_IAM)
CONFIG = EmulatorConfig(
    auth_providers=MODES,
    connection_auth_modes=MODES,
    default_publish_auth_modes=MODES,
    default_subscribe_auth_modes=MODES,
    iam_credentials=(IamCredentials(access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY),),
    custom_domains=(CUSTOM, AWS_HTTP),
    region=REGION,
)
CHANNEL = "/default/hosts"
EVENTS = ('{"a":1}',)


@pytest_asyncio.fixture
async def server() -> AsyncIterator[EmulatorServer]:
    async with EmulatorServer(CONFIG) as srv:
        yield srv


def _host(server: EmulatorServer) -> str:
    return server.http_endpoint.split("/")[2]


def _signed(op: Operation, host: str) -> dict[str, str]:
    channel = None if op is Operation.CONNECT else CHANNEL
    events = EVENTS if op is Operation.PUBLISH else None
    return botocore_sign(signing_body(channel, events), host=host, at=datetime.now(UTC))


async def _recv(ws: ClientConnection, *types: str) -> dict[str, Any]:
    async with asyncio.timeout(TIMEOUT):
        while True:
            frame: dict[str, Any] = json.loads(await ws.recv())
            if frame.get("type") in types:
                return frame


async def _open(server: EmulatorServer, auth: Mapping[str, str]) -> tuple[ClientConnection, Any]:
    protocols = [Subprotocol(PROTOCOL_EVENTS), Subprotocol(encode_auth_subprotocol(auth))]
    ws = await asyncio.wait_for(connect(server.realtime_endpoint, subprotocols=protocols), TIMEOUT)
    await ws.send(json.dumps({"type": "connection_init"}))
    return ws, await _recv(ws, "connection_ack", "connection_error")


def _error_message(frame: Mapping[str, Any]) -> str:
    errors = frame["errors"]
    assert len(errors) == 1
    assert errors[0]["errorType"] == "BadRequestException"
    return str(errors[0]["message"])


async def _connect(server: EmulatorServer, host: str) -> dict[str, Any]:
    ws, frame = await _open(server, _signed(Operation.CONNECT, host))
    await ws.close()
    return dict(frame)


async def _operate(server: EmulatorServer, kind: str, host: str) -> dict[str, Any]:
    assert server.api_key is not None
    ws, ack = await _open(server, {"host": _host(server), "x-api-key": server.api_key})
    assert ack["type"] == "connection_ack"
    op = Operation.SUBSCRIBE if kind == "subscribe" else Operation.PUBLISH
    frame: dict[str, Any] = {"type": kind, "id": uuid.uuid4().hex, "channel": CHANNEL}
    if kind == "publish":
        frame["events"] = list(EVENTS)
    frame["authorization"] = _signed(op, host)
    try:
        await ws.send(json.dumps(frame))
        return await _recv(ws, f"{kind}_success", f"{kind}_error")
    finally:
        await ws.close()


async def _http(server: EmulatorServer, host: str) -> tuple[int, dict[str, Any]]:
    body = json.dumps({"channel": CHANNEL, "events": list(EVENTS)})
    headers = botocore_sign(body, host=host, at=datetime.now(UTC))
    timeout = aiohttp.ClientTimeout(total=TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with session.post(server.http_endpoint, data=body, headers=headers) as resp:
            return resp.status, await resp.json(content_type=None)


# --- live: every operation, right host / another API's host / the real-time host ----------


@pytest.mark.asyncio
async def test_right_host_is_accepted_everywhere(server: EmulatorServer) -> None:
    host = _host(server)
    assert (await _connect(server, host))["type"] == "connection_ack"
    assert (await _operate(server, "subscribe", host))["type"] == "subscribe_success"
    assert (await _operate(server, "publish", host))["type"] == "publish_success"
    status, _ = await _http(server, host)
    assert status == 200


@pytest.mark.asyncio
@pytest.mark.parametrize("host", [CUSTOM, AWS_HTTP, AWS_HTTP.upper() + ":443"])
async def test_custom_domains_are_accepted(server: EmulatorServer, host: str) -> None:
    assert (await _connect(server, host))["type"] == "connection_ack"
    assert (await _operate(server, "publish", host))["type"] == "publish_success"
    status, _ = await _http(server, host)
    assert status == 200


@pytest.mark.asyncio
@pytest.mark.parametrize("other", [OTHER_API, "evil.example.com", "127.0.0.1:1"])
async def test_another_host_is_refused_over_websocket(server: EmulatorServer, other: str) -> None:
    expected = f"expected {_host(server)!r} or {CUSTOM!r} or {AWS_HTTP!r}"
    connect = await _connect(server, other)
    assert connect["type"] == "connection_error"
    message = _error_message(connect)
    assert f"The signed 'host' header {other!r} is not this API's HTTP host" in message
    assert expected in message
    for kind in ("subscribe", "publish"):
        reply = await _operate(server, kind, other)
        assert reply["type"] == f"{kind}_error"
        assert expected in _error_message(reply)


@pytest.mark.asyncio
async def test_another_api_host_is_refused_over_http(server: EmulatorServer) -> None:
    """The Host header is the signed one: another API's AWS name is never taken as ours."""
    status, body = await _http(server, OTHER_API)
    assert status == 403
    message = _error_message(body)
    assert f"The signed 'host' header {OTHER_API!r} is not this API's HTTP host" in message
    assert f"expected {CUSTOM!r} or {AWS_HTTP!r}" in message


@pytest.mark.asyncio
async def test_realtime_host_is_refused_and_named(server: EmulatorServer) -> None:
    hint = f"is the real-time host (appsync-realtime-api); sign the HTTP host {AWS_HTTP!r}"
    connect = await _connect(server, AWS_REALTIME)
    assert connect["type"] == "connection_error"
    assert hint in _error_message(connect)
    for kind in ("subscribe", "publish"):
        reply = await _operate(server, kind, AWS_REALTIME)
        assert hint in _error_message(reply)
    status, body = await _http(server, AWS_REALTIME)
    assert status == 403
    assert hint in _error_message(body)


# --- the verifier on its own ---------------------------------------------------------------

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def _request(
    signed_host: str, arrived: str | None, op: Operation = Operation.CONNECT
) -> AuthRequest:
    channel = None if op is Operation.CONNECT else CHANNEL
    auth = botocore_sign(signing_body(channel, None), host=signed_host, at=NOW)
    return AuthRequest(
        operation=op,
        transport=Transport.WEBSOCKET,
        auth=auth,
        channel=channel,
        request_headers={} if arrived is None else {"host": arrived},
    )


def _verifier(*domains: str) -> IamVerifier:
    return IamVerifier(CONFIG.iam_credentials, region=REGION, custom_domains=domains)


async def _message(verifier: IamVerifier, request: AuthRequest) -> str:
    with pytest.raises(AuthFailure) as info:
        await verifier.verify(request, NOW)
    return info.value.errors[0].message


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("signed", "arrived"),
    [
        ("127.0.0.1:8080", "127.0.0.1:8080"),
        ("LocalHost:8080", "localhost:8080"),
        ("myhost.example.com", "myhost.example.com:443"),
        ("[::1]:8080", "[::1]:8080"),
    ],
)
async def test_arrival_host_is_accepted_case_and_default_port_aside(
    signed: str, arrived: str
) -> None:
    await _verifier().verify(_request(signed, arrived), NOW)


@pytest.mark.asyncio
async def test_port_is_part_of_the_host() -> None:
    message = await _message(_verifier(), _request("127.0.0.1:8081", "127.0.0.1:8080"))
    assert "expected '127.0.0.1:8080'" in message


@pytest.mark.asyncio
async def test_an_aws_name_is_only_ours_when_listed() -> None:
    """Reached through a DNS override, an AWS name must be in custom_domains."""
    unlisted = await _message(_verifier(), _request(AWS_HTTP, AWS_HTTP))
    assert "an AWS host name must be listed in customDomains" in unlisted
    assert "expected the host this emulator was reached at" in unlisted
    await _verifier(AWS_HTTP).verify(_request(AWS_HTTP, AWS_HTTP), NOW)
    # The WebSocket reached the real-time name; its map must still sign the HTTP name.
    await _verifier(AWS_HTTP).verify(_request(AWS_HTTP, AWS_REALTIME), NOW)
    realtime = await _message(_verifier(AWS_HTTP), _request(AWS_REALTIME, AWS_REALTIME))
    assert f"sign the HTTP host {AWS_HTTP!r} instead" in realtime


@pytest.mark.asyncio
async def test_a_listed_name_without_a_port_matches_any_port() -> None:
    """An emulator on a random local port, reached through a DNS override of a listed name."""
    await _verifier(AWS_HTTP).verify(_request(f"{AWS_HTTP}:45729", f"{AWS_HTTP}:45729"), NOW)
    await _verifier(CUSTOM).verify(_request(f"{CUSTOM}:8443", None), NOW)
    # A listed name WITH a port names that port only.
    message = await _message(_verifier(f"{CUSTOM}:8443"), _request(f"{CUSTOM}:9443", None))
    assert "is not this API's HTTP host" in message
    # Another name on the same port is still refused.
    other = await _message(_verifier(AWS_HTTP), _request(f"{OTHER_API}:45729", None))
    assert "is not this API's HTTP host" in other


@pytest.mark.asyncio
async def test_without_a_host_header_or_domains_the_host_is_not_checked() -> None:
    await _verifier().verify(_request(OTHER_API, None), NOW)
    message = await _message(_verifier(CUSTOM), _request(OTHER_API, None))
    assert f"expected {CUSTOM!r}" in message


@pytest.mark.asyncio
async def test_http_transport_checks_the_host_too() -> None:
    request = replace(
        _request(OTHER_API, OTHER_API, Operation.PUBLISH),
        transport=Transport.HTTP,
    )
    assert "is not this API's HTTP host" in await _message(_verifier(), request)


def test_custom_domains_config_key() -> None:
    config = EmulatorConfig.from_mapping({"customDomains": [CUSTOM]})
    assert config.custom_domains == (CUSTOM,)
    assert EmulatorConfig.from_mapping({}).custom_domains == ()
    with pytest.raises(ConfigError, match="customDomains: expected a list"):
        EmulatorConfig.from_mapping({"customDomains": CUSTOM})
