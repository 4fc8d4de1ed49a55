"""APPSYNC_JS handlers run by the emulator, over WebSocket and HTTP publish.

The handlers are the examples of the AWS AppSync Events developer guide ("Process
real-time events with AWS AppSync event handlers", "Writing event handlers"), rewritten
here: filtering, transforming, enriching, per-event errors, rejecting subscriptions.  Each
is checked against the outcome the guide documents.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from appsync_emulator import EmulatorServer, EmulatorThread
from appsync_emulator.appsync_js import JsLimits
from appsync_emulator.config import (
    ConfigError,
    EmulatorConfig,
    HandlerBehavior,
    HandlerConfig,
    HandlerConfigs,
    NamespaceConfig,
)
from appsync_emulator.handler_runtime import HandlerLoadError
from appsync_emulator.handlers import HandlerFailure
from tests.emulator.conftest import RawClient, api_auth, fast_config, open_raw

pytest.importorskip("py_mini_racer")
pytest.importorskip("tree_sitter_javascript")

FILTERING = """
// Only events whose payload says it is public reach subscribers.
export function onPublish(ctx) {
  return ctx.events.filter((event) => event.payload.public === true)
}
"""

TRANSFORMING = """
export function onPublish(ctx) {
  return ctx.events.map(({ id, payload }) => ({
    id,
    payload: { ...payload, text: payload.text.toUpperCase(), msg: "Hello!" },
  }))
}
"""

ENRICHING = """
import { util } from '@aws-appsync/utils'

export function onPublish(ctx) {
  return ctx.events.map((event) => ({
    id: event.id,
    payload: {
      ...event.payload,
      channel: ctx.info.channel.path,
      segments: ctx.info.channel.segments,
      namespace: ctx.info.channelNamespace.name,
      operation: ctx.info.operation,
      receivedAt: util.time.nowEpochMilliSeconds(),
    },
  }))
}
"""

PER_EVENT_ERRORS = """
export function onPublish(ctx) {
  return ctx.events.map((event) => {
    if (typeof event.payload.amount !== 'number') {
      return { id: event.id, error: 'amount must be a number' }
    }
    return event
  })
}
"""

REJECTING = """
import { util } from '@aws-appsync/utils'

export function onSubscribe(ctx) {
  if (ctx.info.channel.path.includes('/private')) {
    util.unauthorized()
  }
  if (ctx.info.channel.segments.length > 3) {
    util.error('Channel depth exceeded', 'TooDeep')
  }
}

