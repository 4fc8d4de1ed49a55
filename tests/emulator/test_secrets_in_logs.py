"""No credential, whole or in part, ever reaches a log record (issue 11 item 4).

A full auth matrix runs with every logger at DEBUG: every auth mode (API_KEY, AWS_IAM with
temporary credentials, Cognito, OIDC, Lambda), valid and forged/malformed credentials, over
WebSocket connect, subscribe and publish and HTTP publish, plus malformed JSON frames,
binary frames, list-valued headers and oddly-cased keys, driven both by raw clients and by
the client library.  Every record is formatted in full (message, ``args``, ``exc_info``)
and searched for every credential used and for every 8-character window of each.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import secrets
import string
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from botocore.credentials import Credentials
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from appsync_emulator import EmulatorServer
from appsync_emulator._logging import fingerprint, redact_frame, redact_headers
from appsync_emulator.config import (
    ApiKeyConfig,
    AuthType,
    EmulatorConfig,
    IamCredentials,
    LambdaAuthorizerConfig,
    NamespaceConfig,
    OidcConfig,
)
from appsync_emulator.verify.iam import parse_authorization
from appsync_events import authorizer as client_auth, connect as client_connect
from appsync_events.authorizer import IAM, AuthorizeRequest, Operation
from appsync_events.errors import AppSyncEventsError
from appsync_events.http import HttpPublisher
from appsync_events.protocol.subprotocol import PROTOCOL_EVENTS, encode_auth_subprotocol

TIMEOUT = 5.0
WINDOW = 8
HEX_WINDOW = 16
"""A window made only of hex digits is this long instead: logs are full of random hex ids
(connection, subscription and request ids), where 8 random hex digits of a credential
turn up by chance now and then (the test failed that way); 16 practically never do."""
_HEX = frozenset("0123456789abcdefABCDEF")
RAW_CLIENT_LOGGER = "tests.secrets.raw_websocket"
"""The raw test client's own websockets logger: it logs what the test sends, verbatim."""


def _secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(24)


def _api_key() -> str:
    # AWS's shape: "da2-" and 26 lowercase letters and digits (not only hex digits, so that
    # an 8-character window of it is not mistaken for a fragment of a random hex id).
    return "da2-" + "".join(
        secrets.choice(string.ascii_lowercase + string.digits) for _ in range(26)
    )


API_KEY = _api_key()
FORGED_API_KEY = _api_key()
ACCESS_KEY = "ASIA" + secrets.token_hex(8).upper()
SECRET_KEY = _secret("sk/")
SESSION_TOKEN = _secret("FwoGZXIvYXdz") + "+/=" + secrets.token_urlsafe(40)
FORGED_SESSION_TOKEN = _secret("FwoGZXIvYXdzForged")
WRONG_SECRET_KEY = _secret("wrong/")
LAMBDA_OK = "lambda-ok-" + secrets.token_urlsafe(18)
LAMBDA_DENIED = "lambda-no-" + secrets.token_urlsafe(18)
LAMBDA_RAISE = "lambda-raise-" + secrets.token_urlsafe(18)
LAMBDA_ECHO = "lambda-echo-" + secrets.token_urlsafe(18)
LAMBDA_BAD_CONTEXT = "lambda-context-" + secrets.token_urlsafe(18)


def lambda_authorizer(event: dict[str, Any]) -> dict[str, Any]:
    token = event["authorizationToken"]
    if token.startswith("lambda-raise"):
        raise RuntimeError("authorizer bug")
    if token.startswith("lambda-echo"):
        return event  # a common bug: the result is not {"isAuthorized": ...}
    if token.startswith("lambda-context"):
        return {"isAuthorized": True, "handlerContext": [token], "ttlOverride": token}
    return {"isAuthorized": token.startswith("lambda-ok")}


CONFIG = EmulatorConfig(
    auth_providers=tuple(AuthType),
    connection_auth_modes=tuple(AuthType),
    default_publish_auth_modes=tuple(AuthType),
    default_subscribe_auth_modes=tuple(AuthType),
    api_keys=(ApiKeyConfig(key=API_KEY),),
    iam_credentials=(
        IamCredentials(
            access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY, session_token=SESSION_TOKEN
        ),
    ),
    lambda_authorizer=LambdaAuthorizerConfig(authorizer=lambda_authorizer),
    oidc=OidcConfig(iat_ttl=0, auth_ttl=0),
    namespaces=(NamespaceConfig(name="default"),),
    connection_timeout_ms=5000,
)


