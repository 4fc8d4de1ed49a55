"""``POST /event``: the HTTP publish endpoint, its CORS preflight and the JSON 404/405 answers.

The publish runs in a task owned by the :class:`~appsync_emulator.server.Emulator`, shielded
from the request: a client that goes away mid-request cannot lose a publish that may already
have been broadcast.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from aiohttp import web

from appsync_events.errors import ErrorDetail
from appsync_events.protocol import codec
from appsync_events.protocol.server import check_publish, invalid_message, request_too_large

from . import handlers
from ._http import SHUTTING_DOWN, error_response, method_not_allowed, request_headers
from ._logging import LOG_FAULTS, LOG_HTTP, redact_frame
from .faults import Point
from .verify import AuthFailure, AuthRequest, Operation, Transport

if TYPE_CHECKING:
    from .server import Emulator

__all__ = [
    "CORS_HEADERS",
    "handle_event",
    "not_found",
    "parse_publish_body",
]

CORS_HEADERS: Final[Mapping[str, str]] = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": (
        "*, authorization, content-type, x-api-key, x-amz-date, x-amz-security-token, "
        "x-amz-user-agent, x-amz-content-sha256"
    ),
    "Access-Control-Max-Age": "86400",
}
"""The preflight answer of EMULATOR-CHOICE §6.1."""


async def not_found(emulator: Emulator, request: web.Request) -> web.Response:
    """The JSON 404 of every path no route serves."""
    return error_response(
        emulator.recorder,
        404,
        [ErrorDetail(error_type="NotFoundException", message=f"No route for {request.path}")],
        record=False,
    )


async def handle_event(emulator: Emulator, request: web.Request) -> web.StreamResponse:
    """``/event``: ``OPTIONS`` preflight, ``POST`` publish, 405 for any other method."""
    if request.method == "OPTIONS":
        return web.Response(status=204, headers=CORS_HEADERS)
    if request.method != "POST":
        return method_not_allowed(
            emulator.recorder,
            f"{request.method} is not supported on /event (use POST)",
            "POST, OPTIONS",
        )
    # Keep the publish running if the client goes away mid-request: it may already
    # have been broadcast, and the recorder must see it.
    task = asyncio.ensure_future(_publish(emulator, request))
    emulator.http_tasks.add(task)
    task.add_done_callback(emulator.http_tasks.discard)
    return await asyncio.shield(task)


async def _publish(emulator: Emulator, request: web.Request) -> web.Response:
    limits = emulator.config.limits
    size = request.content_length
    if size is not None and size > limits.max_request_bytes:
        return error_response(
            emulator.recorder, 413, [request_too_large(size, limits.max_request_bytes)]
        )
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return error_response(
            emulator.recorder,
            413,
            [request_too_large(limits.max_request_bytes + 1, limits.max_request_bytes)],
        )
    if len(body) > limits.max_request_bytes:
        return error_response(
            emulator.recorder, 413, [request_too_large(len(body), limits.max_request_bytes)]
        )
    headers = request_headers(request)
    if LOG_HTTP.isEnabledFor(logging.DEBUG):
        LOG_HTTP.debug("< POST %s %s", request.path, redact_frame(body.decode("utf-8", "replace")))
    parsed = parse_publish_body(body)
    if isinstance(parsed, ErrorDetail):
        return error_response(emulator.recorder, 400, [parsed])
    channel_text, events = parsed
    checked = check_publish(
        channel_text,
        events,
        namespace_exists=lambda ns: emulator.config.namespace(ns) is not None,
        max_events=limits.max_events_per_publish,
        max_event_bytes=None,  # oversized events are reported in failed[] (§6.2, observed)
    )
    if isinstance(checked, ErrorDetail):
        return error_response(emulator.recorder, 400, [checked])
    channel = checked
    namespace = emulator.config.namespace(channel.namespace)
    assert namespace is not None  # check_publish verified it
    decision = emulator.plan.decide(Point.PUBLISH, None)
    if decision.reject is not None:
        LOG_FAULTS.info("rejecting HTTP publish to %s (fault)", channel.path)
        return error_response(emulator.recorder, decision.status or 400, decision.reject)
    auth_request = AuthRequest(
        operation=Operation.PUBLISH,
        transport=Transport.HTTP,
        auth=headers,
        channel=channel_text,
        events=events,
        http_method=request.method,
        http_path=request.path,
        http_query=request.query_string,
        http_body=body,
        request_headers=headers,
        source_ip=request.remote,
    )
    try:
        identity = await emulator.authorize(auth_request, emulator.config.publish_modes(namespace))
    except AuthFailure as exc:
        return error_response(emulator.recorder, exc.status, exc.errors)
    try:
        outcome, ids = await emulator.run_publish(
            namespace, channel, events, identity, headers, transport="http", decision=decision
        )
    except handlers.HandlerRejection as exc:
        return error_response(emulator.recorder, exc.status, exc.errors)
    delivered = emulator.deliver_publish(channel, events, ids, outcome, identity, transport="http")
    LOG_HTTP.debug(
        "published %d event(s) to %s: %d delivered", len(events), channel.path, delivered
    )
    reply = emulator.plan.decide(Point.OUTBOUND, None, frame_type="publish_success")
    if reply.drop:
        LOG_FAULTS.info("withholding the HTTP publish response until shutdown (fault)")
        await emulator.closing.wait()
        return error_response(emulator.recorder, 503, [SHUTTING_DOWN])
    if reply.delay or reply.latency:
        await asyncio.sleep(reply.delay + reply.latency)
    text = reply.replace or codec.encode_publish_result(outcome.successful, outcome.failed)
    return web.Response(
        status=200,
        text=text,
        content_type="application/json",
        headers={"Access-Control-Allow-Origin": "*"},
    )


def parse_publish_body(body: bytes) -> tuple[str, tuple[str, ...]] | ErrorDetail:
    """``(channel, events)`` from a ``POST /event`` body, or the ``BadRequestException``."""
    try:
        obj = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        return invalid_message("the body is not valid UTF-8")
    except (ValueError, RecursionError) as exc:
        return invalid_message(f"invalid JSON: {exc}")
    if not isinstance(obj, dict):
        return invalid_message("the body must be a JSON object")
    channel = obj.get("channel")
    if not isinstance(channel, str):
        what = "missing field 'channel'" if channel is None else "'channel' must be a string"
        return invalid_message(what)
    events = obj.get("events")
    if not isinstance(events, list):
        what = "missing field 'events'" if events is None else "'events' must be an array"
        return invalid_message(what)
    for i, event in enumerate(events):
        if not isinstance(event, str):
            return invalid_message(f"events[{i}] must be a string holding JSON text")
    return channel, tuple(events)
