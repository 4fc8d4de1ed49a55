"""The recorder: bounded lists, thread-safe waits from any thread or loop, near-miss messages."""

from __future__ import annotations

import asyncio
import dataclasses
import threading

import pytest

from appsync_emulator import EmulatorServer, EmulatorThread
from appsync_emulator.recorder import (
    ConnectionInfo,
    ErrorRecord,
    PublishRecord,
    Recorder,
    RecorderAssertionError,
)
from appsync_events.errors import ErrorDetail
from appsync_events.protocol.messages import FailedEvent
from tests.conftest import MS

from .conftest import fast_config, open_raw


def _publish(channel: str, *events: str, failed: tuple[FailedEvent, ...] = ()) -> PublishRecord:
    return PublishRecord(
        channel=channel,
        events=events,
        identifiers=tuple(f"id{i}" for i in range(len(events))),
        auth_mode=None,
        identity=None,
        transport="websocket",
        time=0.0,
        failed=failed,
    )


def _later(seconds: float, action: object) -> threading.Timer:
    timer = threading.Timer(seconds, action)  # type: ignore[arg-type]
    timer.start()
    return timer


def test_wait_published_blocks_until_another_thread_records() -> None:
    """A blocking wait returns as soon as a writer thread records a matching publish."""
    recorder = Recorder()
    timer = _later(50 * MS, lambda: recorder.record_publish(_publish("/default/x", '"a"')))
    records = recorder.wait_published_sync("default/x", timeout=2)
    timer.join()
    assert [r.events for r in records] == [('"a"',)]


def test_wait_published_counts_accepted_events() -> None:
    """count is the number of accepted events; failed ones do not count."""
    recorder = Recorder()
    bad = (FailedEvent(identifier="id1", index=1, code="X"),)
    recorder.record_publish(_publish("/default/x", '"a"', '"b"', failed=bad))
    recorder.record_publish(_publish("/default/x", '"c"'))
    assert len(recorder.wait_published_sync("/default/x", count=2, timeout=1)) == 2
    recorder.assert_published("/default/x", count=2, events=["a", '"c"'])
    with pytest.raises(RecorderAssertionError):
        recorder.assert_published("/default/x", count=3)


def test_wait_timeout_lists_near_misses() -> None:
    """A timed-out wait names the channels that did get publishes, and the error answers."""
    recorder = Recorder()
    recorder.record_publish(_publish("/default/y", '"a"', '"b"'))
    recorder.record_error(
        ErrorRecord(
            transport="websocket",
            frame_type="publish_error",
            errors=(ErrorDetail(error_type="UnauthorizedException", message="no"),),
            connection_id="c1",
            id="p9",
            time=0.0,
        )
    )
    with pytest.raises(RecorderAssertionError) as info:
        recorder.wait_published_sync("default/x", timeout=50 * MS)
    message = str(info.value)
    assert "expected 1 event(s) published to /default/x, got 0" in message
    assert "/default/y (2 events)" in message
    assert "publish_error on c1 id=p9: UnauthorizedException: no" in message
    assert isinstance(info.value, TimeoutError)


def test_assert_subscribed_lists_existing_subscriptions() -> None:
    """assert_subscribed matches the exact pattern and lists the others on failure."""
    recorder = Recorder()
    recorder.record_subscription("c1", "s1", "default/*", "/default/*", None)
    assert recorder.assert_subscribed("/default/*").id == "s1"
    with pytest.raises(RecorderAssertionError) as info:
        recorder.assert_subscribed("default/x")
    assert "active subscriptions: /default/* (c1/s1)" in str(info.value)
    recorder.record_unsubscribe("c1", "s1")
    with pytest.raises(RecorderAssertionError, match="ended subscriptions: /default/"):
        recorder.assert_subscribed("default/*")


def test_assert_no_errors_lists_them() -> None:
    """assert_no_errors passes on a clean log and lists every error answer otherwise."""
    recorder = Recorder()
    recorder.assert_no_errors()
    recorder.record_error(
        ErrorRecord(
            transport="http",
            frame_type="http",
            errors=(ErrorDetail(error_type="BadRequestException", message="bad"),),
            status=400,
            time=0.0,
        )
    )
    with pytest.raises(RecorderAssertionError, match="HTTP 400: BadRequestException: bad"):
        recorder.assert_no_errors()


