"""Tests for the IAM (SigV4) authorizer, docs: protocol.rst, "IAM (SigV4)"."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials, RefreshableCredentials
from botocore.session import Session
from freezegun import freeze_time

from appsync_events.authorizer import IAM, AuthorizeRequest, Operation, sign_request
from appsync_events.authorizer.iam import _SigV4AtTime, request_body
from appsync_events.errors import ConfigurationError, CredentialsError
from appsync_events.protocol.signing import html_escape_json, signing_body

from .conftest import (
    ACCESS_KEY,
    HOST,
    HTTP_ENDPOINT,
    REALTIME_ENDPOINT,
    SECRET_KEY,
    SESSION_TOKEN,
    independent_signature,
    parse_authorization,
)

SIGNED_WITH_TOKEN = (
    "accept",
    "content-encoding",
    "content-type",
    "host",
    "x-amz-date",
    "x-amz-security-token",
)
NOW = datetime(2020, 4, 1, 0, 10, 10, tzinfo=UTC)
TRICKY_EVENTS = ('{"html":"<b>a & b</b>","café":"☕ \\"q\\" \\\\ /"}', "\"x=1 'y'\"", "42")

REQUESTS = [
    AuthorizeRequest(operation=Operation.CONNECT),
    AuthorizeRequest(operation=Operation.SUBSCRIBE, channel="default/a"),
    AuthorizeRequest(operation=Operation.PUBLISH, channel="default/a", events=TRICKY_EVENTS),
    AuthorizeRequest(operation=Operation.UNSUBSCRIBE, channel="default/a"),
]
BODIES = [
    "{}",
    '{"channel":"default/a"}',
    '{"channel":"default/a","events":['
    + ",".join(json.dumps(e, ensure_ascii=False) for e in TRICKY_EVENTS)
    + "]}",
    "{}",
]


def botocore_resign(
    signature: Mapping[str, str], body: str, credentials: ReadOnlyCredentials, region: str
) -> str:
    """Rebuild the request from the map as real headers and sign it with plain botocore.

    Uses ``SigV4Auth.add_auth`` under freezegun at the map's x-amz-date, i.e. botocore's
    own clock path, not the injected-clock signer under test.
    """
    headers = {
        key: value
        for key, value in signature.items()
        if key.lower() not in ("authorization", "x-amz-date", "x-amz-security-token")
    }
    request = AWSRequest(
        method="POST", url=f"https://{signature['host']}/event", data=body, headers=headers
    )
    when = datetime.strptime(signature["x-amz-date"], "%Y%m%dT%H%M%SZ")
    with freeze_time(when):
        SigV4Auth(credentials, "appsync", region).add_auth(request)
    assert request.headers["X-Amz-Date"] == signature["x-amz-date"]
    assert request.headers.get("X-Amz-Security-Token") == signature.get("X-Amz-Security-Token")
    return str(request.headers["Authorization"])


def creds(token: str | None = SESSION_TOKEN) -> ReadOnlyCredentials:
    return ReadOnlyCredentials(ACCESS_KEY, SECRET_KEY, token)


# --- the signature itself -------------------------------------------------------------


def test_request_body_per_operation() -> None:
    """connect/unsubscribe sign {}, subscribe the channel, publish channel and events."""
    assert [request_body(r) for r in REQUESTS] == BODIES


def test_request_body_keeps_channel_and_events_verbatim() -> None:
    """No normalisation of the channel and no escaping of < > & = ' is added."""
    request = AuthorizeRequest(
        operation=Operation.PUBLISH, channel="/default/a/", events=('"<&>"',)
    )
    assert request_body(request) == '{"channel":"/default/a/","events":["\\"<&>\\""]}'


