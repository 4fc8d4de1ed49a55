"""APPSYNC_JS handlers run in embedded V8: the AWS guide's examples, errors and limits.

The handler sources below are the examples of "Process real-time events with AWS AppSync
event handlers" and "Writing event handlers" (AWS AppSync Events developer guide), with
the outcomes those pages document.  No emulator server: the handlers are called directly.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("py_mini_racer", reason="APPSYNC_JS handlers need mini-racer")
pytest.importorskip("tree_sitter_javascript", reason="APPSYNC_JS handlers need tree-sitter")

from appsync_emulator.appsync_js import (
    MAX_CODE_CHARS,
    RESTRICTIONS,
    JsCodeError,
    JsHandlers,
    JsLimits,
    JsRuntime,
    ReloadingJsHandlers,
    check_source,
)
from appsync_emulator.handler_contract import (
    Accept,
    Broadcast,
    Crash,
    CrashKind,
    Deny,
    EventFailure,
    OutgoingEvent,
    Reject,
    build_context,
)
from appsync_events._types import JSONValue
from tests.conftest import MS

FROZEN = 1_700_000_000.123  # 2023-11-14T22:13:20.123Z


@pytest.fixture(scope="module")
def runtime() -> Iterator[JsRuntime]:
    """One engine pool for the module (engines start once)."""
    with JsRuntime(JsLimits(invoke_timeout=2000 * MS, engines=2)) as pool:
        yield pool


def load(runtime: JsRuntime, source: str, filename: str = "handler.js") -> JsHandlers:
    return JsHandlers.load(source, filename=filename, runtime=runtime, clock=lambda: FROZEN)


def publish_ctx(*payloads: JSONValue, channel: str = "/default/chat") -> dict[str, JSONValue]:
    return build_context(
        operation="PUBLISH",
        channel=channel,
        events=[(f"id-{i}", p) for i, p in enumerate(payloads)],
    )


def subscribe_ctx(
    channel: str = "/default/chat", identity: dict[str, JSONValue] | None = None
) -> dict[str, JSONValue]:
    return build_context(operation="SUBSCRIBE", channel=channel, identity=identity)


def payloads(outcome: object) -> list[JSONValue]:
    assert isinstance(outcome, Broadcast), outcome
    return [e.payload for e in outcome.events]


# --- the developer guide's examples ---------------------------------------------------------


@pytest.mark.asyncio
async def test_js_forward_all_example_broadcasts_every_event(runtime: JsRuntime) -> None:
    """`return ctx.events` forwards the events unchanged (the default behaviour)."""
    handlers = load(runtime, "export function onPublish(ctx) {\n  return ctx.events\n}\n")
    outcome = await handlers.on_publish(publish_ctx({"a": 1}, {"b": 2}))
    assert outcome == Broadcast(
        events=(
            OutgoingEvent(id="id-0", index=0, payload={"a": 1}),
            OutgoingEvent(id="id-1", index=1, payload={"b": 2}),
        )
    )


@pytest.mark.asyncio
async def test_js_empty_list_example_broadcasts_nothing(runtime: JsRuntime) -> None:
    """`export const onPublish = (ctx) => ([])` broadcasts nothing and fails nothing."""
    handlers = load(runtime, "export const onPublish = (ctx) => ([])\n")
    assert await handlers.on_publish(publish_ctx({"a": 1})) == Broadcast(events=())


@pytest.mark.asyncio
async def test_js_filter_example_keeps_odds_above_half(runtime: JsRuntime) -> None:
    """The filtering example forwards only the events with odds greater than 0.5."""
    source = (
        "export function onPublish(ctx) {\n"
        "  return ctx.events.filter((event) => event.payload.odds > 0.5)\n"
        "}\n"
    )
    outcome = await load(runtime, source).on_publish(
        publish_ctx({"odds": 0.2}, {"odds": 0.7}, {"odds": 0.9})
    )
    assert payloads(outcome) == [{"odds": 0.7}, {"odds": 0.9}]
    assert isinstance(outcome, Broadcast)
    assert [e.index for e in outcome.events] == [1, 2]


TRANSFORM = """\
import { util } from '@aws-appsync/utils'

