"""Tests for the pure fan-out index (no sockets, no event loop)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from appsync_emulator.broker import Broker
from appsync_events.protocol.channels import (
    Channel,
    matches,
    parse_channel,
    parse_subscribe_channel,
)


def pat(text: str) -> Channel:
    return parse_subscribe_channel(text)


def ch(text: str) -> Channel:
    return parse_channel(text)


def test_broker_exact_pattern_matches_only_its_channel() -> None:
    """A concrete subscription receives its own channel, not parents or children."""
    broker = Broker()
    broker.add("c1", "s1", pat("default/a"))
    assert broker.match(ch("/default/a/")) == [("c1", "s1")]
    assert broker.match(ch("default")) == []
    assert broker.match(ch("default/a/b")) == []
    assert broker.match(ch("default/b")) == []


def test_broker_wildcard_matches_any_depth_below_but_not_the_prefix() -> None:
    """/ns/a/* receives /ns/a/x and /ns/a/x/y, but not /ns/a itself (EMULATOR-CHOICE,
    docs: emulator-fidelity.rst, "Channels")."""
    broker = Broker()
    broker.add("c1", "s1", pat("default/a/*"))
    assert broker.match(ch("default/a/x")) == [("c1", "s1")]
    assert broker.match(ch("default/a/x/y/z")) == [("c1", "s1")]
    assert broker.match(ch("default/a")) == []
    assert broker.match(ch("default/b/x")) == []
    assert broker.match(ch("default")) == []


def test_broker_namespace_wildcard_matches_every_channel_of_the_namespace() -> None:
    """/ns/* receives every channel below the namespace, and nothing of other namespaces."""
    broker = Broker()
    broker.add("c1", "s1", pat("/default/*"))
    assert broker.match(ch("default/messages")) == [("c1", "s1")]
    assert broker.match(ch("default/greetings/tutorial")) == [("c1", "s1")]
    assert broker.match(ch("other/messages")) == []


def test_broker_matching_is_case_sensitive() -> None:
    """Channel segments compare case-sensitively."""
    broker = Broker()
    broker.add("c1", "s1", pat("default/Chat"))
    broker.add("c1", "s2", pat("Default/*"))
    assert broker.match(ch("default/chat")) == []
    assert broker.match(ch("default/Chat")) == [("c1", "s1")]
    assert broker.match(ch("Default/Chat")) == [("c1", "s2")]


def test_broker_returns_subscription_order_across_patterns() -> None:
    """Exact and wildcard matches interleave in the order they were added."""
    broker = Broker()
    broker.add("c2", "w-deep", pat("default/a/*"))
    broker.add("c1", "exact", pat("default/a/b"))
    broker.add("c1", "w-ns", pat("default/*"))
    broker.add("c3", "other", pat("default/a/c"))
    broker.add("c3", "exact2", pat("/default/a/b/"))
    assert broker.match(ch("default/a/b")) == [
        ("c2", "w-deep"),
        ("c1", "exact"),
        ("c1", "w-ns"),
        ("c3", "exact2"),
    ]


def test_broker_readded_subscription_goes_to_the_end() -> None:
    """Removing and adding again gives a new place in subscription order."""
    broker = Broker()
    broker.add("c1", "s1", pat("default/a"))
    broker.add("c1", "s2", pat("default/a"))
    broker.remove("c1", "s1")
    broker.add("c1", "s1", pat("default/a"))
    assert broker.match(ch("default/a")) == [("c1", "s2"), ("c1", "s1")]


def test_broker_same_subscription_id_on_two_connections_is_distinct() -> None:
    """Subscription ids are per connection."""
    broker = Broker()
    broker.add("c1", "s", pat("default/a"))
    broker.add("c2", "s", pat("default/a"))
    assert broker.match(ch("default/a")) == [("c1", "s"), ("c2", "s")]
    assert broker.remove("c1", "s") is True
    assert broker.match(ch("default/a")) == [("c2", "s")]


def test_broker_duplicate_add_is_an_error() -> None:
    """Adding a registered (connection, subscription) again raises ValueError."""
    broker = Broker()
    broker.add("c1", "s1", pat("default/a"))
    with pytest.raises(ValueError, match="'s1' of connection 'c1' already exists"):
        broker.add("c1", "s1", pat("default/b"))
    assert broker.pattern("c1", "s1") == pat("default/a")


def test_broker_remove_is_idempotent_and_cleans_up() -> None:
    """remove returns whether it removed; an emptied index matches nothing."""
    broker = Broker()
    broker.add("c1", "s1", pat("default/a/*"))
    broker.add("c1", "s2", pat("default/a"))
    assert len(broker) == 2
    assert broker.remove("c1", "s1") is True
    assert broker.remove("c1", "s1") is False
    assert broker.remove("nope", "s2") is False
    assert broker.match(ch("default/a/x")) == []
    assert broker.remove("c1", "s2") is True
    assert len(broker) == 0
    assert broker.match(ch("default/a")) == []
    assert broker.subscriptions("c1") == []
    assert ("c1", "s2") not in broker


def test_broker_remove_connection_drops_all_its_subscriptions() -> None:
    """remove_connection returns the removed ids and leaves other connections alone."""
    broker = Broker()
    broker.add("c1", "s1", pat("default/*"))
    broker.add("c2", "s1", pat("default/*"))
    broker.add("c1", "s2", pat("other/x"))
    assert broker.subscriptions("c1") == ["s1", "s2"]
    assert broker.remove_connection("c1") == ["s1", "s2"]
    assert broker.remove_connection("c1") == []
    assert broker.match(ch("default/x")) == [("c2", "s1")]
    assert broker.match(ch("other/x")) == []
    assert ("c2", "s1") in broker
    assert broker.pattern("c1", "s1") is None


def test_broker_match_refuses_a_wildcard_channel() -> None:
    """Events are published to concrete channels only."""
    broker = Broker()
    with pytest.raises(ValueError, match="wildcard pattern '/default/\\*'"):
        broker.match(pat("default/*"))


def test_broker_fans_out_among_ten_thousand_subscriptions() -> None:
    """10k subscriptions over many channels: match finds exactly the right ones."""
    broker = Broker()
    for i in range(10_000):
        broker.add(f"c{i % 100}", f"s{i}", pat(f"default/room{i % 500}"))
    broker.add("watcher", "all", pat("default/*"))
    hits = broker.match(ch("default/room7"))
    assert len(hits) == 21
    assert hits[-1] == ("watcher", "all")
    assert [sub for _, sub in hits[:-1]] == [f"s{i}" for i in range(7, 10_000, 500)]


# --- property: the index agrees with a brute-force scan ----------------------------------

_segments = st.sampled_from(["a", "b", "B", "c-1"])
_namespaces = st.sampled_from(["default", "other"])


@st.composite
def _patterns(draw: st.DrawFn) -> Channel:
    rest = draw(st.lists(_segments, max_size=3))
    wildcard = draw(st.booleans())
    return Channel((draw(_namespaces), *rest), wildcard)


@st.composite
def _channels(draw: st.DrawFn) -> Channel:
    return Channel((draw(_namespaces), *draw(st.lists(_segments, max_size=4))))


_ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("add"),
            st.sampled_from(["c1", "c2", "c3"]),
            st.sampled_from("pqrs"),
            _patterns(),
        ),
        st.tuples(st.just("remove"), st.sampled_from(["c1", "c2", "c3"]), st.sampled_from("pqrs")),
        st.tuples(st.just("drop"), st.sampled_from(["c1", "c2", "c3"])),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(ops=_ops, probes=st.lists(_channels(), min_size=1, max_size=8))
def test_broker_match_equals_brute_force_scan(
    ops: list[tuple[object, ...]], probes: list[Channel]
) -> None:
    """After any add/remove/remove_connection sequence, match() equals a linear scan with
    channels.matches over the live subscriptions in insertion order."""
    broker = Broker()
    model: dict[tuple[str, str], Channel] = {}  # insertion-ordered, like subscription order
    for op in ops:
        match op:
            case ("add", str(conn), str(sub), Channel() as pattern):
                if (conn, sub) in model:
                    with pytest.raises(ValueError):
                        broker.add(conn, sub, pattern)
                else:
                    broker.add(conn, sub, pattern)
                    model[(conn, sub)] = pattern
            case ("remove", str(conn), str(sub)):
                assert broker.remove(conn, sub) is ((conn, sub) in model)
                model.pop((conn, sub), None)
            case ("drop", str(conn)):
                expected = [s for c, s in model if c == conn]
                assert broker.remove_connection(conn) == expected
                for s in expected:
                    del model[(conn, s)]
            case _:  # pragma: no cover - the strategy only builds these
                raise AssertionError(op)
    assert len(broker) == len(model)
    for channel in probes:
        brute = [key for key, pattern in model.items() if matches(pattern, channel)]
        assert broker.match(channel) == brute


def test_broker_lookup_is_kept_until_a_subscription_changes() -> None:
    """lookup returns the same Match (and its routes slot) until an add or a remove."""
    broker = Broker()
    broker.add("c1", "s1", pat("default/a"))
    first = broker.lookup(ch("default/a"))
    first.routes = "resolved"
    assert broker.lookup(ch("/default/a/")) is first
    assert first.keys == [("c1", "s1")]
    broker.add("c2", "s1", pat("default/*"))
    second = broker.lookup(ch("default/a"))
    assert second is not first
    assert second.routes is None
    assert second.keys == [("c1", "s1"), ("c2", "s1")]
    assert first.keys == [("c1", "s1")]  # an old match is left as it was
    assert broker.remove("nope", "s1") is False
    assert broker.lookup(ch("default/a")) is second  # nothing changed
    broker.remove("c1", "s1")
    assert broker.lookup(ch("default/a")).keys == [("c2", "s1")]
    broker.remove_connection("c2")
    assert broker.lookup(ch("default/a")).keys == []


def test_broker_match_returns_a_copy_of_the_kept_keys() -> None:
    """Changing match's list does not change the next match."""
    broker = Broker()
    broker.add("c1", "s1", pat("default/a"))
    broker.match(ch("default/a")).clear()
    assert broker.match(ch("default/a")) == [("c1", "s1")]


def test_broker_kept_matches_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past MAX_MATCHES channels the kept matches are dropped, not grown."""
    from appsync_emulator import broker as module

    monkeypatch.setattr(module, "MAX_MATCHES", 3)
    broker = Broker()
    broker.add("c1", "s1", pat("default/*"))
    kept = [broker.lookup(ch(f"default/c{i}")) for i in range(3)]
    assert broker.lookup(ch("default/c0")) is kept[0]
    broker.lookup(ch("default/c3"))
    assert len(broker._matches) == 1
    assert broker.lookup(ch("default/c0")) is not kept[0]
    assert broker.lookup(ch("default/c0")).keys == [("c1", "s1")]


def test_broker_lookup_refuses_a_wildcard() -> None:
    broker = Broker()
    with pytest.raises(ValueError, match="wildcard"):
        broker.lookup(pat("default/*"))
