"""Every error the emulator answers with, in one place.

The WebSocket core (:mod:`.server_protocol`), the endpoints, the fault values, the auth
verifiers and the handler runtime all take their ``errorType`` and message from here, so
one situation always gets one answer.  Where AWS documents or was seen to send an error,
the text is AWS's; where AWS is silent, the text is the emulator's own choice, written to
say what was wrong and how to fix it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from appsync_events.errors import ErrorDetail
from appsync_events.protocol.subprotocol import PROTOCOL_EVENTS

__all__ = [
    "Rejection",
    "BAD_REQUEST",
    "BINARY_FRAME",
    "BROADCAST_FAILED",
    "CONNECTION_UNAUTHORIZED",
    "DUPLICATE_SUBSCRIPTION",
    "EVENT_TOO_LARGE",
    "INVALID_ID",
    "INVALID_TOKEN_MESSAGE",
    "LIMIT_EXCEEDED",
    "MISSING_SUBPROTOCOL",
    "NO_EVENTS",
    "PUBLISH_ERROR_TYPE",
    "PUBLISH_FAILURE",
    "SHUTTING_DOWN",
    "SIGNATURE_MISMATCH_MESSAGE",
    "SIGV4_MALFORMED_SIGNATURE",
    "SIGV4_PAYLOAD_HASH_MISMATCH",
    "SUBSCRIBE_ERROR_TYPE",
    "SUBSCRIBE_FAILURE",
    "THROTTLED",
    "TOKEN_EXPIRED_MESSAGE",
    "TOO_MANY_CONNECTIONS",
    "UNAUTHORIZED",
    "UNAUTHORIZED_MESSAGE",
    "UNSUPPORTED_OPERATION",
    "UPGRADE_REQUIRED",
    "bad_request",
    "body_timeout",
    "event_too_large",
    "event_too_large_message",
    "handler_unauthorized",
    "invalid_channel",
    "invalid_event_json",
    "invalid_message",
    "method_not_allowed",
    "not_found",
    "request_too_large",
    "send_queue_overflow",
    "sigv4_bad_date",
    "sigv4_bad_date_format",
    "sigv4_expired",
    "sigv4_malformed_component",
    "sigv4_malformed_credential",
    "sigv4_malformed_signed_headers",
    "sigv4_mismatch",
    "sigv4_missing_parameter",
    "sigv4_missing_signed_header",
    "sigv4_not_yet_current",
    "sigv4_realtime_host",
    "sigv4_scope_date_mismatch",
    "sigv4_signed_header_not_utf8",
    "sigv4_unsigned_required_header",
    "sigv4_unsupported_algorithm",
    "sigv4_wrong_host",
    "sigv4_wrong_region",
    "sigv4_wrong_service",
    "sigv4_wrong_terminator",
    "subscription_limit",
    "too_many_events",
    "unauthorized_detail",
    "unknown_namespace",
    "unknown_operation",
]

# --- errorType values ----------------------------------------------------------------------

BAD_REQUEST: Final = "BadRequestException"
"""errorType of malformed requests (Amplify treats it as non-retryable)."""
LIMIT_EXCEEDED: Final = "LimitExceededException"
"""errorType of quota breaches (the emulator's choice)."""
EVENT_TOO_LARGE: Final = "EventTooLargeException"
"""errorType (and ``failed[]`` code) of an event over the size limit, as observed."""
PUBLISH_ERROR_TYPE: Final = "BadRequestException"
"""errorType of ``util.error(msg)`` in ``onPublish`` when no type is given.

AWS's documentation shows a placeholder here: the value is the emulator's choice."""
SUBSCRIBE_ERROR_TYPE: Final = "SubscriptionProcessingError"
"""errorType of ``util.error(msg)`` in ``onSubscribe`` (the emulator's choice)."""

# --- authorization -------------------------------------------------------------------------

UNAUTHORIZED_MESSAGE: Final = "You are not authorized to make this call."
"""AWS's message for every denied operation."""
INVALID_TOKEN_MESSAGE: Final = "The security token included in the request is invalid."
"""AWS's message for an unknown IAM access key or a wrong session token."""
SIGNATURE_MISMATCH_MESSAGE: Final = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)
"""AWS's SigV4 mismatch message; the emulator appends the canonical request it expected."""
TOKEN_EXPIRED_MESSAGE: Final = "Token expired"
"""The message for an expired JWT (Cognito and OIDC modes)."""


def unauthorized_detail(message: str = UNAUTHORIZED_MESSAGE) -> ErrorDetail:
    """The ``UnauthorizedException`` entry (errorCode 401) AWS answers denials with."""
    return ErrorDetail(error_type="UnauthorizedException", message=message, error_code=401)


