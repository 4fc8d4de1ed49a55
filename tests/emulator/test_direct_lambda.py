"""Direct Lambda integrations: the event AppSync sends, and how answers are mapped back.

Powertools ``AppSyncEventsResolver`` apps below are written as the Powertools for AWS
Lambda (Python) "AppSync Events" page shows them, and called unchanged through
:class:`DirectLambda`.  No emulator server: the handlers are called directly.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import types
from collections.abc import Iterator
from typing import Any

import pytest

from appsync_emulator.direct_lambda import DirectLambda, InvokeType, LambdaContext
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


def publish_ctx(*payloads: JSONValue, channel: str = "/default/foo") -> dict[str, JSONValue]:
    return build_context(
        operation="PUBLISH",
        channel=channel,
        headers={"x-forwarded-for": "1.1.1.1", "Cookie": "c"},
        events=[(str(i + 1), p) for i, p in enumerate(payloads)],
    )


def subscribe_ctx(channel: str = "/default/foo") -> dict[str, JSONValue]:
    return build_context(operation="SUBSCRIBE", channel=channel)


# --- the event shape -----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_lambda_event_has_the_powertools_request_shape() -> None:
    """The function receives Powertools' payload_request.json shape, through JSON."""
    seen: list[tuple[dict[str, Any], LambdaContext]] = []

    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        seen.append((event, context))
        return {"events": event["events"]}

    async with DirectLambda(handler, function_name="fn") as direct:
        ctx = publish_ctx({"data": "data_1"}, {"data": "data_2"}, channel="default/channel")
        await direct.on_publish(ctx)
    [(event, context)] = seen
    assert event == {
        "identity": None,
        "result": None,
        "request": {"headers": {"x-forwarded-for": "1.1.1.1"}, "domainName": None},
        "info": {
            "channel": {"path": "/default/channel", "segments": ["default", "channel"]},
            "channelNamespace": {"name": "default"},
            "operation": "PUBLISH",
        },
        "error": None,
        "prev": None,
        "stash": {},
        "outErrors": [],
        "events": [
            {"id": "1", "payload": {"data": "data_1"}},
            {"id": "2", "payload": {"data": "data_2"}},
        ],
    }
    assert event is not ctx
    assert context.function_name == "fn"
    assert 0 < context.get_remaining_time_in_millis() <= 10_000
    assert context.invoked_function_arn.endswith(":function:fn")


# --- mapping of plain answers -------------------------------------------------------------


@pytest.mark.asyncio
async def test_lambda_events_answer_broadcasts_and_fails_per_event() -> None:
    """`{events: [...]}` is broadcast; entries with `error` go to failed."""

    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        first, second = event["events"]
        return {"events": [{**first, "payload": {"ok": 1}}, {"id": second["id"], "error": "bad"}]}

    async with DirectLambda(handler) as direct:
        outcome = await direct.on_publish(publish_ctx(1, 2))
    assert outcome == Broadcast(
        events=(OutgoingEvent(id="1", index=0, payload={"ok": 1}),),
        failed=(EventFailure(id="2", index=1, message="bad"),),
    )


@pytest.mark.asyncio
async def test_lambda_top_level_error_rejects_without_telling_the_publisher() -> None:
    """`{error}` on publish fails the request; the message is for the log only."""
    async with DirectLambda(lambda event, context: {"error": "boom"}) as direct:
        assert await direct.on_publish(publish_ctx(1)) == Reject(message="boom", public=False)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [(None, Accept()), ({}, Accept()), ({"error": "go away"}, Reject(message="go away"))],
)
@pytest.mark.asyncio
async def test_lambda_subscribe_answer_accepts_or_rejects(
    answer: JSONValue, expected: object
) -> None:
    """`null` accepts a subscription, `{error}` rejects it with that message."""
    async with DirectLambda(lambda event, context: answer) as direct:
        assert await direct.on_subscribe(subscribe_ctx()) == expected


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        ([1, 2], CrashKind.MALFORMED),
        ({"events": [{"id": "nope", "payload": 1}]}, CrashKind.MALFORMED),
        ({"events": "x"}, CrashKind.MALFORMED),
        ({"events": [{"id": "1", "payload": {1, 2}}]}, CrashKind.MALFORMED),
    ],
)
@pytest.mark.asyncio
async def test_lambda_malformed_publish_answer_is_a_crash(answer: Any, kind: CrashKind) -> None:
    """Answers that are not `{events?, error?}` with known ids are MALFORMED crashes."""
    async with DirectLambda(lambda event, context: answer) as direct:
        outcome = await direct.on_publish(publish_ctx(1))
    assert isinstance(outcome, Crash)
    assert outcome.kind is kind