def test_recorder_is_bounded() -> None:
    """Each list keeps at most ``limit`` entries, oldest dropped first."""
    recorder = Recorder(limit=3)
    for i in range(5):
        recorder.record_publish(_publish("/default/x", str(i)))
        recorder.record_frame("c1", "sent", str(i))
    assert [r.events[0] for r in recorder.published] == ["2", "3", "4"]
    assert len(recorder.sent) == 3


def test_sent_batches_are_bounded_by_frames_not_batches() -> None:
    """Writer batches are stored whole, but ``sent`` holds exactly the last ``limit`` frames
    (in order, with each batch's time), whatever the batch sizes."""
    recorder = Recorder(limit=4)
    frames = [(f"t{i}", "data", f"s{i % 2}", None) for i in range(11)]
    recorder.record_frames("c1", frames[:3])
    recorder.record_frames("c2", [(None, None, None, None), *frames[3:5]])  # a close marker
    recorder.record_frame("c1", "sent", "t5", "ka")
    assert [f.data for f in recorder.sent] == ["t2", "t3", "t4", "t5"]
    recorder.record_frames("c1", frames[6:11])  # one batch bigger than the limit
    assert [f.data for f in recorder.sent] == ["t7", "t8", "t9", "t10"]
    assert {f.direction for f in recorder.sent} == {"sent"}
    assert recorder.sent_to("c2") == []
    recorder.clear()
    assert recorder.sent == []
    recorder.record_frames("c1", frames[:1])
    assert [(f.data, f.frame_type, f.id) for f in recorder.sent] == [("t0", "data", "s0")]


def test_clear_keeps_open_connections() -> None:
    """clear() forgets closed connections and logs but keeps the open ones."""
    recorder = Recorder()
    recorder.record_connection(ConnectionInfo(id="c1", opened_at=0.0))
    recorder.record_connection(ConnectionInfo(id="c2", opened_at=0.0))
    recorder.record_close("c1", 1000, "")
    recorder.record_publish(_publish("/default/x", "1"))
    recorder.clear()
    assert [c.id for c in recorder.connections] == ["c2"]
    assert recorder.published == []
    assert recorder.wait_connected_sync(1, timeout=0) == recorder.connections


@pytest.mark.asyncio
async def test_blocking_wait_inside_a_running_loop_is_refused() -> None:
    """A blocking wait from an event loop thread raises instead of stalling the loop."""
    with pytest.raises(RuntimeError, match=r"await wait_connected\(1\)"):
        Recorder().wait_connected_sync(timeout=0)


def test_async_wait_works_on_a_foreign_loop() -> None:
    """An awaited wait completes on the waiter's own loop when another thread records."""
    recorder = Recorder()

    async def waiter() -> int:
        records = await recorder.wait_published("default/z", count=1, timeout=2)
        return len(records)

    results: list[int] = []
    thread = threading.Thread(target=lambda: results.append(asyncio.run(waiter())))
    thread.start()
    recorder.wait_for_sync(lambda r: r._waiters or None, timeout=2)
    recorder.record_publish(_publish("/default/z", '"q"'))
    thread.join(2)
    assert results == [1]


@pytest.mark.asyncio
async def test_async_wait_timeout_and_cancellation_clean_up() -> None:
    """A timed-out or cancelled async wait leaves no waiter behind."""
    recorder = Recorder()
    with pytest.raises(RecorderAssertionError, match="no active subscription"):
        await recorder.wait_subscribed("default/x", timeout=30 * MS)
    task = asyncio.ensure_future(recorder.wait_connected(5, timeout=10))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert recorder._waiters == []


@pytest.mark.asyncio
async def test_failing_predicate_fails_only_its_wait() -> None:
    """A predicate that raises fails its own wait with that error."""
    recorder = Recorder()
    calls = 0

    def predicate(r: Recorder) -> None:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise KeyError("boom")

    task = asyncio.ensure_future(recorder.wait_for(predicate, timeout=2))
    await asyncio.sleep(0)
    recorder.record_publish(_publish("/default/x", "1"))
    with pytest.raises(KeyError):
        await task