@pytest.mark.parametrize("token", [SESSION_TOKEN, None], ids=["session-token", "no-token"])
@pytest.mark.parametrize("body", BODIES, ids=["connect", "subscribe", "publish", "unsubscribe"])
def test_sign_request_matches_botocore_and_an_independent_signer(
    body: str, token: str | None
) -> None:
    """The map re-verifies with plain botocore and with a hashlib-only SigV4."""
    signature = sign_request(
        credentials=creds(token), region="us-east-1", host=HOST, body=body, now=NOW
    )
    assert signature["Authorization"] == botocore_resign(signature, body, creds(token), "us-east-1")
    parsed = parse_authorization(signature["Authorization"])
    assert parsed.signature == independent_signature(signature, body, SECRET_KEY)
    assert (parsed.access_key, parsed.date, parsed.region, parsed.service) == (
        ACCESS_KEY,
        "20200401",
        "us-east-1",
        "appsync",
    )


def test_sign_request_map_has_the_docs_shape_with_a_session_token() -> None:
    """Keys, order and fixed values are those of AWS's example.

    See docs: protocol.rst, "IAM (SigV4)".
    """
    signature = sign_request(credentials=creds(), region="us-east-1", host=HOST, body="{}", now=NOW)
    assert list(signature) == [
        "accept",
        "content-encoding",
        "content-type",
        "host",
        "x-amz-date",
        "X-Amz-Security-Token",
        "Authorization",
    ]
    assert signature["accept"] == "application/json, text/javascript"
    assert signature["content-encoding"] == "amz-1.0"
    assert signature["content-type"] == "application/json; charset=UTF-8"
    assert signature["host"] == HOST
    assert signature["x-amz-date"] == "20200401T001010Z"
    assert signature["X-Amz-Security-Token"] == SESSION_TOKEN
    assert parse_authorization(signature["Authorization"]).signed_headers == SIGNED_WITH_TOKEN


def test_sign_request_omits_the_security_token_without_one() -> None:
    """Long-term keys sign no x-amz-security-token and the map has none."""
    signature = sign_request(
        credentials=creds(None), region="us-east-1", host=HOST, body="{}", now=NOW
    )
    assert "X-Amz-Security-Token" not in signature
    signed = parse_authorization(signature["Authorization"]).signed_headers
    assert signed == SIGNED_WITH_TOKEN[:-1]


def test_sign_request_signs_the_tricky_payload_as_is() -> None:
    """< > & and non-ASCII are signed raw: the plain body verifies, the escaped one does not."""
    body = BODIES[2]
    assert "<b>a & b</b>" in body
    assert "café" in body
    signature = sign_request(credentials=creds(), region="us-east-1", host=HOST, body=body, now=NOW)
    parsed = parse_authorization(signature["Authorization"])
    assert parsed.signature == independent_signature(signature, body, SECRET_KEY)
    assert parsed.signature != independent_signature(signature, html_escape_json(body), SECRET_KEY)
    assert signature["Authorization"] == botocore_resign(signature, body, creds(), "us-east-1")


def test_sign_request_depends_on_the_exact_channel_spelling() -> None:
    """`/default/a` and `default/a` are different bodies, hence different signatures."""
    one = sign_request(
        credentials=creds(), region="us-east-1", host=HOST, body=signing_body("default/a"), now=NOW
    )
    two = sign_request(
        credentials=creds(), region="us-east-1", host=HOST, body=signing_body("/default/a"), now=NOW
    )
    assert one["Authorization"] != two["Authorization"]


def test_sign_request_uses_the_given_time() -> None:
    """`now` sets x-amz-date and the scope date; an aware non-UTC time is converted."""
    later = datetime(2030, 1, 2, 5, 0, 0, tzinfo=UTC) + timedelta(hours=-6)
    signature = sign_request(
        credentials=creds(), region="eu-west-1", host=HOST, body="{}", now=later
    )
    assert signature["x-amz-date"] == "20300101T230000Z"
    assert parse_authorization(signature["Authorization"]).date == "20300101"
    assert signature["Authorization"] == botocore_resign(signature, "{}", creds(), "eu-west-1")


def test_sign_request_equals_plain_botocore_under_a_frozen_clock() -> None:
    """The injected-clock signer and SigV4Auth.add_auth produce the same headers."""
    body = BODIES[2]
    ours = sign_request(credentials=creds(), region="us-east-1", host=HOST, body=body, now=NOW)
    request = AWSRequest(
        method="POST",
        url=f"https://{HOST}/event",
        data=body.encode(),
        headers={
            "accept": ours["accept"],
            "content-encoding": ours["content-encoding"],
            "content-type": ours["content-type"],
            "host": HOST,
        },
    )
    with freeze_time(NOW):
        SigV4Auth(creds(), "appsync", "us-east-1").add_auth(request)
    assert request.headers["Authorization"] == ours["Authorization"]
    assert request.headers["X-Amz-Date"] == ours["x-amz-date"]


