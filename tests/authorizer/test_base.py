"""Tests for the authorizer contract: Operation, AuthorizeRequest, AuthorizeResult, Authorizer."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from appsync_events.authorizer import (
    IAM,
    ApiKey,
    Authorizer,
    AuthorizeRequest,
    AuthorizeResult,
    Operation,
    Token,
)
from appsync_events.authorizer.base import amz_date, endpoint_host
from appsync_events.errors import ConfigurationError

from .conftest import HOST, HTTP_ENDPOINT, REALTIME_ENDPOINT


def test_operation_values_are_lower_case_names() -> None:
    """Operation members are str values usable in error messages."""
    assert [op.value for op in Operation] == ["connect", "subscribe", "publish", "unsubscribe"]
    assert Operation("publish") is Operation.PUBLISH


@pytest.mark.parametrize(
    ("kwargs", "body"),
    [
        ({"operation": Operation.CONNECT}, (None, None)),
        ({"operation": Operation.SUBSCRIBE, "channel": "default/a"}, ("default/a", None)),
        (
            {"operation": Operation.PUBLISH, "channel": "/default/a", "events": ('{"a":1}',)},
            ("/default/a", ('{"a":1}',)),
        ),
        ({"operation": Operation.UNSUBSCRIBE}, (None, None)),
        ({"operation": Operation.UNSUBSCRIBE, "channel": "default/a"}, ("default/a", None)),
    ],
)
def test_authorize_request_accepts_each_operation_shape(
    kwargs: dict[str, object], body: tuple[object, object]
) -> None:
    """Each operation takes the channel/events of the Go client's table."""
    request = AuthorizeRequest(**kwargs)  # type: ignore[arg-type]
    assert (request.channel, request.events) == body


def test_authorize_request_takes_operation_as_str() -> None:
    """A plain string operation is converted to the enum."""
    assert AuthorizeRequest(operation="connect").operation is Operation.CONNECT  # type: ignore[arg-type]


