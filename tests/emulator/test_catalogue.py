"""The error catalogue: every factory formats the exact text it documents."""

from __future__ import annotations

from appsync_emulator import catalogue
from appsync_events.errors import ErrorDetail


def test_catalogue_auth_entries() -> None:
    """Denials are UnauthorizedException 401; IAM problems BadRequestException."""
    assert catalogue.UNAUTHORIZED == ErrorDetail(
        error_type="UnauthorizedException",
        message="You are not authorized to make this call.",
        error_code=401,
    )
    assert catalogue.bad_request("bad scope", 400) == ErrorDetail(
        error_type="BadRequestException", message="bad scope", error_code=400
    )
    assert catalogue.handler_unauthorized("no") == ErrorDetail(
        error_type="Unauthorized", message="no"
    )


def test_catalogue_http_and_queue_entries() -> None:
    """The 404, 405 and slow-consumer entries name what happened."""
    assert catalogue.not_found("/x") == ErrorDetail(
        error_type="NotFoundException", message="No route for /x"
    )
    assert catalogue.method_not_allowed("PUT is not supported") == ErrorDetail(
        error_type="MethodNotAllowedException", message="PUT is not supported"
    )
    assert catalogue.send_queue_overflow(10) == ErrorDetail(
        error_type="SlowConsumer", message="more than 10 frames waiting: closed 1008"
    )


def test_catalogue_sigv4_diagnostics() -> None:
    """The SigV4 parse errors quote the offending part."""
    assert catalogue.sigv4_unsupported_algorithm("AWS4", "AWS4-HMAC-SHA256") == (
        "Unsupported signing algorithm 'AWS4'; expected AWS4-HMAC-SHA256"
    )
    assert catalogue.sigv4_malformed_signed_headers("host;;x") == (
        "SignedHeaders 'host;;x' is malformed"
    )
    assert catalogue.sigv4_bad_date_format("2024") == (
        "X-Amz-Date '2024' is not in the form YYYYMMDDTHHMMSSZ"
    )
    assert catalogue.sigv4_bad_date("20241399T000000Z") == (
        "X-Amz-Date '20241399T000000Z' is not a valid time"
    )
