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