def test_sign_request_freezes_refreshable_credentials() -> None:
    """Static botocore Credentials are accepted and snapshotted."""
    signature = sign_request(
        credentials=Credentials(ACCESS_KEY, SECRET_KEY),
        region="us-east-1",
        host=HOST,
        body="{}",
        now=NOW,
    )
    assert parse_authorization(signature["Authorization"]).access_key == ACCESS_KEY


@pytest.mark.parametrize(
    "bad", [ReadOnlyCredentials(None, None, None), ReadOnlyCredentials("AK", "", None)]
)
def test_sign_request_rejects_empty_credentials(bad: ReadOnlyCredentials) -> None:
    """Credentials without an access key or secret are a CredentialsError."""
    with pytest.raises(CredentialsError, match="no access key or no secret key"):
        sign_request(credentials=bad, region="us-east-1", host=HOST, body="{}", now=NOW)


def test_sign_request_rejects_foreign_credential_objects() -> None:
    """Something that is not botocore credentials is a configuration error."""
    with pytest.raises(ConfigurationError, match="got tuple"):
        sign_request(
            credentials=(ACCESS_KEY, SECRET_KEY),  # type: ignore[arg-type]
            region="us-east-1",
            host=HOST,
            body="{}",
            now=NOW,
        )


# --- AWS's get-vanilla known-answer vector (docs: design.rst, "Checking SigV4") -------------

VANILLA = ReadOnlyCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None)
VANILLA_AUTH = (
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature="
)
VECTORS = [
    ("/", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),  # get-vanilla
    (  # get-vanilla-query-order-key-case
        "/?Param2=value2&Param1=value1",
        "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
    ),
]


def _vanilla_request(path: str) -> AWSRequest:
    return AWSRequest(
        method="GET",
        url=f"https://example.amazonaws.com{path}",
        headers={"Host": "example.amazonaws.com"},
    )


@pytest.mark.parametrize(("path", "expected"), VECTORS)
def test_botocore_reproduces_the_aws_vector(path: str, expected: str) -> None:
    """Plain botocore under freezegun gives AWS's published signature."""
    request = _vanilla_request(path)
    with freeze_time("2015-08-30 12:36:00"):
        SigV4Auth(VANILLA, "service", "us-east-1").add_auth(request)
    assert request.headers["Authorization"] == VANILLA_AUTH + expected


@pytest.mark.parametrize(("path", "expected"), VECTORS)
def test_injected_clock_signer_reproduces_the_aws_vector(path: str, expected: str) -> None:
    """The signer behind sign_request gives AWS's published signature, no clock involved."""
    request = _vanilla_request(path)
    _SigV4AtTime(VANILLA, "service", "us-east-1", "20150830T123600Z").add_auth(request)
    assert request.headers["Authorization"] == VANILLA_AUTH + expected
    assert request.headers["X-Amz-Date"] == "20150830T123600Z"


# --- the IAM authorizer ---------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("request_", "body"),
    list(zip(REQUESTS, BODIES, strict=True)),
    ids=["connect", "subscribe", "publish", "unsubscribe"],
)
async def test_iam_map_for_each_operation(request_: AuthorizeRequest, body: str) -> None:
    """authorize signs the operation's body at the current time, with the derived region."""
    authz = IAM(
        endpoint=HTTP_ENDPOINT, credentials=Credentials(ACCESS_KEY, SECRET_KEY, SESSION_TOKEN)
    )
    with freeze_time("2020-04-01 00:10:10", real_asyncio=True):
        result = await authz.authorize(request_)
    signature = result.authorization
    assert signature["x-amz-date"] == "20200401T001010Z"
    assert signature["host"] == HOST
    assert signature == sign_request(
        credentials=creds(), region="us-east-1", host=HOST, body=body, now=NOW
    )
    assert signature["Authorization"] == botocore_resign(signature, body, creds(), "us-east-1")


