"""Tests of ``appsync_events.protocol.channels``: the channel rules and wildcard matching.

The rules are described in docs: protocol.rst, "Channels and namespaces".
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import assume, example, given, strategies as st

from appsync_events.errors import ConfigurationError, InvalidChannelError
from appsync_events.protocol.channels import (
    WILDCARD,
    Channel,
    channel_matches,
    matches,
    parse_channel,
    parse_subscribe_channel,
    validate_namespace,
)
from tests.strategies import channel_segments, channels

SEG50 = "a" * 49 + "b"
SEG51 = "a" * 50 + "b"

# --- valid channels ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("default", ("default",)),
        ("/default", ("default",)),
        ("default/", ("default",)),
        ("/default/", ("default",)),
        ("default/channel", ("default", "channel")),
        ("/namespaceA/subB/subC", ("namespaceA", "subB", "subC")),
        ("a/b/c/d/e", ("a", "b", "c", "d", "e")),
        ("/a/b/c/d/e/", ("a", "b", "c", "d", "e")),
        (f"{SEG50}/{SEG50}", (SEG50, SEG50)),
        ("a-b/0/9-z/A-Z0", ("a-b", "0", "9-z", "A-Z0")),
        ("x", ("x",)),
        ("1", ("1",)),
    ],
)
def test_parse_channel_accepts_valid_channels(text: str, segments: tuple[str, ...]) -> None:
    """Valid channels parse into their segments, slashes stripped."""
    channel = parse_channel(text)
    assert channel == Channel(segments)
    assert channel.segments == segments
    assert not channel.wildcard
    assert channel.namespace == segments[0]
    assert channel.path == "/" + "/".join(segments)
    assert str(channel) == channel.path
    # a publish target is also a valid (exact) subscription
    assert parse_subscribe_channel(text) == channel


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("default/*", ("default",)),
        ("/default/*", ("default",)),
        ("/default/*/", ("default",)),
        ("a/b/c/d/*", ("a", "b", "c", "d")),
        (f"{SEG50}/*", (SEG50,)),
    ],
)
def test_parse_subscribe_channel_accepts_wildcards(text: str, segments: tuple[str, ...]) -> None:
    """A final ``*`` segment makes a wildcard pattern; ``*`` counts toward five segments."""
    pattern = parse_subscribe_channel(text)
    assert pattern == Channel(segments, wildcard=True)
    assert pattern.namespace == segments[0]
    assert pattern.path == "/" + "/".join(segments) + "/*"
    assert str(pattern) == pattern.path
    assert WILDCARD == "*"


# --- invalid channels ----------------------------------------------------------------------

INVALID_FOR_BOTH = [
    # no segments
    ("", "no segments"),
    ("/", "no segments"),
    ("//", "no segments"),
    # too many segments
    ("a/b/c/d/e/f", "6 segments"),
    ("/a/b/c/d/e/f/", "6 segments"),
    # segment length
    (SEG51, "segment 1 is 51 characters"),
    (f"default/{SEG51}", "segment 2 is 51 characters"),
    (f"default/{'x' * 200}", "segment 2 is 200 characters"),
    # characters
    ("default/a_b", "outside [A-Za-z0-9-]"),
    ("default/a.b", "outside [A-Za-z0-9-]"),
    ("default/a b", "outside [A-Za-z0-9-]"),
    ("default/é", "outside [A-Za-z0-9-]"),
    ("default/a+b", "outside [A-Za-z0-9-]"),
    ("défault", "outside [A-Za-z0-9-]"),
    ("default/a\nb", "outside [A-Za-z0-9-]"),
    ("default/\uff11", "outside [A-Za-z0-9-]"),  # a full-width digit is not [0-9]
    # leading or trailing '-'
    ("-default", "starts or ends with '-'"),
    ("default-", "starts or ends with '-'"),
    ("default/-x", "starts or ends with '-'"),
    ("default/x-", "starts or ends with '-'"),
    ("default/-", "starts or ends with '-'"),
    # empty segments
    ("a//b", "segment 2 is empty"),
    ("//a", "segment 1 is empty"),
    ("a//", "segment 2 is empty"),
    ("a/b//", "segment 3 is empty"),
    # '*' misplaced or partial
    ("*/a", "'*' is only allowed as the whole last segment"),
    ("default/*/a", "'*' is only allowed as the whole last segment"),
    ("default/ab*", "'*' is only allowed as the whole last segment"),
    ("default/*ab", "'*' is only allowed as the whole last segment"),
    ("default/**", "'*' is only allowed as the whole last segment"),
    ("default/a*b/c", "'*' is only allowed as the whole last segment"),
]


@pytest.mark.parametrize(("text", "rule"), INVALID_FOR_BOTH)
def test_parse_channel_rejects_invalid_channels(text: str, rule: str) -> None:
    """Each broken rule raises InvalidChannelError naming that rule."""
    with pytest.raises(InvalidChannelError) as info:
        parse_channel(text)
    assert rule in info.value.rule
    assert info.value.channel == text
    assert repr(text) in str(info.value)


@pytest.mark.parametrize(("text", "rule"), INVALID_FOR_BOTH)
def test_parse_subscribe_channel_rejects_invalid_channels(text: str, rule: str) -> None:
    """A subscription pattern obeys the same rules as a channel."""
    with pytest.raises(InvalidChannelError) as info:
        parse_subscribe_channel(text)
    assert rule in info.value.rule
    assert info.value.channel == text


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("default/*", "wildcards are only allowed when subscribing"),
        ("/default/*", "wildcards are only allowed when subscribing"),
        ("a/b/c/d/*", "wildcards are only allowed when subscribing"),
        ("*", "wildcards are only allowed when subscribing"),
        ("/*", "wildcards are only allowed when subscribing"),
    ],
)
def test_parse_channel_rejects_publish_to_wildcard(text: str, rule: str) -> None:
    """Publishing to a wildcard channel is refused (EMULATOR-CHOICE,
    docs: emulator-fidelity.rst, "Channels")."""
    with pytest.raises(InvalidChannelError, match="wildcards are only allowed") as info:
        parse_channel(text)
    assert info.value.rule == rule


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("/*", "'/*' needs a namespace before it"),
        ("*", "'/*' needs a namespace before it"),
        ("*/", "'/*' needs a namespace before it"),
        ("a/b/c/d/e/*", "6 segments (at most 5, '*' included)"),
    ],
)
def test_parse_subscribe_channel_rejects_bad_wildcards(text: str, rule: str) -> None:
    """``/*`` alone and a wildcard as sixth segment are refused (EMULATOR-CHOICE,
    docs: emulator-fidelity.rst, "Channels")."""
    with pytest.raises(InvalidChannelError) as info:
        parse_subscribe_channel(text)
    assert info.value.rule == rule


@pytest.mark.parametrize("value", [None, 1, b"default/a", ["default"]])
def test_parse_rejects_non_strings(value: Any) -> None:
    """A channel that is not a str raises InvalidChannelError, not TypeError."""
    for parse in (parse_channel, parse_subscribe_channel):
        with pytest.raises(InvalidChannelError, match="channel must be a string") as info:
            parse(value)
        assert info.value.channel == repr(value)


def test_invalid_channel_error_is_a_configuration_error() -> None:
    """InvalidChannelError is a ConfigurationError and a ValueError."""
    with pytest.raises(ConfigurationError):
        parse_channel("a//b")
    with pytest.raises(ValueError, match="segment 2 is empty"):
        parse_channel("a//b")


# --- namespaces ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["default", "a", "A-1", SEG50, "0"])
def test_validate_namespace_accepts_valid_names(name: str) -> None:
    """A valid namespace name is returned unchanged."""
    assert validate_namespace(name) == name


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("", "segment 1 is empty"),
        (SEG51, "51 characters"),
        ("a/b", "outside [A-Za-z0-9-]"),
        ("a_b", "outside [A-Za-z0-9-]"),
        ("-a", "starts or ends with '-'"),
        ("a-", "starts or ends with '-'"),
        ("*", "'*' is only allowed"),
    ],
)
def test_validate_namespace_rejects_invalid_names(name: str, rule: str) -> None:
    """An invalid namespace name raises InvalidChannelError naming the rule."""
    with pytest.raises(InvalidChannelError) as info:
        validate_namespace(name)
    assert rule in info.value.rule


def test_validate_namespace_rejects_non_strings() -> None:
    """A namespace that is not a str raises InvalidChannelError."""
    with pytest.raises(InvalidChannelError, match="namespace must be a string"):
        validate_namespace(42)  # type: ignore[arg-type]


@given(channel_segments)
def test_validate_namespace_accepts_every_valid_segment(name: str) -> None:
    """Every string matching AWS's namespace regex is accepted.

    The regex is described in docs: protocol.rst, "Channels and namespaces".
    """
    assert validate_namespace(name) == name


@given(st.text(max_size=60))
def test_validate_namespace_agrees_with_spec_regex(name: str) -> None:
    """validate_namespace accepts exactly AWS's namespace pattern.

    The pattern is described in docs: protocol.rst, "Channels and namespaces".
    """
    spec = re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,48}[A-Za-z0-9])?", name, re.ASCII)
    try:
        validate_namespace(name)
    except InvalidChannelError:
        assert spec is None
    else:
        assert spec is not None


@given(st.text(alphabet="ab-*/_ ", max_size=16))
def test_parse_channel_agrees_with_spec_regex(text: str) -> None:
    """parse_channel accepts exactly the channel regex of AWS's WebSocket documentation.

    The regex is described in docs: protocol.rst, "Channels and namespaces".
    """
    spec = re.fullmatch(
        r"\/?[A-Za-z0-9](?:[A-Za-z0-9-]{0,48}[A-Za-z0-9])?"
        r"(?:\/[A-Za-z0-9](?:[A-Za-z0-9-]{0,48}[A-Za-z0-9])?){0,4}\/?",
        text,
    )
    try:
        parse_channel(text)
    except InvalidChannelError:
        assert spec is None
    else:
        assert spec is not None


