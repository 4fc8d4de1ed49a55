"""What a namespace handler receives and what it can answer, whatever runs it.

Two runners share this contract: APPSYNC_JS code handlers
(:mod:`appsync_emulator.appsync_js`) and direct Lambda integrations
(:mod:`appsync_emulator.direct_lambda`).  Both get the same *context* (built by
:func:`build_context`) and both answer with a typed outcome:

* publish: :class:`Broadcast` (events to fan out, per-event failures), :class:`Deny`
  (``util.unauthorized()``), :class:`Reject` (``util.error()``) or :class:`Crash`;
* subscribe: :class:`Accept`, :class:`Deny`, :class:`Reject` or :class:`Crash`.

The context follows "AWS AppSync Event API context reference"
(https://docs.aws.amazon.com/appsync/latest/eventapi/context-reference.html) and the
Lambda request shown by Powertools for AWS Lambda (Python), "AppSync Events"
(``payload_request.json``): ``identity``, ``result``, ``request.{headers,domainName}``,
``info.{channel.{path,segments},channelNamespace.name,operation}``, ``error``, ``prev``,
``stash``, ``outErrors`` and, on publish, ``events: [{id, payload}]``.

The rules for a returned event list are those of "Process real-time events with AWS
AppSync event handlers", section "Important rules for onPublish"
(https://docs.aws.amazon.com/appsync/latest/eventapi/channel-namespace-handlers.html):
``null`` entries are ignored, an entry with an ``error`` property is not broadcast but
reported in ``failed``, an unknown event id is an error.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal, TypeAlias

from appsync_events import JSONValue

__all__ = [
    "Accept",
    "Broadcast",
    "Crash",
    "CrashKind",
    "Deny",
    "EventFailure",
    "HeaderValue",
    "OutgoingEvent",
    "PublishOutcome",
    "Reject",
    "SubscribeOutcome",
    "UNAUTHORIZED_MESSAGE",
    "build_context",
    "channel_segments",
    "interpret_publish_result",
]

UNAUTHORIZED_MESSAGE: Final = "You are not authorized to make this call."
"""The message that goes with ``util.unauthorized()`` (AppSync's generic 401 text)."""

HeaderValue: TypeAlias = "str | Sequence[str]"
"""A request header: one value, or every value of a repeated header."""

Operation: TypeAlias = Literal["PUBLISH", "SUBSCRIBE"]


# --- outcomes -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class OutgoingEvent:
    """One event to broadcast, as the handler returned it."""

    id: str
    """The id of the incoming event it replaces."""
    index: int
    """The position of that incoming event in the publish request."""
    payload: JSONValue
    """The (possibly transformed) payload, a decoded JSON value."""

    def text(self) -> str:
        """The payload as compact JSON text (UTF-8 kept), as subscribers receive it."""
        return json.dumps(self.payload, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class EventFailure:
    """An event the handler returned with an ``error``: not broadcast, listed in ``failed``."""

    id: str
    index: int
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Broadcast:
    """The publish goes ahead: broadcast ``events`` and report ``failed``.

    Incoming events the handler dropped appear in neither list.
    """

    events: tuple[OutgoingEvent, ...]
    """In the order the handler returned them."""
    failed: tuple[EventFailure, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Accept:
    """The subscription goes ahead."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Deny:
    """``util.unauthorized()`` (or a Lambda's ``UnauthorizedException``).

    AWS answers a publish with ``UnauthorizedException`` (HTTP 401) and a subscribe with
    a ``subscribe_error`` of errorType ``Unauthorized`` ("Writing event handlers",
    section "Unauthorizing a request").
    """

    message: str = UNAUTHORIZED_MESSAGE


@dataclass(frozen=True, slots=True, kw_only=True)
class Reject:
    """``util.error(message, errorType, data, errorInfo)``: the whole request fails.

    HTTP publish answers 403; WebSocket publish answers ``publish_error`` with
    ``message`` ("Writing event handlers", section "Returning an error").
    """

    message: str
    error_type: str | None = None
    data: JSONValue = None
    error_info: JSONValue = None
    public: bool = True
    """``False`` when AWS only logs ``message`` and does not return it to the client (a
    direct Lambda's top-level ``error`` on publish, "Direct data source integrations using
    Lambda")."""


class CrashKind(enum.StrEnum):
    """Why a handler produced no usable answer."""

    EXCEPTION = "exception"
    """It threw (JS) or raised (Python) something other than the documented errors."""
    TIMEOUT = "timeout"
    """It ran longer than the per-invocation time limit."""
    MEMORY = "memory"
    """It exceeded the per-invocation memory limit."""
    MALFORMED = "malformed"
    """It returned a value that breaks the contract (unknown id, not a list, ...)."""
    UNAVAILABLE = "unavailable"
    """No engine could run it (all busy past the time limit, or the engine is missing)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Crash:
    """The handler misbehaved; the emulator answers with AWS's generic failure."""

    kind: CrashKind
    detail: str
    """What happened, for the log and the test (a JS stack, a Python repr...)."""


PublishOutcome: TypeAlias = Broadcast | Deny | Reject | Crash
"""What ``onPublish`` decided."""
SubscribeOutcome: TypeAlias = Accept | Deny | Reject | Crash
"""What ``onSubscribe`` decided."""


# --- the context --------------------------------------------------------------------------


def channel_segments(path: str) -> list[str]:
    """``info.channel.segments``: the path split on ``/``, wildcard segment kept."""
    return [segment for segment in path.split("/") if segment]


def _headers(headers: Mapping[str, HeaderValue]) -> dict[str, JSONValue]:
    # Context reference, "Request headers": lower-case names, the cookie header is never
    # exposed, and a repeated header is an array of its values.
    out: dict[str, JSONValue] = {}
    for name, value in headers.items():
        key = name.lower()
        if key == "cookie":
            continue
        values = [value] if isinstance(value, str) else list(value)
        previous = out.get(key)
        if isinstance(previous, str):
            values = [previous, *values]
        elif isinstance(previous, list):
            values = [*(str(v) for v in previous), *values]
        out[key] = values[0] if len(values) == 1 else list[JSONValue](values)
    return out


def build_context(
    *,
    operation: Operation,
    channel: str,
    identity: Mapping[str, JSONValue] | None = None,
    headers: Mapping[str, HeaderValue] | None = None,
    domain_name: str | None = None,
    events: Sequence[tuple[str, JSONValue]] | None = None,
) -> dict[str, JSONValue]:
    """Build the handler context (the Lambda event of a direct integration).

    Args:
        operation: ``"PUBLISH"`` or ``"SUBSCRIBE"``.
        channel: the channel path as requested, wildcard included on subscribe; a
            leading ``/`` is added when missing.
        identity: ``ctx.identity`` for the auth mode that authorized the request
            (``None`` for API_KEY).
        headers: the request headers (``cookie`` is dropped).
        domain_name: the custom domain used, ``None`` for the default endpoint.
        events: ``(id, decoded payload)`` pairs, publish only.

    Returns:
        A JSON-ready dict; the namespace is the first channel segment.
    """
    path = channel if channel.startswith("/") else f"/{channel}"
    segments = channel_segments(path)
    return {
        "identity": None if identity is None else dict(identity),
        "result": None,
        "request": {"headers": _headers(headers or {}), "domainName": domain_name},
        "info": {
            "channel": {"path": path, "segments": list[JSONValue](segments)},
            "channelNamespace": {"name": segments[0] if segments else ""},
            "operation": operation,
        },
        "error": None,
        "prev": None,
        "stash": {},
        "outErrors": [],
        "events": [{"id": ident, "payload": payload} for ident, payload in (events or ())],
    }


# --- reading a returned event list ---------------------------------------------------------


@dataclass(slots=True)
class _Collector:
    index_of: dict[str, int]
    seen: set[str] = field(default_factory=set)
    events: list[OutgoingEvent] = field(default_factory=list)
    failed: list[EventFailure] = field(default_factory=list)


class _Malformed(ValueError):
    pass


def _error_text(error: JSONValue) -> str:
    if isinstance(error, str):
        return error
    return json.dumps(error, separators=(",", ":"), ensure_ascii=False)


def _take(collector: _Collector, position: int, entry: JSONValue) -> None:
    if not isinstance(entry, dict):
        raise _Malformed(
            f"returned {_js_type(entry)} at position {position}, expected an event {{id, payload}}"
        )
    ident = entry.get("id")
    if not isinstance(ident, str) or ident not in collector.index_of:
        raise _Malformed(f"returned unknown event id {ident!r} at position {position}")
    if ident in collector.seen:
        raise _Malformed(f"returned event id {ident!r} twice")
    collector.seen.add(ident)
    index = collector.index_of[ident]
    if entry.get("error") is not None:
        collector.failed.append(
            EventFailure(id=ident, index=index, message=_error_text(entry["error"]))
        )
    elif "payload" not in entry:
        raise _Malformed(f"returned event {ident!r} without a payload")
    else:
        collector.events.append(OutgoingEvent(id=ident, index=index, payload=entry["payload"]))


def interpret_publish_result(
    result: JSONValue, incoming_ids: Sequence[str], *, who: str = "onPublish"
) -> Broadcast | Crash:
    """Turn a returned event list into a :class:`Broadcast`.

    Args:
        result: the handler's return value (``null`` means broadcast nothing).
        incoming_ids: the ids of ``ctx.events``, in order.
        who: names the handler in a :class:`Crash` detail.

    Returns:
        The broadcast, or a :data:`CrashKind.MALFORMED` crash when the value breaks the
        rules (not a list, an entry that is not an object, an unknown or repeated id, an
        entry with neither ``payload`` nor ``error``).
    """
    if result is None:
        return Broadcast(events=())
    if not isinstance(result, list):
        return Crash(
            kind=CrashKind.MALFORMED,
            detail=f"{who} must return an array of events or null, not {_js_type(result)}",
        )
    collector = _Collector(index_of={ident: i for i, ident in enumerate(incoming_ids)})
    try:
        for position, entry in enumerate(result):
            if entry is not None:  # "Null values in the returned array are ignored"
                _take(collector, position, entry)
    except _Malformed as exc:
        return Crash(kind=CrashKind.MALFORMED, detail=f"{who} {exc}")
    collector.failed.sort(key=lambda failure: failure.index)
    return Broadcast(events=tuple(collector.events), failed=tuple(collector.failed))


def _js_type(value: JSONValue) -> str:
    match value:
        case bool():
            return "boolean"
        case int() | float():
            return "number"
        case str():
            return "string"
        case dict():
            return "object"
        case _:
            return type(value).__name__