@pytest.mark.asyncio
async def test_iam_signs_per_call_at_the_current_time() -> None:
    """Each call signs anew: a later call carries a later date (no reuse of connect's map)."""
    authz = IAM(endpoint=HTTP_ENDPOINT, credentials=creds())
    with freeze_time("2020-04-01 00:10:10", real_asyncio=True) as frozen:
        first = await authz.authorize(REQUESTS[0])
        frozen.tick(600)
        second = await authz.authorize(REQUESTS[0])
    assert (first.authorization["x-amz-date"], second.authorization["x-amz-date"]) == (
        "20200401T001010Z",
        "20200401T002010Z",
    )


def test_iam_derives_the_host_and_region_of_the_docs_example() -> None:
    """AWS's example host gives region us-east-1, from either endpoint.

    The host is described in docs: protocol.rst, "The header- subprotocol", "IAM (SigV4)".
    """
    for endpoint in (HTTP_ENDPOINT, REALTIME_ENDPOINT):
        authz = IAM(endpoint=endpoint)
        assert (authz.host, authz.region) == (HOST, "us-east-1")


def test_iam_derives_a_china_region() -> None:
    """China hosts end in .amazonaws.com.cn."""
    authz = IAM(endpoint="https://abc.appsync-api.cn-northwest-1.amazonaws.com.cn/event")
    assert authz.region == "cn-northwest-1"


def test_iam_takes_an_explicit_region_for_a_custom_domain() -> None:
    """A custom domain keeps its host; the region must be passed."""
    authz = IAM("eu-central-1", "https://api.example.com/event")
    assert (authz.host, authz.region) == ("api.example.com", "eu-central-1")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"endpoint": "https://api.example.com/event"}, "pass region="),
        ({"endpoint": "http://127.0.0.1:9000/event"}, "cannot tell the AWS region"),
        ({"region": "US East"}, "region must look like"),
        ({"endpoint": HTTP_ENDPOINT, "region": "US East"}, "region must look like"),
        ({"endpoint": HTTP_ENDPOINT, "region": "us-west-2"}, "does not match the endpoint"),
        ({"endpoint": "https://h/x", "region": "us-east-1"}, "path must be /event"),
        (
            {"endpoint": HTTP_ENDPOINT, "credentials": creds(), "session": Session()},
            "not both",
        ),
        ({"endpoint": HTTP_ENDPOINT, "credentials": ("a", "b")}, "got tuple"),
        ({"endpoint": HTTP_ENDPOINT, "session": object()}, "anything with get_credentials"),
    ],
)
def test_iam_rejects_bad_configuration(kwargs: dict[str, Any], message: str) -> None:
    """Each configuration mistake raises ConfigurationError saying what to pass."""
    with pytest.raises(ConfigurationError, match=message):
        IAM(**kwargs)


def test_iam_repr_shows_no_secrets() -> None:
    """The repr names the credential source, never the keys."""
    text = repr(IAM(endpoint=HTTP_ENDPOINT, credentials=creds()))
    assert SECRET_KEY not in text
    assert SESSION_TOKEN not in text
    assert "explicit credentials" in text


# --- credential resolution ------------------------------------------------------------


class _Refresher:
    """A fake STS: hands out numbered keys, records the thread it ran in."""

    def __init__(self, lifetime: timedelta) -> None:
        self.lifetime = lifetime
        self.threads: list[int] = []
        self.count = 0

    def __call__(self) -> dict[str, str]:
        self.threads.append(threading.get_ident())
        self.count += 1
        expiry = datetime.now(UTC) + self.lifetime
        return {
            "access_key": f"ASIAREFRESHED{self.count}",
            "secret_key": f"secret-{self.count}",
            "token": f"token-{self.count}",
            "expiry_time": expiry.isoformat(),
        }