@pytest.mark.asyncio
async def test_lambda_exception_is_an_exception_crash() -> None:
    """An unhandled exception is a crash carrying the Lambda errorType and message."""

    def handler(event: dict[str, Any], context: LambdaContext) -> None:
        raise KeyError("missing")

    async with DirectLambda(handler) as direct:
        outcome = await direct.on_subscribe(subscribe_ctx())
    assert outcome == Crash(kind=CrashKind.EXCEPTION, detail="KeyError: 'missing'")


@pytest.mark.asyncio
async def test_lambda_timeout_is_a_timeout_crash() -> None:
    """A function that outlives its timeout is a TIMEOUT crash, on time."""
    release = threading.Event()

    def handler(event: dict[str, Any], context: LambdaContext) -> None:
        release.wait(5)

    async with DirectLambda(handler, timeout=100 * MS) as direct:
        outcome = await direct.on_subscribe(subscribe_ctx())
        release.set()
    assert isinstance(outcome, Crash)
    assert outcome.kind is CrashKind.TIMEOUT


@pytest.mark.asyncio
async def test_lambda_async_function_is_awaited() -> None:
    """An async function works as the handler too (a local extension)."""

    async def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"events": event["events"][:1]}

    async with DirectLambda(handler) as direct:
        outcome = await direct.on_publish(publish_ctx(1, 2))
    assert outcome == Broadcast(events=(OutgoingEvent(id="1", index=0, payload=1),))


@pytest.fixture
def fake_module() -> Iterator[types.ModuleType]:
    module = types.ModuleType("fake_lambda_mod")
    module.handler = lambda event, context: None  # type: ignore[attr-defined]
    sys.modules["fake_lambda_mod"] = module
    yield module
    del sys.modules["fake_lambda_mod"]


@pytest.mark.asyncio
async def test_lambda_function_resolves_from_a_module_path(fake_module: types.ModuleType) -> None:
    """`"package.module:function"` names the handler."""
    async with DirectLambda("fake_lambda_mod:handler") as direct:
        assert await direct.on_subscribe(subscribe_ctx()) == Accept()


@pytest.mark.parametrize(
    "ref", ["nomodule", "no_such_module_xyz:f", "sys:no_such_attr", "sys:path"]
)
def test_lambda_bad_function_reference_fails_at_construction(ref: str) -> None:
    """A reference that does not name a callable raises ValueError at once."""
    with pytest.raises(ValueError, match="Lambda function"):
        DirectLambda(ref)


# --- EVENT invocations ---------------------------------------------------------------------


@pytest.mark.asyncio
async def test_lambda_event_mode_broadcasts_at_once_and_invokes_later() -> None:
    """With EVENT, events go out unchanged before the function has finished."""
    started = threading.Event()
    release = threading.Event()
    calls: list[str] = []

    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        started.set()
        release.wait(5)
        calls.append(event["info"]["operation"])
        return {"events": []}  # ignored

    async with DirectLambda(handler, invoke_type="EVENT", timeout=5000 * MS) as direct:
        outcome = await direct.on_publish(publish_ctx({"a": 1}))
        assert outcome == Broadcast(events=(OutgoingEvent(id="1", index=0, payload={"a": 1}),))
        assert await direct.on_subscribe(subscribe_ctx()) == Accept()
        assert await asyncio.to_thread(started.wait, 5)
        assert calls == []
        release.set()
    assert calls == ["PUBLISH", "SUBSCRIBE"]