@given(
    st.lists(st.text(alphabet="aZ0-*", max_size=53), min_size=1, max_size=7).map("/".join),
    st.sampled_from(["", "/"]),
    st.sampled_from(["", "/"]),
)
@example(body="/0", lead="", tail="")  # an empty first segment: "/0" is the channel "0"
@example(body="a" * 50 + "/b/c/d/e", lead="/", tail="/")
def test_parse_channel_fast_path_and_rules_agree_at_the_limits(
    body: str, lead: str, tail: str
) -> None:
    """Segments near 50 characters and channels near 5 segments: the whole-channel pattern
    and the rule-by-rule checks accept exactly the same channels (the rules name why)."""
    text = lead + body + tail
    spec = re.fullmatch(
        r"\/?[A-Za-z0-9](?:[A-Za-z0-9-]{0,48}[A-Za-z0-9])?"
        r"(?:\/[A-Za-z0-9](?:[A-Za-z0-9-]{0,48}[A-Za-z0-9])?){0,4}\/?",
        text,
    )
    if spec is None:
        with pytest.raises(InvalidChannelError, match=r".+"):
            parse_channel(text)
    else:
        assert parse_channel(text).path == "/" + text.strip("/")


# --- matching laws -------------------------------------------------------------------------


@given(channels())
def test_matches_exact_channel(text: str) -> None:
    """A channel pattern matches that channel, written with or without slashes."""
    assert channel_matches(text, text)
    bare = text.strip("/")
    assert channel_matches("/" + bare, bare)
    assert channel_matches(bare, "/" + bare + "/")
    assert matches(parse_subscribe_channel(text), parse_channel(text))