UNAUTHORIZED: Final = unauthorized_detail()
"""The generic denial."""
CONNECTION_UNAUTHORIZED: Final = UNAUTHORIZED
"""``connection_error`` for bad connection auth (observed on AWS)."""


def bad_request(message: str, error_code: int | None = None) -> ErrorDetail:
    """A ``BadRequestException`` entry, e.g. an IAM signature problem."""
    return ErrorDetail(error_type=BAD_REQUEST, message=message, error_code=error_code)


def handler_unauthorized(message: str) -> ErrorDetail:
    """``util.unauthorized()`` in ``onSubscribe``: AWS's errorType there is ``Unauthorized``."""
    return ErrorDetail(error_type="Unauthorized", message=message)


# --- WebSocket frames ----------------------------------------------------------------------

UNSUPPORTED_OPERATION: Final = ErrorDetail(
    error_type="UnsupportedOperation",
    message="Operation not supported through the realtime channel",
)
"""``error`` for an unknown or missing ``type`` (the emulator's choice)."""

DUPLICATE_SUBSCRIPTION: Final = ErrorDetail(
    error_type="DuplicatedOperationError", message="Duplicate subscription ID"
)
"""``subscribe_error`` for an id already pending or active (the emulator's choice)."""

BINARY_FRAME: Final = ErrorDetail(
    error_type=BAD_REQUEST,
    message="Binary frames are not supported: send each message as one JSON text frame",
)
"""``error`` for a binary frame (AWS's answer is unknown)."""

INVALID_ID: Final = ErrorDetail(
    error_type=BAD_REQUEST,
    message="Invalid operation id: it must be 1 to 128 characters of [a-zA-Z0-9-_+]",
)
"""``subscribe_error``/``publish_error`` for an id outside the allowed pattern."""

NO_EVENTS: Final = ErrorDetail(
    error_type=BAD_REQUEST, message="Invalid publish: 'events' must hold at least 1 event"
)
"""``publish_error`` for an empty ``events`` array (a malformed request, not a quota)."""

THROTTLED: Final = ErrorDetail(
    error_type="ThrottlingException",
    message="Rate exceeded: too many publish requests per second on this connection",
)
"""``publish_error`` beyond ``limits.max_publish_per_second``."""

SUBSCRIBE_FAILURE: Final = ErrorDetail(
    error_type="SubscriptionProcessingError",
    message="There was an error processing the operation",
)
"""AWS's generic subscribe failure (a crashed handler, or the ``RejectSubscribe`` fault)."""

PUBLISH_FAILURE: Final = ErrorDetail(
    error_type="PublishProcessingError",
    message="There was an error processing the operation",
)
"""Answer to a publish whose handler crashed.  DIVERGENCE: the real frame is unknown."""

BROADCAST_FAILED: Final = ErrorDetail(
    error_type="MessageProcessingError", message="There was an error processing the message"
)
"""The default ``broadcast_error`` of the ``SendBroadcastError`` fault."""


def unknown_operation(operation_id: str) -> ErrorDetail:
    """``unsubscribe_error`` for an id that is not subscribed (documented by AWS)."""
    return ErrorDetail(
        error_type="UnknownOperationError", message=f"Unknown operation id {operation_id}"
    )


def invalid_message(reason: str) -> ErrorDetail:
    """A frame or body that is not valid JSON, not an object, or has a field of the wrong
    type; ``reason`` is the codec's explanation, e.g. ``invalid JSON: Expecting value...``."""
    return ErrorDetail(error_type=BAD_REQUEST, message=f"Invalid message: {reason}")


def invalid_channel(rule: str) -> ErrorDetail:
    """A channel that breaks the channel syntax, with the broken rule appended."""
    return ErrorDetail(error_type=BAD_REQUEST, message=f"Invalid Channel Format: {rule}")


def unknown_namespace(namespace: str) -> ErrorDetail:
    """A channel whose first segment names no defined namespace (non-retryable: retrying
    cannot create the namespace)."""
    return invalid_channel(f"namespace not found: {namespace}")


def subscription_limit(limit: int) -> ErrorDetail:
    """``subscribe_error`` beyond the per-connection subscription quota."""
    return ErrorDetail(
        error_type=LIMIT_EXCEEDED,
        message=f"Subscription limit exceeded: at most {limit} subscriptions per connection",
    )


def too_many_events(count: int, limit: int) -> ErrorDetail:
    """``publish_error`` for more than ``limit`` events."""
    return ErrorDetail(
        error_type=LIMIT_EXCEEDED,
        message=f"Too many events: {count} in one publish (at most {limit})",
    )


