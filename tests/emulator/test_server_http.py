"""HTTP publish, ``POST /event``, over a real loopback socket.

See docs: protocol.rst, "HTTP publish".
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from appsync_emulator import (
    ApiKeyConfig,
    EmulatorServer,
    HandlerError,
    Limits,
    NamespaceConfig,
    Unauthorized,
)
from appsync_emulator.handlers import HandlerContext

from .conftest import fast_config, open_raw

CHANNEL = "default/channel"


def _body(channel: str = CHANNEL, events: list[Any] | None = None, **extra: Any) -> bytes:
    return json.dumps(
        {"channel": channel, "events": events if events is not None else ['{"a":1}'], **extra}
    ).encode()


async def _post(
    http: aiohttp.ClientSession,
    server: EmulatorServer,
    body: bytes,
    *,
    key: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any], aiohttp.ClientResponse]:
    sent = {"content-type": "application/json"}
    if key is not None:
        sent["x-api-key"] = key
    sent.update(headers or {})
    async with http.post(server.http_endpoint, data=body, headers=sent) as response:
        text = await response.text()
        return response.status, json.loads(text) if text else {}, response


@pytest.mark.asyncio
async def test_publish_returns_200_with_failed_then_successful(
    server: EmulatorServer, http: aiohttp.ClientSession
) -> None:
    """200 {"failed":[],"successful":[{identifier,index}]}, failed first as AWS does
    (docs: protocol.rst, "Success: successful and failed")."""
    async with http.post(
        server.http_endpoint,
        data=_body(events=['{"a":1}', "2"]),
        headers={"x-api-key": server.api_key or "", "content-type": "application/json"},
    ) as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        text = await response.text()
    assert text.startswith('{"failed":[],"successful":[')
    body = json.loads(text)
    assert [s["index"] for s in body["successful"]] == [0, 1]
    assert all(uuid.UUID(s["identifier"]) for s in body["successful"])


@pytest.mark.asyncio
async def test_http_publish_reaches_websocket_subscribers(
    server: EmulatorServer, http: aiohttp.ClientSession
) -> None:
    """Events published over HTTP arrive as data frames, verbatim and in order."""
    raw = await open_raw(server)
    await raw.subscribe("default/*")
    status, _, _ = await _post(
        http, server, _body(events=['{ "x" : 1 }', '"two"']), key=server.api_key
    )
    assert status == 200
    assert await raw.recv() == {"type": "data", "id": "s1", "event": '{ "x" : 1 }'}
    assert await raw.recv() == {"type": "data", "id": "s1", "event": '"two"'}
    record = server.recorder.assert_published(CHANNEL, count=2)[0]
    assert record.transport == "http"
    assert record.deliveries == 2
    await raw.ws.close()


@pytest.mark.asyncio
async def test_amplify_style_request_is_accepted(
    server: EmulatorServer, http: aiohttp.ClientSession
) -> None:
    """charset in content-type, extra body fields and a leading slash are all fine."""
    status, body, _ = await _post(
        http,
        server,
        _body("/default/x", id="ignored-extra-field"),
        key=server.api_key,
        headers={"content-type": "application/json; charset=UTF-8", "x-amz-user-agent": "a/6"},
    )
    assert status == 200, body
    server.recorder.assert_published("/default/x", events=[{"a": 1}])


@pytest.mark.asyncio
@pytest.mark.parametrize("key", [None, "da2-wrong"])
async def test_missing_or_wrong_key_is_401(
    server: EmulatorServer, http: aiohttp.ClientSession, key: str | None
) -> None:
    """No key or a wrong key: 401 UnauthorizedException, nothing published."""
    status, body, _ = await _post(http, server, _body(), key=key)
    assert status == 401
    assert body["errors"][0]["errorType"] == "UnauthorizedException"
    assert server.recorder.published == []
    assert server.recorder.errors[-1].status == 401


@pytest.mark.asyncio
async def test_expired_key_is_401(http: aiohttp.ClientSession) -> None:
    """An expired API key is refused with 401."""
    old = ApiKeyConfig(key="da2-old", expires=datetime.now(UTC) - timedelta(minutes=1))
    async with EmulatorServer(fast_config(api_keys=(old,))) as server:
        status, _, _ = await _post(http, server, _body(), key="da2-old")
        assert status == 401


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "invalid JSON"),
        (b"\xff\xfe", "UTF-8"),
        (b"[1]", "JSON object"),
        (b'{"events":["1"]}', "'channel'"),
        (b'{"channel":5,"events":["1"]}', "'channel'"),
        (b'{"channel":"default/x"}', "'events'"),
        (b'{"channel":"default/x","events":"1"}', "'events'"),
        (b'{"channel":"default/x","events":[1]}', "events[0]"),
        (_body(events=[]), "at least 1 event"),
        (_body(events=["{bad"]), "not valid JSON"),
        (_body("default/bad_chan"), "Invalid Channel Format"),
        (_body("nowhere/x"), "namespace not found"),
        (_body("default/*"), "Invalid Channel Format"),
    ],
)
async def test_malformed_requests_are_400(
    server: EmulatorServer, http: aiohttp.ClientSession, body: bytes, fragment: str
) -> None:
    """Validation failures are 400 with a BadRequestException naming the problem."""
    status, answer, _ = await _post(http, server, body, key=server.api_key)
    assert status == 400
    assert answer["errors"][0]["errorType"] == "BadRequestException"
    assert fragment in answer["errors"][0]["message"]


@pytest.mark.asyncio
async def test_too_many_events_is_400_limit_exceeded(
    server: EmulatorServer, http: aiohttp.ClientSession
) -> None:
    """Six events: 400 LimitExceededException."""
    status, answer, _ = await _post(http, server, _body(events=['"e"'] * 6), key=server.api_key)
    assert status == 400
    assert answer["errors"][0]["errorType"] == "LimitExceededException"


@pytest.mark.asyncio
async def test_oversized_event_is_200_with_failed_entry(http: aiohttp.ClientSession) -> None:
    """An event over the event limit gives 200 with an EventTooLargeException entry
    (docs: protocol.rst, "Success: successful and failed")."""
    async with EmulatorServer(fast_config(limits=Limits(max_event_bytes=50))) as server:
        status, body, _ = await _post(
            http, server, _body(events=[json.dumps("z" * 80)]), key=server.api_key
        )
        assert status == 200
        assert body["successful"] == []
        failed = body["failed"][0]
        assert (failed["code"], failed["index"]) == ("EventTooLargeException", 0)
        assert failed["message"] == "Transformed event is larger than 240KB"


@pytest.mark.asyncio
async def test_body_over_the_request_limit_is_413(http: aiohttp.ClientSession) -> None:
    """A body over max_request_bytes is 413 with a JSON error, declared or chunked."""
    async with EmulatorServer(fast_config(limits=Limits(max_request_bytes=1000))) as server:
        big = _body(events=[json.dumps("q" * 2000)])
        status, body, _ = await _post(http, server, big, key=server.api_key)
        assert status == 413
        assert body["errors"][0]["errorType"] == "LimitExceededException"

        async def chunks() -> AsyncIterator[bytes]:
            yield big[:500]
            yield big[500:]

        async with http.post(
            server.http_endpoint, data=chunks(), headers={"x-api-key": server.api_key or ""}
        ) as response:
            assert response.status == 413
            assert (await response.json())["errors"][0]["errorType"] == "LimitExceededException"


@pytest.mark.asyncio
async def test_other_paths_are_404_json(
    server: EmulatorServer, http: aiohttp.ClientSession
) -> None:
    """Unknown paths get 404 with a JSON errors body."""
    base = server.http_endpoint.rsplit("/event", 1)[0]
    async with http.post(base + "/graphql", data=b"{}") as response:
        assert response.status == 404
        assert (await response.json())["errors"][0]["errorType"] == "NotFoundException"


@pytest.mark.asyncio
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
async def test_other_methods_on_event_are_405(
    server: EmulatorServer, http: aiohttp.ClientSession, method: str
) -> None:
    """Only POST (and OPTIONS) are served on /event."""
    async with http.request(method, server.http_endpoint) as response:
        assert response.status == 405
        assert response.headers["Allow"] == "POST, OPTIONS"


@pytest.mark.asyncio
async def test_cors_preflight(server: EmulatorServer, http: aiohttp.ClientSession) -> None:
    """OPTIONS answers 204 with the CORS headers the emulator chose.

    EMULATOR-CHOICE, docs: emulator-fidelity.rst, "CORS preflight".
    """
    async with http.options(
        server.http_endpoint,
        headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"},
    ) as response:
        assert response.status == 204
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert response.headers["Access-Control-Allow-Methods"] == "POST, OPTIONS"
        assert "x-api-key" in response.headers["Access-Control-Allow-Headers"]
        assert response.headers["Access-Control-Max-Age"] == "86400"


def _unauthorized(ctx: HandlerContext) -> None:
    raise Unauthorized()


def _error(ctx: HandlerContext) -> None:
    raise HandlerError("nope")


@pytest.mark.asyncio
async def test_handler_rejections_map_to_401_and_403(http: aiohttp.ClientSession) -> None:
    """onPublish util.unauthorized() is 401, util.error() is 403
    (docs: protocol.rst, "Errors")."""
    config = fast_config(
        namespaces=(
            NamespaceConfig(name="default"),
            NamespaceConfig(name="locked", on_publish=_unauthorized),
            NamespaceConfig(name="picky", on_publish=_error),
        )
    )
    async with EmulatorServer(config) as server:
        status, body, _ = await _post(http, server, _body("locked/x"), key=server.api_key)
        assert status == 401
        assert body["errors"][0]["errorType"] == "UnauthorizedException"
        status, body, _ = await _post(http, server, _body("picky/x"), key=server.api_key)
        assert status == 403
        assert body["errors"][0]["message"] == "nope"
        server.check()