@pytest.mark.asyncio
async def test_live_recorder_sees_frames_subscriptions_and_publishes(
    server: EmulatorServer,
) -> None:
    """The server records received/sent frames, subscriptions with identity, publishes."""
    raw = await open_raw(server)
    await raw.init()
    await raw.subscribe("default/*")
    await raw.publish("default/r", ['{"k":1}'])
    await raw.expect("publish_success")
    await raw.expect("data", id="s1")
    recorder = server.recorder
    sub = await recorder.wait_subscribed("default/*")
    assert (sub.channel, sub.pattern, sub.identity and sub.identity.mode) == (
        "default/*",
        "/default/*",
        "API_KEY",
    )
    published = await recorder.wait_published("/default/r")
    assert published[0].deliveries == 1
    assert published[0].publish_id == "p1"
    conn = server.connections[-1].id
    assert [f.frame_type for f in recorder.received_from(conn)] == [
        "connection_init",
        "subscribe",
        "publish",
    ]
    assert "publish_success" in [f.frame_type for f in recorder.sent_to(conn)]
    recorder.assert_no_errors()
    await raw.send({"type": "unsubscribe", "id": "s1"})
    await raw.expect("unsubscribe_success")
    assert recorder.subscriptions[-1].unsubscribed_at is not None
    await raw.ws.close()