class _Capture(logging.Handler):
    """Every record of every logger, formatted in full."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[tuple[str, str]] = []
        self._formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(RAW_CLIENT_LOGGER):
            return
        parts = [self._formatter.format(record), repr(record.msg), repr(record.args)]
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            parts += [repr(exc), repr(exc.args), repr(exc.__cause__), repr(exc.__context__)]
        parts.append(repr({k: v for k, v in vars(record).items() if k not in _STANDARD}))
        self.texts.append((record.name, "\n".join(parts)))


_STANDARD = set(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None))) | {"message", "asctime"}


class Secrets:
    """Every credential the matrix used (signatures and tokens are added as made)."""

    def __init__(self) -> None:
        self.values: set[str] = {
            API_KEY,
            FORGED_API_KEY,
            SECRET_KEY,
            WRONG_SECRET_KEY,
            SESSION_TOKEN,
            FORGED_SESSION_TOKEN,
            LAMBDA_OK,
            LAMBDA_DENIED,
            LAMBDA_RAISE,
            LAMBDA_ECHO,
            LAMBDA_BAD_CONTEXT,
        }

    def add_map(self, auth: Mapping[str, Any]) -> Mapping[str, Any]:
        for key, value in auth.items():
            if not isinstance(value, str):
                continue
            lowered = key.lower()
            if lowered == "authorization" and value.startswith("AWS4-"):
                # SigV4: the signature is the secret (the access key id is not).
                self.values.update(re.findall(r"[0-9a-fA-F]{64}", value))
            elif lowered in ("authorization", "x-api-key", "x-amz-security-token"):
                self.values.add(value.removeprefix("Bearer "))
        return auth

    def windows(self) -> Iterator[tuple[str, str]]:
        for value in self.values:
            if len(value) < WINDOW:
                yield value, value
            for i in range(len(value) - WINDOW + 1):
                window = value[i : i + WINDOW]
                if _HEX.issuperset(window):
                    # As long a window as the value allows, still starting at i or before.
                    start = max(0, min(i, len(value) - HEX_WINDOW))
                    window = value[start : start + HEX_WINDOW]
                yield value, window


@pytest.fixture
def capture() -> Iterator[_Capture]:
    handler = _Capture()
    root = logging.getLogger()
    saved = (
        root.level,
        {name: logging.getLogger(name).level for name in logging.root.manager.loggerDict},
    )
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for name in saved[1]:
        logging.getLogger(name).setLevel(logging.NOTSET)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        for name, level in saved[1].items():
            logging.getLogger(name).setLevel(level)


@pytest_asyncio.fixture
async def server() -> AsyncIterator[EmulatorServer]:
    async with EmulatorServer(CONFIG) as srv:
        yield srv


# --- raw clients -------------------------------------------------------------------------


def _host(server: EmulatorServer) -> str:
    return server.http_endpoint.split("/")[2]


async def _open(server: EmulatorServer, subprotocols: list[str], **kw: Any) -> ClientConnection:
    return await asyncio.wait_for(
        connect(
            server.realtime_endpoint,
            subprotocols=[Subprotocol(p) for p in subprotocols],
            logger=logging.getLogger(RAW_CLIENT_LOGGER),
            **kw,
        ),
        TIMEOUT,
    )


async def _recv_until(ws: ClientConnection, *types: str) -> dict[str, Any]:
    async with asyncio.timeout(TIMEOUT):
        while True:
            frame: dict[str, Any] = json.loads(await ws.recv())
            if frame.get("type") in types:
                return frame


async def _connect_with(server: EmulatorServer, auth: Mapping[str, Any]) -> str:
    """Connect with ``auth`` in the header- subprotocol; return the answer's type."""
    header = "header-" + base64.urlsafe_b64encode(json.dumps(auth).encode()).decode().rstrip("=")
    try:
        ws = await _open(server, [PROTOCOL_EVENTS, header])
    except Exception as exc:  # a refused upgrade
        return type(exc).__name__
    try:
        await ws.send(json.dumps({"type": "connection_init"}))
        return str((await _recv_until(ws, "connection_ack", "connection_error"))["type"])
    finally:
        await ws.close()


