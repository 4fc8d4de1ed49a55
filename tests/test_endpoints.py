"""Tests for endpoint validation and derivation (docs: protocol.rst, "Endpoints")."""

from __future__ import annotations

import pytest

from appsync_events.endpoints import (
    http_endpoint_from_realtime,
    realtime_endpoint_from_http,
    region_from_host,
    signing_host,
)
from appsync_events.errors import ConfigurationError

AWS_HTTP = "https://abcdefghijklmnopqrstuvwxyz.appsync-api.eu-central-1.amazonaws.com/event"
AWS_RT = (
    "wss://abcdefghijklmnopqrstuvwxyz.appsync-realtime-api.eu-central-1.amazonaws.com"
    "/event/realtime"
)
CN_HTTP = "https://abcdefghijklmnopqrstuvwxyz.appsync-api.cn-north-1.amazonaws.com.cn/event"
CN_RT = (
    "wss://abcdefghijklmnopqrstuvwxyz.appsync-realtime-api.cn-north-1.amazonaws.com.cn"
    "/event/realtime"
)
DOCS_HTTP = "https://example1234567890000.appsync-api.us-east-1.amazonaws.com/event"
DOCS_RT = "wss://example1234567890000.appsync-realtime-api.us-east-1.amazonaws.com/event/realtime"

# (http endpoint, real-time endpoint) pairs that map onto each other.
PAIRS = [
    (AWS_HTTP, AWS_RT),
    (CN_HTTP, CN_RT),
    (DOCS_HTTP, DOCS_RT),
    ("https://api.example.com/event", "wss://api.example.com/event/realtime"),
    ("https://api.example.com:8443/event", "wss://api.example.com:8443/event/realtime"),
    ("http://127.0.0.1:8080/event", "ws://127.0.0.1:8080/event/realtime"),
    ("http://localhost:9/event", "ws://localhost:9/event/realtime"),
    ("http://[::1]:8080/event", "ws://[::1]:8080/event/realtime"),
    (
        "https://x.appsync-api.us-gov-west-1.amazonaws.com/event",
        "wss://x.appsync-realtime-api.us-gov-west-1.amazonaws.com/event/realtime",
    ),
]


@pytest.mark.parametrize(("http", "realtime"), PAIRS)
def test_realtime_endpoint_from_http(http: str, realtime: str) -> None:
    """https->wss, http->ws, appsync-api->appsync-realtime-api, /event->/event/realtime."""
    assert realtime_endpoint_from_http(http) == realtime


@pytest.mark.parametrize(("http", "realtime"), PAIRS)
def test_http_endpoint_from_realtime(http: str, realtime: str) -> None:
    """The inverse mapping."""
    assert http_endpoint_from_realtime(realtime) == http


@pytest.mark.parametrize(("http", "realtime"), PAIRS)
def test_derivations_are_idempotent(http: str, realtime: str) -> None:
    """An endpoint already of the target kind comes back unchanged."""
    assert realtime_endpoint_from_http(realtime) == realtime
    assert http_endpoint_from_realtime(http) == http


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://API.Example.COM/event", "wss://api.example.com/event/realtime"),
        ("HTTPS://api.example.com/event", "wss://api.example.com/event/realtime"),
        ("https://api.example.com", "wss://api.example.com/event/realtime"),
        ("https://api.example.com/", "wss://api.example.com/event/realtime"),
        ("https://api.example.com:443/event", "wss://api.example.com/event/realtime"),
        ("http://api.example.com:80/event", "ws://api.example.com/event/realtime"),
        ("http://api.example.com:443/event", "ws://api.example.com:443/event/realtime"),
        (
            "https://ABC.APPSYNC-API.US-EAST-1.AMAZONAWS.COM/event",
            "wss://abc.appsync-realtime-api.us-east-1.amazonaws.com/event/realtime",
        ),
    ],
)
def test_realtime_endpoint_from_http_normalises(given: str, expected: str) -> None:
    """Case, a missing path and default ports are normalised."""
    assert realtime_endpoint_from_http(given) == expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("wss://api.example.com", "https://api.example.com/event"),
        ("wss://api.example.com:443/event/realtime", "https://api.example.com/event"),
        ("ws://127.0.0.1:80/event/realtime", "http://127.0.0.1/event"),
    ],
)
def test_http_endpoint_from_realtime_normalises(given: str, expected: str) -> None:
    """A missing path and default ports are normalised."""
    assert http_endpoint_from_realtime(given) == expected


@pytest.mark.parametrize(
    ("url", "host"),
    [
        (DOCS_HTTP, "example1234567890000.appsync-api.us-east-1.amazonaws.com"),
        (CN_HTTP, "abcdefghijklmnopqrstuvwxyz.appsync-api.cn-north-1.amazonaws.com.cn"),
        ("https://api.example.com/event", "api.example.com"),
        ("https://api.example.com:443/event", "api.example.com"),
        ("https://api.example.com:8443/event", "api.example.com:8443"),
        ("http://127.0.0.1:8080/event", "127.0.0.1:8080"),
        ("http://127.0.0.1:80/event", "127.0.0.1"),
        ("http://[::1]:8080/event", "[::1]:8080"),
        ("http://[::1]/event", "[::1]"),
    ],
)
def test_signing_host(url: str, host: str) -> None:
    """The HTTP host, lower case, with a non-default port."""
    assert signing_host(url) == host


