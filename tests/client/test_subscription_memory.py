"""What a subscription holds: little of its own until it needs it.

Its settings are shared by the subscriptions made with the same options (the rare state
of one subscription lives in a private copy), its inbox is made by the first event, and
the reads waiting on it are listed in its settings' ``waiting`` map only while they wait
(``_limit`` is 0 meanwhile, so that the reader hands the event to ``_deliver``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

import appsync_events
from appsync_emulator import EmulatorConfig, EmulatorServer, NamespaceConfig
from appsync_events import Overflow, authorizer, sync
from appsync_events.errors import SubscriptionClosedError, SubscriptionInboxFullError
from appsync_events.subscription import (
    _NO_INBOX,
    Subscription,
    SubscriptionSettings,
    SubscriptionState,
)

from .helpers import WAIT

pytestmark = pytest.mark.asyncio


async def _unsubscribe(sub: Subscription) -> None:  # pragma: no cover - never called
    pass


def settings(overflow: Overflow = Overflow.FAIL, capacity: int = 2) -> SubscriptionSettings:
    return SubscriptionSettings(
        capacity=capacity,
        authorizer=authorizer.ApiKey("da2-x"),
        unsubscribe=_unsubscribe,
        on_overflow=lambda sub: None,
        overflow=overflow,
    )


def active(shared: SubscriptionSettings, subscription_id: str = "s1") -> Subscription:
    sub = Subscription(subscription_id, "default/a", shared)
    assert sub._accepted()
    return sub


def message(n: int, subscription_id: str = "s1") -> appsync_events.Message:
    return appsync_events.Message(str(n), subscription_id, "default/a")


def reader_appends(sub: Subscription, item: appsync_events.Message) -> bool:
    """What the connection's reader does with an event (its inlined fast path)."""
    inbox = sub._inbox
    if sub._state is SubscriptionState.ACTIVE and len(inbox) < sub._limit:
        inbox.append(item)
        return False
    return sub._deliver(item)


async def started(task: asyncio.Task[appsync_events.Message]) -> None:
    """Let ``task`` run until it waits (no I/O: a few loop turns)."""
    for _ in range(3):
        await asyncio.sleep(0)
    assert not task.done()


# --- nothing of its own while idle --------------------------------------------------------------


async def test_an_idle_subscription_holds_only_its_id_channel_and_state() -> None:
    """No __dict__, no inbox, no waiter list, settings shared with its siblings."""
    shared = settings()
    first, second = active(shared, "s1"), active(shared, "s2")
    for sub in (first, second):
        assert not hasattr(sub, "__dict__")
        assert sub._settings is shared
        assert sub._inbox is _NO_INBOX
        assert sub._limit == 0
        assert (sub.capacity, sub.overflow, sub.dropped, sub.broadcast_error_count) == (
            2,
            Overflow.FAIL,
            0,
            0,
        )
        assert not sub.pausing
        assert sub.broadcast_errors == ()
    assert shared.waiting == {}


async def test_first_event_creates_the_inbox_and_sets_the_reader_limit() -> None:
    """The first event makes the deque; FAIL lets the reader fill it, PAUSE all but one slot."""
    for overflow, limit in ((Overflow.FAIL, 4), (Overflow.DROP_OLDEST, 4), (Overflow.PAUSE, 3)):
        sub = active(settings(overflow, 4))
        assert reader_appends(sub, message(0)) is False  # _limit 0: through _deliver
        assert sub._inbox is not _NO_INBOX
        assert sub._limit == limit
        assert sub.pending == 1
        assert (await sub.next()).data == "0"
        assert sub._inbox is not _NO_INBOX  # kept while the subscription lives
        await sub.close()
        assert (sub._inbox, sub._limit) == (_NO_INBOX, 0)


# --- waiting reads ------------------------------------------------------------------------------


async def test_a_waiting_read_is_listed_in_the_settings_and_woken_by_the_next_event() -> None:
    """While a read waits ``_limit`` is 0 (the reader calls _deliver); waking forgets it."""
    shared = settings(capacity=4)
    sub, other = active(shared, "s1"), active(shared, "s2")
    reader_appends(sub, message(0))
    assert (await sub.next()).data == "0"
    assert sub._limit == 4
    read = asyncio.ensure_future(sub.next())
    await started(read)
    assert sub._limit == 0
    assert list(shared.waiting) == [sub]
    assert reader_appends(other, message(9, "s2")) is False  # another one's event: no effect
    assert not read.done()
    assert reader_appends(sub, message(1)) is False
    assert (await asyncio.wait_for(read, WAIT)).data == "1"
    assert shared.waiting == {}
    assert sub._limit == 4
    assert sub.pending == 0


async def test_cancelled_waits_leave_nothing_behind_and_lose_no_event() -> None:
    """Cancelling waiting reads removes them; the last one restores ``_limit``; the event
    arriving afterwards waits in the inbox for the next read."""
    shared = settings(capacity=4)
    sub = active(shared)
    first = asyncio.ensure_future(sub.next())
    second = asyncio.ensure_future(sub.next())
    await started(first)
    await started(second)
    assert len(shared.waiting[sub]) == 2
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert len(shared.waiting[sub]) == 1
    assert sub._limit == 0  # one read still waits
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second
    assert shared.waiting == {}
    assert sub._limit == 0  # no inbox yet
    reader_appends(sub, message(0))
    third = asyncio.ensure_future(sub.next())
    await asyncio.sleep(0)
    assert (await asyncio.wait_for(third, WAIT)).data == "0"
    fourth = asyncio.ensure_future(sub.next())
    await started(fourth)
    fourth.cancel()
    with pytest.raises(asyncio.CancelledError):
        await fourth
    assert shared.waiting == {}
    assert sub._limit == 4  # an inbox exists: the reader may append again


