"""Pure fan-out index: which subscriptions receive an event published to a channel.

Subscriptions are keyed by ``(connection id, subscription id)`` and indexed per namespace
(the first segment; docs: protocol.rst, "Channels and namespaces"), then by their exact
segments: a concrete pattern ``/ns/a/b`` sits under ``("ns", "a", "b")`` and a wildcard
``/ns/a/*`` under the prefix ``("ns", "a")``.  A published channel ``/ns/a/b/c`` is
therefore matched by looking up its own segments among the exact patterns and each proper
prefix among the wildcards: at most five dictionary lookups, however many subscriptions
exist.  Results come back in subscription order (the order of :meth:`Broker.add`).

A channel's result is kept (:meth:`Broker.lookup`) until the next subscribe or unsubscribe,
with a slot where the fan-out keeps what it resolved from it (the connections, their queues),
so that a publish to an unchanged set of subscriptions does no lookup per subscriber.

The broker never does I/O and never reads a clock; the emulator's shell feeds it from
:class:`~appsync_emulator.server_protocol.ServerProtocol` events (``accept_subscribe`` →
:meth:`Broker.add`, ``accept_unsubscribe`` → :meth:`Broker.remove`, EOF →
:meth:`Broker.remove_connection`).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

from appsync_events.protocol.channels import Channel

__all__ = ["Broker", "Match", "SubscriptionKey"]

SubscriptionKey = tuple[str, str]
"""``(connection id, subscription id)``."""

_Bucket = dict[SubscriptionKey, int]
"""Subscriptions of one pattern, each with its sequence number, in insertion order."""


MAX_MATCHES: Final = 4096
"""Channels whose match is kept; past that the kept matches are dropped (channels churn)."""


class Match:
    """The subscriptions an event published to one channel reaches, as of now."""

    __slots__ = ("keys", "routes")

    def __init__(self, keys: list[SubscriptionKey]) -> None:
        self.keys: Final = keys
        """``(conn_id, sub_id)`` pairs in subscription order (not to be changed)."""
        self.routes: object = None
        """What the fan-out resolved from :attr:`keys`, kept by it here: dropped with the
        match at the next subscribe or unsubscribe."""


@dataclass(slots=True)
class _Namespace:
    exact: dict[tuple[str, ...], _Bucket] = field(default_factory=dict)
    wildcard: dict[tuple[str, ...], _Bucket] = field(default_factory=dict)

    def table(self, pattern: Channel) -> dict[tuple[str, ...], _Bucket]:
        return self.wildcard if pattern.wildcard else self.exact

    def __bool__(self) -> bool:
        return bool(self.exact or self.wildcard)


class Broker:
    """Index of active subscriptions, for fan-out.

    Not thread-safe: one event loop owns it.
    """

    def __init__(self) -> None:
        self._namespaces: dict[str, _Namespace] = {}
        self._patterns: dict[SubscriptionKey, Channel] = {}
        self._by_connection: dict[str, dict[str, None]] = {}
        self._sequence = 0
        self._matches: dict[tuple[str, ...], Match] = {}
        """Kept :meth:`lookup` results by channel segments, until the next add or remove."""

    def __len__(self) -> int:
        """The number of subscriptions."""
        return len(self._patterns)

    def __contains__(self, key: object) -> bool:
        """Whether ``(conn_id, sub_id)`` is subscribed."""
        return key in self._patterns

    def pattern(self, conn_id: str, sub_id: str) -> Channel | None:
        """The pattern of a subscription, or ``None`` if there is none."""
        return self._patterns.get((conn_id, sub_id))

    def subscriptions(self, conn_id: str) -> list[str]:
        """The subscription ids of one connection, oldest first."""
        return list(self._by_connection.get(conn_id, ()))

    def add(self, conn_id: str, sub_id: str, pattern: Channel) -> None:
        """Register subscription ``sub_id`` of connection ``conn_id`` for ``pattern``.

        Raises:
            ValueError: the subscription is already registered (the protocol core
                rejects duplicate ids, so this is a bug in the caller).
        """
        key = (conn_id, sub_id)
        if key in self._patterns:
            raise ValueError(f"subscription {sub_id!r} of connection {conn_id!r} already exists")
        self._sequence += 1
        namespace = self._namespaces.setdefault(pattern.namespace, _Namespace())
        namespace.table(pattern).setdefault(pattern.segments, {})[key] = self._sequence
        self._patterns[key] = pattern
        self._by_connection.setdefault(conn_id, {})[sub_id] = None
        if self._matches:
            self._matches = {}

    def remove(self, conn_id: str, sub_id: str) -> bool:
        """Unregister a subscription.

        Returns:
            Whether it was registered (removing twice is harmless).
        """
        key = (conn_id, sub_id)
        pattern = self._patterns.pop(key, None)
        if pattern is None:
            return False
        if self._matches:
            self._matches = {}
        namespace = self._namespaces[pattern.namespace]
        table = namespace.table(pattern)
        bucket = table[pattern.segments]
        del bucket[key]
        if not bucket:
            del table[pattern.segments]
        if not namespace:
            del self._namespaces[pattern.namespace]
        subs = self._by_connection[conn_id]
        del subs[sub_id]
        if not subs:
            del self._by_connection[conn_id]
        return True

    def remove_connection(self, conn_id: str) -> list[str]:
        """Unregister every subscription of a connection.

        Returns:
            The removed subscription ids, oldest first.
        """
        removed = self.subscriptions(conn_id)
        for sub_id in removed:
            self.remove(conn_id, sub_id)
        return removed

    def match(self, channel: Channel) -> list[SubscriptionKey]:
        """Return the subscriptions receiving an event published to ``channel``.

        Args:
            channel: a concrete channel (:func:`~appsync_events.protocol.channels.parse_channel`).

        Returns:
            ``(conn_id, sub_id)`` pairs in subscription order.

        Raises:
            ValueError: ``channel`` is a wildcard pattern; events go to concrete channels.
        """
        return list(self.lookup(channel).keys)

    def lookup(self, channel: Channel) -> Match:
        """:meth:`match`, kept until the next subscribe or unsubscribe: the same
        :class:`Match` for the same channel meanwhile.

        Raises:
            ValueError: ``channel`` is a wildcard pattern.
        """
        if channel.wildcard:
            raise ValueError(f"cannot publish to the wildcard pattern {channel.path!r}")
        found = self._matches.get(channel.segments)
        if found is None:
            if len(self._matches) >= MAX_MATCHES:
                self._matches = {}
            found = self._matches[channel.segments] = Match(self._match(channel))
        return found

    def _match(self, channel: Channel) -> list[SubscriptionKey]:
        namespace = self._namespaces.get(channel.namespace)
        if namespace is None:
            return []
        segments = channel.segments
        # A wildcard /p/* matches channels strictly below p
        # (EMULATOR-CHOICE, docs: emulator-fidelity.rst, "Channels"), so
        # only the proper prefixes of the channel are looked up.
        buckets = [namespace.wildcard.get(segments[:n]) for n in range(1, len(segments))]
        buckets.append(namespace.exact.get(segments))
        found = [b for b in buckets if b]
        if len(found) == 1:
            return list(found[0])
        merged = heapq.merge(*(_by_sequence(b) for b in found))
        return [key for _, key in merged]


def _by_sequence(bucket: _Bucket) -> Iterator[tuple[int, SubscriptionKey]]:
    # Buckets are insertion-ordered, and sequence numbers only grow: already sorted.
    return ((seq, key) for key, seq in bucket.items())