@pytest.mark.asyncio
async def test_lambda_event_mode_drops_past_the_pending_limit() -> None:
    """EVENT invocations beyond max_pending_events are dropped, never queued."""
    release = threading.Event()
    calls: list[int] = []

    def handler(event: dict[str, Any], context: LambdaContext) -> None:
        release.wait(5)
        calls.append(1)

    direct = DirectLambda(handler, invoke_type=InvokeType.EVENT, max_pending_events=2)
    async with direct:
        for _ in range(5):
            await direct.on_subscribe(subscribe_ctx())
        release.set()
    assert calls == [1, 1]


@pytest.mark.asyncio
async def test_lambda_event_mode_failure_is_only_logged(caplog: pytest.LogCaptureFixture) -> None:
    """A failing EVENT invocation is logged and changes nothing."""

    def handler(event: dict[str, Any], context: LambdaContext) -> None:
        raise RuntimeError("late failure")

    async with DirectLambda(handler, invoke_type="EVENT") as direct:
        assert await direct.on_subscribe(subscribe_ctx()) == Accept()
    assert "late failure" in caplog.text


@pytest.mark.asyncio
async def test_lambda_event_mode_needs_the_context_manager() -> None:
    """EVENT invocations have an owner: using them outside `async with` raises."""
    direct = DirectLambda(lambda event, context: None, invoke_type="EVENT")
    with pytest.raises(RuntimeError, match="async with"):
        await direct.on_subscribe(subscribe_ctx())
    await direct.aclose()


def test_lambda_limits_are_validated() -> None:
    """Non-positive limits are refused."""
    with pytest.raises(ValueError, match="positive"):
        DirectLambda(lambda event, context: None, timeout=0)


# --- Powertools AppSyncEventsResolver, unchanged ---------------------------------------------


@pytest.fixture
def powertools() -> types.ModuleType:
    return pytest.importorskip(
        "aws_lambda_powertools.event_handler", reason="needs aws-lambda-powertools"
    )


def make_app(powertools: types.ModuleType) -> Any:
    """A Powertools app as its documentation writes one."""
    from aws_lambda_powertools.event_handler.events_appsync.exceptions import (
        UnauthorizedException,
    )

    app = powertools.AppSyncEventsResolver()

    @app.on_publish("/default/foo")
    def handle_foo(payload: dict[str, Any]) -> dict[str, Any]:
        if payload.get("fail"):
            raise ValueError("invalid payload")
        return {"processed": True, "original_payload": payload}

    @app.on_publish("/default/batch", aggregate=True)
    def handle_batch(payload: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {"id": event["id"], "payload": {"count": len(payload), **event["payload"]}}
            for event in payload
            if not event["payload"].get("drop")
        ]

    @app.on_publish("/default/all-fail", aggregate=True)
    def handle_all_fail(payload: list[dict[str, Any]]) -> list[dict[str, Any]]:
        raise RuntimeError("An exception occurred")

    @app.async_on_publish("/default/async")
    async def handle_async(payload: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"async": True, **payload}

    @app.on_publish("/private/*")
    def handle_private(payload: dict[str, Any]) -> dict[str, Any]:
        return payload

    @app.on_subscribe("/default/foo")
    def allow_foo() -> bool:
        return True

    @app.on_subscribe("/default/broken")
    def broken_subscribe() -> None:
        raise ValueError("cannot subscribe here")

    @app.on_subscribe("/*")
    def deny_others() -> None:
        raise UnauthorizedException("You can only subscribe to /default/foo")

    def lambda_handler(event: dict[str, Any], context: Any) -> Any:
        return app.resolve(event, context)

    return lambda_handler