async def test_a_read_woken_then_cancelled_loses_no_event() -> None:
    """An event that woke a read cancelled before it ran stays for the next read."""
    shared = settings(capacity=4)
    sub = active(shared)
    read = asyncio.ensure_future(sub.next())
    await started(read)
    reader_appends(sub, message(0))  # wakes it...
    read.cancel()  # ...but it is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await read
    assert shared.waiting == {}
    assert sub.pending == 1
    assert (await asyncio.wait_for(sub.next(), WAIT)).data == "0"


async def test_closing_wakes_waiting_reads_and_forgets_them() -> None:
    shared = settings()
    sub = active(shared)
    read = asyncio.ensure_future(sub.next())
    await started(read)
    await sub.close()
    with pytest.raises(SubscriptionClosedError):
        await asyncio.wait_for(read, WAIT)
    assert shared.waiting == {}
    assert (sub._inbox, sub._limit) == (_NO_INBOX, 0)


# --- rare state: a private copy of the settings -------------------------------------------------


async def test_overflow_at_the_bound_fails_only_that_subscription() -> None:
    """FAIL: the event beyond ``capacity`` fails the subscription (the buffered ones are
    still read); its error lives in its own settings, its sibling is untouched."""
    overflowed: list[Subscription] = []
    shared = settings(capacity=2)
    shared.on_overflow = overflowed.append
    sub, sibling = active(shared, "s1"), active(shared, "s2")
    assert [reader_appends(sub, message(n)) for n in range(2)] == [False, False]
    assert sub._settings is shared  # at the bound: nothing private yet
    assert reader_appends(sub, message(2)) is False
    assert overflowed == [sub]
    assert sub._settings.private
    assert sub._settings.waiting is shared.waiting
    assert [(await sub.next()).data for _ in range(2)] == ["0", "1"]
    with pytest.raises(SubscriptionInboxFullError):
        await sub.next()
    assert shared.error is None
    assert sibling._settings is shared
    reader_appends(sibling, message(7, "s2"))
    assert (await sibling.next()).data == "7"


async def test_drop_oldest_at_the_bound_counts_for_that_subscription_only() -> None:
    shared = settings(Overflow.DROP_OLDEST, 2)
    sub, sibling = active(shared, "s1"), active(shared, "s2")
    for n in range(5):
        reader_appends(sub, message(n))
    assert (sub.dropped, sibling.dropped, shared.dropped) == (3, 0, 0)
    assert sub.capacity == 2  # copied into its own settings
    assert [(await sub.next()).data for _ in range(2)] == ["3", "4"]


async def test_pause_at_the_bound_asks_the_reader_to_wait() -> None:
    shared = settings(Overflow.PAUSE, 2)
    sub = active(shared)
    assert reader_appends(sub, message(0)) is False
    assert len(sub._inbox) == sub._limit  # the last slot goes through _deliver...
    assert reader_appends(sub, message(1)) is True  # ...which pauses the reader
    waiting = asyncio.ensure_future(sub._wait_room())
    await asyncio.sleep(0)
    assert sub.pausing
    assert not shared.room  # the room future is this subscription's own
    assert (await sub.next()).data == "0"
    await asyncio.wait_for(waiting, WAIT)
    assert not sub.pausing


# --- through a client ---------------------------------------------------------------------------


@pytest_asyncio.fixture
async def emulator() -> AsyncIterator[EmulatorServer]:
    config = EmulatorConfig(namespaces=(NamespaceConfig(name="default"),))
    async with EmulatorServer(config) as server:
        yield server
        server.check()


async def test_a_client_shares_its_default_settings(emulator: EmulatorServer) -> None:
    """Subscriptions that override nothing share one settings object; an override gets its
    own; replacing the client's authorizer makes new defaults (old subscriptions keep theirs)."""
    authz = authorizer.ApiKey(emulator.api_key or "")
    async with await appsync_events.connect(
        emulator.realtime_endpoint, authorizer=authz, operation_timeout=WAIT
    ) as client:
        first = await client.subscribe("default/a")
        second = await client.subscribe("default/b")
        assert first._settings is second._settings
        roomy = await client.subscribe("default/c", capacity=7)
        assert roomy._settings is not first._settings
        assert (roomy.capacity, roomy.authorizer) == (7, authz)
        other = authorizer.ApiKey(emulator.api_key or "")
        client.authorizer = other
        third = await client.subscribe("default/d")
        assert third.authorizer is other
        assert first.authorizer is authz
        await client.publish("default/a", "x")
        assert (await asyncio.wait_for(first.next(), WAIT)).data == '"x"'


async def test_sync_subscription_has_no_dict() -> None:
    """The synchronous wrapper holds only its asyncio subscription and its client."""
    assert sync.Subscription.__slots__ == ("_client", "_sub")