export function onPublish(ctx) {
  if (ctx.info.channel.path.includes('/readonly')) {
    util.error('This channel is read-only')
  }
  if (ctx.info.channel.path.includes('/private')) {
    util.unauthorized()
  }
  return ctx.events
}
"""

CRASHING = """
export function onPublish(ctx) {
  const kind = ctx.events[0].payload.kind
  if (kind === 'throw') { return ctx.events[0].payload.nothing.here }
  if (kind === 'loop') {
    // an endless iterator: while, for(;;) and generators are refused at load time
    const endless = { [Symbol.iterator]: () => ({ next: () => ({ done: false, value: 1 }) }) }
    for (const x of endless) { kind.length }
  }
  if (kind === 'memory') {
    const hog = []
    const endless = { [Symbol.iterator]: () => ({ next: () => ({ done: false, value: 1 }) }) }
    for (const x of endless) { hog.push(new Array(10000).fill(x)) }
  }
  if (kind === 'string') { return 'not a list' }
  if (kind === 'unknown') { return [{ id: 'nope', payload: 1 }] }
  if (kind === 'nopayload') { return [{ id: ctx.events[0].id }] }
  return ctx.events
}
export function onSubscribe(ctx) {
  if (ctx.info.channel.path.includes('/boom')) { return ctx.nothing.here }
}
"""


def _ns(name: str, code: str) -> NamespaceConfig:
    return NamespaceConfig(name=name, code_handlers=code)


def js_config(**changes: Any) -> EmulatorConfig:
    namespaces = (
        NamespaceConfig(name="default"),
        _ns("filter", FILTERING),
        _ns("transform", TRANSFORMING),
        _ns("enrich", ENRICHING),
        _ns("orders", PER_EVENT_ERRORS),
        _ns("rooms", REJECTING),
    )
    return fast_config(namespaces=namespaces, **changes)


@pytest_asyncio.fixture
async def js_server() -> AsyncIterator[EmulatorServer]:
    async with EmulatorServer(js_config()) as emulator:
        yield emulator
        emulator.check()


@pytest_asyncio.fixture
async def js_client(js_server: EmulatorServer) -> AsyncIterator[RawClient]:
    raw = await open_raw(js_server)
    await raw.init()
    try:
        yield raw
    finally:
        await raw.ws.close()


async def _http_publish(
    server: EmulatorServer, channel: str, events: list[Any]
) -> tuple[int, dict[str, Any]]:
    body = {"channel": channel, "events": [json.dumps(e) for e in events]}
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            server.http_endpoint,
            data=json.dumps(body),
            headers={"x-api-key": server.api_key or "", "content-type": "application/json"},
        ) as response,
    ):
        return response.status, await response.json()


async def _ws_publish(
    client: RawClient, channel: str, events: list[Any], pub_id: str = "p1"
) -> dict[str, Any]:
    await client.publish(channel, [json.dumps(e) for e in events], pub_id=pub_id)
    return await client.recv()


async def _publish(
    transport: str, server: EmulatorServer, client: RawClient, channel: str, events: list[Any]
) -> tuple[int, dict[str, Any]]:
    """Publish over ``transport``; the answer as (HTTP status or 200, the publish result)."""
    if transport == "http":
        return await _http_publish(server, channel, events)
    frame = await _ws_publish(client, channel, events)
    if frame["type"] == "publish_error":
        return 400, frame
    assert frame["type"] == "publish_success", frame
    return 200, frame


async def _data(client: RawClient, count: int) -> list[Any]:
    out = []
    for _ in range(count):
        frame = await client.expect("data")
        out.append(json.loads(frame["event"]))
    return out


TRANSPORTS = pytest.mark.parametrize("transport", ["websocket", "http"])


@TRANSPORTS
@pytest.mark.asyncio
async def test_filtering_broadcasts_only_the_kept_events(
    transport: str, js_server: EmulatorServer, js_client: RawClient
) -> None:
    """Events the handler leaves out are not broadcast (they stay successful)."""
    sub = await open_raw(js_server)
    await sub.init()
    await sub.subscribe("/filter/news", "s1")
    status, result = await _publish(
        transport,
        js_server,
        js_client,
        "/filter/news",
        [{"n": 1, "public": True}, {"n": 2}, {"n": 3, "public": True}],
    )
    assert status == 200
    assert [s["index"] for s in result["successful"]] == [0, 1, 2]
    assert result["failed"] == []
    assert await _data(sub, 2) == [{"n": 1, "public": True}, {"n": 3, "public": True}]
    record = js_server.recorder.published[-1]
    assert len(record.broadcast) == 2
    await sub.ws.close()


@TRANSPORTS
@pytest.mark.asyncio
async def test_transforming_changes_the_payload(
    transport: str, js_server: EmulatorServer, js_client: RawClient
) -> None:
    sub = await open_raw(js_server)
    await sub.init()
    await sub.subscribe("/transform/*", "s1")
    await _publish(transport, js_server, js_client, "/transform/a", [{"text": "hi"}])
    assert await _data(sub, 1) == [{"text": "HI", "msg": "Hello!"}]
    await sub.ws.close()


@TRANSPORTS
@pytest.mark.asyncio
async def test_enriching_adds_the_context(
    transport: str, js_server: EmulatorServer, js_client: RawClient
) -> None:
    sub = await open_raw(js_server)
    await sub.init()
    await sub.subscribe("/enrich/a/b", "s1")
    await _publish(transport, js_server, js_client, "/enrich/a/b", [{"text": "hi"}])
    (event,) = await _data(sub, 1)
    assert event["channel"] == "/enrich/a/b"
    assert event["segments"] == ["enrich", "a", "b"]
    assert event["namespace"] == "enrich"
    assert event["operation"] == "PUBLISH"
    assert isinstance(event["receivedAt"], int)
    await sub.ws.close()


@TRANSPORTS
@pytest.mark.asyncio
async def test_per_event_errors_go_to_failed(
    transport: str, js_server: EmulatorServer, js_client: RawClient
) -> None:
    """An entry with ``error`` is not broadcast and is listed in ``failed``."""
    sub = await open_raw(js_server)
    await sub.init()
    await sub.subscribe("/orders/1", "s1")
    status, result = await _publish(
        transport, js_server, js_client, "/orders/1", [{"amount": 5}, {"amount": "five"}]
    )
    assert status == 200
    assert [s["index"] for s in result["successful"]] == [0]
    (failed,) = result["failed"]
    assert failed["index"] == 1
    assert failed["code"] == "EventProcessingError"
    assert failed["message"] == "amount must be a number"
    assert await _data(sub, 1) == [{"amount": 5}]
    await sub.ws.close()


@pytest.mark.asyncio
async def test_rejecting_subscriptions(js_client: RawClient) -> None:
    """util.unauthorized() is errorType Unauthorized; util.error() carries its errorType."""
    frame = await js_client.subscribe("/rooms/private/1", "s1")
    assert frame["type"] == "subscribe_error"
    assert frame["errors"][0]["errorType"] == "Unauthorized"
    frame = await js_client.subscribe("/rooms/a/b/c", "s2")
    assert frame["type"] == "subscribe_error"
    assert frame["errors"][0] == {"errorType": "TooDeep", "message": "Channel depth exceeded"}
    frame = await js_client.subscribe("/rooms/lobby", "s3")
    assert frame["type"] == "subscribe_success"


@pytest.mark.asyncio
async def test_publish_rejections_over_websocket(js_client: RawClient) -> None:
    frame = await _ws_publish(js_client, "/rooms/readonly", [{"a": 1}])
    assert frame["type"] == "publish_error"
    assert frame["errors"][0]["message"] == "This channel is read-only"
    frame = await _ws_publish(js_client, "/rooms/private", [{"a": 1}], pub_id="p2")
    assert frame["type"] == "publish_error"
    assert frame["errors"][0]["errorType"] == "UnauthorizedException"


@pytest.mark.asyncio
async def test_publish_rejections_over_http(js_server: EmulatorServer) -> None:
    """util.error() is HTTP 403 with the message; util.unauthorized() is 401."""
    status, body = await _http_publish(js_server, "/rooms/readonly", [{"a": 1}])
    assert status == 403
    assert body["errors"][0]["message"] == "This channel is read-only"
    status, body = await _http_publish(js_server, "/rooms/private", [{"a": 1}])
    assert status == 401
    assert body["errors"][0]["errorType"] == "UnauthorizedException"


# --- crashes: bounded, reported, never stalling the server ---------------------------------


@pytest_asyncio.fixture
async def crash_server() -> AsyncIterator[EmulatorServer]:
    limits = JsLimits(invoke_timeout=0.5, memory_limit=16 << 20, queue_timeout=1.0)
    config = fast_config(
        namespaces=(NamespaceConfig(name="default"), _ns("crash", CRASHING)), js_limits=limits
    )
    async with EmulatorServer(config) as emulator:
        yield emulator
        emulator.check()


@pytest.mark.parametrize(
    ("kind", "crash"),
    [
        ("throw", "exception"),
        ("loop", "timeout"),
        ("string", "malformed"),
        ("unknown", "malformed"),
        ("nopayload", "malformed"),
    ],
)
@pytest.mark.asyncio
async def test_a_crashing_handler_gets_the_error_frame(
    kind: str, crash: str, crash_server: EmulatorServer
) -> None:
    """Throw, infinite loop, malformed return: the generic error, in bounded time,
    reported to ``check()``; the connection and the server keep working."""
    await _crashes(crash_server, kind, crash)


@pytest.mark.asyncio
async def test_a_huge_allocation_gets_the_error_frame() -> None:
    """Out of memory is a crash too; the engine is rebuilt for the next call.  (The time
    limit is long here so that a loaded machine still reaches the memory limit first.)"""
    limits = JsLimits(invoke_timeout=10.0, memory_limit=16 << 20, engines=1)
    config = fast_config(namespaces=(_ns("crash", CRASHING),), js_limits=limits)
    async with EmulatorServer(config) as server:
        await _crashes(server, "memory", "memory")


async def _crashes(server: EmulatorServer, kind: str, crash: str) -> None:
    client = await open_raw(server)
    await client.init()
    frame = await _ws_publish(client, "/crash/x", [{"kind": kind}])
    assert frame["type"] == "publish_error"
    assert frame["errors"][0]["errorType"] == "PublishProcessingError"
    with pytest.raises(HandlerFailure, match=f"\\({crash}\\)"):
        server.check()
    status, body = await _http_publish(server, "/crash/x", [{"kind": kind}])
    assert status == 500
    assert body["errors"][0]["errorType"] == "PublishProcessingError"
    with pytest.raises(HandlerFailure, match=f"\\({crash}\\)"):
        server.check()
    frame = await _ws_publish(client, "/crash/x", [{"kind": "fine"}], pub_id="p2")
    assert frame["type"] == "publish_success"
    await client.ws.close()


@pytest.mark.asyncio
async def test_a_crashing_on_subscribe_is_subscription_processing_error(
    crash_server: EmulatorServer,
) -> None:
    client = await open_raw(crash_server)
    await client.init()
    frame = await client.subscribe("/crash/boom", "s1")
    assert frame["type"] == "subscribe_error"
    assert frame["errors"][0]["errorType"] == "SubscriptionProcessingError"
    with pytest.raises(HandlerFailure, match="onSubscribe"):
        crash_server.check()
    await client.ws.close()


# --- start-up, files, reload ------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_syntax_error_fails_the_start_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "chat.js"
    path.write_text("export function onPublish(ctx) {\n  return ctx.events.map(\n}\n")
    config = fast_config(namespaces=(NamespaceConfig(name="chat", code_handlers_file=path),))
    server = EmulatorServer(config)
    with pytest.raises(HandlerLoadError) as info:
        await server.start()
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"namespace 'chat': {path}:")
    assert isinstance(info.value, ConfigError)
    await server.stop()


def test_a_forbidden_feature_fails_an_emulator_thread() -> None:
    code = "export function onPublish(ctx) {\n  try { return ctx.events } catch (e) {}\n}\n"
    config = fast_config(namespaces=(_ns("chat", code),))
    with pytest.raises(HandlerLoadError, match=r"chat\.codeHandlers\.js:2:3: .*\[no-try\]"):
        EmulatorThread(config).start()


@pytest.mark.asyncio
async def test_a_handler_file_is_reloaded_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "chat.js"
    path.write_text("export const onPublish = (ctx) => ctx.events\n")
    config = fast_config(namespaces=(NamespaceConfig(name="chat", code_handlers_file=path),))
    async with EmulatorServer(config) as server:
        client = await open_raw(server)
        await client.init()
        await client.subscribe("/chat/a", "s1")
        await _ws_publish(client, "/chat/a", [{"v": 1}])
        assert await _data(client, 1) == [{"v": 1}]
        path.write_text(
            "export const onPublish = (ctx) =>\n"
            "  ctx.events.map((e) => ({ id: e.id, payload: { v: e.payload.v, new: true } }))\n"
        )
        # a different size is enough for the change to be seen whatever the mtime resolution
        await _ws_publish(client, "/chat/a", [{"v": 2}], pub_id="p2")
        assert await _data(client, 1) == [{"v": 2, "new": True}]
        await client.ws.close()
        server.check()


@pytest.mark.asyncio
async def test_handler_configs_code_for_one_operation_only() -> None:
    """``handlerConfigs.onPublish = CODE``; onSubscribe still runs the exported code."""
    ns = NamespaceConfig(
        name="rooms",
        code_handlers=REJECTING,
        handler_configs=HandlerConfigs(on_publish=HandlerConfig(behavior=HandlerBehavior.CODE)),
    )
    async with EmulatorServer(fast_config(namespaces=(ns,))) as server:
        client = await open_raw(server, auth=api_auth(server))
        await client.init()
        frame = await client.subscribe("/rooms/private", "s1")
        assert frame["errors"][0]["errorType"] == "Unauthorized"
        await client.ws.close()
        server.check()


def test_python_handler_and_code_for_the_same_operation_are_refused() -> None:
    with pytest.raises(ConfigError, match="keep one"):
        NamespaceConfig(name="x", on_publish=lambda ctx: None, code_handlers=FILTERING)


# --- the command line: one line, status 2 -----------------------------------------------------


def _config_file(tmp_path: Path, code: str) -> Path:
    (tmp_path / "handlers").mkdir()
    (tmp_path / "handlers" / "chat.js").write_text(code)
    path = tmp_path / "emu.toml"
    path.write_text('[[namespaces]]\nname = "chat"\ncodeHandlersFile = "handlers/chat.js"\n')
    return path


def test_check_config_reports_a_syntax_error_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from appsync_emulator.cli import main

    path = _config_file(tmp_path, "export function onPublish(ctx) {\n  return [\n}\n")
    assert main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    expected = f"emu.toml: namespaces[0].codeHandlersFile: {tmp_path / 'handlers' / 'chat.js'}:"
    assert err.startswith(expected), err


def test_serve_reports_an_engine_load_error_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An error only V8 finds (a redeclared name) fails the start: status 2, one line."""
    from appsync_emulator.cli import main

    code = "let x = 1\nlet x = 2\nexport const onPublish = (ctx) => ctx.events\n"
    path = _config_file(tmp_path, code)
    assert main(["--config", str(path), "--port", "0", "--no-console"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("appsync-emulator: invalid configuration: namespace 'chat': "), err
    assert "chat.js:2:" in err
    assert "SyntaxError" in err


@pytest.mark.asyncio
async def test_a_failed_start_closes_what_it_had_loaded() -> None:
    """The first namespace loads, the second does not: the engines are closed again."""
    from appsync_emulator.handler_runtime import HandlerRuntime

    config = fast_config(namespaces=(_ns("good", FILTERING), _ns("bad", "export const = 1\n")))
    runtime = HandlerRuntime(config)
    with pytest.raises(HandlerLoadError, match=r"namespace 'bad': bad\.codeHandlers\.js:1:"):
        await runtime.start()
    assert runtime.js is None
    assert runtime.runners("good").on_publish is None
    await runtime.aclose()  # idempotent


@pytest.mark.asyncio
async def test_console_output_reaches_the_log_with_namespace_and_channel(
    caplog: pytest.LogCaptureFixture,
) -> None:
    code = (
        "export function onPublish(ctx) {\n"
        "  console.log('got', ctx.events.length)\n"
        "  console.error('careful')\n"
        "  return ctx.events\n"
        "}\n"
    )
    caplog.set_level("INFO", logger="appsync_emulator.handlers.js")
    async with EmulatorServer(fast_config(namespaces=(_ns("logs", code),))) as server:
        status, _ = await _http_publish(server, "/logs/a/b", [{"x": 1}, {"x": 2}])
        assert status == 200
        server.check()
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if "[logs " in r.getMessage()]
    assert ("INFO", "[logs /logs/a/b onPublish] got 2") in lines
    assert ("ERROR", "[logs /logs/a/b onPublish] careful") in lines
