"""Per-namespace event handlers: running them and turning their answers into AWS's frames.

A namespace's ``onPublish``/``onSubscribe`` is one of three things.  APPSYNC_JS code and
direct Lambda data sources run in :mod:`~appsync_emulator.handler_runtime` and answer with
the typed outcomes of :mod:`~appsync_emulator.handler_contract`, which
:func:`run_on_publish` and :func:`run_on_subscribe` map to what AWS sends:

* ``Broadcast``: the events to fan out; per-event ``error`` entries go to ``failed``;
* ``Deny`` (``util.unauthorized()``, ``UnauthorizedException``): ``UnauthorizedException``
  (HTTP 401) on publish, a ``subscribe_error`` of errorType ``Unauthorized`` on subscribe;
* ``Reject`` (``util.error(message, errorType)``): the message with its errorType
  (HTTP 403 on publish);
* ``Crash`` (a throw, a timeout, memory, a malformed answer): the generic processing
  error, and the failure is reported to ``on_error`` (``server.check()``).

The third kind is a local extension, described below.

EMULATOR-CHOICE (docs: emulator-fidelity.rst, "Python handlers (a local extension)"):
a handler is a Python callable (or ``"module:function"``) registered on a
:class:`~appsync_emulator.config.NamespaceConfig`.  It receives a :class:`HandlerContext`
modelled on the APPSYNC_JS ``ctx`` (docs: protocol.rst, "The context"), may be sync or
async, and models ``util.unauthorized()`` / ``util.error(msg)`` by raising :class:`Unauthorized` /
:class:`HandlerError`::

    from appsync_emulator.handlers import HandlerError, Unauthorized

    def on_publish(ctx):
        if ctx.identity is None:
            raise Unauthorized()
        return [
            {"id": e["id"], "payload": {**e["payload"], "seen": True}}
            for e in ctx.events
            if e["payload"].get("keep", True)
        ]

The server shell calls :func:`run_on_publish` and :func:`run_on_subscribe` after
authorization (docs: protocol.rst, "What AWS runs").  Neither ever lets a handler's bug
escape: an unexpected exception is logged with its traceback, passed to the shell's
``on_error`` hook (so ``server.check()`` can re-raise it in the test) and answered as a
failed operation.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
import logging
import urllib.parse
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, NoReturn

from appsync_events.errors import ErrorDetail
from appsync_events.protocol import codec
from appsync_events.protocol.channels import Channel
from appsync_events.protocol.messages import FailedEvent, PublishedEvent

from . import catalogue, handler_contract as contract
from ._fast import published_events, setters
from .catalogue import (
    PUBLISH_ERROR_TYPE,
    PUBLISH_FAILURE,
    SUBSCRIBE_ERROR_TYPE,
    SUBSCRIBE_FAILURE,
    UNAUTHORIZED_MESSAGE,
    Rejection,
)
from .config import EmulatorConfig, HandlerRef, NamespaceConfig, resolve_callable
from .handler_runtime import Runner
from .validation import size_over
from .verify.base import Identity

__all__ = [
    "EVENT_TOO_LARGE_CODE",
    "EVENT_TOO_LARGE_MESSAGE",
    "PUBLISH_ERROR_TYPE",
    "PUBLISH_FAILURE",
    "SUBSCRIBE_ERROR_TYPE",
    "SUBSCRIBE_FAILURE",
    "ChannelInfo",
    "HandlerContext",
    "HandlerError",
    "HandlerFailure",
    "HandlerRejection",
    "NamespaceInfo",
    "OperationInfo",
    "PublishOutcome",
    "RequestInfo",
    "Unauthorized",
    "Util",
    "default_outcome",
    "resolve_handler",
    "run_on_publish",
    "run_on_subscribe",
    "util",
]

log = logging.getLogger("appsync_emulator.handlers")

EVENT_TOO_LARGE_CODE: Final = catalogue.EVENT_TOO_LARGE
EVENT_TOO_LARGE_MESSAGE: Final = catalogue.event_too_large_message(240 * 1024)
"""The observed ``failed`` entry for an oversize event (at the default limit)."""

_HANDLER_FAILURE_STATUS: Final = 500


# --- what handlers raise ----------------------------------------------------------------


class Unauthorized(Exception):
    """Raise from a handler to reject the request as ``util.unauthorized()`` does.

    ``onPublish``: ``publish_error`` ``UnauthorizedException`` (HTTP 401).
    ``onSubscribe``: ``subscribe_error`` errorType ``Unauthorized``
    (docs: protocol.rst, "onSubscribe").
    """

    def __init__(self, message: str = UNAUTHORIZED_MESSAGE) -> None:
        self.message = message
        super().__init__(message)


class HandlerError(Exception):
    """Raise from a handler to reject the request as ``util.error(msg, type)`` does.

    Attributes:
        message: the message the client receives.
        error_type: the errorType; ``None`` picks :data:`PUBLISH_ERROR_TYPE` or
            :data:`SUBSCRIBE_ERROR_TYPE`.
    """

    def __init__(self, message: str, error_type: str | None = None) -> None:
        self.message = message
        self.error_type = error_type
        super().__init__(message)


class HandlerFailure(Exception):
    """A handler misbehaved (raised, returned garbage, timed out, could not be imported).

    This is what the shell's ``on_error`` hook receives; ``__cause__`` is the original error.
    """


class HandlerRejection(Rejection):
    """The handler rejected the whole request (``status``: 401 unauthorized, 403
    ``util.error``, 500 handler crash); the shell answers with its ``errors``."""


# --- the context ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    """``ctx.info.channel``: the path as requested (wildcard included on subscribe)."""

    path: str
    segments: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NamespaceInfo:
    """``ctx.info.channelNamespace``."""

    name: str


@dataclass(frozen=True, slots=True)
class OperationInfo:
    """``ctx.info``."""

    channel: ChannelInfo
    channel_namespace: NamespaceInfo
    operation: str
    """``"PUBLISH"`` or ``"SUBSCRIBE"``."""

    @property
    def channelNamespace(self) -> NamespaceInfo:
        return self.channel_namespace


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """``ctx.request``: headers (lower-case names, ``cookie`` removed) and domain name."""

    headers: Mapping[str, str]
    domain_name: str | None = None

    @property
    def domainName(self) -> str | None:
        return self.domain_name


class Util:
    """The subset of APPSYNC_JS ``util`` that handlers need.  Use :data:`util`.

    See docs: protocol.rst, "onPublish".
    """

    @staticmethod
    def unauthorized() -> NoReturn:
        raise Unauthorized()

    @staticmethod
    def error(message: str, error_type: str | None = None) -> NoReturn:
        raise HandlerError(message, error_type)

    @staticmethod
    def auto_id() -> str:
        return str(uuid.uuid4())

    @staticmethod
    def now_iso8601() -> str:
        now = datetime.now(UTC)
        return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"

    @staticmethod
    def base64_encode(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    @staticmethod
    def base64_decode(text: str) -> str:
        return base64.b64decode(text).decode()

    @staticmethod
    def url_encode(text: str) -> str:
        return urllib.parse.quote(text, safe="")

    @staticmethod
    def url_decode(text: str) -> str:
        return urllib.parse.unquote(text)


util: Final = Util()


@dataclass(slots=True)
class HandlerContext:
    """The ``ctx`` a handler receives (docs: protocol.rst, "The context").

    ``events`` (publish only, else ``None``) are dicts ``{"id": ..., "payload": <parsed
    JSON>}``; a handler may mutate and return them.  Both ``ctx.info.channel`` and the
    top-level ``ctx.channel`` spellings exist, as the AWS docs use both.
    """

    identity: Mapping[str, Any] | None
    """``ctx.identity`` for the auth mode (docs: protocol.rst, "The identity handlers see");
    ``None`` for API_KEY."""
    request: RequestInfo
    info: OperationInfo
    events: list[dict[str, Any]] | None
    auth_mode: str | None = None
    """The auth mode that authorized the request (not in APPSYNC_JS; handy in tests)."""
    transport: str = "websocket"
    """``"websocket"`` or ``"http"`` for a publish (not in APPSYNC_JS; handy in tests)."""
    stash: dict[str, Any] = field(default_factory=dict)
    util: Util = util

    @property
    def channel(self) -> ChannelInfo:
        return self.info.channel

    @property
    def channel_namespace(self) -> NamespaceInfo:
        return self.info.channel_namespace

    @property
    def channelNamespace(self) -> NamespaceInfo:
        return self.info.channel_namespace


def _request_info(headers: Mapping[str, str], domain_name: str | None) -> RequestInfo:
    # docs: protocol.rst, "The identity handlers see":
    # "ctx.request.headers holds the request headers, except cookie".
    clean = {k.lower(): v for k, v in headers.items() if k.lower() != "cookie"}
    return RequestInfo(headers=clean, domain_name=domain_name or clean.get("host"))


def _context(
    channel: Channel,
    operation: str,
    identity: Identity | None,
    headers: Mapping[str, str],
    events: list[dict[str, Any]] | None,
) -> HandlerContext:
    return HandlerContext(
        identity=None if identity is None else _identity(identity),
        request=_request_info(headers, None),
        info=OperationInfo(
            channel=ChannelInfo(path=channel.path, segments=_segments(channel)),
            channel_namespace=NamespaceInfo(name=channel.namespace),
            operation=operation,
        ),
        events=events,
        auth_mode=None if identity is None else str(identity.mode),
    )


def _identity(identity: Identity) -> Mapping[str, Any] | None:
    """``ctx.identity``; a Cognito user in no group has ``groups: []``.

    AWS's context reference for Event API handlers types the Cognito identity's ``groups``
    as a list of strings, so a handler can write ``"admins" in ctx.identity["groups"]``
    (or ``ctx.identity.groups.includes(...)`` in APPSYNC_JS) for every user.
    """
    ctx = identity.ctx
    if ctx is not None and identity.mode == "AMAZON_COGNITO_USER_POOLS":
        if "groups" not in ctx or ctx["groups"] is None:
            return {**ctx, "groups": []}
    return ctx


def _segments(channel: Channel) -> tuple[str, ...]:
    return (*channel.segments, "*") if channel.wildcard else channel.segments


# --- resolving and calling ----------------------------------------------------------------


def resolve_handler(ref: HandlerRef) -> Callable[..., Any]:
    """Return the callable named by ``ref`` (a callable, or ``"package.module:function"``).

    Raises:
        ConfigError: the module cannot be imported or has no such callable.
    """
    return resolve_callable(ref, what="handler")


async def _call(ref: HandlerRef, ctx: HandlerContext, limit: float) -> Any:
    """Call a sync or async handler; a coroutine result is awaited within ``limit`` s."""
    func = resolve_handler(ref)
    result = func(ctx)
    if inspect.isawaitable(result):
        async with asyncio.timeout(limit):
            result = await result
    return result


ErrorHook = Callable[[BaseException], None]


def _report(on_error: ErrorHook | None, what: str, exc: BaseException) -> None:
    log.error("%s", what, exc_info=exc)
    if on_error is not None:
        try:
            on_error(exc)
        except Exception:  # the hook must not turn a handler bug into a server crash
            log.exception("on_error hook failed")


def _failure(message: str, cause: BaseException | None = None) -> HandlerFailure:
    failure = HandlerFailure(message)
    failure.__cause__ = cause
    return failure


# --- onSubscribe --------------------------------------------------------------------------


async def run_on_subscribe(
    config: EmulatorConfig,
    namespace: NamespaceConfig,
    *,
    channel: Channel,
    identity: Identity | None,
    request_headers: Mapping[str, str],
    on_error: ErrorHook | None = None,
    runner: Runner | None = None,
) -> None:
    """Run the namespace's ``on_subscribe`` handler, if any.

    Args:
        channel: the requested pattern (``ctx.info.channel.path`` keeps the ``/*``).
        on_error: receives a :class:`HandlerFailure` when the handler crashes.
        runner: the namespace's APPSYNC_JS code or direct Lambda; ``None`` runs the
            Python ``namespace.on_subscribe`` (if any).

    Raises:
        HandlerRejection: the handler rejected the subscription (or crashed).

    Cancellation propagates into an async handler; a handler gets
    ``config.handler_timeout`` seconds before it counts as crashed.
    """
    if runner is not None:
        event = _contract_context(channel, "SUBSCRIBE", identity, request_headers, None)
        outcome = await _run_contract(runner.on_subscribe, event)
        _raise_subscribe(outcome, namespace, channel, on_error)
        return
    if namespace.on_subscribe is None:
        return
    ctx = _context(channel, "SUBSCRIBE", identity, request_headers, None)
    try:
        await _call(namespace.on_subscribe, ctx, config.handler_timeout)
    except Unauthorized as exc:
        # util.unauthorized() in onSubscribe is errorType "Unauthorized", as AWS documents and
        # as observed (docs: protocol.rst, "onSubscribe").
        raise HandlerRejection([catalogue.handler_unauthorized(exc.message)], status=401) from None
    except HandlerError as exc:
        error_type = exc.error_type or SUBSCRIBE_ERROR_TYPE
        raise HandlerRejection(
            [ErrorDetail(error_type=error_type, message=exc.message)], status=403
        ) from None
    except Exception as exc:
        what = f"on_subscribe handler of namespace {namespace.name!r} failed on {channel.path}"
        _report(on_error, what, _failure(f"{what}: {exc!r}", exc))
        raise HandlerRejection([SUBSCRIBE_FAILURE], status=_HANDLER_FAILURE_STATUS) from None


# --- onPublish ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishOutcome:
    """What the shell answers and broadcasts after ``on_publish``.

    Events the handler filtered out are listed in ``successful`` although nothing is
    broadcast for them (EMULATOR-CHOICE, docs: emulator-fidelity.rst,
    "Events a handler filtered out").
    """

    broadcast: tuple[str, ...]
    """Event JSON texts to fan out, in index order."""
    successful: tuple[PublishedEvent, ...]
    failed: tuple[FailedEvent, ...]


_SET_BROADCAST, _SET_SUCCESSFUL, _SET_FAILED = setters(PublishOutcome)


def _all_published(
    events: tuple[str, ...], successful: tuple[PublishedEvent, ...]
) -> PublishOutcome:
    # PublishOutcome(broadcast=events, successful=successful, failed=()), once per
    # publish: its slots set directly (see _fast).
    outcome: PublishOutcome = object.__new__(PublishOutcome)
    _SET_BROADCAST(outcome, events)
    _SET_SUCCESSFUL(outcome, successful)
    _SET_FAILED(outcome, ())
    return outcome


def _too_large(config: EmulatorConfig, text: str) -> bool:
    return size_over(text, config.limits.max_event_bytes) is not None


def default_outcome(
    config: EmulatorConfig, events: tuple[str, ...], identifiers: tuple[str, ...]
) -> PublishOutcome:
    """What :func:`run_on_publish` returns for a namespace without an ``on_publish``
    handler: every event broadcast, but those over ``limits.max_event_bytes`` failed."""
    limit = config.limits.max_event_bytes
    if not events or 4 * max(map(len, events)) <= limit:  # none can be too large
        return _all_published(events, published_events(identifiers))
    broadcast: list[str] = []
    successful: list[PublishedEvent] = []
    failed: list[FailedEvent] = []
    for index, (text, ident) in enumerate(zip(events, identifiers, strict=True)):
        if _too_large(config, text):
            failed.append(_too_large_entry(ident, index))
        else:
            broadcast.append(text)
            successful.append(PublishedEvent(identifier=ident, index=index))
    return PublishOutcome(
        broadcast=tuple(broadcast), successful=tuple(successful), failed=tuple(failed)
    )


def _too_large_entry(ident: str, index: int) -> FailedEvent:
    return FailedEvent(
        identifier=ident, index=index, code=EVENT_TOO_LARGE_CODE, message=EVENT_TOO_LARGE_MESSAGE
    )


def _parse_events(events: tuple[str, ...], identifiers: tuple[str, ...]) -> list[dict[str, Any]]:
    parsed = []
    for index, (text, ident) in enumerate(zip(events, identifiers, strict=True)):
        try:
            payload = json.loads(text)
        except ValueError as exc:
            raise HandlerRejection(
                [catalogue.invalid_event_json(index, str(exc))],
                status=400,
            ) from None
        parsed.append({"id": ident, "payload": payload})
    return parsed


def _dump(payload: Any) -> str:
    """Serialise a handler's payload (compact, UTF-8 kept).

    Raises:
        TypeError: not JSON-serialisable.
        ValueError: NaN/Infinity, or a lone surrogate (no text frame can carry it).
    """
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    if not codec.is_frame_text(text):
        raise ValueError("a string holds a lone surrogate, which no text frame can carry")
    return text


def _apply_result(
    config: EmulatorConfig, result: Any, identifiers: tuple[str, ...]
) -> PublishOutcome:
    """Turn ``on_publish``'s return value into an outcome (docs: protocol.rst, "onPublish").

    Raises:
        HandlerFailure: the value breaks the contract (not a list, unknown or duplicate id,
            no payload, payload not JSON-serialisable).
    """
    index_of = {ident: i for i, ident in enumerate(identifiers)}
    if result is None:
        result = []
    if isinstance(result, Mapping | str | bytes) or not isinstance(result, Sequence):
        raise HandlerFailure(
            f"on_publish must return a list of events or None, not {type(result).__name__}"
        )
    out: dict[int, str] = {}
    failed: dict[int, FailedEvent] = {}
    for position, entry in enumerate(result):
        if entry is None:  # docs: protocol.rst, "onPublish": null entries are ignored
            continue
        if not isinstance(entry, Mapping):
            raise HandlerFailure(
                f"on_publish returned {type(entry).__name__} at position {position}, "
                "expected {'id': ..., 'payload': ...}"
            )
        ident = entry.get("id")
        if not isinstance(ident, str) or ident not in index_of:
            raise HandlerFailure(
                f"on_publish returned unknown event id {ident!r} at position {position}"
            )
        index = index_of[ident]
        if index in out or index in failed:
            raise HandlerFailure(f"on_publish returned event id {ident!r} twice")
        if entry.get("error") is not None:
            failed[index] = FailedEvent(
                identifier=ident,
                index=index,
                code=config.failed_event_code,
                message=str(entry["error"]),
            )
            continue
        if "payload" not in entry:
            raise HandlerFailure(f"on_publish returned event {ident!r} without a payload")
        try:
            text = _dump(entry["payload"])
        except (TypeError, ValueError) as exc:
            raise HandlerFailure(
                f"on_publish returned a payload for event {ident!r} that is not JSON: {exc}"
            ) from exc
        if _too_large(config, text):
            failed[index] = _too_large_entry(ident, index)
        else:
            out[index] = text
    successful = tuple(
        PublishedEvent(identifier=ident, index=i)
        for i, ident in enumerate(identifiers)
        if i not in failed
    )
    return PublishOutcome(
        broadcast=tuple(out[i] for i in sorted(out)),
        successful=successful,
        failed=tuple(failed[i] for i in sorted(failed)),
    )


async def run_on_publish(
    config: EmulatorConfig,
    namespace: NamespaceConfig,
    *,
    channel: Channel,
    events: tuple[str, ...],
    identifiers: tuple[str, ...],
    identity: Identity | None,
    request_headers: Mapping[str, str],
    operation_transport: str = "websocket",
    on_error: ErrorHook | None = None,
    runner: Runner | None = None,
) -> PublishOutcome:
    """Run the namespace's ``on_publish`` handler (or the default forward-all).

    Args:
        events: the event JSON texts as published (already validated).
        identifiers: one server identifier per event (``ctx.events[i].id``).
        operation_transport: ``"websocket"`` or ``"http"`` (kept for the recorder/handlers).
        on_error: receives a :class:`HandlerFailure` when the handler crashes or breaks its
            contract; the request is then answered with :data:`PUBLISH_FAILURE`.
        runner: the namespace's APPSYNC_JS code or direct Lambda; ``None`` runs the
            Python ``namespace.on_publish`` (or forwards every event).

    Returns:
        The texts to broadcast and the ``successful``/``failed`` lists.

    Raises:
        HandlerRejection: ``Unauthorized`` (401), ``HandlerError`` (403) or a handler
            failure (500); the shell sends ``publish_error`` or the HTTP error.

    Cancellation propagates into an async handler; a handler gets
    ``config.handler_timeout`` seconds before it counts as crashed.
    """
    if len(events) != len(identifiers):
        raise ValueError(f"{len(events)} events but {len(identifiers)} identifiers")
    if runner is not None:
        parsed = _parse_events(events, identifiers)
        event = _contract_context(channel, "PUBLISH", identity, request_headers, parsed)
        published = await _run_contract(runner.on_publish, event)
        return _publish_outcome(config, published, identifiers, namespace, channel, on_error)
    if namespace.on_publish is None:
        return default_outcome(config, events, identifiers)
    ctx = _context(
        channel, "PUBLISH", identity, request_headers, _parse_events(events, identifiers)
    )
    ctx.transport = operation_transport
    try:
        result = await _call(namespace.on_publish, ctx, config.handler_timeout)
        return _apply_result(config, result, identifiers)
    except Unauthorized as exc:
        raise HandlerRejection(
            [catalogue.unauthorized_detail(exc.message)],
            status=401,
        ) from None
    except HandlerError as exc:
        error_type = exc.error_type or PUBLISH_ERROR_TYPE
        raise HandlerRejection(
            [ErrorDetail(error_type=error_type, message=exc.message)], status=403
        ) from None
    except Exception as exc:
        what = f"on_publish handler of namespace {namespace.name!r} failed on {channel.path}"
        failure = exc if isinstance(exc, HandlerFailure) else _failure(f"{what}: {exc!r}", exc)
        _report(on_error, what, failure)
        raise HandlerRejection([PUBLISH_FAILURE], status=_HANDLER_FAILURE_STATUS) from None


# --- APPSYNC_JS code and direct Lambdas (the handler contract) ----------------------------


def _contract_context(
    channel: Channel,
    operation: contract.Operation,
    identity: Identity | None,
    headers: Mapping[str, str],
    events: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    return contract.build_context(
        operation=operation,
        channel=channel.path,
        identity=None if identity is None else _identity(identity),
        headers=headers,
        events=None if events is None else [(e["id"], e["payload"]) for e in events],
    )


async def _run_contract(call: Callable[[dict[str, Any]], Any], ctx: dict[str, Any]) -> Any:
    """Call a runner; an exception it lets out (a bug, not the handler's) is a crash."""
    try:
        return await call(ctx)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.exception("the handler runner failed")
        return contract.Crash(kind=contract.CrashKind.UNAVAILABLE, detail=repr(exc))


def _crash_failure(
    op: str, namespace: NamespaceConfig, channel: Channel, crash: contract.Crash
) -> tuple[str, HandlerFailure]:
    what = f"{op} handler of namespace {namespace.name!r} failed on {channel.path}"
    return what, HandlerFailure(f"{what} ({crash.kind}): {crash.detail}")


def _raise_subscribe(
    outcome: contract.SubscribeOutcome,
    namespace: NamespaceConfig,
    channel: Channel,
    on_error: ErrorHook | None,
) -> None:
    match outcome:
        case contract.Accept():
            return
        case contract.Deny(message=message):
            raise HandlerRejection([catalogue.handler_unauthorized(message)], status=401)
        case contract.Reject(message=message, error_type=error_type, public=True):
            detail = ErrorDetail(error_type=error_type or SUBSCRIBE_ERROR_TYPE, message=message)
            raise HandlerRejection([detail], status=403)
        case contract.Reject():
            raise HandlerRejection([SUBSCRIBE_FAILURE], status=403)
        case contract.Crash():
            what, failure = _crash_failure("onSubscribe", namespace, channel, outcome)
            _report(on_error, what, failure)
            raise HandlerRejection([SUBSCRIBE_FAILURE], status=_HANDLER_FAILURE_STATUS)


def _publish_outcome(
    config: EmulatorConfig,
    outcome: contract.PublishOutcome,
    identifiers: tuple[str, ...],
    namespace: NamespaceConfig,
    channel: Channel,
    on_error: ErrorHook | None,
) -> PublishOutcome:
    # "Writing event handlers" and "Direct data source integrations using Lambda" (AWS
    # AppSync Events developer guide) describe each outcome; see the module docstring.
    match outcome:
        case contract.Broadcast():
            try:
                return _broadcast(config, outcome, identifiers)
            except ValueError as exc:  # a payload string no text frame can carry
                outcome = contract.Crash(kind=contract.CrashKind.MALFORMED, detail=str(exc))
        case contract.Deny(message=message):
            raise HandlerRejection([catalogue.unauthorized_detail(message)], status=401)
        case contract.Reject(message=message, error_type=error_type, public=True):
            detail = ErrorDetail(error_type=error_type or PUBLISH_ERROR_TYPE, message=message)
            raise HandlerRejection([detail], status=403)
        case contract.Reject():
            # A Lambda's top-level `error` fails the whole request; AWS logs the message
            # and does not return it.  DIVERGENCE: the frame AWS sends is not documented;
            # the emulator sends its generic processing error.
            raise HandlerRejection([PUBLISH_FAILURE], status=403)
    assert isinstance(outcome, contract.Crash)
    what, failure = _crash_failure("onPublish", namespace, channel, outcome)
    _report(on_error, what, failure)
    raise HandlerRejection([PUBLISH_FAILURE], status=_HANDLER_FAILURE_STATUS)


def _broadcast(
    config: EmulatorConfig, outcome: contract.Broadcast, identifiers: tuple[str, ...]
) -> PublishOutcome:
    """Raises ValueError for a payload with a lone surrogate."""
    failed: dict[int, FailedEvent] = {
        f.index: FailedEvent(
            identifier=f.id, index=f.index, code=config.failed_event_code, message=f.message
        )
        for f in outcome.failed
    }
    texts: list[str] = []
    for event in outcome.events:  # in the order the handler returned them
        text = _dump(event.payload)
        if _too_large(config, text):
            failed[event.index] = _too_large_entry(event.id, event.index)
        else:
            texts.append(text)
    # EMULATOR-CHOICE (as for Python handlers): an event the handler dropped is listed in
    # `successful` although nothing is broadcast for it.
    return PublishOutcome(
        broadcast=tuple(texts),
        successful=tuple(
            PublishedEvent(identifier=ident, index=i)
            for i, ident in enumerate(identifiers)
            if i not in failed
        ),
        failed=tuple(failed[i] for i in sorted(failed)),
    )
