"""What the emulator saw and sent, with assertions and waits for tests.

The recorder is written by the server on its event loop and read by tests from any
thread or any event loop:

* every list is bounded by ``config.record_limit`` (the oldest entries go first) and
  guarded by one lock, and every property returns a snapshot copy;
* every wait is awaitable, ``await recorder.wait_published(...)``, and works on **any**
  event loop: the recorder completes a future on the waiter's own loop with
  ``call_soon_threadsafe`` when a record satisfies it, so no thread is parked and no
  polling sleep is involved;
* each wait has a blocking twin with the same arguments and the suffix ``_sync``
  (``recorder.wait_published_sync(...)``) for sync tests: it blocks the calling thread on a
  condition variable with a real-clock deadline (freezegun cannot stall it) and refuses to
  run on a thread that is running an event loop;
* a failed assertion or a timed-out wait raises :class:`RecorderAssertionError` whose
  message names the wait that timed out and lists the near misses (the channels that did
  get publishes, the subscriptions that do exist, the error frames the server sent).

This module holds the storage and the notification (the waiters and the condition);
:mod:`appsync_emulator.recorder_checks` holds the assertions, the waits and their failure
reports, which :class:`Recorder` inherits.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import Any, Literal, TypeVar

from appsync_events.protocol.codec import DataEvents, encode_data_frames
from appsync_events.protocol.messages import FailedEvent

from ._clock import real_monotonic, real_time
from .recorder_checks import RecorderAssertionError as RecorderAssertionError, RecorderChecks
from .records import (
    ConnectionInfo as ConnectionInfo,
    Direction as Direction,
    ErrorRecord as ErrorRecord,
    FrameRecord as FrameRecord,
    PublishRecord as PublishRecord,
    RecordListener,
    SubscriptionRecord as SubscriptionRecord,
)
from .verify.base import Identity

__all__ = [
    "ConnectionInfo",
    "ErrorRecord",
    "FrameRecord",
    "PublishRecord",
    "Recorder",
    "RecorderAssertionError",
    "SubscriptionRecord",
]

T = TypeVar("T")
_Frame = tuple[str | bytes | None, str | None, str | None, Any]
_SentBatch = tuple[str | None, float, Any, int]
"""``(connection id, time, frames, count)``: one writer batch, ``frames`` a list of
``(text, frame type, frame id, _)``; or ``(None, time, _FanOut, count)``: the ``data``
frames of one publish to many subscriptions, their texts made only when read."""


_PublishRow = tuple[
    str,
    tuple[str, ...],
    tuple[str, ...],
    Identity | None,
    Literal["websocket", "http"],
    float,
    tuple[FailedEvent, ...],
    tuple[str, ...],
    int,
    str | None,
    str | None,
]
"""A :class:`PublishRecord` not yet made: its fields in order, ``auth_mode`` left out
(the identity's mode)."""


def _publish_record(entry: PublishRecord | _PublishRow) -> PublishRecord:
    if isinstance(entry, PublishRecord):
        return entry
    channel, events, ids, identity, transport, when, failed, broadcast, count, conn, pub = entry
    return PublishRecord(
        channel=channel,
        events=events,
        identifiers=ids,
        auth_mode=identity.mode if identity is not None else None,
        identity=identity,
        transport=transport,
        time=when,
        failed=failed,
        broadcast=broadcast,
        deliveries=count,
        connection_id=conn,
        publish_id=pub,
    )


_FrameRow = tuple[str, Direction, str | bytes, str | None, str | None, float]
"""A received :class:`FrameRecord` not yet made: its fields in order."""


def _frame_record(entry: FrameRecord | _FrameRow) -> FrameRecord:
    return entry if isinstance(entry, FrameRecord) else FrameRecord._make(entry)


class _FanOut:
    """The ``data`` frames of one publish's fan-out: ``(connection id, subscription id)``
    targets and the publish's encoded events."""

    __slots__ = ("events", "targets")

    def __init__(self, events: DataEvents, targets: list[tuple[str, str]]) -> None:
        self.events = events
        self.targets = targets

    def frames(self) -> Iterator[tuple[str, _Frame]]:
        for connection_id, sub_id in self.targets:
            for text in encode_data_frames(sub_id, self.events):
                yield connection_id, (text, "data", sub_id, None)


# --- the recorder -----------------------------------------------------------------------


class _Waiter:
    __slots__ = ("future", "loop", "predicate")

    def __init__(
        self,
        predicate: Callable[[], Any],
        loop: asyncio.AbstractEventLoop,
        future: asyncio.Future[Any],
    ) -> None:
        self.predicate = predicate
        self.loop = loop
        self.future = future


def _resolve(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


class Recorder(RecorderChecks):
    """Bounded, thread-safe log of connections, subscriptions, publishes, frames, errors.

    Args:
        limit: entries kept per list (``config.record_limit``).
    """

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = max(1, limit)
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        # ``with self._lock`` is the C-level enter/exit of the lock the condition owns.
        self._connections: OrderedDict[str, ConnectionInfo] = OrderedDict()
        self._subscriptions: OrderedDict[int, SubscriptionRecord] = OrderedDict()
        self._active: dict[tuple[str, str], int] = {}
        self._active_ids: dict[str, set[str]] = {}
        """The keys of ``_active`` by connection (a close ends them without a scan)."""
        self._published: deque[PublishRecord | _PublishRow] = deque(maxlen=self.limit)
        self._publish_rows = False
        """Whether ``_published`` may hold rows not yet made records."""
        self._errors: deque[ErrorRecord] = deque(maxlen=self.limit)
        self._received: deque[FrameRecord | _FrameRow] = deque(maxlen=self.limit)
        self._received_rows = False
        """Whether ``_received`` may hold rows not yet made records."""
        self._sent: deque[_SentBatch] = deque()
        """Sent frames as the writer's batches: no object per frame on the hot path."""
        self._sent_count = 0
        self._opened_total = 0
        self._seq = 0
        self._version = 0
        self._waiters: list[_Waiter] = []
        self._blocking = 0
        self.listener: RecordListener | None = None
        """Told of connections, frames and closes as they are recorded (a recording
        file's hook); ``None`` (the default) costs one check per record."""

    # --- writing (server side) ----------------------------------------------------------

    def _changed(self) -> None:
        """Wake blocking waiters and complete async ones.  Call with the lock held."""
        self._version += 1
        self._cond.notify_all()
        if not self._waiters:
            return
        keep: list[_Waiter] = []
        for waiter in self._waiters:
            if waiter.future.done():
                continue
            try:
                result = waiter.predicate()
            except Exception as exc:  # a broken predicate fails its own wait, nothing else
                self._complete(waiter, exc)
                continue
            if result is None:
                keep.append(waiter)
            else:
                self._complete(waiter, result)
        self._waiters = keep

    @staticmethod
    def _complete(waiter: _Waiter, result: Any) -> None:
        try:
            if isinstance(result, BaseException):
                waiter.loop.call_soon_threadsafe(_fail, waiter.future, result)
            else:
                waiter.loop.call_soon_threadsafe(_resolve, waiter.future, result)
        except RuntimeError:  # the waiter's loop is closed: nobody is waiting any more
            pass

    def record_connection(self, info: ConnectionInfo) -> None:
        with self._lock:
            self._connections[info.id] = info
            self._opened_total += 1
            self._trim_connections()
            self._changed()
        if self.listener is not None:
            self.listener.on_connection(info)

    def _trim_connections(self) -> None:
        while len(self._connections) > self.limit:
            # Drop the oldest closed connection; open ones are always kept.
            for key, info in self._connections.items():
                if not info.open:
                    del self._connections[key]
                    break
            else:
                return

    def record_close(
        self,
        connection_id: str,
        code: int | None,
        reason: str | None,
        *,
        by_server: bool | None = None,
    ) -> None:
        if self.listener is not None:
            self.listener.on_close(connection_id, code, reason, by_server)
        with self._lock:
            info = self._connections.get(connection_id)
            if info is not None and info.open:
                self._connections[connection_id] = replace(
                    info, closed_at=real_time(), close_code=code, close_reason=reason
                )
            now = real_time()
            for sub_id in list(self._active_ids.get(connection_id, ())):
                key = (connection_id, sub_id)
                seq = self._active.get(key)
                if seq is not None:
                    self._end_subscription(key, seq, now)
            self._active_ids.pop(connection_id, None)
            self._changed()

    def update_connection(self, connection_id: str, **changes: Any) -> None:
        with self._lock:
            info = self._connections.get(connection_id)
            if info is not None:
                self._connections[connection_id] = replace(info, **changes)
                self._changed()

    def record_subscription(
        self,
        connection_id: str,
        sub_id: str,
        channel: str,
        pattern: str,
        identity: Identity | None,
    ) -> None:
        with self._lock:
            self._seq += 1
            record = SubscriptionRecord(
                connection_id=connection_id,
                id=sub_id,
                channel=channel,
                pattern=pattern,
                identity=identity,
                time=real_time(),
            )
            self._subscriptions[self._seq] = record
            self._active[(connection_id, sub_id)] = self._seq
            self._active_ids.setdefault(connection_id, set()).add(sub_id)
            while len(self._subscriptions) > self.limit:
                seq, old = self._subscriptions.popitem(last=False)
                if self._active.get((old.connection_id, old.id)) == seq:
                    self._forget_active((old.connection_id, old.id))
            self._changed()

    def _forget_active(self, key: tuple[str, str]) -> None:
        del self._active[key]
        ids = self._active_ids.get(key[0])
        if ids is not None:
            ids.discard(key[1])
            if not ids:
                del self._active_ids[key[0]]

    def _end_subscription(self, key: tuple[str, str], seq: int, now: float) -> None:
        self._forget_active(key)
        record = self._subscriptions.get(seq)
        if record is not None:
            self._subscriptions[seq] = replace(record, unsubscribed_at=now)

    def record_unsubscribe(self, connection_id: str, sub_id: str) -> None:
        with self._lock:
            seq = self._active.get((connection_id, sub_id))
            if seq is not None:
                self._end_subscription((connection_id, sub_id), seq, real_time())
                self._changed()

    def record_publish(self, record: PublishRecord) -> None:
        with self._lock:
            self._published.append(record)
            self._changed_cheaply()

    def record_publish_row(
        self,
        channel: str,
        events: tuple[str, ...],
        identifiers: tuple[str, ...],
        identity: Identity | None,
        transport: Literal["websocket", "http"],
        failed: tuple[FailedEvent, ...],
        broadcast: tuple[str, ...],
        deliveries: int,
        connection_id: str | None,
        publish_id: str | None,
    ) -> None:
        """:meth:`record_publish` of the :class:`PublishRecord` with these fields, its
        ``auth_mode`` the identity's and its ``time`` now (the publish path's form).

        Kept as a tuple: the record is made when someone reads the publishes.
        """
        row = (
            channel,
            events,
            identifiers,
            identity,
            transport,
            real_time(),
            failed,
            broadcast,
            deliveries,
            connection_id,
            publish_id,
        )
        with self._lock:
            self._published.append(row)
            self._publish_rows = True
            self._changed_cheaply()

    def record_received_publish(
        self,
        connection_id: str,
        text: str,
        channel: str,
        events: tuple[str, ...],
        identifiers: tuple[str, ...],
        identity: Identity | None,
        deliveries: int,
        publish_id: str,
    ) -> None:
        """:meth:`record_frame` of the ``publish`` frame ``text`` received on
        ``connection_id``, then :meth:`record_publish_row` of the WebSocket publish it
        asked for, every event broadcast and none failed: under one lock and at one time
        (the publish path, once the publish is fanned out; its frames are written after).
        """
        if self.listener is not None:
            self.listener.on_frame(connection_id, "received", text, "publish")
        now = real_time()
        with self._lock:
            self._received.append((connection_id, "received", text, "publish", None, now))
            self._received_rows = True
            self._published.append(
                (
                    channel,
                    events,
                    identifiers,
                    identity,
                    "websocket",
                    now,
                    (),
                    events,
                    deliveries,
                    connection_id,
                    publish_id,
                )
            )
            self._publish_rows = True
            self._changed_cheaply()

    def _changed_cheaply(self) -> None:
        # :meth:`_changed` without its work when nobody waits.  Call with the lock held.
        if self._waiters or self._blocking:
            self._changed()
        else:
            self._version += 1

    def _received_records(self) -> deque[FrameRecord]:
        """The received frames, oldest first, rows made records.  Call with the lock held."""
        if self._received_rows:
            self._received = deque(map(_frame_record, self._received), maxlen=self.limit)
            self._received_rows = False
        return self._received  # type: ignore[return-value]  # rows were made records

    def _publish_records(self) -> deque[PublishRecord]:
        """The publishes, oldest first, rows made records.  Call with the lock held."""
        if self._publish_rows:
            self._published = deque(map(_publish_record, self._published), maxlen=self.limit)
            self._publish_rows = False
        return self._published  # type: ignore[return-value]  # rows were made records

    def record_frame(
        self,
        connection_id: str,
        direction: Direction,
        data: str | bytes,
        frame_type: str | None = None,
        frame_id: str | None = None,
    ) -> None:
        if self.listener is not None:
            self.listener.on_frame(connection_id, direction, data, frame_type)
        now = real_time()
        with self._lock:
            if direction == "sent":
                self._append_sent((connection_id, now, [(data, frame_type, frame_id, None)], 1))
            else:
                # A row, made a FrameRecord when read (one is received per frame).
                self._received.append((connection_id, direction, data, frame_type, frame_id, now))
                self._received_rows = True
            # This runs once per frame: wake waiters only when there are any.
            if self._waiters:
                self._changed()
            elif self._blocking:
                self._cond.notify_all()

    def record_frames(
        self,
        connection_id: str,
        frames: Iterable[tuple[str | bytes | None, str | None, str | None, Any]],
    ) -> None:
        """Record sent frames ``(text, frame type, frame id, _)`` under one lock.

        The batch is kept as it is (copied, not unpacked; ``None`` texts, which are not
        frames, left out): :attr:`sent` builds the :class:`FrameRecord` objects when
        someone reads them.
        """
        kept = [f for f in frames if f[0] is not None]
        batch = (connection_id, real_time(), kept, len(kept))
        if self.listener is not None:
            self.listener.on_sent(connection_id, kept)
        with self._lock:
            self._append_sent(batch)
            if self._waiters:
                self._changed()
            elif self._blocking:
                self._cond.notify_all()

    def record_data(
        self, events: DataEvents, targets: list[tuple[str, str]], when: float | None = None
    ) -> None:
        """Record the ``data`` frames of one publish to ``(connection id, subscription
        id)`` targets under one lock (the fan-out's hot path).

        Kept as the publish's encoded events and the targets: the frames' texts are made
        only when someone reads :attr:`sent`.
        """
        count = len(targets) * len(events.events)
        if not count:
            return
        fan_out = _FanOut(events, targets)
        batch = (None, real_time() if when is None else when, fan_out, count)
        if self.listener is not None:
            for connection_id, frame in fan_out.frames():
                self.listener.on_sent(connection_id, (frame,))
        with self._lock:
            self._append_sent(batch)
            if self._waiters:
                self._changed()
            elif self._blocking:
                self._cond.notify_all()

    def record_reply_and_data(
        self,
        connection_id: str,
        frames: list[tuple[str, str | None, str | None, Any]],
        events: DataEvents,
        targets: list[tuple[str, str]],
    ) -> None:
        """:meth:`record_frames` of ``connection_id``'s ``frames`` (texts, not ``None``),
        then :meth:`record_data` of a fan-out, under one lock and at one time (a
        publish's reply and its deliveries)."""
        now = real_time()
        kept = list(frames)
        count = len(targets) * len(events.events)
        fan_out = _FanOut(events, targets)
        listener = self.listener
        if listener is not None:
            listener.on_sent(connection_id, kept)
            for target, frame in fan_out.frames():
                listener.on_sent(target, (frame,))
        with self._lock:
            # Both batches, then one trim (_append_sent's).
            sent = self._sent
            sent.append((connection_id, now, kept, len(kept)))
            if count:
                sent.append((None, now, fan_out, count))
            self._sent_count += len(kept) + count
            while self._sent_count - sent[0][3] >= self.limit:
                self._sent_count -= sent.popleft()[3]
            if self._waiters:
                self._changed()
            elif self._blocking:
                self._cond.notify_all()

    def _append_sent(self, batch: _SentBatch) -> None:
        # Call with the lock held.  Whole batches are dropped, oldest first, while the
        # rest still hold ``limit`` frames; :meth:`_sent_records` trims to exactly that.
        sent = self._sent
        sent.append(batch)
        self._sent_count += batch[3]
        while self._sent_count - sent[0][3] >= self.limit:
            self._sent_count -= sent.popleft()[3]

    def _sent_records(self) -> list[FrameRecord]:
        # Call with the lock held.
        records: list[FrameRecord] = []
        for connection_id, when, frames, _ in self._sent:
            if connection_id is None:
                for target, (text, frame_type, frame_id, _x) in frames.frames():
                    records.append(FrameRecord(target, "sent", text, frame_type, frame_id, when))
                continue
            records.extend(
                FrameRecord(connection_id, "sent", text, frame_type, frame_id, when)
                for text, frame_type, frame_id, _x in frames
                if text is not None  # never, but the type allows it
            )
        return records[-self.limit :]

    def record_error(self, record: ErrorRecord) -> None:
        with self._lock:
            self._errors.append(record)
            self._changed()

    def clear(self) -> None:
        """Forget everything except the connections and subscriptions still open."""
        with self._lock:
            for key, info in list(self._connections.items()):
                if not info.open:
                    del self._connections[key]
            self._opened_total = len(self._connections)
            for seq, sub in list(self._subscriptions.items()):
                if not sub.active:
                    del self._subscriptions[seq]
            self._published.clear()
            self._errors.clear()
            self._received.clear()
            self._sent.clear()
            self._sent_count = 0
            self._changed()

    # --- reading ------------------------------------------------------------------------

    @property
    def version(self) -> int:
        """A counter bumped by every change (a cheap "has anything changed?" for watchers)."""
        return self._version

    @property
    def connections(self) -> list[ConnectionInfo]:
        """Every connection (open, and closed since the last reset), oldest first."""
        with self._lock:
            return list(self._connections.values())

    @property
    def open_connections(self) -> list[ConnectionInfo]:
        with self._lock:
            return [c for c in self._connections.values() if c.open]

    def connection(self, connection_id: str) -> ConnectionInfo | None:
        with self._lock:
            return self._connections.get(connection_id)

    @property
    def subscriptions(self) -> list[SubscriptionRecord]:
        """Every accepted subscription, with ``unsubscribed_at`` once it ended."""
        with self._lock:
            return list(self._subscriptions.values())

    @property
    def active_subscriptions(self) -> list[SubscriptionRecord]:
        with self._lock:
            return [s for s in self._subscriptions.values() if s.active]

    @property
    def published(self) -> list[PublishRecord]:
        with self._lock:
            return list(self._publish_records())

    @property
    def errors(self) -> list[ErrorRecord]:
        with self._lock:
            return list(self._errors)

    @property
    def received(self) -> list[FrameRecord]:
        """Frames received from clients (all connections; filter on ``connection_id``)."""
        with self._lock:
            return list(self._received_records())

    @property
    def sent(self) -> list[FrameRecord]:
        """Frames sent to clients (all connections; filter on ``connection_id``)."""
        with self._lock:
            return self._sent_records()

    def received_from(self, connection_id: str) -> list[FrameRecord]:
        with self._lock:
            return [f for f in self._received_records() if f.connection_id == connection_id]

    def sent_to(self, connection_id: str) -> list[FrameRecord]:
        with self._lock:
            return [f for f in self._sent_records() if f.connection_id == connection_id]

    # --- the waits' engine --------------------------------------------------------------
    #
    # The public waits (in RecorderChecks) register here: an awaited wait as a waiter that
    # _changed completes, a blocking one on the condition variable.

    async def _wait(
        self,
        predicate: Callable[[Recorder], T | None],
        timeout: float,  # noqa: ASYNC109 - the public waits' timeout, passed on
        call: str,
        describe: Callable[[], str] | None,
    ) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._lock:
            result = predicate(self)
            if result is not None:
                return result
            waiter = _Waiter(lambda: predicate(self), loop, future)
            self._waiters.append(waiter)
            self._cond.notify_all()  # lets a blocking wait observe pending waiters
        try:
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            with self._lock:
                raise self._timed_out(call, timeout, describe) from None
        finally:
            with self._lock:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def _wait_sync(
        self,
        predicate: Callable[[Recorder], T | None],
        timeout: float,
        call: str,
        describe: Callable[[], str] | None,
    ) -> T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError(
                f"{call.replace('(', '_sync(', 1)} blocks, and this thread is running an "
                f"event loop; use the awaitable twin instead: await {call}"
            )
        deadline = real_monotonic() + timeout
        with self._lock:
            self._blocking += 1
            try:
                while True:
                    result = predicate(self)
                    if result is not None:
                        return result
                    remaining = deadline - real_monotonic()
                    if remaining <= 0:
                        raise self._timed_out(call, timeout, describe)
                    self._cond.wait(remaining)
            finally:
                self._blocking -= 1


def _fail(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