export function onPublish(ctx) {
  return ctx.events.map(event => ({
    id: event.id,
    payload: {
      ...event.payload,
      message: event.payload.message.toUpperCase(),
      timestamp: util.time.nowISO8601()
    }
  }))
}
"""


@pytest.mark.asyncio
async def test_js_transform_example_upper_cases_and_stamps(runtime: JsRuntime) -> None:
    """The transforming example upper-cases the message and adds util.time.nowISO8601()."""
    outcome = await load(runtime, TRANSFORM).on_publish(publish_ctx({"message": "hi", "n": 1}))
    assert payloads(outcome) == [{"message": "HI", "n": 1, "timestamp": "2023-11-14T22:13:20.123Z"}]


@pytest.mark.asyncio
async def test_js_enrich_example_adds_a_property(runtime: JsRuntime) -> None:
    """Enriching each payload (the guide's `msg: "Hello!"` example, its typo fixed)."""
    source = (
        "export function onPublish(ctx) {\n"
        "  return ctx.events.map(({id, payload}) => {\n"
        '    return {id, payload: {...payload, msg: "Hello!"}}\n'
        "  })\n"
        "}\n"
    )
    outcome = await load(runtime, source).on_publish(publish_ctx({"a": 1}))
    assert payloads(outcome) == [{"a": 1, "msg": "Hello!"}]


@pytest.mark.asyncio
async def test_js_per_event_error_example_reports_failed(runtime: JsRuntime) -> None:
    """Events given an `error` property are not broadcast; they are reported as failed."""
    source = (
        "export function onPublish(ctx) {\n"
        "  return ctx.events.map(event => {\n"
        "    if (!event.payload.message) {\n"
        '      event.error = "Message required"\n'
        "    }\n"
        "    return event\n"
        "  })\n"
        "}\n"
    )
    outcome = await load(runtime, source).on_publish(publish_ctx({"message": "x"}, {"n": 1}))
    assert outcome == Broadcast(
        events=(OutgoingEvent(id="id-0", index=0, payload={"message": "x"}),),
        failed=(EventFailure(id="id-1", index=1, message="Message required"),),
    )


@pytest.mark.asyncio
async def test_js_reject_example_rejects_the_whole_publish(runtime: JsRuntime) -> None:
    """`util.error("Operation not allowed")` rejects the request with that message."""
    source = 'export function onPublish(ctx) {\n  util.error("Operation not allowed")\n}\n'
    outcome = await load(runtime, source).on_publish(publish_ctx({"a": 1}))
    assert outcome == Reject(message="Operation not allowed")


INBOX = """\
export function onSubscribe(ctx) {
  const requested = ctx.info.channel.path
  const allowed = `/messages/inbox/${ctx.identity.username}`

  if (requested !== allowed) {
    util.unauthorized()
  }
}
"""


@pytest.mark.asyncio
async def test_js_inbox_example_accepts_own_channel(runtime: JsRuntime) -> None:
    """The inbox example lets a Cognito user subscribe to their own inbox."""
    ctx = subscribe_ctx("/messages/inbox/alice", {"username": "alice", "sub": "s"})
    assert await load(runtime, INBOX).on_subscribe(ctx) == Accept()


@pytest.mark.asyncio
async def test_js_inbox_example_denies_other_channels(runtime: JsRuntime) -> None:
    """The inbox example calls util.unauthorized() for someone else's inbox."""
    ctx = subscribe_ctx("/messages/inbox/bob", {"username": "alice", "sub": "s"})
    assert await load(runtime, INBOX).on_subscribe(ctx) == Deny()


@pytest.mark.asyncio
async def test_js_admin_logging_example_logs_with_namespace_and_channel(
    runtime: JsRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    """console.log lines reach the emulator log, tagged with namespace and channel."""
    source = (
        "export function onSubscribe(ctx) {\n"
        "  if (ctx.identity.groups.includes('admin')) {\n"
        "    console.log(`Admin ${ctx.identity.sub} subscribed to ${ctx.channel}`)\n"
        "  }\n"
        "}\n"
    )
    ctx = subscribe_ctx("/default/room", {"groups": ["admin"], "sub": "u-1"})
    with caplog.at_level(logging.INFO, logger="appsync_emulator.handlers.js"):
        assert await load(runtime, source).on_subscribe(ctx) == Accept()
    assert "[default /default/room onSubscribe] Admin u-1 subscribed to /default/room" in (
        caplog.text
    )


@pytest.mark.asyncio
async def test_js_data_source_handler_uses_request_result(runtime: JsRuntime) -> None:
    """A `{request, response}` handler gets request()'s value as ctx.result (NONE source)."""
    source = (
        "export const onPublish = {\n"
        "  request(ctx) { return { n: ctx.events.length } },\n"
        "  response(ctx) {\n"
        "    return ctx.events.map(e => ({ id: e.id, payload: ctx.result }))\n"
        "  },\n"
        "}\n"
    )
    outcome = await load(runtime, source).on_publish(publish_ctx(1, 2))
    assert payloads(outcome) == [{"n": 2}, {"n": 2}]


@pytest.mark.asyncio
async def test_js_early_return_skips_the_response_function(runtime: JsRuntime) -> None:
    """runtime.earlyReturn(value) in request() returns value and skips response()."""
    source = (
        "import { runtime } from '@aws-appsync/utils'\n"
        "export const onPublish = {\n"
        "  request(ctx) {\n"
        "    if (ctx.info.channel.segments.includes('private')) {\n"
        "      return runtime.earlyReturn(ctx.events)\n"
        "    }\n"
        "    return {}\n"
        "  },\n"
        "  response(ctx) { return [] },\n"
        "}\n"
    )
    handlers = load(runtime, source)
    assert payloads(await handlers.on_publish(publish_ctx(1, channel="/d/private"))) == [1]
    assert payloads(await handlers.on_publish(publish_ctx(1, channel="/d/public"))) == []


@pytest.mark.asyncio
async def test_js_context_has_documented_fields(runtime: JsRuntime) -> None:
    """ctx carries info, identity, request headers (no cookie) and the top-level aliases."""
    source = (
        "export function onPublish(ctx) {\n"
        "  return [{ id: ctx.events[0].id, payload: {\n"
        "    path: ctx.info.channel.path, segments: ctx.info.channel.segments,\n"
        "    ns: ctx.info.channelNamespace.name, op: ctx.info.operation,\n"
        "    channel: ctx.channel, alias: ctx.channelNamespace.name,\n"
        "    identity: ctx.identity, headers: ctx.request.headers,\n"
        "    domain: ctx.request.domainName, stash: ctx.stash,\n"
        "  }}]\n"
        "}\n"
    )
    ctx = build_context(
        operation="PUBLISH",
        channel="default/a/b",
        identity={"handlerContext": {"user": "u"}},
        headers={"Animal": ["duck", "goose"], "Cookie": "secret", "X-One": "1"},
        events=[("e1", None)],
    )
    assert payloads(await load(runtime, source).on_publish(ctx)) == [
        {
            "path": "/default/a/b",
            "segments": ["default", "a", "b"],
            "ns": "default",
            "op": "PUBLISH",
            "channel": "/default/a/b",
            "alias": "default",
            "identity": {"handlerContext": {"user": "u"}},
            "headers": {"animal": ["duck", "goose"], "x-one": "1"},
            "domain": None,
            "stash": {},
        }
    ]


@pytest.mark.asyncio
async def test_js_missing_handlers_use_the_defaults(runtime: JsRuntime) -> None:
    """A module without onPublish forwards everything; without onSubscribe it accepts."""
    handlers = load(runtime, "export const other = 1\n")
    assert payloads(await handlers.on_publish(publish_ctx(1, 2))) == [1, 2]
    assert await handlers.on_subscribe(subscribe_ctx()) == Accept()


# --- util and runtime -----------------------------------------------------------------------

UTIL = """\
import { util } from '@aws-appsync/utils'
export function onPublish(ctx) {
  const p = ctx.events[0].payload
  return [{ id: ctx.events[0].id, payload: {
    b64: util.base64Encode(p.text),
    back: util.base64Decode(util.base64Encode(p.text)),
    url: util.urlEncode(p.text),
    unurl: util.urlDecode(util.urlEncode(p.text)),
    secs: util.time.nowEpochSeconds(),
    ms: util.time.nowEpochMilliSeconds(),
    fmt: util.time.nowFormatted('yyyy-MM-dd HH:mm:ss'),
    paris: util.time.epochMilliSecondsToFormatted(0, 'yyyy-MM-dd HH:mm Z', 'Europe/Paris'),
    parsed: util.time.parseISO8601ToEpochMilliSeconds('2024-01-02T03:04:05.678Z'),
    parsedFmt: util.time.parseFormattedToEpochMilliSeconds(
      '2024-01-02 03:04', 'yyyy-MM-dd HH:mm', '+01:00'),
    iso: util.time.epochMilliSecondsToISO8601(1000),
    toSecs: util.time.epochMilliSecondsToSeconds(1999),
    id: util.autoId(),
    ulid: util.autoUlid(),
    ksuid: util.autoKsuid(),
  }}]
}
"""


@pytest.mark.asyncio
async def test_js_util_helpers_give_documented_values(runtime: JsRuntime) -> None:
    """util.base64*, util.urlEncode/Decode, util.time.* and the id helpers work."""
    outcome = await load(runtime, UTIL).on_publish(publish_ctx({"text": "héllo wörld & ~"}))
    [result] = payloads(outcome)
    assert isinstance(result, dict)
    ids = {k: result.pop(k) for k in ("id", "ulid", "ksuid")}
    assert result == {
        "b64": "aMOpbGxvIHfDtnJsZCAmIH4=",
        "back": "héllo wörld & ~",
        "url": "h%C3%A9llo+w%C3%B6rld+%26+%7E",
        "unurl": "héllo wörld & ~",
        "secs": 1700000000,
        "ms": 1700000000123,
        "fmt": "2023-11-14 22:13:20",
        "paris": "1970-01-01 01:00 +0100",
        "parsed": 1704164645678,
        "parsedFmt": 1704161040000,
        "iso": "1970-01-01T00:00:01.000Z",
        "toSecs": 1,
    }
    assert isinstance(ids["id"], str)
    assert len(ids["id"]) == 36
    assert ids["id"][14] == "4"
    assert isinstance(ids["ulid"], str)
    assert len(ids["ulid"]) == 26
    assert isinstance(ids["ksuid"], str)
    assert len(ids["ksuid"]) == 27


@pytest.mark.asyncio
async def test_js_util_error_carries_type_data_and_info(runtime: JsRuntime) -> None:
    """util.error(message, errorType, data, errorInfo) keeps every argument."""
    source = "export function onSubscribe(ctx) { util.error('no', 'Nope', {a: 1}, {b: 2}) }\n"
    outcome = await load(runtime, source).on_subscribe(subscribe_ctx())
    assert outcome == Reject(message="no", error_type="Nope", data={"a": 1}, error_info={"b": 2})


# --- error mapping -------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_js_runtime_error_is_an_exception_crash_with_stack(runtime: JsRuntime) -> None:
    """A TypeError in the handler is a Crash whose detail points into the user's file."""
    source = "export function onPublish(ctx) {\n  return ctx.nope.x\n}\n"
    outcome = await load(runtime, source, "bad.js").on_publish(publish_ctx(1))
    assert isinstance(outcome, Crash)
    assert outcome.kind is CrashKind.EXCEPTION
    assert "TypeError" in outcome.detail
    assert "bad.js:2:" in outcome.detail


@pytest.mark.parametrize(
    ("returned", "reason"),
    [
        ("42", "not number"),
        ("({id: 'id-0'})", "not object"),
        ("[{id: 'unknown', payload: 1}]", "unknown event id 'unknown'"),
        ("[ctx.events[0], ctx.events[0]]", "twice"),
        ("[{id: 'id-0'}]", "without a payload"),
        ("['x']", "returned string at position 0"),
        ("[{id: 'id-0', payload: 1n}]", "not JSON"),
    ],
)
@pytest.mark.asyncio
async def test_js_malformed_return_is_a_malformed_crash(
    runtime: JsRuntime, returned: str, reason: str
) -> None:
    """A return value that breaks the onPublish rules is a MALFORMED crash."""
    outcome = await load(runtime, f"export const onPublish = (ctx) => {returned}\n").on_publish(
        publish_ctx(1)
    )
    assert isinstance(outcome, Crash)
    assert outcome.kind is CrashKind.MALFORMED
    assert reason in outcome.detail


@pytest.mark.asyncio
async def test_js_null_entries_are_ignored(runtime: JsRuntime) -> None:
    """`null` entries of the returned array are skipped."""
    handlers = load(runtime, "export const onPublish = (ctx) => [null, ctx.events[1]]\n")
    result = await handlers.on_publish(publish_ctx(1, 2))
    assert payloads(result) == [2]


SPIN = """\
const forever = { [Symbol.iterator]: () => ({ next: () => ({ done: false, value: 1 }) }) }
export function onPublish(ctx) {
  for (const x of forever) { ctx.stash.x = x }
}
"""
"""An endless loop without while/for(;;) (which the checks refuse) and without growth."""


@pytest.mark.asyncio
async def test_js_infinite_loop_times_out_and_engine_recovers() -> None:
    """An endless handler is a TIMEOUT crash within the limit; the next call works."""
    limits = JsLimits(invoke_timeout=300 * MS, engines=1)
    source = SPIN + "export const onSubscribe = (ctx) => null\n"
    with JsHandlers.load(source, filename="loop.js", limits=limits) as handlers:
        started = time.monotonic()
        outcome = await handlers.on_publish(publish_ctx(1))
        elapsed = time.monotonic() - started
        assert isinstance(outcome, Crash)
        assert outcome.kind is CrashKind.TIMEOUT
        assert elapsed < limits.invoke_timeout + limits.queue_timeout + 2000 * MS  # hang guard
        assert await handlers.on_subscribe(subscribe_ctx()) == Accept()


@pytest.mark.asyncio
async def test_js_huge_allocation_is_a_memory_crash_and_engine_is_rebuilt() -> None:
    """A handler that exhausts the heap is a MEMORY crash; a fresh engine serves next."""
    limits = JsLimits(invoke_timeout=5000 * MS, memory_limit=32 << 20, engines=1)
    source = (
        "export function onPublish(ctx) {\n"
        "  const hog = []\n"
        "  for (const e of ctx.events) { for (const x of ctx.events) {\n"
        "    ctx.events.push(e); hog.push(new Array(10000).fill(1)) } }\n"
        "}\n"
        "export const onSubscribe = (ctx) => null\n"
    )
    with JsHandlers.load(source, filename="hog.js", limits=limits) as handlers:
        outcome = await handlers.on_publish(publish_ctx(1))
        assert isinstance(outcome, Crash)
        assert outcome.kind is CrashKind.MEMORY
        assert await handlers.on_subscribe(subscribe_ctx()) == Accept()


@pytest.mark.asyncio
async def test_js_runaway_handler_does_not_block_the_event_loop() -> None:
    """While a handler loops, the event loop keeps running other tasks."""
    limits = JsLimits(invoke_timeout=300 * MS, engines=1)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    with JsHandlers.load(SPIN, filename="spin.js", limits=limits) as handlers:
        async with asyncio.TaskGroup() as group:
            task = group.create_task(ticker())
            outcome = await handlers.on_publish(publish_ctx(1))
            task.cancel()
    assert isinstance(outcome, Crash)
    assert ticks > 10


@pytest.mark.asyncio
async def test_js_engines_serve_concurrent_calls(runtime: JsRuntime) -> None:
    """Many concurrent invocations all complete with the right answers."""
    handlers = load(runtime, "export const onPublish = (ctx) => ctx.events\n")
    outcomes = await asyncio.gather(*(handlers.on_publish(publish_ctx(i)) for i in range(20)))
    assert [payloads(o) for o in outcomes] == [[i] for i in range(20)]


def test_js_closed_runtime_refuses_calls() -> None:
    """A closed handler set answers UNAVAILABLE instead of raising."""
    handlers = JsHandlers.load("export const onSubscribe = (ctx) => null\n", filename="c.js")
    handlers.close()
    handlers.close()  # idempotent
    outcome = asyncio.run(handlers.on_subscribe(subscribe_ctx()))
    assert isinstance(outcome, Crash)
    assert outcome.kind is CrashKind.UNAVAILABLE


# --- load-time checks ----------------------------------------------------------------------


def test_js_syntax_error_fails_at_load_with_file_and_line(runtime: JsRuntime) -> None:
    """A syntax error raises JsCodeError naming the file and the line."""
    with pytest.raises(JsCodeError) as info:
        load(runtime, "export function onPublish(ctx) {\n  return [\n}\n", "broken.js")
    assert info.value.filename == "broken.js"
    assert info.value.errors[0].error_type == "PARSER_ERROR"
    assert "broken.js:2:" in str(info.value)


def test_js_v8_only_syntax_error_fails_at_load(runtime: JsRuntime) -> None:
    """An error only V8 sees (a redeclared const) also fails at load, with its line."""
    source = "export function onPublish(ctx) {\n  const a = 1\n  const a = 2\n}\n"
    with pytest.raises(JsCodeError) as info:
        load(runtime, source, "dup.js")
    [error] = info.value.errors
    assert error.line == 3
    assert "already been declared" in error.value


def test_js_unknown_module_fails_at_load(runtime: JsRuntime) -> None:
    """Importing a module the emulator does not provide fails at load."""
    with pytest.raises(JsCodeError, match="Cannot find module '@aws-appsync/utils/dynamodb'"):
        load(runtime, "import * as ddb from '@aws-appsync/utils/dynamodb'\n")


def test_js_code_size_limit_is_enforced() -> None:
    """Code longer than 32,768 characters is refused with AWS's validation message."""
    source = "export const onPublish = (ctx) => ctx.events\n"
    with pytest.raises(JsCodeError, match="length less than or equal to 32768"):
        JsHandlers.load(source + " " * MAX_CODE_CHARS, filename="big.js")


FORBIDDEN = [
    ("try { f() } catch (e) {}", "no-try"),
    ("throw new Error('x')", "no-throw"),
    ("for (const a of b) { continue }", "no-continue"),
    ("while (x) {}", "no-while"),
    ("do {} while (x)", "no-while"),
    ("for (let i = 0; i < 3; i = i + 1) {}", "no-for"),
    ("outer: for (const a of b) {}", "no-labels"),
    ("x++", "no-disallowed-unary-operators"),
    ("--x", "no-disallowed-unary-operators"),
    ("const y = ~x", "no-disallowed-unary-operators"),
    ("const y = 'a' in x", "no-in-operator"),
    ("const y = x instanceof Object", "no-disallowed-binary-operators"),
    ("async function f() {}", "no-async"),
    ("const f = async () => 1", "no-async"),
    ("function g() { return await x }", "no-await"),
    ("const p = new Promise(r => r(1))", "no-promise"),
    ("const p = Promise.resolve(1)", "no-promise"),
    ("class K {}", "no-classes"),
    ("const K = class {}", "no-classes"),
    ("function* g() {}", "no-generators"),
    ("function* g() { yield 1 }", "no-yield"),
    ("const o = { *g() {} }", "no-generators"),
    ("const f = function () { return this }", "no-this"),
    ("const r = /a+/", "no-regex"),
    ("const f = new Function('return 1')", "no-function-constructor"),
    ("function f(n) { return f(n) }", "no-recursion"),
    ("const f = (n) => f(n)", "no-recursion"),
    ("export * from 'x'", "no-re-exports"),
]


@pytest.mark.parametrize(("code", "rule"), FORBIDDEN, ids=[c for c, _ in FORBIDDEN])
def test_js_forbidden_feature_is_reported_with_rule_and_line(code: str, rule: str) -> None:
    """Each documented restriction is reported on its line, with its rule id."""
    errors = check_source(f"export const ok = 1\n{code}\n")
    assert [(e.rule, e.line) for e in errors if e.rule == rule][:1] == [(rule, 2)]


def test_js_restrictions_table_lists_every_checked_rule() -> None:
    """Every rule the checker emits is in RESTRICTIONS, with a documenting page."""
    table = {r.rule for r in RESTRICTIONS}
    assert {rule for _, rule in FORBIDDEN} | {"code-size", "syntax"} == table
    assert all(r.source and r.message for r in RESTRICTIONS)


def test_js_allowed_features_pass_the_checks() -> None:
    """Supported syntax (for-of, for-in, ?., ??, spread, templates, switch) is accepted."""
    source = (
        "export function onPublish(ctx) {\n"
        "  const out = []\n"
        "  for (const e of ctx.events) { out.push({...e}) }\n"
        "  for (const k in ctx.stash) { out.pop() }\n"
        "  switch (ctx.info?.operation ?? 'x') { case 'PUBLISH': break; default: break }\n"
        "  const s = `${out.length} ${typeof out} ${void 0}`\n"
        "  const o = Object.hasOwn(ctx, 'events') ? s : ''\n"
        "  return out\n"
        "}\n"
    )
    assert check_source(source) == ()


def test_js_load_file_names_the_path_in_errors(tmp_path: Path) -> None:
    """load_file reads the file and reports errors against its path."""
    path = tmp_path / "ns.js"
    path.write_text("export function onPublish(ctx) { while (true) {} }\n", encoding="utf-8")
    with pytest.raises(JsCodeError) as info:
        JsHandlers.load_file(path)
    assert f"{path}:1:" in str(info.value)


def test_js_limits_are_validated() -> None:
    """Nonsensical limits are refused."""
    with pytest.raises(ValueError, match="engines"):
        JsLimits(engines=0)
    with pytest.raises(ValueError, match="invoke_timeout"):
        JsLimits(invoke_timeout=0)
    with pytest.raises(ValueError, match="memory_limit"):
        JsLimits(memory_limit=10)


def test_js_missing_engine_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without mini-racer, loading raises ImportError telling what to install."""
    monkeypatch.setitem(sys.modules, "py_mini_racer", None)
    with pytest.raises(ImportError, match=r"pip install 'appsync-events\[js\]'"):
        JsHandlers.load("export const onPublish = (ctx) => null\n", filename="x.js")


def test_js_package_imports_without_the_engine() -> None:
    """The package imports with mini-racer and tree-sitter unavailable."""
    code = (
        "import sys\n"
        "sys.modules['py_mini_racer'] = None\n"
        "sys.modules['tree_sitter'] = None\n"
        "import appsync_emulator.appsync_js, appsync_emulator.direct_lambda\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "ok"


@pytest.mark.asyncio
async def test_js_console_error_and_append_error_are_logged(
    runtime: JsRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    """console.error logs at ERROR; util.appendError is logged as a warning."""
    source = (
        "export function onSubscribe(ctx) {\n"
        "  console.error('bad', { n: 1 })\n"
        "  util.appendError('soft', 'Soft')\n"
        "}\n"
    )
    with caplog.at_level(logging.DEBUG, logger="appsync_emulator.handlers.js"):
        assert await load(runtime, source).on_subscribe(subscribe_ctx()) == Accept()
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == ['[default /default/chat onSubscribe] bad {"n":1}']
    assert "util.appendError" in caplog.text


@pytest.mark.asyncio
async def test_js_call_waiting_for_a_busy_engine_is_unavailable_in_bounded_time() -> None:
    """With every engine stuck, a queued call gives up after the time limit plus queue."""
    limits = JsLimits(invoke_timeout=400 * MS, queue_timeout=0, engines=1)
    source = SPIN + "export const onSubscribe = (ctx) => null\n"
    with JsHandlers.load(source, filename="busy.js", limits=limits) as handlers:
        started = time.monotonic()
        # gather starts the calls in order: the spinning publishes hold the only engine
        # (one after the other) well past the subscribe's deadline.
        *spins, waiting = await asyncio.gather(
            *(handlers.on_publish(publish_ctx(1)) for _ in range(3)),
            handlers.on_subscribe(subscribe_ctx()),
        )
        assert time.monotonic() - started < 3000 * MS
        assert isinstance(waiting, Crash)
        assert waiting.kind is CrashKind.UNAVAILABLE
        assert isinstance(spins[0], Crash)
        assert spins[0].kind is CrashKind.TIMEOUT


ESBUILD_BUNDLE = """\
// esbuild output: imports renamed, exports listed at the end
import {
  util as u,
  runtime,
} from "@aws-appsync/utils";
import * as utils from "@aws-appsync/utils";
import "@aws-appsync/utils";
const { a, b: [c] } = { a: 1, b: [2] };
function publish(ctx) {
  const kinds = [typeof u.autoId, typeof utils.runtime];
  return ctx.events.map((e) => ({ id: e.id, payload: [a, c, ...kinds] }));
}
const subscribe = (ctx) => null;
export default function main() {}
export const { x, y = 3 } = { x: 1 };
export {
  publish as onPublish,
  subscribe as onSubscribe
};
"""


@pytest.mark.asyncio
async def test_js_bundled_module_forms_are_understood(runtime: JsRuntime) -> None:
    """Multi-line and aliased imports, namespace imports and esbuild's export list work."""
    handlers = load(runtime, ESBUILD_BUNDLE, "bundle.js")
    assert set(handlers.exports) == {"default", "x", "y", "onPublish", "onSubscribe"}
    assert payloads(await handlers.on_publish(publish_ctx(0))) == [[1, 2, "function", "object"]]
    assert await handlers.on_subscribe(subscribe_ctx()) == Accept()


@pytest.mark.asyncio
async def test_js_export_default_expression_is_not_a_handler(runtime: JsRuntime) -> None:
    """`export default <expr>` compiles; only named onPublish/onSubscribe are handlers."""
    handlers = load(runtime, "export default { onPublish: (ctx) => [] }\n")
    assert handlers.exports == ("default",)
    assert payloads(await handlers.on_publish(publish_ctx(7))) == [7]


@pytest.mark.asyncio
async def test_js_engine_layer_bug_is_an_unavailable_crash(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An unexpected error below the handler is logged and answered, never raised."""
    with JsHandlers.load("export const onSubscribe = (ctx) => null\n", filename="e.js") as h:

        def broken(*args: object) -> str:
            raise OSError("engine thread died")

        monkeypatch.setattr(h.runtime, "_run", broken)
        outcome = await h.on_subscribe(subscribe_ctx())
    assert isinstance(outcome, Crash)
    assert outcome.kind is CrashKind.UNAVAILABLE
    assert "engine thread died" in caplog.text


@pytest.mark.asyncio
async def test_js_reloading_handlers_pick_up_an_edited_file(
    runtime: JsRuntime, tmp_path: Path
) -> None:
    """An edited handler file is used from the next invocation on."""
    path = tmp_path / "ns.js"
    path.write_text("export const onPublish = (ctx) => ctx.events\n", encoding="utf-8")
    handlers = ReloadingJsHandlers(path, runtime=runtime)
    assert payloads(await handlers.on_publish(publish_ctx(1))) == [1]
    path.write_text("export const onPublish = (ctx) => []\n", encoding="utf-8")
    assert payloads(await handlers.on_publish(publish_ctx(1))) == []
    assert handlers.reloads == 1
    handlers.close()


@pytest.mark.asyncio
async def test_js_reloading_handlers_keep_old_code_when_new_code_is_broken(
    runtime: JsRuntime, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A broken edit is logged with its line and the previous code keeps running."""
    path = tmp_path / "ns.js"
    path.write_text("export function onSubscribe(ctx) {}\n", encoding="utf-8")
    handlers = ReloadingJsHandlers(path, runtime=runtime)
    path.write_text("export function onSubscribe(ctx) { util.unauthorized( }\n", encoding="utf-8")
    assert await handlers.on_subscribe(subscribe_ctx()) == Accept()
    assert f"{path}:1:" in caplog.text
    assert handlers.reloads == 0
    handlers.close()


@pytest.mark.asyncio
async def test_js_runtime_closes_from_asyncio() -> None:
    """aclose() closes the pool without blocking the loop; loading afterwards fails."""
    pool = JsRuntime(JsLimits(engines=1))
    JsHandlers.load("export const onPublish = (ctx) => null\n", runtime=pool)
    await pool.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        JsHandlers.load("export const onPublish = (ctx) => null\n", runtime=pool)
