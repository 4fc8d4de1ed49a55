"""HTTP pieces shared by both endpoints: JSON error responses and request headers."""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from appsync_events.errors import ErrorDetail
from appsync_events.protocol import codec

from ._clock import real_time
from ._logging import LOG_HTTP
from .catalogue import method_not_allowed as not_allowed
from .recorder import ErrorRecord, Recorder

__all__ = [
    "error_response",
    "method_not_allowed",
    "request_headers",
]


def request_headers(request: web.BaseRequest) -> dict[str, str]:
    """The request headers, lower-cased, first value of repeats, no ``cookie``
    (docs: protocol.rst, "The identity handlers see")."""
    out: dict[str, str] = {}
    for key, value in request.headers.items():
        name = key.lower()
        if name != "cookie":
            out.setdefault(name, value)
    return out


def error_response(
    recorder: Recorder,
    status: int,
    errors: Sequence[ErrorDetail],
    *,
    record: bool = True,
) -> web.Response:
    """A JSON error body (``{"errors": [...]}``), recorded unless ``record`` is false."""
    if record:
        recorder.record_error(
            ErrorRecord(
                transport="http",
                frame_type="http",
                errors=tuple(errors),
                status=status,
                time=real_time(),
            )
        )
    LOG_HTTP.info("answering %d: %s", status, "; ".join(str(e) for e in errors))
    return web.Response(
        status=status,
        text=codec.encode_error_body(errors),
        content_type="application/json",
        headers={"Access-Control-Allow-Origin": "*"},
    )


def method_not_allowed(recorder: Recorder, message: str, allow: str) -> web.Response:
    """The 405 answer (not recorded as an error), with the ``Allow`` header."""
    response = error_response(recorder, 405, [not_allowed(message)], record=False)
    response.headers["Allow"] = allow
    return response