async def _operate(ws: ClientConnection, kind: str, auth: Mapping[str, Any]) -> str:
    frame: dict[str, Any] = {"type": kind, "id": uuid.uuid4().hex, "channel": "/default/s"}
    if kind == "publish":
        frame["events"] = ['{"a":1}']
    frame["authorization"] = auth
    await ws.send(json.dumps(frame))
    reply = await _recv_until(ws, f"{kind}_success", f"{kind}_error", "error")
    return str(reply["type"])


async def _http(server: EmulatorServer, body: bytes, headers: Mapping[str, str]) -> int:
    timeout = aiohttp.ClientTimeout(total=TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with session.post(server.http_endpoint, data=body, headers=dict(headers)) as resp:
            await resp.read()
            return resp.status


def _iam(server: EmulatorServer, secret: str = SECRET_KEY, token: str = SESSION_TOKEN) -> IAM:
    return IAM(
        region=server.region,
        endpoint=server.http_endpoint,
        credentials=Credentials(ACCESS_KEY, secret, token),
    )


async def _iam_map(
    server: EmulatorServer, operation: Operation, *, channel: str | None = None, **kw: Any
) -> dict[str, str]:
    events = ('{"a":1}',) if operation is Operation.PUBLISH else None
    request = AuthorizeRequest(operation=operation, channel=channel, events=events)
    return dict((await _iam(server, **kw).authorize(request)).authorization)


def _tamper(signed: Mapping[str, str]) -> dict[str, str]:
    """The same map with another (well-formed) signature."""
    out = dict(signed)
    head, _, _ = out["Authorization"].rpartition("Signature=")
    out["Authorization"] = head + "Signature=" + secrets.token_hex(32)
    return out


async def _auth_maps(server: EmulatorServer, used: Secrets, op: Operation) -> list[dict[str, Any]]:
    """Valid and forged maps of every mode for one operation."""
    host = _host(server)
    channel = None if op is Operation.CONNECT else "/default/s"
    issuer = server.issuer
    cognito = issuer.mint("alice")
    oidc = issuer.mint("bob", issuer=issuer.oidc_issuer)
    forged_jwt = cognito.rsplit(".", 1)[0] + "." + secrets.token_urlsafe(64)
    signed = await _iam_map(server, op, channel=channel)
    sig = signed["Authorization"].rsplit("Signature=", 1)[1]
    maps: list[dict[str, Any]] = [
        {"host": host, "x-api-key": API_KEY},
        {"host": host, "x-api-key": FORGED_API_KEY},
        {"host": host, "X-API-KEY": FORGED_API_KEY},
        {"host": host, "x-api-key": [API_KEY, FORGED_API_KEY]},
        {"host": host, "x-api-key": {"nested": FORGED_API_KEY}},
        signed,
        _tamper(signed),
        await _iam_map(server, op, channel=channel, secret=WRONG_SECRET_KEY),
        await _iam_map(server, op, channel=channel, token=FORGED_SESSION_TOKEN),
        {**signed, "X-Amz-Security-Token": [SESSION_TOKEN]},
        # Malformed SigV4 values carrying the signature hex.
        {**signed, "Authorization": signed["Authorization"].replace("Signature=", "Signature ")},
        {**signed, "Authorization": signed["Authorization"].replace(" ", ",", 1)},
        {**signed, "Authorization": signed["Authorization"].replace(sig, sig.upper())},
        {**signed, "Authorization": signed["Authorization"] + "," + sig},
        {"host": host, "Authorization": cognito},
        {"host": host, "authorization": "Bearer " + oidc},
        {"host": host, "Authorization": forged_jwt},
        {"host": host, "Authorization": cognito + "x"},
        {"host": host, "Authorization": LAMBDA_OK},
        {"host": host, "AUTHORIZATION": LAMBDA_DENIED},
        {"host": host, "Authorization": LAMBDA_RAISE},
        {"host": host, "Authorization": [LAMBDA_OK]},
        {"host": host, "Authorization": LAMBDA_ECHO},
        {"host": host, "Authorization": LAMBDA_BAD_CONTEXT},
    ]
    for auth in maps:
        used.add_map(auth)
        for value in auth.values():
            if isinstance(value, list):
                used.values.update(v for v in value if isinstance(v, str))
    used.values.update({cognito, oidc, forged_jwt, sig, sig.upper()})
    return maps


# --- the matrix ----------------------------------------------------------------------------


async def _websocket_matrix(server: EmulatorServer, used: Secrets) -> None:
    for auth in await _auth_maps(server, used, Operation.CONNECT):
        await _connect_with(server, auth)
    # header- subprotocols that do not decode: bad base64, not JSON, not an object.
    for raw in (
        f'{{"x-api-key":"{API_KEY}"',
        f'["{API_KEY}"]',
    ):
        encoded = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
        for header in ("header-" + encoded, "header-" + encoded + "!"):
            ws = await _open(server, [PROTOCOL_EVENTS, header])
            await ws.close()
    # Credentials as real upgrade headers, with and without the events subprotocol.
    ws = await _open(server, [PROTOCOL_EVENTS], additional_headers={"x-api-key": API_KEY})
    await ws.close()
    header = encode_auth_subprotocol({"host": _host(server), "x-api-key": API_KEY})
    with pytest.raises(InvalidStatus):  # refused: the events subprotocol is not offered
        await _open(server, [header])

    good = encode_auth_subprotocol({"host": _host(server), "x-api-key": API_KEY})
    ws = await _open(server, [PROTOCOL_EVENTS, good])
    await ws.send(json.dumps({"type": "connection_init"}))
    await _recv_until(ws, "connection_ack")
    for kind, op in (("subscribe", Operation.SUBSCRIBE), ("publish", Operation.PUBLISH)):
        for auth in await _auth_maps(server, used, op):
            await _operate(ws, kind, auth)
    await ws.close()
    await _hostile_frames(server, good)


async def _hostile_frames(server: EmulatorServer, good: str) -> None:
    """Malformed JSON, binary frames and oddly-cased keys, each carrying credentials."""
    frames: list[str | bytes] = []
    for auth in (
        {"x-api-key": API_KEY},
        {"X-Api-Key": [FORGED_API_KEY]},
        {"Authorization": LAMBDA_OK, "X-Amz-Security-Token": SESSION_TOKEN},
    ):
        whole = {"type": "subscribe", "id": "s", "channel": "/default/s", "authorization": auth}
        text = json.dumps(whole)
        frames += [
            text[:-3],  # malformed JSON
            text.encode(),  # binary frame
            json.dumps({**whole, "Authorization": whole.pop("authorization")}),
            json.dumps({"type": "publish", "id": "p", "AUTHORIZATION": auth, "events": [1]}),
            json.dumps({"type": "connection_init", "payload": {"authorization": auth}}),
            json.dumps({"type": "x" * 10, "extra": auth}),
            "{" + text,
        ]
    for frame in frames:
        # One connection per frame (a binary frame closes it); a valid subscribe after the
        # frame shows the server has read it (or the close does).
        ws = await _open(server, [PROTOCOL_EVENTS, good])
        await ws.send(json.dumps({"type": "connection_init"}))
        await _recv_until(ws, "connection_ack")
        await ws.send(frame)
        sentinel = {"host": _host(server), "x-api-key": API_KEY}
        try:
            await _operate(ws, "subscribe", sentinel)
        except ConnectionClosed:
            pass
        await ws.close()


async def _http_matrix(server: EmulatorServer, used: Secrets) -> None:
    for auth in await _auth_maps(server, used, Operation.PUBLISH):
        if any(not isinstance(v, str) for v in auth.values()):
            continue  # HTTP headers are strings
        body = json.dumps({"channel": "/default/s", "events": ['{"a":1}']}).encode()
        headers = {k: v for k, v in auth.items() if k.lower() != "host"}
        await _http(server, body, headers)
    # A body that carries credentials too, malformed and well-formed.
    for body in (
        b'{"authorization":{"x-api-key":"%s"}' % API_KEY.encode(),
        b'{"channel":"/default/s","events":["1"],"x-api-key":"%s"}' % API_KEY.encode(),
    ):
        await _http(server, body, {"x-api-key": API_KEY})


async def _client_matrix(server: EmulatorServer, used: Secrets) -> None:
    """The client library's own logs: every authorizer, WebSocket and HTTP."""
    carol = server.issuer.mint("carol")
    used.values.add(carol)
    authorizers = [
        client_auth.ApiKey(API_KEY),
        client_auth.ApiKey(FORGED_API_KEY),
        _iam(server),
        _iam(server, secret=WRONG_SECRET_KEY),
        _iam(server, token=FORGED_SESSION_TOKEN),
        client_auth.Token(carol),
        client_auth.Token(LAMBDA_OK),
        client_auth.Token(LAMBDA_DENIED),
    ]
    for authorizer in authorizers:
        try:
            async with client_connect(server.http_endpoint, authorizer=authorizer) as client:
                async with client.subscribe("/default/c"):
                    await client.publish("/default/c", {"a": 1})
        except AppSyncEventsError:
            pass
        async with HttpPublisher(server.http_endpoint, authorizer=authorizer) as publisher:
            try:
                await publisher.publish("/default/c", {"a": 1})
            except AppSyncEventsError:
                pass


@pytest.mark.asyncio
async def test_no_credential_reaches_a_log_record(
    server: EmulatorServer, capture: _Capture
) -> None:
    used = Secrets()
    await _websocket_matrix(server, used)
    await _http_matrix(server, used)
    await _client_matrix(server, used)

    names = {name for name, _ in capture.texts}
    assert {"appsync_emulator.ws", "appsync_emulator.auth", "appsync_emulator.http"} <= names
    assert any(n.startswith("appsync_events.") for n in names)
    windows = {window for _, window in used.windows()}
    leaks = {
        text.splitlines()[0][:160]: window
        for _, text in capture.texts
        for window in windows
        if window in text
    }
    assert not leaks, "\n".join(f"{w!r} in {t}" for t, w in sorted(leaks.items()))


# --- the pieces ------------------------------------------------------------------------------


def test_redact_frame_handles_hostile_frames() -> None:
    key = FORGED_API_KEY
    for template in (
        '{"type":"subscribe","authorization":{"x-api-key":"@@"}',
        '{"Authorization":{"x-api-key":"@@"}}',
        '{"authorization":{"X-API-KEY":["@@"]}}',
        '[{"payload":{"authorization":{"x-api-key":"@@"}}}]',
        '{"payload":{"AUTHORIZATION":"@@","X-Amz-Security-Token":{"a":"@@"}}}',
        '{"authorization":{"host":"h","x-api-key ":"@@"}}',
    ):
        frame = template.replace("@@", key)
        assert key[4:12] not in redact_frame(frame)
        assert key[4:12] not in redact_frame(frame.encode())


def test_redact_headers_hides_any_value_type() -> None:
    shown = repr(redact_headers({"x-api-key": [API_KEY], "Authorization": {"t": LAMBDA_OK}}))
    assert API_KEY[4:12] not in shown
    assert LAMBDA_OK[4:12] not in shown


def test_fingerprint_is_short_hex_and_not_the_key() -> None:
    fp = fingerprint(API_KEY)
    assert len(fp) == 8
    assert int(fp, 16) >= 0
    assert fp not in API_KEY


@pytest.mark.asyncio
async def test_signature_mismatch_answer_shows_the_canonical_string_without_the_token(
    server: EmulatorServer,
) -> None:
    """AWS's wording (the canonical string) is kept, the session token is not."""
    body = json.dumps({"channel": "/default/s", "events": ['{"a":1}']}).encode()
    signed = await _iam_map(server, Operation.PUBLISH, channel="/default/s")
    headers = {k: v for k, v in _tamper(signed).items() if k.lower() != "host"}
    timeout = aiohttp.ClientTimeout(total=TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with session.post(server.http_endpoint, data=body, headers=headers) as resp:
            assert resp.status == 403
            message = (await resp.json())["errors"][0]["message"]
    assert "The Canonical String for this request should have been" in message
    assert "\nx-amz-security-token:<redacted>\n" in message
    assert f"\nhost:{_host(server)}\n" in message
    assert SESSION_TOKEN[:8] not in message


def test_malformed_sigv4_components_are_named_not_echoed() -> None:
    sig = secrets.token_hex(32)
    value = f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20260101/us-east-1/appsync/aws4_request"
    for bad in (f"{value}, Signature {sig}", f"{value}, {sig}", f"AWS4-HMAC-SHA256,{sig}"):
        with pytest.raises(ValueError, match=r"malformed component|Unsupported") as info:
            parse_authorization(bad)
        assert sig[:8] not in str(info.value)
    with pytest.raises(ValueError, match="'Signature…'"):
        parse_authorization(f"{value}, Signature {sig}")