@given(channels())
def test_leading_slash_is_optional(text: str) -> None:
    """``default/x`` and ``/default/x`` denote the same channel."""
    bare = text.strip("/")
    assert parse_channel(bare) == parse_channel("/" + bare) == parse_channel(text)


@given(channels(max_segments=4, slashes=False), channel_segments)
def test_exact_pattern_does_not_match_deeper_channels(text: str, extra: str) -> None:
    """A pattern without ``*`` matches neither a deeper channel nor its parent."""
    assert not channel_matches(text, f"{text}/{extra}")
    assert not channel_matches(f"{text}/{extra}", text)


@given(
    channels(max_segments=4, slashes=False),
    st.lists(channel_segments, min_size=1, max_size=4),
    st.booleans(),
)
def test_wildcard_matches_any_deeper_channel(prefix: str, tail: list[str], slash: bool) -> None:
    """``prefix/*`` matches every channel below ``prefix`` at any depth."""
    assume(prefix.count("/") + 1 + len(tail) <= 5)
    pattern = ("/" if slash else "") + prefix + "/*"
    assert channel_matches(pattern, prefix + "/" + "/".join(tail))
    assert channel_matches(pattern, "/" + prefix + "/" + "/".join(tail) + "/")


@given(channels(max_segments=4))
def test_wildcard_does_not_match_its_prefix(prefix: str) -> None:
    """``prefix/*`` does not match ``prefix`` itself (EMULATOR-CHOICE,
    docs: emulator-fidelity.rst, "Channels")."""
    bare = prefix.strip("/")
    assert not channel_matches(bare + "/*", bare)
    assert not channel_matches(bare + "/*", prefix)