@pytest.mark.parametrize(
    ("host", "region"),
    [
        ("example1234567890000.appsync-api.us-east-1.amazonaws.com", "us-east-1"),
        ("abc.appsync-realtime-api.ap-southeast-2.amazonaws.com", "ap-southeast-2"),
        ("abc.appsync-api.cn-north-1.amazonaws.com.cn", "cn-north-1"),
        ("abc.appsync-api.us-gov-west-1.amazonaws.com", "us-gov-west-1"),
        ("abc.appsync-api.eu-central-1.amazonaws.com:443", "eu-central-1"),
        ("ABC.APPSYNC-API.EU-WEST-1.AMAZONAWS.COM", "eu-west-1"),
        ("abc.appsync-api.us-east-1.amazonaws.com.", "us-east-1"),
        ("api.example.com", None),
        ("127.0.0.1:8080", None),
        ("[::1]:8080", None),
        ("abc.appsync-api.us-east-1.amazonaws.com.evil.example", None),
        ("abc.lambda.us-east-1.amazonaws.com", None),
        ("appsync-api.us-east-1.amazonaws.com", None),
        ("", None),
    ],
)
def test_region_from_host(host: str, region: str | None) -> None:
    """Standard AppSync hosts name their region; anything else gives None."""
    assert region_from_host(host) == region


HTTP_ERRORS = [
    ("", "must not be empty"),
    ("example.com/event", "expected an absolute URL"),
    ("//example.com/event", "expected an absolute URL"),
    ("ftp://example.com/event", "scheme must be one of https, http, not 'ftp'"),
    ("https://example.com/event/realtime", "this is a real-time path"),
    ("https://example.com/graphql", "path must be /event, not '/graphql'"),
    ("https://example.com/event/", "path must be /event"),
    ("https://user:pw@example.com/event", "must not contain user information"),
    ("https://example.com/event?x=1", "must not have a query string"),
    ("https://example.com/event?", "must not have a query string"),
    ("https://example.com/event#f", "must not have a fragment"),
    ("https:///event", "the URL has no host"),
    ("https://exa mple.com/event", "whitespace"),
    (" https://example.com/event", "whitespace"),
    ("https://example.com/event\n", "whitespace"),
    ("https://example.com:99999/event", "out of range"),
    ("https://example.com:abc/event", "could not be cast"),
    ("https://example.com:0/event", "port 0"),
    ("https://[::1/event", "Invalid IPv6 URL"),
    ("https://exa_mple-.com/event", "not a valid host name"),
    ("https://-bad.example.com/event", "not a valid host name"),
    ("https://bücher.example/event", "not a valid host name"),
    ("https://a..b/event", "not a valid host name"),
    (
        "https://abc.appsync-realtime-api.us-east-1.amazonaws.com/event",
        "this is the real-time host",
    ),
]


@pytest.mark.parametrize(("url", "message"), HTTP_ERRORS)
def test_signing_host_rejects_bad_urls(url: str, message: str) -> None:
    """Each malformed HTTP endpoint gets a ConfigurationError naming the URL and problem."""
    with pytest.raises(ConfigurationError, match="endpoint") as info:
        signing_host(url)
    assert message in str(info.value)
    if url:
        assert repr(url) in str(info.value)


@pytest.mark.parametrize(("url", "message"), HTTP_ERRORS)
def test_realtime_endpoint_from_http_rejects_bad_urls(url: str, message: str) -> None:
    """The same checks apply when deriving the real-time endpoint."""
    with pytest.raises(ConfigurationError) as info:
        realtime_endpoint_from_http(url)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("wss://example.com/event", "path must be /event/realtime, not '/event'"),
        ("wss://example.com/event/realtime?x=1", "query string"),
        (
            "wss://abc.appsync-api.us-east-1.amazonaws.com/event/realtime",
            "this is the HTTP host",
        ),
        ("ftp://example.com/event/realtime", "scheme must be one of wss, ws"),
        ("wss://", "the URL has no host"),
    ],
)
def test_http_endpoint_from_realtime_rejects_bad_urls(url: str, message: str) -> None:
    """Malformed real-time endpoints get a ConfigurationError naming the problem."""
    with pytest.raises(ConfigurationError) as info:
        http_endpoint_from_realtime(url)
    assert message in str(info.value)


def test_signing_host_rejects_a_realtime_url() -> None:
    """signing_host wants the HTTP endpoint; wss must be converted first."""
    with pytest.raises(ConfigurationError, match="scheme must be one of https, http"):
        signing_host(DOCS_RT)


@pytest.mark.parametrize("value", [None, 42, b"https://example.com/event"])
def test_endpoints_reject_non_strings(value: object) -> None:
    """A non-str endpoint is a ConfigurationError naming its type."""
    for func in (signing_host, realtime_endpoint_from_http, http_endpoint_from_realtime):
        with pytest.raises(ConfigurationError, match="must be a str URL"):
            func(value)  # type: ignore[arg-type]
