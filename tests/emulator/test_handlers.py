"""on_publish / on_subscribe handlers: transform, filter, fail, reject.

See docs: protocol.rst, "Event handlers".
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from appsync_emulator.config import AuthType, EmulatorConfig, Limits, NamespaceConfig
from appsync_emulator.handlers import (
    EVENT_TOO_LARGE_CODE,
    EVENT_TOO_LARGE_MESSAGE,
    PUBLISH_FAILURE,
    SUBSCRIBE_FAILURE,
    HandlerContext,
    HandlerError,
    HandlerFailure,
    HandlerRejection,
    PublishOutcome,
    Unauthorized,
    run_on_publish,
    run_on_subscribe,
    util,
)
from appsync_emulator.verify import Identity
from appsync_events.errors import ErrorDetail
from appsync_events.protocol.channels import parse_channel, parse_subscribe_channel
from appsync_events.protocol.messages import FailedEvent, PublishedEvent

CONFIG = EmulatorConfig(handler_timeout=0.2)
IDS = ("id-0", "id-1", "id-2", "id-3", "id-4")
EVENTS = tuple(json.dumps({"n": i, "text": f"hello {i}"}) for i in range(5))
IDENTITY = Identity(mode=AuthType.AWS_LAMBDA, ctx={"handlerContext": {"user": "u1"}})
HEADERS = {"Host": "h.example", "Cookie": "secret=1", "X-Custom": "v"}


def ns(on_publish: Any = None, on_subscribe: Any = None) -> NamespaceConfig:
    return NamespaceConfig(name="default", on_publish=on_publish, on_subscribe=on_subscribe)


async def publish(
    handler: Any,
    events: tuple[str, ...] = EVENTS,
    *,
    config: EmulatorConfig = CONFIG,
    errors: list[BaseException] | None = None,
) -> PublishOutcome:
    return await run_on_publish(
        config,
        ns(on_publish=handler),
        channel=parse_channel("/default/room/1"),
        events=events,
        identifiers=IDS[: len(events)],
        identity=IDENTITY,
        request_headers=HEADERS,
        on_error=None if errors is None else errors.append,
    )


async def publish_rejected(handler: Any, **kw: Any) -> HandlerRejection:
    with pytest.raises(HandlerRejection) as info:
        await publish(handler, **kw)
    return info.value


def ok(*indexes: int) -> tuple[PublishedEvent, ...]:
    return tuple(PublishedEvent(identifier=IDS[i], index=i) for i in indexes)


# --- default -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_no_handler_broadcasts_every_event_verbatim() -> None:
    events = ('{ "spaced" : true }', '"s"', "42")
    outcome = await publish(None, events)
    assert outcome == PublishOutcome(broadcast=events, successful=ok(0, 1, 2), failed=())


@pytest.mark.asyncio
async def test_no_handler_fails_an_oversize_event() -> None:
    config = CONFIG.replace(limits=Limits(max_event_bytes=10))
    outcome = await publish(None, ('"short"', '"much too long"'), config=config)
    assert outcome.broadcast == ('"short"',)
    assert outcome.successful == ok(0)
    assert outcome.failed == (
        FailedEvent(
            identifier="id-1", index=1, code=EVENT_TOO_LARGE_CODE, message=EVENT_TOO_LARGE_MESSAGE
        ),
    )


# --- on_publish results --------------------------------------------------------------------


@pytest.mark.asyncio
async def test_handler_transforms_events_and_reserialises_compactly() -> None:
    def handler(ctx: HandlerContext) -> list[dict[str, Any]]:
        assert ctx.events is not None
        return [
            {"id": e["id"], "payload": {**e["payload"], "seen": "ü", "n2": e["payload"]["n"] * 2}}
            for e in ctx.events
        ]

    outcome = await publish(handler)
    assert outcome.broadcast[1] == '{"n":1,"text":"hello 1","seen":"ü","n2":2}'
    assert len(outcome.broadcast) == 5
    assert outcome.successful == ok(0, 1, 2, 3, 4)
    assert outcome.failed == ()


@pytest.mark.asyncio
async def test_handler_filters_events_and_filtered_ones_stay_successful() -> None:
    def handler(ctx: HandlerContext) -> list[dict[str, Any]]:
        assert ctx.events is not None
        return [e for e in ctx.events if e["payload"]["n"] % 2 == 0]

    outcome = await publish(handler)
    assert [json.loads(t)["n"] for t in outcome.broadcast] == [0, 2, 4]
    # EMULATOR-CHOICE, docs: emulator-fidelity.rst, "Events a handler filtered out"
    assert outcome.successful == ok(0, 1, 2, 3, 4)
    assert outcome.failed == ()


@pytest.mark.asyncio
async def test_handler_fails_one_event_of_five() -> None:
    def handler(ctx: HandlerContext) -> list[dict[str, Any]]:
        assert ctx.events is not None
        for e in ctx.events:
            if e["payload"]["n"] == 3:
                e["error"] = "Message required"
        return ctx.events

    outcome = await publish(handler)
    assert [json.loads(t)["n"] for t in outcome.broadcast] == [0, 1, 2, 4]
    assert outcome.successful == ok(0, 1, 2, 4)
    assert outcome.failed == (
        FailedEvent(
            identifier="id-3", index=3, code="EventProcessingError", message="Message required"
        ),
    )


@pytest.mark.asyncio
async def test_failed_event_code_is_configurable() -> None:
    def handler(ctx: HandlerContext) -> list[dict[str, Any]]:
        assert ctx.events is not None
        return [{"id": ctx.events[0]["id"], "error": "nope"}]

    outcome = await publish(handler, EVENTS[:1], config=CONFIG.replace(failed_event_code="X"))
    assert outcome.failed[0].code == "X"
    assert outcome.broadcast == ()


@pytest.mark.asyncio
@pytest.mark.parametrize("result", [None, []])
async def test_none_or_empty_broadcasts_nothing(result: Any) -> None:
    outcome = await publish(lambda ctx: result)
    assert outcome == PublishOutcome(broadcast=(), successful=ok(0, 1, 2, 3, 4), failed=())


@pytest.mark.asyncio
async def test_null_entries_are_ignored_and_order_follows_the_index() -> None:
    def handler(ctx: HandlerContext) -> list[Any]:
        assert ctx.events is not None
        return [None, ctx.events[2], None, ctx.events[0]]

    outcome = await publish(handler)
    assert [json.loads(t)["n"] for t in outcome.broadcast] == [0, 2]


@pytest.mark.asyncio
async def test_transformed_event_over_the_limit_fails() -> None:
    def handler(ctx: HandlerContext) -> list[dict[str, Any]]:
        assert ctx.events is not None
        return [{"id": ctx.events[0]["id"], "payload": "x" * (240 * 1024)}, *ctx.events[1:2]]

    outcome = await publish(handler, EVENTS[:2])
    assert outcome.failed == (
        FailedEvent(
            identifier="id-0", index=0, code=EVENT_TOO_LARGE_CODE, message=EVENT_TOO_LARGE_MESSAGE
        ),
    )
    assert outcome.successful == ok(1)
    assert len(outcome.broadcast) == 1


@pytest.mark.asyncio
async def test_async_handler_is_awaited() -> None:
    async def handler(ctx: HandlerContext) -> list[dict[str, Any]]:
        await asyncio.sleep(0)
        assert ctx.events is not None
        return ctx.events[:1]

    assert len((await publish(handler)).broadcast) == 1


# --- rejections ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_unauthorized_rejects_the_publish_with_401() -> None:
    def handler(ctx: HandlerContext) -> None:
        raise Unauthorized()

    rejection = await publish_rejected(handler)
    assert rejection.status == 401
    assert rejection.errors == (
        ErrorDetail(
            error_type="UnauthorizedException",
            message="You are not authorized to make this call.",
            error_code=401,
        ),
    )


@pytest.mark.asyncio
async def test_handler_error_rejects_the_publish_with_403_and_the_message() -> None:
    def handler(ctx: HandlerContext) -> None:
        ctx.util.error("Not allowed on weekends")

    rejection = await publish_rejected(handler)
    assert rejection.status == 403
    assert rejection.errors == (
        ErrorDetail(error_type="BadRequestException", message="Not allowed on weekends"),
    )
    typed = await publish_rejected(lambda ctx: util.error("m", "CustomType"))
    assert typed.errors[0].error_type == "CustomType"


def _raise(exc: BaseException) -> Callable[[HandlerContext], Any]:
    def handler(ctx: HandlerContext) -> Any:
        raise exc

    return handler


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("handler", "fragment"),
    [
        (_raise(ZeroDivisionError("boom")), "ZeroDivisionError('boom')"),
        (lambda ctx: [{"id": "not-an-id", "payload": 1}], "unknown event id 'not-an-id'"),
        (lambda ctx: [ctx.events[0], ctx.events[0]], "returned event id 'id-0' twice"),
        (lambda ctx: {"id": "id-0"}, "must return a list"),
        (lambda ctx: "text", "must return a list"),
        (lambda ctx: [1], "expected {'id'"),
        (lambda ctx: [{"id": "id-0"}], "without a payload"),
        (lambda ctx: [{"id": "id-0", "payload": {1, 2}}], "not JSON"),
        (lambda ctx: [{"id": "id-0", "payload": float("nan")}], "not JSON"),
    ],
)
async def test_handler_bugs_are_collected_logged_and_answered(
    handler: Any, fragment: str, caplog: pytest.LogCaptureFixture
) -> None:
    errors: list[BaseException] = []
    with caplog.at_level(logging.ERROR, logger="appsync_emulator.handlers"):
        rejection = await publish_rejected(handler, errors=errors)
    assert rejection.errors == (PUBLISH_FAILURE,)
    assert rejection.status == 500
    (failure,) = errors
    assert isinstance(failure, HandlerFailure)
    assert fragment in str(failure)
    assert "on_publish handler of namespace 'default' failed" in caplog.text
    assert "Traceback" in caplog.text


@pytest.mark.asyncio
async def test_slow_async_handler_times_out_as_a_failure() -> None:
    async def handler(ctx: HandlerContext) -> None:
        await asyncio.Event().wait()

    errors: list[BaseException] = []
    rejection = await publish_rejected(
        handler, config=CONFIG.replace(handler_timeout=0.01), errors=errors
    )
    assert rejection.errors == (PUBLISH_FAILURE,)
    assert isinstance(errors[0].__cause__, TimeoutError)


@pytest.mark.asyncio
async def test_a_failing_error_hook_does_not_escape() -> None:
    def hook(exc: BaseException) -> None:
        raise RuntimeError("hook broke")

    with pytest.raises(HandlerRejection):
        await run_on_publish(
            CONFIG,
            ns(on_publish=_raise(ValueError("x"))),
            channel=parse_channel("/default/a"),
            events=EVENTS[:1],
            identifiers=IDS[:1],
            identity=None,
            request_headers={},
            on_error=hook,
        )


# --- the context -----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_publish_context_mirrors_appsync_js_ctx() -> None:
    seen: list[HandlerContext] = []

    def handler(ctx: HandlerContext) -> None:
        ctx.stash["k"] = "v"
        seen.append(ctx)

    await publish(handler, EVENTS[:2])
    (ctx,) = seen
    assert ctx.identity == {"handlerContext": {"user": "u1"}}
    assert ctx.auth_mode == "AWS_LAMBDA"
    assert ctx.info.channel.path == "/default/room/1"
    assert ctx.info.channel.segments == ("default", "room", "1")
    assert ctx.info.channelNamespace.name == "default"
    assert ctx.info.operation == "PUBLISH"
    assert ctx.channel is ctx.info.channel
    assert ctx.channelNamespace.name == "default"
    assert ctx.events == [
        {"id": "id-0", "payload": {"n": 0, "text": "hello 0"}},
        {"id": "id-1", "payload": {"n": 1, "text": "hello 1"}},
    ]
    assert ctx.request.headers == {"host": "h.example", "x-custom": "v"}  # no cookie
    assert ctx.request.domainName == "h.example"
    assert ctx.stash["k"] == "v"
    assert ctx.transport == "websocket"


@pytest.fixture
def handler_module() -> Iterator[str]:
    module = types.ModuleType("emulator_test_handlers")

    def only_first(ctx: HandlerContext) -> list[dict[str, Any]]:
        assert ctx.events is not None
        return ctx.events[:1]

    def deny(ctx: HandlerContext) -> None:
        raise Unauthorized()

    module.only_first = only_first  # type: ignore[attr-defined]
    module.deny = deny  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    yield module.__name__
    del sys.modules[module.__name__]


@pytest.mark.asyncio
async def test_module_function_references(handler_module: str) -> None:
    assert len((await publish(f"{handler_module}:only_first")).broadcast) == 1
    errors: list[BaseException] = []
    rejection = await publish_rejected(f"{handler_module}:missing", errors=errors)
    assert rejection.errors == (PUBLISH_FAILURE,)
    assert "has no 'missing'" in str(errors[0].__cause__)


# --- on_subscribe -----------------------------------------------------------------------------


async def subscribe(handler: Any, errors: list[BaseException] | None = None) -> None:
    await run_on_subscribe(
        CONFIG,
        ns(on_subscribe=handler),
        channel=parse_subscribe_channel("/default/room/*"),
        identity=None,
        request_headers=HEADERS,
        on_error=None if errors is None else errors.append,
    )


@pytest.mark.asyncio
async def test_subscribe_accepted_and_context_keeps_the_wildcard() -> None:
    seen: list[HandlerContext] = []
    await subscribe(seen.append)
    await subscribe(None)
    (ctx,) = seen
    assert ctx.info.channel.path == "/default/room/*"
    assert ctx.info.channel.segments == ("default", "room", "*")
    assert ctx.info.operation == "SUBSCRIBE"
    assert ctx.events is None
    assert ctx.identity is None


@pytest.mark.asyncio
async def test_subscribe_unauthorized_is_error_type_unauthorized(handler_module: str) -> None:
    with pytest.raises(HandlerRejection) as info:
        await subscribe(f"{handler_module}:deny")
    assert info.value.errors == (
        ErrorDetail(error_type="Unauthorized", message="You are not authorized to make this call."),
    )
    assert info.value.status == 401


@pytest.mark.asyncio
async def test_subscribe_handler_error_is_subscription_processing_error() -> None:
    def handler(ctx: HandlerContext) -> None:
        raise HandlerError("Room is full")

    with pytest.raises(HandlerRejection) as info:
        await subscribe(handler)
    assert info.value.errors == (
        ErrorDetail(error_type="SubscriptionProcessingError", message="Room is full"),
    )


@pytest.mark.asyncio
async def test_subscribe_handler_crash_is_collected() -> None:
    errors: list[BaseException] = []
    with pytest.raises(HandlerRejection) as info:
        await subscribe(_raise(KeyError("k")), errors)
    assert info.value.errors == (SUBSCRIBE_FAILURE,)
    assert isinstance(errors[0], HandlerFailure)
    assert isinstance(errors[0].__cause__, KeyError)


def test_util_helpers() -> None:
    assert util.base64_decode(util.base64_encode("hé")) == "hé"
    assert util.url_decode(util.url_encode("a b/c")) == "a b/c"
    assert util.url_encode("a b/c") == "a%20b%2Fc"
    assert len(util.auto_id()) == 36
    assert util.now_iso8601().endswith("Z")
    with pytest.raises(Unauthorized):
        util.unauthorized()


def test_fast_records_equal_what_the_constructors_make() -> None:
    from appsync_emulator._fast import new_outgoing, new_publish_success, published_events
    from appsync_emulator.handlers import PublishOutcome, _all_published
    from appsync_events.protocol.messages import (
        FailedEvent,
        Outgoing,
        PublishedEvent,
        PublishSuccess,
    )

    made = published_events(("a", "b"))
    expected = (PublishedEvent(identifier="a", index=0), PublishedEvent(identifier="b", index=1))
    failed = (FailedEvent(identifier="c", index=2, code="X"),)
    pairs: list[tuple[object, object]] = [
        (made, expected),
        (published_events(()), ()),
        (new_outgoing("ka", None, '{"type":"ka"}'), Outgoing("ka", None, '{"type":"ka"}')),
        (
            new_publish_success("p1", made, failed),
            PublishSuccess(id="p1", successful=expected, failed=failed),
        ),
        (
            _all_published(("1", "2"), made),
            PublishOutcome(broadcast=("1", "2"), successful=expected, failed=()),
        ),
    ]
    for fast, slow in pairs:
        assert fast == slow
        assert hash(fast) == hash(slow)
        assert repr(fast) == repr(slow)
