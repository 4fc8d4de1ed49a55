"""Direct Lambda data sources (``behavior = DIRECT``) run by the emulator.

The Lambda is an unchanged Powertools for AWS Lambda (Python) ``AppSyncEventsResolver``
app (``make_app`` in ``test_direct_lambda``), called over WebSocket and HTTP publish:
publish, subscribe, aggregate mode and its error cases; and an ``EVENT`` invocation that
must not delay the broadcast.
"""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from appsync_emulator import EmulatorServer
from appsync_emulator.config import (
    DataSourceConfig,
    EmulatorConfig,
    HandlerBehavior,
    HandlerConfig,
    HandlerConfigs,
    InvokeType,
    NamespaceConfig,
)
from tests.emulator.conftest import RawClient, fast_config, open_raw
from tests.emulator.test_direct_lambda import make_app

powertools = pytest.importorskip("aws_lambda_powertools.event_handler")

DIRECT = HandlerConfig(behavior=HandlerBehavior.DIRECT, data_source_name="powertools")


def _config(function: Any, *, subscribe: bool = True) -> EmulatorConfig:
    ns = NamespaceConfig(
        name="default",
        handler_configs=HandlerConfigs(
            on_publish=DIRECT, on_subscribe=DIRECT if subscribe else None
        ),
    )
    return fast_config(
        namespaces=(ns,),
        data_sources=(DataSourceConfig(name="powertools", function=function),),
    )


@pytest_asyncio.fixture
async def lambda_server() -> AsyncIterator[EmulatorServer]:
    async with EmulatorServer(_config(make_app(powertools))) as emulator:
        yield emulator
        emulator.check()


@pytest_asyncio.fixture
async def client(lambda_server: EmulatorServer) -> AsyncIterator[RawClient]:
    raw = await open_raw(lambda_server)
    await raw.init()
    try:
        yield raw
    finally:
        await raw.ws.close()


async def _http(server: EmulatorServer, channel: str, events: list[Any]) -> tuple[int, Any]:
    body = {"channel": channel, "events": [json.dumps(e) for e in events]}
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            server.http_endpoint, data=json.dumps(body), headers={"x-api-key": server.api_key or ""}
        ) as response,
    ):
        return response.status, await response.json()


async def _ws(client: RawClient, channel: str, events: list[Any], pub_id: str) -> dict[str, Any]:
    await client.publish(channel, [json.dumps(e) for e in events], pub_id=pub_id)
    return await client.recv()


async def _data(client: RawClient) -> Any:
    return json.loads((await client.expect("data"))["event"])


@pytest.mark.asyncio
async def test_powertools_publish_over_websocket_and_http(
    lambda_server: EmulatorServer, client: RawClient
) -> None:
    """Each event is transformed; one that raises fails alone (``failed[]``)."""
    assert (await client.subscribe("/default/foo", "s1"))["type"] == "subscribe_success"
    frame = await _ws(client, "/default/foo", [{"a": 1}, {"fail": True}], "p1")
    assert frame["type"] == "publish_success"
    assert [s["index"] for s in frame["successful"]] == [0]
    assert frame["failed"][0]["index"] == 1
    assert "invalid payload" in frame["failed"][0]["message"]
    assert await _data(client) == {"processed": True, "original_payload": {"a": 1}}
    status, body = await _http(lambda_server, "/default/foo", [{"b": 2}])
    assert status == 200
    assert [s["index"] for s in body["successful"]] == [0]
    assert await _data(client) == {"processed": True, "original_payload": {"b": 2}}


@pytest.mark.asyncio
async def test_powertools_aggregate_mode() -> None:
    """aggregate=True sees the whole batch and may drop events; a raise fails the request.

    (Only onPublish is the Lambda here: the app's onSubscribe denies /default/batch.)"""
    async with EmulatorServer(_config(make_app(powertools), subscribe=False)) as server:
        client = await open_raw(server)
        await client.init()
        await _aggregate(server, client)
        await client.ws.close()
        server.check()


async def _aggregate(lambda_server: EmulatorServer, client: RawClient) -> None:
    assert (await client.subscribe("/default/batch", "s1"))["type"] == "subscribe_success"
    frame = await _ws(client, "/default/batch", [{"n": 1}, {"drop": True}, {"n": 3}], "p1")
    assert frame["type"] == "publish_success"
    assert [await _data(client), await _data(client)] == [
        {"count": 3, "n": 1},
        {"count": 3, "n": 3},
    ]
    frame = await _ws(client, "/default/all-fail", [{"n": 1}], "p2")
    assert frame["type"] == "publish_error"
    status, _ = await _http(lambda_server, "/default/all-fail", [{"n": 1}])
    assert status == 403