@pytest.mark.asyncio
async def test_iam_picks_up_refreshed_credentials() -> None:
    """After the credentials near expiry, the next signature uses the refreshed keys."""
    refresher = _Refresher(lifetime=timedelta(hours=1))
    with freeze_time("2024-01-01 12:00:00", real_asyncio=True) as frozen:
        refreshable = RefreshableCredentials.create_from_metadata(
            metadata=refresher(), refresh_using=refresher, method="fake-sts"
        )
        authz = IAM(endpoint=HTTP_ENDPOINT, credentials=refreshable)
        first = await authz.authorize(REQUESTS[0])
        frozen.tick(55 * 60)  # within botocore's 10-minute mandatory refresh window
        second = await authz.authorize(REQUESTS[0])
    key1 = parse_authorization(first.authorization["Authorization"]).access_key
    key2 = parse_authorization(second.authorization["Authorization"]).access_key
    assert (key1, key2) == ("ASIAREFRESHED1", "ASIAREFRESHED2")
    assert second.authorization["X-Amz-Security-Token"] == "token-2"
    frozen_now = ReadOnlyCredentials("ASIAREFRESHED2", "secret-2", "token-2")
    assert second.authorization["Authorization"] == botocore_resign(
        second.authorization, "{}", frozen_now, "us-east-1"
    )


@pytest.mark.asyncio
async def test_iam_refreshes_off_the_event_loop() -> None:
    """A refresh runs in a worker thread, not the loop's thread."""
    refresher = _Refresher(lifetime=timedelta(hours=1))
    expired = {**refresher(), "expiry_time": "2000-01-01T00:00:00+00:00"}
    refresher.threads.clear()
    refreshable = RefreshableCredentials.create_from_metadata(
        metadata=expired, refresh_using=refresher, method="fake-sts"
    )
    await IAM(endpoint=HTTP_ENDPOINT, credentials=refreshable).authorize(REQUESTS[0])
    assert refresher.threads, "the refresher was not called"
    assert threading.get_ident() not in refresher.threads


@pytest.mark.asyncio
async def test_iam_wraps_a_failed_refresh() -> None:
    """A refresh that raises becomes CredentialsError with the cause chained."""

    def failing() -> dict[str, str]:
        raise RuntimeError("sts unreachable")

    refreshable = RefreshableCredentials.create_from_metadata(
        metadata={
            "access_key": "AK",
            "secret_key": "SK",
            "token": "T",
            "expiry_time": "2000-01-01T00:00:00+00:00",
        },
        refresh_using=failing,
        method="fake-sts",
    )
    with pytest.raises(CredentialsError, match="sts unreachable") as info:
        await IAM(endpoint=HTTP_ENDPOINT, credentials=refreshable).authorize(REQUESTS[0])
    assert isinstance(info.value.__cause__, RuntimeError)


class _RecordingSession(Session):
    """A botocore session that records where get_credentials runs and what it returns."""

    def __init__(
        self,
        result: Credentials | None,
        gate: threading.Event | None = None,
        entered: Callable[[], object] | None = None,
    ) -> None:
        super().__init__()
        self.result = result
        self.gate = gate
        self.entered = entered
        self.threads: list[int] = []

    def get_credentials(self) -> Credentials | None:
        self.threads.append(threading.get_ident())
        if self.entered is not None:
            self.entered()
        if self.gate is not None:
            assert self.gate.wait(5), "gate never opened"
        return self.result


@pytest.mark.asyncio
async def test_iam_resolves_a_session_off_the_loop_per_signature() -> None:
    """The session's chain is consulted in a worker thread, for every signature."""
    session = _RecordingSession(Credentials(ACCESS_KEY, SECRET_KEY))
    authz = IAM(endpoint=HTTP_ENDPOINT, session=session)
    for request in REQUESTS[:2]:
        await authz.authorize(request)
    assert len(session.threads) == 2
    assert threading.get_ident() not in session.threads


@pytest.mark.asyncio
async def test_iam_reports_missing_session_credentials() -> None:
    """A session without credentials gives CredentialsError naming what to do."""
    authz = IAM(endpoint=HTTP_ENDPOINT, session=_RecordingSession(None))
    with pytest.raises(CredentialsError, match="no AWS credentials found"):
        await authz.authorize(REQUESTS[0])


