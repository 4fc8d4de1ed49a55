"""AWS_IAM verifier: SigV4 over the WebSocket virtual request and over real HTTP publishes.

The virtual request is described in docs: protocol.rst, "IAM (SigV4)".
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from botocore.credentials import Credentials
from freezegun import freeze_time

from appsync_emulator.config import IamCredentials
from appsync_emulator.verify import AuthFailure, AuthRequest, Operation, Transport
from appsync_emulator.verify.iam import (
    INVALID_TOKEN_MESSAGE,
    SIGNATURE_MISMATCH_MESSAGE,
    IamVerifier,
    parse_authorization,
)
from appsync_events.authorizer import sign_request
from appsync_events.errors import ErrorDetail
from appsync_events.protocol.signing import signing_body

from .auth_helpers import (
    ACCESS_KEY,
    HOST,
    REGION,
    SECRET_KEY,
    SESSION_TOKEN,
    TEMP_ACCESS_KEY,
    TEMP_SECRET_KEY,
    botocore_sign,
    signed_ws,
    ws_request,
)

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
CREDS = (
    IamCredentials(access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY, username="alice"),
    IamCredentials(
        access_key_id=TEMP_ACCESS_KEY,
        secret_access_key=TEMP_SECRET_KEY,
        session_token=SESSION_TOKEN,
        account_id="210987654321",
    ),
)


def verifier(*, strict: bool = False) -> IamVerifier:
    # HOST is an AWS name: the emulator only takes it as its own when listed.
    return IamVerifier(CREDS, region=REGION, strict_aws_escaping=strict, custom_domains=(HOST,))


async def reject(request: AuthRequest, *, strict: bool = False, now: datetime = NOW) -> AuthFailure:
    v = verifier(strict=strict)
    assert v.applies(request)
    with pytest.raises(AuthFailure) as info:
        await v.verify(request, now)
    return info.value


def only(failure: AuthFailure) -> ErrorDetail:
    assert len(failure.errors) == 1
    return failure.errors[0]


def mismatch(failure: AuthFailure) -> str:
    detail = only(failure)
    assert detail.error_type == "BadRequestException"
    assert detail.message.startswith(SIGNATURE_MISMATCH_MESSAGE + "\n\n")
    return detail.message


# --- accepted --------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("operation", "channel", "events"),
    [
        (Operation.CONNECT, None, None),
        (Operation.SUBSCRIBE, "/default/room", None),
        (Operation.SUBSCRIBE, "default/room/*", None),  # signed as sent, no leading slash
        (Operation.PUBLISH, "/default/room", ('{"a":1}', '"text"', "[1,2]")),
    ],
)
async def test_botocore_signature_is_accepted(
    operation: Operation, channel: str | None, events: tuple[str, ...] | None
) -> None:
    request = signed_ws(operation, channel=channel, events=events, at=NOW)
    identity = await verifier().verify(request, NOW)
    assert identity.ctx is not None
    assert identity.ctx["username"] == "alice"
    assert identity.ctx["accountId"] == "123456789012"
    assert identity.ctx["userArn"] == "arn:aws:iam::123456789012:user/alice"
    assert identity.ctx["sourceIp"] == ["127.0.0.1"]
    assert identity.ctx["cognitoIdentityPoolId"] is None


@pytest.mark.asyncio
async def test_client_authorizer_signature_is_accepted() -> None:
    body = signing_body("/default/x", ['{"n":1}'])
    auth = sign_request(
        credentials=Credentials(ACCESS_KEY, SECRET_KEY),
        region=REGION,
        host=HOST,
        body=body,
        now=NOW,
    )
    request = ws_request(Operation.PUBLISH, auth, channel="/default/x", events=('{"n":1}',))
    assert (await verifier().verify(request, NOW)).mode == "AWS_IAM"


@pytest.mark.asyncio
async def test_temporary_credentials_with_session_token_are_accepted() -> None:
    request = signed_ws(
        Operation.CONNECT,
        access_key=TEMP_ACCESS_KEY,
        secret_key=TEMP_SECRET_KEY,
        token=SESSION_TOKEN,
        at=NOW,
    )
    assert (
        "x-amz-security-token" in parse_authorization(request.auth["Authorization"]).signed_headers
    )
    identity = await verifier().verify(request, NOW)
    assert identity.ctx is not None
    assert identity.ctx["accountId"] == "210987654321"
    assert identity.ctx["userArn"].startswith("arn:aws:sts::210987654321:assumed-role/")


@pytest.mark.asyncio
async def test_clock_skew_within_five_minutes_both_ways_is_accepted() -> None:
    for delta in (timedelta(minutes=-5), timedelta(minutes=5)):
        request = signed_ws(Operation.CONNECT, at=NOW + delta)
        await verifier().verify(request, NOW)


@pytest.mark.asyncio
async def test_extra_signed_headers_like_smithy_content_sha256_are_accepted() -> None:
    body = signing_body("/default/a", ['{"x":1}'])
    headers = {
        "accept": "application/json, text/javascript",
        "content-encoding": "amz-1.0",
        "content-type": "application/json; charset=UTF-8",
        "x-amz-content-sha256": hashlib.sha256(body.encode()).hexdigest(),
        "x-amz-user-agent": "aws-amplify/6",
    }
    auth = botocore_sign(body, at=NOW, headers=headers)
    signed = parse_authorization(auth["Authorization"]).signed_headers
    assert "x-amz-content-sha256" in signed
    assert "x-amz-user-agent" in signed
    request = ws_request(Operation.PUBLISH, auth, channel="/default/a", events=('{"x":1}',))
    await verifier().verify(request, NOW)


@pytest.mark.asyncio
async def test_unsigned_extra_keys_in_the_map_are_ignored() -> None:
    request = signed_ws(Operation.SUBSCRIBE, channel="/default/a", at=NOW)
    noisy = ws_request(
        Operation.SUBSCRIBE,
        {**request.auth, "x-amz-user-agent": "whatever", "x-api-key": "da2-zzz"},
        channel="/default/a",
    )
    await verifier().verify(noisy, NOW)


# --- HTML escaping of WebSocket bodies (docs: protocol.rst, "What the verifier checks") -----

EVENTS_WITH_HTML = ('{"m":"<b>&</b> = \'x\'"}',)


@pytest.mark.asyncio
@pytest.mark.parametrize("escape", [False, True])
async def test_plain_and_html_escaped_bodies_are_both_accepted_by_default(escape: bool) -> None:
    request = signed_ws(
        Operation.PUBLISH, channel="/default/a", events=EVENTS_WITH_HTML, escape=escape, at=NOW
    )
    await verifier().verify(request, NOW)


@pytest.mark.asyncio
async def test_strict_escaping_rejects_the_plain_form_and_shows_the_escaped_body() -> None:
    request = signed_ws(Operation.PUBLISH, channel="/default/a", events=EVENTS_WITH_HTML, at=NOW)
    message = mismatch(await reject(request, strict=True))
    escaped_hash = hashlib.sha256(
        signing_body("/default/a", EVENTS_WITH_HTML, html_escape=True).encode()
    ).hexdigest()
    assert escaped_hash in message
    escaped = signed_ws(
        Operation.PUBLISH, channel="/default/a", events=EVENTS_WITH_HTML, escape=True, at=NOW
    )
    await verifier(strict=True).verify(escaped, NOW)


# --- HTTP publish: the real request ------------------------------------------------------------


def http_request(
    auth: dict[str, str], body: bytes, *, path: str = "/event", query: str = ""
) -> AuthRequest:
    return AuthRequest(
        operation=Operation.PUBLISH,
        transport=Transport.HTTP,
        auth=auth,
        channel="/default/a",
        events=('{"a":1}',),
        http_method="POST",
        http_path=path,
        http_query=query,
        http_body=body,
        request_headers=auth,
        source_ip="127.0.0.1",
    )


HTTP_HEADERS = {"content-type": "application/json", "x-amz-user-agent": "test/1"}


@pytest.mark.asyncio
async def test_http_publish_signed_over_the_raw_body_is_accepted() -> None:
    body = b'{"channel":"/default/a","events":["{\\"a\\":1}"],"id":"extra"}'
    auth = botocore_sign(body, at=NOW, headers=HTTP_HEADERS)
    await verifier().verify(http_request(auth, body), NOW)


@pytest.mark.asyncio
async def test_http_publish_with_a_modified_body_is_rejected_with_403() -> None:
    body = b'{"channel":"/default/a","events":["{\\"a\\":1}"]}'
    auth = botocore_sign(body, at=NOW, headers=HTTP_HEADERS)
    failure = await reject(http_request(auth, body.replace(b"a\\", b"b\\")))
    assert failure.status == 403
    message = mismatch(failure)
    assert "\ncontent-type:application/json\n" in message
    assert only(failure).error_code is None


@pytest.mark.asyncio
async def test_http_publish_with_another_path_is_rejected() -> None:
    body = b"{}"
    auth = botocore_sign(body, at=NOW, headers=HTTP_HEADERS)
    message = mismatch(await reject(http_request(auth, body, path="/other")))
    assert "should have been\n'POST\n/other\n\n" in message


# --- the tamper matrix -------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_wrong_secret_is_rejected_with_the_canonical_string() -> None:
    request = signed_ws(Operation.CONNECT, secret_key="not-the-secret", at=NOW)
    failure = await reject(request)
    detail = only(failure)
    assert detail.error_code == 400  # connect (EMULATOR-CHOICE)
    expected = (
        "The Canonical String for this request should have been\n'POST\n/event\n\n"
        "accept:application/json, text/javascript\ncontent-encoding:amz-1.0\n"
        "content-type:application/json; charset=UTF-8\n"
        f"host:{HOST}\nx-amz-date:20260301T120000Z\n\n"
        "accept;content-encoding;content-type;host;x-amz-date\n"
        f"{hashlib.sha256(b'{}').hexdigest()}'\n\n"
        "The String-to-Sign should have been\n'AWS4-HMAC-SHA256\n20260301T120000Z\n"
        f"20260301/{REGION}/appsync/aws4_request\n"
    )
    assert expected in mismatch(failure)
    assert detail.message.endswith("'\n")


@pytest.mark.asyncio
async def test_unknown_access_key_is_unauthorized() -> None:
    request = signed_ws(Operation.CONNECT, access_key="AKIAUNKNOWN000000000", at=NOW)
    detail = only(await reject(request))
    assert detail == ErrorDetail(
        error_type="UnauthorizedException", message=INVALID_TOKEN_MESSAGE, error_code=401
    )


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda r: replace(r, channel="/default/other"), id="channel"),
        pytest.param(lambda r: replace(r, events=('{"a":2}',)), id="event-changed"),
        pytest.param(lambda r: replace(r, events=('{"a":1}', '{"a":1}')), id="event-added"),
        pytest.param(lambda r: replace(r, channel="default/a"), id="channel-normalised"),
    ],
)
async def test_message_changed_after_signing_is_rejected(
    tamper: Callable[[AuthRequest], AuthRequest],
) -> None:
    request = signed_ws(Operation.PUBLISH, channel="/default/a", events=('{"a":1}',), at=NOW)
    failure = await reject(tamper(request))
    mismatch(failure)
    assert only(failure).error_code is None  # not a connect


@pytest.mark.asyncio
async def test_subscribe_signature_does_not_authorize_another_channel() -> None:
    request = signed_ws(Operation.SUBSCRIBE, channel="/default/a", at=NOW)
    mismatch(await reject(replace(request, channel="/default/*")))


@pytest.mark.asyncio
async def test_signed_header_removed_from_the_map_is_rejected() -> None:
    request = signed_ws(Operation.CONNECT, at=NOW)
    auth = {k: v for k, v in request.auth.items() if k != "accept"}
    detail = only(await reject(replace(request, auth=auth)))
    assert detail.error_type == "BadRequestException"
    assert detail.message == (
        "The header 'accept' is listed in SignedHeaders but is missing from the request."
    )


@pytest.mark.asyncio
async def test_signed_header_value_changed_is_rejected() -> None:
    request = signed_ws(Operation.CONNECT, at=NOW)
    auth = {**request.auth, "content-type": "text/plain"}
    assert "\ncontent-type:text/plain\n" in mismatch(await reject(replace(request, auth=auth)))
    # A changed host is caught before the signature (tests/emulator/test_verify_iam_host.py).
    auth = {**request.auth, "host": "evil.example.com"}
    message = only(await reject(replace(request, auth=auth))).message
    assert "'evil.example.com' is not this API's HTTP host" in message


@pytest.mark.asyncio
@pytest.mark.parametrize("name", ["host", "x-amz-date"])
async def test_host_and_date_must_be_signed(name: str) -> None:
    request = signed_ws(Operation.CONNECT, at=NOW)
    auth = dict(request.auth)
    auth["Authorization"] = auth["Authorization"].replace(f";{name}", "").replace(f"{name};", "")
    detail = only(await reject(replace(request, auth=auth)))
    assert detail.message == f"'{name}' must be a 'SignedHeader' in the AWS Authorization."


@pytest.mark.asyncio
async def test_date_six_minutes_old_on_connect_is_signature_expired() -> None:
    request = signed_ws(Operation.CONNECT, at=NOW - timedelta(minutes=6))
    detail = only(await reject(request))
    assert detail.error_type == "BadRequestException"
    assert detail.message == (
        "Signature expired: 20260301T115400Z is now earlier than 20260301T115500Z "
        "(20260301T120000Z - 5 min.)"
    )


@pytest.mark.asyncio
async def test_date_six_minutes_ahead_on_connect_is_not_yet_current() -> None:
    request = signed_ws(Operation.CONNECT, at=NOW + timedelta(minutes=6))
    detail = only(await reject(request))
    assert detail.error_type == "BadRequestException"
    assert detail.message == (
        "Signature not yet current: 20260301T120600Z is still later than 20260301T120500Z "
        "(20260301T120000Z + 5 min.)"
    )


@pytest.mark.asyncio
@pytest.mark.parametrize("minutes", [-6, 6])
async def test_skewed_date_on_a_message_is_unauthorized(minutes: int) -> None:
    request = signed_ws(
        Operation.PUBLISH,
        channel="/default/a",
        events=("1",),
        at=NOW + timedelta(minutes=minutes),
    )
    detail = only(await reject(request))
    assert detail.error_type == "UnauthorizedException"
    assert detail.error_code == 401
    assert detail.message.startswith("Signature expired" if minutes < 0 else "Signature not yet")


@pytest.mark.asyncio
async def test_skew_against_the_frozen_wall_clock() -> None:
    """freezegun: sign now, let 6 minutes pass, verify with the wall clock."""
    with freeze_time("2026-05-01 08:00:00", real_asyncio=True) as frozen:
        request = signed_ws(Operation.SUBSCRIBE, channel="/default/a")
        await verifier().verify(request, datetime.now(UTC))
        frozen.tick(timedelta(minutes=6))
        with pytest.raises(AuthFailure) as info:
            await verifier().verify(request, datetime.now(UTC))
    assert info.value.errors[0].message.startswith("Signature expired: 20260501T080000Z")


@pytest.mark.asyncio
async def test_wrong_region_is_rejected() -> None:
    request = signed_ws(Operation.CONNECT, region="eu-west-1", at=NOW)
    detail = only(await reject(request))
    assert detail.error_type == "BadRequestException"
    assert detail.message == "Credential should be scoped to a valid region, not 'eu-west-1'. "


@pytest.mark.asyncio
async def test_wrong_service_is_rejected() -> None:
    request = signed_ws(Operation.CONNECT, service="execute-api", at=NOW)
    detail = only(await reject(request))
    assert detail.message == "Credential should be scoped to correct service: 'appsync'. "


@pytest.mark.asyncio
async def test_missing_session_token_for_temporary_credentials_is_unauthorized() -> None:
    request = signed_ws(
        Operation.CONNECT, access_key=TEMP_ACCESS_KEY, secret_key=TEMP_SECRET_KEY, at=NOW
    )
    assert "x-amz-security-token" not in {k.lower() for k in request.auth}
    assert only(await reject(request)) == ErrorDetail(
        error_type="UnauthorizedException", message=INVALID_TOKEN_MESSAGE, error_code=401
    )


@pytest.mark.asyncio
async def test_wrong_session_token_is_unauthorized() -> None:
    request = signed_ws(
        Operation.CONNECT,
        access_key=TEMP_ACCESS_KEY,
        secret_key=TEMP_SECRET_KEY,
        token="some-other-token",
        at=NOW,
    )
    assert only(await reject(request)).message == INVALID_TOKEN_MESSAGE


@pytest.mark.asyncio
async def test_session_token_with_long_term_credentials_is_unauthorized() -> None:
    request = signed_ws(Operation.CONNECT, token="unexpected", at=NOW)
    assert only(await reject(request)).message == INVALID_TOKEN_MESSAGE


@pytest.mark.asyncio
async def test_declared_content_sha256_must_match_the_body() -> None:
    body = signing_body("/default/a", ['{"x":1}'])
    headers = {"x-amz-content-sha256": hashlib.sha256(b"other").hexdigest()}
    auth = botocore_sign(body, at=NOW, headers=headers)
    request = ws_request(Operation.PUBLISH, auth, channel="/default/a", events=('{"x":1}',))
    assert only(await reject(request)).message == (
        "The provided 'x-amz-content-sha256' header does not match what was computed."
    )


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("authorization", "fragment"),
    [
        (
            "AWS4-HMAC-SHA256 Credential=a/b/c/d/aws4_request, Signature=" + "0" * 64,
            "SignedHeaders",
        ),
        ("AWS4-HMAC-SHA256 Credential=a/b, SignedHeaders=host, Signature=" + "0" * 64, "malformed"),
        ("AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host, Signature=xyz", "hexadecimal"),
        ("AWS4-HMAC-SHA256 garbage", "malformed component"),
    ],
)
async def test_malformed_authorization_is_a_bad_request(authorization: str, fragment: str) -> None:
    request = ws_request(Operation.CONNECT, {"Authorization": authorization, "host": HOST})
    detail = only(await reject(request))
    assert detail.error_type == "BadRequestException"
    assert fragment in detail.message


@pytest.mark.asyncio
async def test_wrong_terminator_and_scope_date_are_rejected() -> None:
    request = signed_ws(Operation.CONNECT, at=NOW)
    auth = dict(request.auth)
    auth["Authorization"] = auth["Authorization"].replace("/aws4_request", "/aws5_request")
    assert "terminator" in only(await reject(replace(request, auth=auth))).message
    auth = dict(request.auth)
    auth["Authorization"] = auth["Authorization"].replace("/20260301/", "/20260302/")
    assert only(await reject(replace(request, auth=auth))).message.startswith(
        "Date in Credential scope does not match"
    )


def test_applies_only_to_sigv4_maps() -> None:
    v = verifier()
    assert not v.applies(ws_request(Operation.CONNECT, {"x-api-key": "da2-x"}))
    assert not v.applies(ws_request(Operation.CONNECT, {"Authorization": "eyJ.a.b"}))
    assert v.applies(ws_request(Operation.CONNECT, {"authorization": "AWS4-HMAC-SHA256 x"}))


# --- the IAM policy stand-in (docs: protocol.rst, "IAM policies") ------------------------


@pytest.mark.asyncio
async def test_policy_allow_list_by_action_and_namespace() -> None:
    limited = IamCredentials(
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        allowed_actions=("appsync:EventConnect", "appsync:EventSubscribe"),
        allowed_resources=(
            "arn:aws:appsync:us-east-1:123456789012:apis/api1",
            "arn:aws:appsync:us-east-1:123456789012:apis/api1/channelNamespace/public*",
        ),
    )
    v = IamVerifier([limited], region=REGION, api_id="api1", account_id="123456789012")
    await v.verify(signed_ws(Operation.CONNECT, at=NOW), NOW)
    await v.verify(signed_ws(Operation.SUBSCRIBE, channel="/public/a", at=NOW), NOW)
    await v.verify(signed_ws(Operation.SUBSCRIBE, channel="public-news/*", at=NOW), NOW)
    denied = [
        signed_ws(Operation.SUBSCRIBE, channel="/private/a", at=NOW),
        signed_ws(Operation.PUBLISH, channel="/public/a", events=("1",), at=NOW),
    ]
    for request in denied:
        with pytest.raises(AuthFailure) as info:
            await v.verify(request, NOW)
        assert info.value.errors == (
            ErrorDetail(
                error_type="UnauthorizedException",
                message="You are not authorized to make this call.",
                error_code=401,
            ),
        )
    assert v.action_and_resource(denied[1]) == (
        "appsync:EventPublish",
        "arn:aws:appsync:us-east-1:123456789012:apis/api1/channelNamespace/public",
    )