@pytest.mark.asyncio
async def test_powertools_subscribe_accepts_rejects_and_denies(client: RawClient) -> None:
    assert (await client.subscribe("/default/foo", "s1"))["type"] == "subscribe_success"
    frame = await client.subscribe("/default/broken", "s2")
    assert frame["type"] == "subscribe_error"
    assert "cannot subscribe here" in frame["errors"][0]["message"]
    frame = await client.subscribe("/default/other", "s3")
    assert frame["type"] == "subscribe_error"
    assert frame["errors"][0]["errorType"] == "Unauthorized"


@pytest.mark.asyncio
async def test_powertools_unauthorized_publish_is_401(lambda_server: EmulatorServer) -> None:
    app = make_app(powertools)

    def deny_publish(event: dict[str, Any], context: Any) -> Any:
        from aws_lambda_powertools.event_handler.events_appsync.exceptions import (
            UnauthorizedException,
        )

        if event["info"]["operation"] == "PUBLISH":
            raise UnauthorizedException("no")
        return app(event, context)

    async with EmulatorServer(_config(deny_publish)) as server:
        status, body = await _http(server, "/default/foo", [{"a": 1}])
        assert status == 401
        assert body["errors"][0]["errorType"] == "UnauthorizedException"
        server.check()


# --- EVENT: fire and forget -------------------------------------------------------------------


@pytest.mark.asyncio
async def test_event_invocations_do_not_delay_the_broadcast() -> None:
    """The Lambda is still running (blocked) when the subscriber gets the event."""
    release = threading.Event()
    seen: list[dict[str, Any]] = []

    def audit(event: dict[str, Any], context: Any) -> None:
        seen.append(event)
        release.wait(10)

    ns = NamespaceConfig(
        name="audit",
        handler_configs=HandlerConfigs(
            on_publish=HandlerConfig(
                behavior=HandlerBehavior.DIRECT,
                data_source_name="audit",
                invoke_type=InvokeType.EVENT,
            )
        ),
    )
    config = fast_config(
        namespaces=(ns,), data_sources=(DataSourceConfig(name="audit", function=audit),)
    )
    async with EmulatorServer(config) as server:
        client = await open_raw(server)
        await client.init()
        await client.subscribe("/audit/x", "s1")
        frame = await _ws(client, "/audit/x", [{"a": 1}], "p1")
        assert frame["type"] == "publish_success"
        assert await _data(client) == {"a": 1}
        assert not release.is_set()
        release.set()
        await client.ws.close()
    assert seen[0]["events"][0]["payload"] == {"a": 1}


# --- from a configuration file --------------------------------------------------------------


@pytest.fixture
def lambda_module(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "pt_app_for_emulator.py").write_text(
        textwrap.dedent(
            """
            from aws_lambda_powertools.event_handler import AppSyncEventsResolver

            app = AppSyncEventsResolver()

            @app.on_publish("/*")
            def shout(payload):
                return {"text": payload["text"].upper()}

            def lambda_handler(event, context):
                return app.resolve(event, context)
            """
        )
    )
    (tmp_path / "emu.toml").write_text(
        textwrap.dedent(
            """
            [[dataSources]]
            name = "shouter"
            type = "AWS_LAMBDA"
            lambdaConfig = { lambdaFunctionArn = "pt_app_for_emulator:lambda_handler" }

            [[namespaces]]
            name = "loud"
            handlerConfigs = { onPublish = { behavior = "DIRECT", integration = { dataSourceName = "shouter", lambdaConfig = { invokeType = "REQUEST_RESPONSE" } } } }
            """  # noqa: E501
        )
    )
    sys.path.insert(0, str(tmp_path))
    try:
        yield tmp_path / "emu.toml"
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("pt_app_for_emulator", None)


@pytest.mark.asyncio
async def test_a_config_file_names_the_lambda(lambda_module: Path) -> None:
    config = EmulatorConfig.from_file(lambda_module)
    async with EmulatorServer(config) as server:
        client = await open_raw(server)
        await client.init()
        await client.subscribe("/loud/x", "s1")
        await _ws(client, "/loud/x", [{"text": "hi"}], "p1")
        assert await asyncio.wait_for(_data(client), 5) == {"text": "HI"}
        await client.ws.close()
        server.check()