@given(
    channels(max_segments=3, slashes=False),
    channels(min_segments=2, max_segments=5, slashes=False),
)
def test_wildcard_needs_the_same_prefix(prefix: str, channel: str) -> None:
    """``prefix/*`` matches exactly the channels whose leading segments are ``prefix``."""
    head = prefix.split("/")
    segments = channel.split("/")
    expected = len(segments) > len(head) and segments[: len(head)] == head
    assert channel_matches(prefix + "/*", channel) is expected


@given(channels())
def test_matching_is_case_sensitive(text: str) -> None:
    """Channels that differ only in case do not match each other."""
    swapped = text.swapcase()
    assume(swapped != text)
    assert not channel_matches(text, swapped)
    assert not channel_matches(swapped, text)
    assert parse_channel(text) != parse_channel(swapped)


@given(channels(max_segments=4, slashes=False), channel_segments)
def test_wildcard_of_another_namespace_does_not_match(text: str, other: str) -> None:
    """``ns/*`` never matches a channel of another namespace."""
    namespace = text.split("/")[0]
    assume(other != namespace)
    assert not channel_matches(f"{other}/*", f"{text}/x")


@given(channels())
def test_path_is_canonical_and_round_trips(text: str) -> None:
    """Channel.path has a leading and no trailing ``/`` and parses to the same channel."""
    channel = parse_channel(text)
    assert channel.path.startswith("/")
    assert not channel.path.endswith("/")
    assert parse_channel(channel.path) == channel
    pattern = parse_subscribe_channel(channel.path + "/*") if len(channel.segments) < 5 else None
    if pattern is not None:
        assert pattern.path == channel.path + "/*"
        assert parse_subscribe_channel(pattern.path) == pattern


def test_channel_matches_validates_both_arguments() -> None:
    """channel_matches raises InvalidChannelError for an invalid pattern or channel."""
    with pytest.raises(InvalidChannelError):
        channel_matches("default/**", "default/a")
    with pytest.raises(InvalidChannelError):
        channel_matches("default/*", "default/*")
    with pytest.raises(InvalidChannelError):
        channel_matches("default/a", "default/a_b")


def test_wildcard_examples_from_the_spec() -> None:
    """``/default/*`` receives ``/default/messages`` and ``/default/greetings/tutorial``."""
    assert channel_matches("/default/*", "/default/messages")
    assert channel_matches("/default/*", "/default/greetings/tutorial")
    assert channel_matches("default/*", "/default/greetings/tutorial")
    assert not channel_matches("/default/*", "/default")
    assert not channel_matches("/default/*", "/Default/messages")
    assert not channel_matches("/default/messages", "/default/Messages")
