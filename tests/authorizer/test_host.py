"""The host an authorizer signs: the client's (``AuthorizeRequest.host``) or its own endpoint's."""

from __future__ import annotations

from datetime import datetime

import pytest
from botocore.credentials import ReadOnlyCredentials
from freezegun import freeze_time

from appsync_events.authorizer import IAM, ApiKey, Authorizer, AuthorizeRequest, Operation, Token
from appsync_events.authorizer.base import request_host
from appsync_events.authorizer.iam import sign_request
from appsync_events.errors import ConfigurationError

from .conftest import ACCESS_KEY, HOST, HTTP_ENDPOINT, SECRET_KEY
from .test_iam import botocore_resign

REALTIME_HOST = "example1234567890000.appsync-realtime-api.us-east-1.amazonaws.com"
OTHER_ENDPOINT = "https://other0000000000000000.appsync-api.us-east-1.amazonaws.com/event"
CREDENTIALS = ReadOnlyCredentials(ACCESS_KEY, SECRET_KEY, None)
CONNECT = AuthorizeRequest(operation=Operation.CONNECT, host=HOST)
PUBLISH = AuthorizeRequest(
    operation=Operation.PUBLISH, channel="default/a", events=('{"a":1}',), host=HOST
)


def authorizers(endpoint: str | None) -> list[Authorizer]:
    """One authorizer of each built-in kind, with or without an endpoint."""
    return [
        ApiKey("da2-key", endpoint),
        Token("token", endpoint),
        IAM(endpoint=endpoint, credentials=CREDENTIALS),
    ]


KINDS = ["api_key", "token", "iam"]


@pytest.mark.asyncio
@pytest.mark.parametrize("index", range(3), ids=KINDS)
async def test_authorizers_without_endpoint_use_the_request_host(index: int) -> None:
    """``ApiKey("da2-...")``: the client's host goes into the map."""
    result = await authorizers(None)[index].authorize(PUBLISH)
    assert result.authorization["host"] == HOST


@pytest.mark.asyncio
@pytest.mark.parametrize("index", range(3), ids=KINDS)
async def test_authorizers_with_an_agreeing_endpoint(index: int) -> None:
    """An endpoint that names the client's host changes nothing; requests without a host
    (built by hand) use the endpoint's host."""
    authz = authorizers(HTTP_ENDPOINT)[index]
    assert (await authz.authorize(PUBLISH)).authorization["host"] == HOST
    bare = AuthorizeRequest(operation=Operation.CONNECT)
    assert (await authz.authorize(bare)).authorization["host"] == HOST
    upper = AuthorizeRequest(operation=Operation.CONNECT, host=HOST.upper())
    assert (await authz.authorize(upper)).authorization["host"] == HOST


@pytest.mark.asyncio
@pytest.mark.parametrize("index", range(3), ids=KINDS)
async def test_authorizers_refuse_an_endpoint_for_another_api(index: int) -> None:
    """An endpoint that disagrees with the client's host fails at once, naming both hosts."""
    authz = authorizers(OTHER_ENDPOINT)[index]
    with pytest.raises(ConfigurationError) as caught:
        await authz.authorize(CONNECT)
    message = str(caught.value)
    assert "'other0000000000000000.appsync-api.us-east-1.amazonaws.com'" in message
    assert repr(HOST) in message
    assert "real-time" not in message


@pytest.mark.asyncio
@pytest.mark.parametrize("index", range(3), ids=KINDS)
async def test_authorizers_need_some_host(index: int) -> None:
    """No endpoint and no host in the request: a ConfigurationError saying what to pass."""
    with pytest.raises(ConfigurationError, match="no host to authorize the connect for"):
        await authorizers(None)[index].authorize(AuthorizeRequest(operation=Operation.CONNECT))


@pytest.mark.asyncio
@pytest.mark.parametrize("endpoint", [None, HTTP_ENDPOINT], ids=["no-endpoint", "endpoint"])
async def test_the_realtime_host_mistake_is_named(endpoint: str | None) -> None:
    """A request carrying the real-time host: AppSync checks the HTTP host, so say so."""
    request = AuthorizeRequest(operation=Operation.CONNECT, host=REALTIME_HOST)
    with pytest.raises(ConfigurationError, match="is the real-time host") as caught:
        await ApiKey("da2-key", endpoint).authorize(request)
    if endpoint is not None:
        assert repr(HOST) in str(caught.value)


def test_request_host_rules() -> None:
    """request_host: the configured host wins when both agree; a realtime host is refused."""
    assert request_host(CONNECT) == HOST
    assert request_host(CONNECT, HOST) == HOST
    assert request_host(AuthorizeRequest(operation=Operation.CONNECT), "127.0.0.1:8080") == (
        "127.0.0.1:8080"
    )
    with pytest.raises(ConfigurationError, match="use the HTTP endpoint's host"):
        request_host(AuthorizeRequest(operation=Operation.CONNECT), REALTIME_HOST)


@pytest.mark.parametrize(
    "host",
    ["", "https://h/event", "h /x", "a b", "h\n", "h\t", "h\x1c", "h\u00a0x", "h\u2028", 8080],
    ids=repr,
)
def test_authorize_request_rejects_a_malformed_host(host: object) -> None:
    """The host is a host name with an optional port, nothing else."""
    with pytest.raises(ConfigurationError, match="host must be a host name"):
        AuthorizeRequest(operation=Operation.CONNECT, host=host)  # type: ignore[arg-type]


@pytest.mark.parametrize("host", ["h\x7f", "h\u00e9.example", "xn--h.example:8443"], ids=repr)
def test_authorize_request_accepts_other_characters(host: str) -> None:
    """Only whitespace, control characters below U+0020 and '/' are refused."""
    assert AuthorizeRequest(operation=Operation.CONNECT, host=host).host == host


@pytest.mark.asyncio
async def test_iam_without_endpoint_signs_the_request_host() -> None:
    """IAM() takes host and region from the client's host; botocore verifies the signature."""
    with freeze_time("2020-04-01 00:10:10", real_asyncio=True):
        result = await IAM(credentials=CREDENTIALS).authorize(PUBLISH)
    signature = result.authorization
    body = '{"channel":"default/a","events":["{\\"a\\":1}"]}'
    assert signature == sign_request(
        credentials=CREDENTIALS,
        region="us-east-1",
        host=HOST,
        body=body,
        now=datetime(2020, 4, 1, 0, 10, 10),
    )
    assert signature["Authorization"] == botocore_resign(signature, body, CREDENTIALS, "us-east-1")


@pytest.mark.asyncio
async def test_iam_without_endpoint_on_a_local_host() -> None:
    """A local or custom host names no region: IAM(region) signs for it; IAM() cannot."""
    local = AuthorizeRequest(operation=Operation.CONNECT, host="127.0.0.1:8080")
    result = await IAM("eu-central-1", credentials=CREDENTIALS).authorize(local)
    assert result.authorization["host"] == "127.0.0.1:8080"
    assert "/eu-central-1/appsync/" in result.authorization["Authorization"]
    with pytest.raises(ConfigurationError, match="cannot tell the AWS region"):
        await IAM(credentials=CREDENTIALS).authorize(local)


@pytest.mark.asyncio
async def test_iam_region_must_match_the_request_host() -> None:
    """An explicit region that contradicts the AWS host is refused at authorize."""
    with pytest.raises(ConfigurationError, match="does not match the endpoint"):
        await IAM("us-west-2", credentials=CREDENTIALS).authorize(CONNECT)
    with pytest.raises(ConfigurationError, match="region must look like"):
        IAM("US East")