def test_sync_waits_against_a_thread_server() -> None:
    """Blocking waits work from a sync test against an EmulatorThread."""
    import json
    import urllib.request

    with EmulatorThread(fast_config()) as server:
        request = urllib.request.Request(
            server.http_endpoint,
            data=json.dumps({"channel": "default/sync", "events": ['"s"']}).encode(),
            headers={"x-api-key": server.api_key or "", "content-type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200
        records = server.recorder.wait_published_sync("default/sync", timeout=2)
        assert records[0].transport == "http"
        server.check()


@pytest.mark.asyncio
async def test_async_wait_wakes_on_a_recorded_frame() -> None:
    """An async wait whose predicate reads frames completes when a frame is recorded."""
    recorder = Recorder()

    def seen() -> bool | None:
        return True if any(f.frame_type == "subscribe" for f in recorder.received) else None

    waiting = asyncio.ensure_future(recorder.wait_for(lambda r: seen(), timeout=2))
    await asyncio.sleep(0)  # let the waiter register before the frame arrives
    recorder.record_frame("c1", "received", '{"type":"subscribe"}', "subscribe", "s1")
    assert await waiting is True
    recorder.record_frames("c1", [('{"type":"ka"}', "ka", None, None)])
    assert [f.frame_type for f in recorder.sent] == ["ka"]


def _never(recorder: Recorder) -> None:
    return None


TIMEOUT_MESSAGES = [
    ("wait_connected", (3,), r"wait_connected\(3\) timed out after 0\.01 s: expected 3 conn"),
    (
        "wait_subscribed",
        ("default/*",),
        r"wait_subscribed\('default/\*'\) timed out after 0\.01 s: no active subscription",
    ),
    (
        "wait_published",
        ("default/x", 2),
        r"wait_published\('default/x', count=2\) timed out after 0\.01 s: expected 2 event",
    ),
    (
        "wait_for",
        (_never,),
        r"wait_for\(_never\) timed out after 0\.01 s: the predicate returned None every time",
    ),
]


@pytest.mark.parametrize(("name", "args", "message"), TIMEOUT_MESSAGES)
def test_sync_wait_timeout_names_what_was_awaited(
    name: str, args: tuple[object, ...], message: str
) -> None:
    """A timed-out ``wait_*_sync`` says which wait, with which arguments, and how long."""
    wait = getattr(Recorder(), f"{name}_sync")
    with pytest.raises(RecorderAssertionError, match=message) as info:
        wait(*args, timeout=0.01)
    assert isinstance(info.value, TimeoutError)


@pytest.mark.asyncio
@pytest.mark.parametrize(("name", "args", "message"), TIMEOUT_MESSAGES)
async def test_async_wait_timeout_names_what_was_awaited(
    name: str, args: tuple[object, ...], message: str
) -> None:
    """A timed-out awaited ``wait_*`` gives the same message as its sync twin."""
    recorder = Recorder()
    with pytest.raises(RecorderAssertionError, match=message):
        await getattr(recorder, name)(*args, timeout=0.01)
    assert recorder._waiters == []


@pytest.mark.parametrize(
    "name", ["wait_for", "wait_connected", "wait_subscribed", "wait_published"]
)
def test_sync_twins_take_the_same_arguments(name: str) -> None:
    """Each awaitable wait and its ``_sync`` twin have one signature."""
    import inspect

    awaitable = inspect.signature(getattr(Recorder, name))
    blocking = inspect.signature(getattr(Recorder, f"{name}_sync"))
    assert inspect.iscoroutinefunction(getattr(Recorder, name))
    assert not inspect.iscoroutinefunction(getattr(Recorder, f"{name}_sync"))
    assert awaitable.parameters == blocking.parameters
    assert awaitable.return_annotation == blocking.return_annotation


def test_publish_rows_read_as_the_records_they_stand_for() -> None:
    """The publish path records rows; readers see records equal to what it would have
    made, the same objects on every read, in order with records added as records, and
    bounded by the limit."""
    from appsync_emulator.config import AuthType
    from appsync_emulator.verify import Identity

    recorder = Recorder(limit=3)
    identity = Identity(mode=AuthType.API_KEY, principal="key:1")
    bad = (FailedEvent(identifier="id1", index=1, code="X"),)
    recorder.record_publish(_publish("/default/a", '"0"'))
    for n in range(2):
        recorder.record_publish_row(
            "/default/b", ('"a"', '"b"'), ("id0", "id1"), identity, "http", bad, ('"a"',), 2,
            f"c{n}", f"p{n}",
        )  # fmt: skip
    recorder.record_publish_row(
        "/default/c", ('"z"',), ("id9",), None, "websocket", (), ('"z"',), 0, None, None
    )
    first = recorder.published
    assert [p.channel for p in first] == ["/default/b", "/default/b", "/default/c"]
    assert first[0] == PublishRecord(
        channel="/default/b",
        events=('"a"', '"b"'),
        identifiers=("id0", "id1"),
        auth_mode=AuthType.API_KEY,
        identity=identity,
        transport="http",
        time=first[0].time,
        failed=bad,
        broadcast=('"a"',),
        deliveries=2,
        connection_id="c0",
        publish_id="p0",
    )
    assert first[2].auth_mode is None
    assert first[0].accepted_events == ('"a"',)
    recorder.record_publish(_publish("/default/d", '"1"'))
    second = recorder.published
    assert second[:2] == first[1:]
    assert all(a is b for a, b in zip(second[:2], first[1:], strict=True))
    assert second[2].channel == "/default/d"
    recorder.assert_published("/default/c", count=1)


def test_received_frames_read_as_records() -> None:
    """Received frames are kept as rows and read as FrameRecords (the same objects on
    every read), bounded by the limit."""
    from appsync_emulator.recorder import FrameRecord

    recorder = Recorder(limit=2)
    for n in range(3):
        recorder.record_frame("c1" if n else "c2", "received", f'{{"n":{n}}}', "publish")
    first = recorder.received
    assert all(type(f) is FrameRecord for f in first)
    assert [(f.connection_id, f.data, f.frame_type) for f in first] == [
        ("c1", '{"n":1}', "publish"),
        ("c1", '{"n":2}', "publish"),
    ]
    recorder.record_frame("c2", "received", b"\x00")
    assert recorder.received[0] is first[1]
    assert [f.data for f in recorder.received_from("c2")] == [b"\x00"]


class _Frames:
    def __init__(self) -> None:
        self.frames: list[tuple[str, str, str | bytes, str | None]] = []

    def on_frame(
        self, connection_id: str, direction: str, data: str | bytes, frame_type: str | None
    ) -> None:
        self.frames.append((connection_id, direction, data, frame_type))


def test_a_received_publish_is_its_frame_and_its_publish_at_one_time() -> None:
    """``record_received_publish`` makes the records ``record_frame`` and
    ``record_publish_row`` make, at one time, tells the listener of the frame, and wakes
    waiters."""
    args = ("/default/a", ('"a"', "1"), ("i0", "i1"), None)
    one, two = Recorder(), Recorder()
    one.listener = _Frames()  # type: ignore[assignment]
    one.record_received_publish("c1", "TEXT", *args, 4, "p1")
    two.record_frame("c1", "received", "TEXT", "publish")
    two.record_publish_row(*args, "websocket", (), args[1], 4, "c1", "p1")
    (frame,) = one.received
    (publish,) = one.published
    assert frame.time == publish.time
    assert frame._replace(time=0.0) == two.received[0]._replace(time=0.0)
    assert publish.time > 0
    assert dataclasses.replace(publish, time=0.0) == dataclasses.replace(two.published[0], time=0.0)
    assert one.listener.frames == [("c1", "received", "TEXT", "publish")]  # type: ignore[union-attr]
    timer = _later(50 * MS, lambda: one.record_received_publish("c2", "T", *args, 0, "p2"))
    assert len(one.wait_published_sync("/default/a", count=4, timeout=2)) == 2
    timer.join()