def invalid_event_json(index: int, reason: str) -> ErrorDetail:
    """A publish whose event ``index`` is not JSON text; ``reason`` says why."""
    return ErrorDetail(
        error_type=BAD_REQUEST, message=f"Invalid event at index {index}: not valid JSON: {reason}"
    )


def event_too_large_message(limit: int) -> str:
    """The message of an event over ``limit`` UTF-8 bytes, as AWS words it in ``failed[]``."""
    return f"Transformed event is larger than {_kb(limit)}"


def event_too_large(limit: int) -> ErrorDetail:
    """An event over ``limit`` UTF-8 bytes, as a whole-request error."""
    return ErrorDetail(error_type=EVENT_TOO_LARGE, message=event_too_large_message(limit))


def request_too_large(size: int, limit: int) -> ErrorDetail:
    """A frame or HTTP body over ``limit`` UTF-8 bytes (the emulator's wording)."""
    return ErrorDetail(
        error_type=LIMIT_EXCEEDED,
        message=f"Request is larger than {_kb(limit)} ({size} bytes)",
    )


def body_timeout(seconds: float) -> ErrorDetail:
    """An HTTP body that did not arrive within ``limits.body_timeout`` (answered 408)."""
    return ErrorDetail(
        error_type="RequestTimeoutException",
        message=f"The request body was not received within {seconds:g} s",
    )


def send_queue_overflow(limit: int) -> ErrorDetail:
    """What the recorder notes when a slow consumer's send queue overflows (closed 1008)."""
    return ErrorDetail(
        error_type="SlowConsumer", message=f"more than {limit} frames waiting: closed 1008"
    )


def _kb(limit: int) -> str:
    return f"{limit // 1024}KB" if limit % 1024 == 0 else f"{limit} bytes"


# --- HTTP and the upgrade ------------------------------------------------------------------

SHUTTING_DOWN: Final = ErrorDetail(
    error_type="ServiceUnavailableException", message="The emulator is shutting down"
)
"""503 while the server stops."""

UPGRADE_REQUIRED: Final = ErrorDetail(
    error_type=BAD_REQUEST,
    message=f"WebSocket upgrade required, offering the subprotocol {PROTOCOL_EVENTS!r}",
)
"""400 for a plain GET of the realtime path."""

MISSING_SUBPROTOCOL: Final = ErrorDetail(
    error_type=BAD_REQUEST,
    message=f"Sec-WebSocket-Protocol must offer {PROTOCOL_EVENTS!r}",
)
"""400 for an upgrade that does not offer the events subprotocol."""

TOO_MANY_CONNECTIONS: Final = ErrorDetail(
    error_type=LIMIT_EXCEEDED, message="Too many connections to this emulator"
)
"""429 beyond ``limits.max_connections``."""


def not_found(path: str) -> ErrorDetail:
    """The JSON 404 of a path no route serves."""
    return ErrorDetail(error_type="NotFoundException", message=f"No route for {path}")


def method_not_allowed(message: str) -> ErrorDetail:
    """The JSON 405 of a method a path does not serve."""
    return ErrorDetail(error_type="MethodNotAllowedException", message=message)


# --- IAM (SigV4) diagnostics: AWS's wording where it is known --------------------------------

SIGV4_MALFORMED_SIGNATURE: Final = "Signature must be 64 lower-case hexadecimal characters"
SIGV4_PAYLOAD_HASH_MISMATCH: Final = (
    "The provided 'x-amz-content-sha256' header does not match what was computed."
)


def sigv4_unsupported_algorithm(algorithm: str, expected: str) -> str:
    """An ``Authorization`` value that is not ``AWS4-HMAC-SHA256 ...``."""
    return f"Unsupported signing algorithm {algorithm!r}; expected {expected}"


def sigv4_malformed_component(item: str) -> str:
    """An ``Authorization`` component without ``=``."""
    return f"Authorization header has a malformed component {item!r}"


def sigv4_missing_parameter(name: str) -> str:
    """An ``Authorization`` value without ``Credential``/``SignedHeaders``/``Signature``."""
    return (
        f"Authorization header requires '{name}' parameter. "
        f"Authorization header requires existence of either a 'X-Amz-Date' or a "
        f"'Date' header."
    )


def sigv4_malformed_credential(credential: str) -> str:
    """A ``Credential`` that is not five non-empty parts."""
    return (
        f"Credential {credential!r} is malformed; expected "
        "<access key>/<yyyymmdd>/<region>/<service>/aws4_request"
    )


def sigv4_malformed_signed_headers(value: str) -> str:
    """A ``SignedHeaders`` list with an empty or non-canonical name."""
    return f"SignedHeaders {value!r} is malformed"