@pytest.mark.asyncio
async def test_powertools_publish_transforms_each_event(powertools: types.ModuleType) -> None:
    """Per-event resolver: each payload is replaced by the resolver's return value."""
    async with DirectLambda(make_app(powertools)) as direct:
        outcome = await direct.on_publish(publish_ctx({"a": 1}, {"b": 2}))
    assert outcome == Broadcast(
        events=(
            OutgoingEvent(
                id="1", index=0, payload={"processed": True, "original_payload": {"a": 1}}
            ),
            OutgoingEvent(
                id="2", index=1, payload={"processed": True, "original_payload": {"b": 2}}
            ),
        )
    )


@pytest.mark.asyncio
async def test_powertools_publish_error_fails_only_that_event(powertools: types.ModuleType) -> None:
    """A resolver exception on one event becomes that event's `error` (failed[])."""
    async with DirectLambda(make_app(powertools)) as direct:
        outcome = await direct.on_publish(publish_ctx({"fail": True}, {"b": 2}))
    assert isinstance(outcome, Broadcast)
    assert outcome.failed == (
        EventFailure(id="1", index=0, message="ValueError - invalid payload"),
    )
    assert [e.id for e in outcome.events] == ["2"]


@pytest.mark.asyncio
async def test_powertools_aggregate_mode_sees_the_whole_batch(
    powertools: types.ModuleType,
) -> None:
    """aggregate=True gets every event at once and may drop some."""
    async with DirectLambda(make_app(powertools)) as direct:
        outcome = await direct.on_publish(
            publish_ctx({"n": 1}, {"drop": True}, {"n": 3}, channel="/default/batch")
        )
    assert outcome == Broadcast(
        events=(
            OutgoingEvent(id="1", index=0, payload={"count": 3, "n": 1}),
            OutgoingEvent(id="3", index=2, payload={"count": 3, "n": 3}),
        )
    )


@pytest.mark.asyncio
async def test_powertools_aggregate_failure_fails_the_request(
    powertools: types.ModuleType,
) -> None:
    """An aggregate resolver that raises answers `{error}`: the whole request fails."""
    async with DirectLambda(make_app(powertools)) as direct:
        outcome = await direct.on_publish(publish_ctx(1, channel="/default/all-fail"))
    assert outcome == Reject(message="RuntimeError - An exception occurred", public=False)


@pytest.mark.asyncio
async def test_powertools_async_resolver_runs(powertools: types.ModuleType) -> None:
    """async_on_publish resolvers run (Powertools drives them with asyncio.run)."""
    async with DirectLambda(make_app(powertools)) as direct:
        outcome = await direct.on_publish(publish_ctx({"x": 1}, channel="/default/async"))
    assert outcome == Broadcast(
        events=(OutgoingEvent(id="1", index=0, payload={"async": True, "x": 1}),)
    )


@pytest.mark.asyncio
async def test_powertools_subscribe_is_accepted(powertools: types.ModuleType) -> None:
    """A subscribe resolver that returns normally accepts the subscription."""
    async with DirectLambda(make_app(powertools)) as direct:
        assert await direct.on_subscribe(subscribe_ctx("/default/foo")) == Accept()


@pytest.mark.asyncio
async def test_powertools_unauthorized_exception_denies(powertools: types.ModuleType) -> None:
    """UnauthorizedException raised by a resolver denies the subscription."""
    async with DirectLambda(make_app(powertools)) as direct:
        assert await direct.on_subscribe(subscribe_ctx("/other/x")) == Deny()


@pytest.mark.asyncio
async def test_powertools_subscribe_error_rejects(powertools: types.ModuleType) -> None:
    """Another exception in a subscribe resolver answers `{error}`: rejected."""
    async with DirectLambda(make_app(powertools)) as direct:
        outcome = await direct.on_subscribe(subscribe_ctx("/default/broken"))
    assert outcome == Reject(message="ValueError - cannot subscribe here")