def test_authorize_request_converts_events_to_tuple() -> None:
    """A list of events becomes a tuple, so the request stays immutable."""
    request = AuthorizeRequest(
        operation=Operation.PUBLISH,
        channel="default/a",
        events=["1", "2"],  # type: ignore[arg-type]
    )
    assert request.events == ("1", "2")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"operation": "bogus"}, "unknown operation 'bogus'"),
        ({"operation": Operation.SUBSCRIBE}, "subscribe authorization needs the channel"),
        ({"operation": Operation.PUBLISH, "events": ("1",)}, "publish authorization needs"),
        ({"operation": Operation.PUBLISH, "channel": "d/a"}, "needs the events"),
        ({"operation": Operation.CONNECT, "channel": "d/a"}, "connect authorization has no chan"),
        ({"operation": Operation.SUBSCRIBE, "channel": "d/a", "events": ()}, "has no events"),
        ({"operation": Operation.UNSUBSCRIBE, "events": ("1",)}, "has no events"),
        ({"operation": Operation.PUBLISH, "channel": "d/a", "events": (1,)}, "events[0]"),
        ({"operation": Operation.SUBSCRIBE, "channel": b"d/a"}, "channel must be a str"),
    ],
)
def test_authorize_request_rejects_shapes_that_do_not_fit(
    kwargs: dict[str, object], message: str
) -> None:
    """Fields that do not fit the operation raise ConfigurationError at once."""
    with pytest.raises(ConfigurationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        AuthorizeRequest(**kwargs)  # type: ignore[arg-type]


def test_authorize_request_is_frozen() -> None:
    """Requests cannot be changed after the authorizer saw them."""
    request = AuthorizeRequest(operation=Operation.CONNECT)
    with pytest.raises(AttributeError):
        request.channel = "x"  # type: ignore[misc]


def test_authorize_result_copies_the_map() -> None:
    """The result holds its own plain dict, still JSON-serialisable."""
    source = {"host": HOST, "x-api-key": "da2-k"}
    result = AuthorizeResult(source)
    source["x-api-key"] = "changed"
    assert result.authorization == {"host": HOST, "x-api-key": "da2-k"}
    assert not hasattr(result, "signature")  # the former name is gone (see the changelog)
    assert json.loads(json.dumps(result.authorization)) == {"host": HOST, "x-api-key": "da2-k"}


@pytest.mark.parametrize(
    ("signature", "message"),
    [
        ({"host": 1}, "must map a str to a str"),
        ({1: "x"}, "must map a str to a str"),
        ({"": "x"}, "not a valid header name"),
        ({"a:b": "x"}, "not a valid header name"),
        ({" host": "x"}, "not a valid header name"),
        ({"a\nb": "x"}, "not a valid header name"),
        ({"a\rb": "x"}, "not a valid header name"),
        ({"a\0b": "x"}, "not a valid header name"),
        ({"host": "a\rb"}, "line break or NUL"),
        ({"host": "a\nb"}, "line break or NUL"),
        ({"host": "a\r\nInjected: 1"}, "line break or NUL"),
        ({"host": "a\0"}, "line break or NUL"),
    ],
)
def test_authorize_result_rejects_unusable_headers(
    signature: dict[object, object], message: str
) -> None:
    """A custom authorizer returning something unusable fails with a clear error."""
    with pytest.raises(ConfigurationError, match=message):
        AuthorizeResult(signature)  # type: ignore[arg-type]


def test_authorize_result_repr_redacts_secrets() -> None:
    """Keys, tokens and signatures never appear in a repr."""
    result = AuthorizeResult(
        {
            "host": HOST,
            "x-api-key": "da2-secret",
            "Authorization": "tok-secret",
            "X-Amz-Security-Token": "sts-secret",
        }
    )
    text = repr(result)
    assert "secret" not in text
    assert HOST in text
    assert text.count("<redacted>") == 3


class _CustomAuthorizer:
    """A user-defined authorizer: refreshes a token per call, per the Go README's example."""

    def __init__(self) -> None:
        self.calls: list[AuthorizeRequest] = []

    async def authorize(self, request: AuthorizeRequest) -> AuthorizeResult:
        self.calls.append(request)
        return AuthorizeResult({"Authorization": f"token-{len(self.calls)}", "host": HOST})


@pytest.mark.asyncio
async def test_custom_authorizer_satisfies_the_protocol() -> None:
    """A class with ``async def authorize`` is an Authorizer and is called per operation."""
    custom = _CustomAuthorizer()
    assert isinstance(custom, Authorizer)
    authorizer: Authorizer = custom
    first = await authorizer.authorize(AuthorizeRequest(operation=Operation.CONNECT))
    second = await authorizer.authorize(
        AuthorizeRequest(operation=Operation.SUBSCRIBE, channel="default/a")
    )
    assert first.authorization["Authorization"] == "token-1"
    assert second.authorization["Authorization"] == "token-2"
    assert [c.operation for c in custom.calls] == [Operation.CONNECT, Operation.SUBSCRIBE]


def test_builtin_authorizers_satisfy_the_protocol() -> None:
    """ApiKey, Token and IAM are Authorizers; an object without authorize is not."""
    assert isinstance(ApiKey("da2-k", HTTP_ENDPOINT), Authorizer)
    assert isinstance(Token("tok", HTTP_ENDPOINT), Authorizer)
    assert isinstance(IAM(endpoint=HTTP_ENDPOINT), Authorizer)
    assert not isinstance(object(), Authorizer)


def test_amz_date_formats_utc() -> None:
    """x-amz-date is basic ISO 8601 in UTC; aware times are converted, naive taken as UTC."""
    aware = datetime(2020, 4, 1, 2, 10, 10, tzinfo=timezone(timedelta(hours=2)))
    assert amz_date(aware) == "20200401T001010Z"
    assert amz_date(datetime(2020, 4, 1, 0, 10, 10)) == "20200401T001010Z"


@pytest.mark.parametrize(
    "now",
    [
        datetime(2020, 4, 1, 0, 10, 10),
        datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2024, 2, 29, 23, 30, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
        datetime(2021, 1, 1, 0, 0, 1, tzinfo=timezone(timedelta(hours=14))),
    ],
)
def test_amz_date_is_strftime_in_utc(now: datetime) -> None:
    """The same text as strftime's ``%Y%m%dT%H%M%SZ`` of the time in UTC."""
    utc = now if now.tzinfo is None else now.astimezone(UTC)
    assert amz_date(now) == utc.strftime("%Y%m%dT%H%M%SZ")


def test_endpoint_host_accepts_both_endpoint_kinds() -> None:
    """The real-time endpoint maps to the HTTP host, which is what AppSync validates."""
    assert endpoint_host(HTTP_ENDPOINT) == HOST
    assert endpoint_host(REALTIME_ENDPOINT) == HOST
    assert endpoint_host("ws://127.0.0.1:8080/event/realtime") == "127.0.0.1:8080"


def test_publish_request_is_the_request_the_constructor_makes() -> None:
    from appsync_events.authorizer.base import publish_request

    host = "h.example.com"
    expected = AuthorizeRequest(
        operation=Operation.PUBLISH, channel="a/b", events=("1",), host=host
    )
    # The host was just accepted: made directly, the same request.
    made = publish_request("a/b", ("1",), host)
    assert made == expected
    assert made.operation is Operation.PUBLISH
    # Anything not known to be good goes through the checks.
    with pytest.raises(ConfigurationError, match="host must be"):
        publish_request("a/b", ("1",), "bad host")
    assert publish_request("a/b", ["1"], host) == expected  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="events"):
        publish_request("a/b", [1], host)  # type: ignore[list-item]
    with pytest.raises(ConfigurationError, match="channel must be a str"):
        publish_request(b"a/b", ("1",), host)  # type: ignore[arg-type]