def sigv4_wrong_terminator(terminator: str) -> str:
    """A credential scope that does not end in ``aws4_request``."""
    return (
        f"Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'."
    )


def sigv4_wrong_service(service: str) -> str:
    """A credential scope for another service (``service`` is the right one)."""
    return f"Credential should be scoped to correct service: '{service}'. "


def sigv4_wrong_region(region: str) -> str:
    """A credential scope for another region."""
    return f"Credential should be scoped to a valid region, not '{region}'. "


def sigv4_unsigned_required_header(name: str) -> str:
    """``host`` or ``x-amz-date`` missing from ``SignedHeaders``."""
    return f"'{name}' must be a 'SignedHeader' in the AWS Authorization."


def sigv4_missing_signed_header(name: str) -> str:
    """A signed header the request does not carry."""
    return f"The header '{name}' is listed in SignedHeaders but is missing from the request."


def sigv4_signed_header_not_utf8(name: str) -> str:
    """A signed header holding a lone surrogate (the emulator's choice)."""
    return f"The value of the signed header '{name}' is not UTF-8 text."


def sigv4_bad_date_format(timestamp: str) -> str:
    """An ``X-Amz-Date`` that is not ``YYYYMMDDTHHMMSSZ``."""
    return f"X-Amz-Date {timestamp!r} is not in the form YYYYMMDDTHHMMSSZ"


def sigv4_bad_date(timestamp: str) -> str:
    """An ``X-Amz-Date`` of the right form that is no real time."""
    return f"X-Amz-Date {timestamp!r} is not a valid time"


def sigv4_scope_date_mismatch(scope_date: str, timestamp: str) -> str:
    """A credential scope date that is not the day of ``X-Amz-Date``."""
    return (
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of "
        f"date from HTTP: '{scope_date}' != '{timestamp[:8]}', from '{timestamp}'."
    )


def sigv4_expired(timestamp: str, earliest: str, now: str) -> str:
    """A signature more than five minutes old."""
    return f"Signature expired: {timestamp} is now earlier than {earliest} ({now} - 5 min.)"


def sigv4_not_yet_current(timestamp: str, latest: str, now: str) -> str:
    """A signature more than five minutes in the future."""
    return f"Signature not yet current: {timestamp} is still later than {latest} ({now} + 5 min.)"


def sigv4_wrong_host(signed: str, expected: Sequence[str]) -> str:
    """A signature for another host (the emulator's wording: AWS's is a plain mismatch)."""
    wanted = " or ".join(repr(h) for h in expected) or "the host this emulator was reached at"
    return (
        f"The signed 'host' header {signed!r} is not this API's HTTP host; expected "
        f"{wanted}. Sign the HTTP endpoint's host, port included, for every operation, the "
        "WebSocket ones too (an AWS host name must be listed in customDomains)."
    )


def sigv4_realtime_host(signed: str, expected: str) -> str:
    """A signature for the real-time host instead of the HTTP host (a common mistake)."""
    return (
        f"The signed 'host' header {signed!r} is the real-time host (appsync-realtime-api); "
        f"sign the HTTP host {expected!r} instead: AppSync checks every signature against "
        "the HTTP endpoint's host, even on the WebSocket."
    )


def sigv4_mismatch(canonical_request: str, string_to_sign: str) -> str:
    """A wrong signature: AWS's message, then what the emulator expected (to debug signers)."""
    return (
        f"{SIGNATURE_MISMATCH_MESSAGE}\n\n"
        f"The Canonical String for this request should have been\n"
        f"'{canonical_request}'\n\n"
        f"The String-to-Sign should have been\n'{string_to_sign}'\n"
    )


class Rejection(Exception):
    """A refusal carrying the exact AppSync answer: the ``errors`` of the error frame or
    HTTP body, and the HTTP status an HTTP publish gets.

    Verifiers (:class:`~appsync_emulator.verify.AuthFailure`), handlers
    (:class:`~appsync_emulator.handlers.HandlerRejection`) and faults all refuse with it,
    so the endpoints answer every refusal the same way.

    Attributes:
        errors: the ``errors`` entries to answer with.
        status: the HTTP status (401 unauthorized, 403 handler error, 500 handler crash...).
    """

    def __init__(self, errors: Sequence[ErrorDetail], *, status: int) -> None:
        self.errors = tuple(errors)
        self.status = status
        super().__init__("; ".join(str(e) for e in self.errors))

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickle by constructor arguments: ``args`` holds only the joined message.
        return (_rebuild_rejection, (type(self), self.errors, self.status), self.__dict__)


def _rebuild_rejection(
    cls: type[Rejection], errors: tuple[ErrorDetail, ...], status: int
) -> Rejection:
    return cls(errors, status=status)