@pytest.mark.asyncio
async def test_iam_cancellation_abandons_the_worker() -> None:
    """Cancelling authorize returns at once although the worker thread is still busy."""
    loop = asyncio.get_running_loop()
    gate, entered = threading.Event(), asyncio.Event()
    session = _RecordingSession(
        Credentials(ACCESS_KEY, SECRET_KEY),
        gate=gate,
        entered=lambda: loop.call_soon_threadsafe(entered.set),
    )
    task = asyncio.ensure_future(
        IAM(endpoint=HTTP_ENDPOINT, session=session).authorize(REQUESTS[0])
    )
    try:
        async with asyncio.timeout(2):
            await entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            async with asyncio.timeout(2):
                await task
    finally:
        gate.set()


@pytest.mark.asyncio
@pytest.mark.usefixtures("isolated_aws_env")
async def test_iam_default_chain_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without credentials or session, botocore's default chain is used (env here)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAENVEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "env-token")
    result = await IAM(endpoint=HTTP_ENDPOINT).authorize(REQUESTS[1])
    signature = result.authorization
    assert parse_authorization(signature["Authorization"]).access_key == "AKIAENVEXAMPLE"
    assert signature["X-Amz-Security-Token"] == "env-token"
    env = ReadOnlyCredentials("AKIAENVEXAMPLE", "env-secret", "env-token")
    assert signature["Authorization"] == botocore_resign(signature, BODIES[1], env, "us-east-1")


@pytest.mark.asyncio
@pytest.mark.usefixtures("isolated_aws_env")
async def test_iam_default_chain_without_credentials_fails_clearly() -> None:
    """No credentials anywhere gives CredentialsError, and no network access is tried."""
    with pytest.raises(CredentialsError, match="no AWS credentials found"):
        await IAM(endpoint=HTTP_ENDPOINT).authorize(REQUESTS[0])


@pytest.mark.asyncio
@pytest.mark.usefixtures("isolated_aws_env")
async def test_iam_wraps_botocore_resolution_errors() -> None:
    """A botocore error while resolving (unknown profile) becomes CredentialsError."""
    from botocore.exceptions import ProfileNotFound

    session = Session(profile="does-not-exist")
    with pytest.raises(CredentialsError, match="does-not-exist") as info:
        await IAM(endpoint=HTTP_ENDPOINT, session=session).authorize(REQUESTS[0])
    assert isinstance(info.value.__cause__, ProfileNotFound)


@pytest.mark.asyncio
async def test_iam_static_credentials_sign_inline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Static credentials need no worker thread."""

    async def no_threads(*args: object, **kwargs: object) -> None:
        raise AssertionError("static credentials must not use asyncio.to_thread")

    monkeypatch.setattr(asyncio, "to_thread", no_threads)
    for credentials in (creds(), Credentials(ACCESS_KEY, SECRET_KEY)):
        result = await IAM(endpoint=HTTP_ENDPOINT, credentials=credentials).authorize(REQUESTS[0])
        assert parse_authorization(result.authorization["Authorization"]).access_key == ACCESS_KEY


@pytest.mark.asyncio
async def test_iam_empty_static_credentials_fail() -> None:
    """Explicit credentials with no secret are a CredentialsError at signing time."""
    authz = IAM(endpoint=HTTP_ENDPOINT, credentials=ReadOnlyCredentials(ACCESS_KEY, "", None))
    with pytest.raises(CredentialsError):
        await authz.authorize(REQUESTS[0])


class _Boto3LikeSession:
    """Not a botocore Session, but has get_credentials() like boto3.Session."""

    def get_credentials(self) -> Credentials | None:
        return Credentials("AKIABOTO3LIKE", SECRET_KEY, None)


@pytest.mark.asyncio
async def test_iam_accepts_any_session_with_get_credentials() -> None:
    """A boto3-style session is used through its get_credentials()."""
    result = await IAM(endpoint=HTTP_ENDPOINT, session=_Boto3LikeSession()).authorize(REQUESTS[0])
    assert parse_authorization(result.authorization["Authorization"]).access_key == "AKIABOTO3LIKE"
    assert "X-Amz-Security-Token" not in result.authorization
