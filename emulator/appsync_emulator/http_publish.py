"""``POST /event``: the HTTP publish endpoint, its CORS preflight and the JSON 404/405 answers.

The publish runs in a task owned by the :class:`~appsync_emulator.server.Emulator`, shielded
from the request: a client that goes away mid-request cannot lose a publish that may already
have been broadcast.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, Final, Protocol

from aiohttp import web

from appsync_events.errors import ErrorDetail, RemoteProtocolError
from appsync_events.protocol import codec
from appsync_events.protocol.messages import Operation

from ._http import error_response, method_not_allowed, request_headers
from ._logging import LOG_FAULTS, LOG_HTTP, redact_frame
from .catalogue import (
    SHUTTING_DOWN,
    Rejection,
    body_timeout,
    invalid_message,
    not_found as no_route,
    request_too_large,
)
from .faults import Point
from .operations import Operations
from .recorder import Recorder
from .validation import check_publish
from .verify import AuthRequest, Transport

__all__ = [
    "CORS_HEADERS",
    "PublishHost",
    "handle_event",
    "not_found",
    "parse_publish_body",
]


class PublishHost(Protocol):
    """What the HTTP publish endpoint needs of the emulator."""

    @property
    def operations(self) -> Operations:
        """The shared operation runner."""
        ...

    @property
    def closing(self) -> asyncio.Event:
        """Set when the server shuts down (withheld responses end)."""
        ...

    @property
    def http_tasks(self) -> set[asyncio.Task[Any]]:
        """The running publishes, awaited at shutdown."""
        ...


CORS_HEADERS: Final[Mapping[str, str]] = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": (
        "*, authorization, content-type, x-api-key, x-amz-date, x-amz-security-token, "
        "x-amz-user-agent, x-amz-content-sha256"
    ),
    "Access-Control-Max-Age": "86400",
}
"""The preflight answer (EMULATOR-CHOICE, docs: emulator-fidelity.rst, "CORS preflight")."""


async def not_found(recorder: Recorder, request: web.Request) -> web.Response:
    """The JSON 404 of every path no route serves."""
    return error_response(recorder, 404, [no_route(request.path)], record=False)


async def handle_event(host: PublishHost, request: web.Request) -> web.StreamResponse:
    """``/event``: ``OPTIONS`` preflight, ``POST`` publish, 405 for any other method."""
    if request.method == "OPTIONS":
        return web.Response(status=204, headers=CORS_HEADERS)
    if request.method != "POST":
        return method_not_allowed(
            host.operations.recorder,
            f"{request.method} is not supported on /event (use POST)",
            "POST, OPTIONS",
        )
    # Keep the publish running if the client goes away mid-request: it may already
    # have been broadcast, and the recorder must see it.
    task = asyncio.ensure_future(_publish(host, request))
    host.http_tasks.add(task)
    task.add_done_callback(host.http_tasks.discard)
    return await asyncio.shield(task)


async def _read_body(
    recorder: Recorder, request: web.Request, limit: int, body_seconds: float
) -> bytes | web.Response:
    # Reading the body is where a peer shows it is slow or gone; each case is one
    # quiet log line and an answer (that a gone peer never reads), never a traceback:
    # - announced or actual size over the limit: 413;
    # - not all of it within ``limits.body_timeout``: 408, and the connection is closed
    #   (the rest of the body is not waited for);
    # - the peer closed or reset the connection: 400, logged at INFO (normal behaviour);
    # - a malformed body framing (bad chunks, short body at EOF): 400.
    size = request.content_length
    if size is not None and size > limit:
        return error_response(recorder, 413, [request_too_large(size, limit)])
    try:
        async with asyncio.timeout(body_seconds if body_seconds > 0 else None):
            body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return error_response(recorder, 413, [request_too_large(limit + 1, limit)])
    except TimeoutError:
        LOG_HTTP.info(
            "POST /event from %s: body not received within %g s", request.remote, body_seconds
        )
        response = error_response(recorder, 408, [body_timeout(body_seconds)])
        response.force_close()
        return response
    except ConnectionError as exc:
        LOG_HTTP.info("POST /event from %s: client went away mid-body (%s)", request.remote, exc)
        return error_response(recorder, 400, [invalid_message("incomplete body")], record=False)
    except web.RequestPayloadError as exc:
        LOG_HTTP.info("POST /event from %s: malformed body (%s)", request.remote, exc)
        return error_response(recorder, 400, [invalid_message(f"malformed body: {exc}")])
    if len(body) > limit:
        return error_response(recorder, 413, [request_too_large(len(body), limit)])
    return body


async def _publish(host: PublishHost, request: web.Request) -> web.Response:
    operations = host.operations
    recorder = operations.recorder
    config = operations.config
    limits = config.limits
    body = await _read_body(recorder, request, limits.max_request_bytes, limits.body_timeout)
    if isinstance(body, web.Response):
        return body
    headers = request_headers(request)
    if LOG_HTTP.isEnabledFor(logging.DEBUG):
        LOG_HTTP.debug("< POST %s %s", request.path, redact_frame(body.decode("utf-8", "replace")))
    parsed = parse_publish_body(body)
    if isinstance(parsed, ErrorDetail):
        return error_response(recorder, 400, [parsed])
    channel_text, events = parsed
    checked = check_publish(
        channel_text,
        events,
        namespace_exists=lambda ns: config.namespace(ns) is not None,
        max_events=limits.max_events_per_publish,
        max_event_bytes=None,  # oversized events are reported in failed[], as AWS does
    )
    if isinstance(checked, ErrorDetail):
        return error_response(recorder, 400, [checked])
    channel = checked
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
        published = await operations.publish(
            channel, events, auth_request, headers, transport="http"
        )
    except Rejection as exc:
        return error_response(recorder, exc.status, exc.errors)
    delivery = operations.deliver(channel, events, published, transport="http")
    LOG_HTTP.debug(
        "published %d event(s) to %s: %d delivered", len(events), channel.path, delivery.frames
    )
    reply = operations.plan.decide(Point.OUTBOUND, None, frame_type="publish_success")
    if reply.drop:
        LOG_FAULTS.info("withholding the HTTP publish response until shutdown (fault)")
        await host.closing.wait()
        return error_response(recorder, 503, [SHUTTING_DOWN])
    if reply.delay or reply.latency:
        await asyncio.sleep(reply.delay + reply.latency)
    outcome = published.outcome
    text = reply.replace or codec.encode_publish_result(outcome.successful, outcome.failed)
    return web.Response(
        status=200,
        text=text,
        content_type="application/json",
        headers={"Access-Control-Allow-Origin": "*"},
    )


def parse_publish_body(body: bytes) -> tuple[str, tuple[str, ...]] | ErrorDetail:
    """``(channel, events)`` from a ``POST /event`` body, or the ``BadRequestException``.

    The shape is the codec's to check (the same wording as the WebSocket frames); the
    channel and the events are validated after, by ``check_publish``.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return invalid_message("the body is not valid UTF-8")
    try:
        return codec.decode_publish_body(text)
    except RemoteProtocolError as exc:
        return invalid_message(exc.reason)
