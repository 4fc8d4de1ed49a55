"""Tests for the API_KEY authorizer (docs: protocol.rst, "API key")."""

from __future__ import annotations

import copy as copy_module
import json
import pickle
from datetime import datetime

import pytest
from freezegun import freeze_time

from appsync_events.authorizer import ApiKey, AuthorizeRequest, Operation
from appsync_events.authorizer.api_key import api_key_headers
from appsync_events.authorizer.base import AuthorizeResult, SharedHeaders
from appsync_events.errors import ConfigurationError
from appsync_events.protocol.subprotocol import encode_auth_subprotocol

from .conftest import HOST, HTTP_ENDPOINT, REALTIME_ENDPOINT

DOCS_KEY = "da2-12345678901234567890123456"
DOCS_TOKEN = (
    "header-eyJob3N0IjoiZXhhbXBsZTEyMzQ1Njc4OTAwMDAuYXBwc3luYy1hcGkudXMtZWFzdC0xLmFtYXpvbmF3cy5jb20"
    "iLCJ4LWFwaS1rZXkiOiJkYTItMTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTYifQ"
)

REQUESTS = [
    AuthorizeRequest(operation=Operation.CONNECT),
    AuthorizeRequest(operation=Operation.SUBSCRIBE, channel="default/a"),
    AuthorizeRequest(operation=Operation.PUBLISH, channel="default/a", events=('{"a":1}',)),
    AuthorizeRequest(operation=Operation.UNSUBSCRIBE),
]


@pytest.mark.asyncio
@pytest.mark.parametrize("request_", REQUESTS, ids=lambda r: r.operation.value)
async def test_api_key_map_for_each_operation(request_: AuthorizeRequest) -> None:
    """Every operation gets host, x-amz-date (as Amplify sends) and x-api-key."""
    authz = ApiKey(api_key=DOCS_KEY, endpoint=HTTP_ENDPOINT)
    with freeze_time("2020-04-01 00:10:10", real_asyncio=True):
        result = await authz.authorize(request_)
    assert result.authorization == {
        "host": HOST,
        "x-amz-date": "20200401T001010Z",
        "x-api-key": DOCS_KEY,
    }


def test_api_key_reproduces_the_docs_subprotocol() -> None:
    """host + x-api-key of our map encode to AWS's example token byte for byte.

    The example is in docs: protocol.rst, "The header- subprotocol".
    """
    headers = api_key_headers(api_key=DOCS_KEY, host=HOST, now=datetime(2020, 4, 1))
    docs_map = {"host": headers["host"], "x-api-key": headers["x-api-key"]}
    assert encode_auth_subprotocol(docs_map) == DOCS_TOKEN


def test_api_key_accepts_the_realtime_endpoint() -> None:
    """Given the wss endpoint, the signed host is still the HTTP host."""
    assert ApiKey(DOCS_KEY, REALTIME_ENDPOINT).host == HOST


def test_api_key_keeps_a_non_default_port() -> None:
    """A local server's host includes its port."""
    assert ApiKey(DOCS_KEY, "http://127.0.0.1:8123/event").host == "127.0.0.1:8123"


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "api_key must not be empty"),
        ("   ", "api_key must not be empty"),
        ("da2-a\nb", "line breaks"),
        (None, "api_key must be a str, got NoneType"),
    ],
)
def test_api_key_rejects_unusable_keys(key: object, message: str) -> None:
    """An empty or malformed key is a configuration error."""
    with pytest.raises(ConfigurationError, match=message):
        ApiKey(key, HTTP_ENDPOINT)  # type: ignore[arg-type]


@pytest.mark.parametrize("endpoint", ["", "not a url", "ftp://h/event", "https://h/graphql"])
def test_api_key_rejects_bad_endpoints(endpoint: str) -> None:
    """A bad endpoint is a configuration error naming it."""
    with pytest.raises(ConfigurationError):
        ApiKey(DOCS_KEY, endpoint)


def test_api_key_repr_hides_the_key() -> None:
    """The key never shows in a repr."""
    text = repr(ApiKey(DOCS_KEY, HTTP_ENDPOINT))
    assert DOCS_KEY not in text
    assert HOST in text


@pytest.mark.asyncio
async def test_api_key_shares_one_read_only_map_per_second_and_host() -> None:
    """Within one second and for one host the same map is returned; it cannot change."""
    authz = ApiKey(api_key=DOCS_KEY)
    publish = AuthorizeRequest(
        operation=Operation.PUBLISH, channel="default/a", events=("1",), host=HOST
    )
    other_host = AuthorizeRequest(operation=Operation.CONNECT, host="127.0.0.1:8123")
    with freeze_time("2020-04-01 00:10:10", real_asyncio=True) as clock:
        first = await authz.authorize(publish)
        again = await authz.authorize(
            AuthorizeRequest(operation=Operation.SUBSCRIBE, host=HOST, channel="default/b")
        )
        assert again is first
        assert isinstance(first.authorization, SharedHeaders)
        elsewhere = await authz.authorize(other_host)
        assert elsewhere.authorization["host"] == "127.0.0.1:8123"
        clock.tick(1.0)
        later = await authz.authorize(publish)
    assert later is not first
    assert later.authorization["x-amz-date"] == "20200401T001011Z"
    assert first.authorization == {
        "host": HOST,
        "x-amz-date": "20200401T001010Z",
        "x-api-key": DOCS_KEY,
    }
    assert json.dumps(first.authorization) == json.dumps(dict(first.authorization))
    assert repr(first) == repr(AuthorizeResult(dict(first.authorization)))


@pytest.mark.asyncio
async def test_api_key_cached_host_errors_are_still_raised() -> None:
    """A host refused once is refused every time (nothing refused is cached)."""
    authz = ApiKey(api_key=DOCS_KEY, endpoint=HTTP_ENDPOINT)
    wrong = AuthorizeRequest(operation=Operation.CONNECT, host="other.example.com")
    for _ in range(2):
        with pytest.raises(ConfigurationError, match="differs"):
            await authz.authorize(wrong)
    right = AuthorizeRequest(operation=Operation.CONNECT, host=HOST)
    assert (await authz.authorize(right)).authorization["host"] == HOST
    with pytest.raises(ConfigurationError, match="differs"):
        await authz.authorize(wrong)


def test_shared_headers_refuse_every_change() -> None:
    headers = AuthorizeResult({"host": HOST, "x-api-key": DOCS_KEY}).shared().authorization
    assert isinstance(headers, SharedHeaders)
    changes = [
        lambda h: h.__setitem__("host", "x"),
        lambda h: h.__delitem__("host"),
        lambda h: h.clear(),
        lambda h: h.pop("host"),
        lambda h: h.popitem(),
        lambda h: h.setdefault("a", "b"),
        lambda h: h.update({"a": "b"}),
        lambda h: h.__ior__({"a": "b"}),
    ]
    for change in changes:
        with pytest.raises(TypeError, match="read-only"):
            change(headers)
    assert headers == {"host": HOST, "x-api-key": DOCS_KEY}
    copy = dict(headers)
    copy["host"] = "x"  # a copy is an ordinary dict
    assert copy_module.copy(headers) is headers
    assert copy_module.deepcopy(headers) is headers
    restored = pickle.loads(pickle.dumps(headers))
    assert type(restored) is SharedHeaders
    assert restored == headers
    result = AuthorizeResult(headers)  # an ordinary result copies it into a dict
    assert type(result.authorization) is dict
    shared = result.shared()
    assert shared.shared() is shared
