"""The synchronous API (``appsync_events.sync``) against the emulator in a thread."""

from __future__ import annotations

import gc
import signal
import threading
from collections import Counter
from typing import Any

import pytest
from freezegun import freeze_time

from appsync_emulator import EmulatorThread
from appsync_emulator.faults import WithholdReply
from appsync_emulator.testing import Authorizers
from appsync_events import (
    ConfigurationError,
    InvalidChannelError,
    OperationTimeoutError,
    PublishUnauthorizedError,
    RawJSON,
    SubscriptionClosedError,
    UnauthorizedError,
    authorizer,
    sync,
)
from appsync_events.subscription import Subscription as AsyncSubscription, SubscriptionState

from ..conftest import MS

CHANNEL = "default/sync"


def sync_threads() -> list[threading.Thread]:
    """The background threads of sync clients and publishers alive now."""
    return [t for t in threading.enumerate() if t.name.startswith("appsync-events sync")]


@pytest.fixture
def no_leftover_threads():
    """Fails the test if it leaves a sync client's thread running."""
    before = set(sync_threads())
    yield
    left = [t for t in sync_threads() if t not in before]
    assert not left, f"threads left running: {left}"


def connect(server: EmulatorThread, **options: Any) -> sync.Client:
    options.setdefault("authorizer", authorizer.ApiKey(server.api_key or ""))
    options.setdefault("operation_timeout", 2.0)
    return sync.connect(server.realtime_endpoint, **options)


@pytest.mark.usefixtures("no_leftover_threads")
def test_sync_round_trip(appsync_server: EmulatorThread) -> None:
    """A subscriber receives what the same client publishes; the result lists the event."""
    with connect(appsync_server) as client, client.subscribe(CHANNEL) as sub:
        result = client.publish(CHANNEL, {"n": 1}, RawJSON('"two"'))
        assert result.ok
        assert len(result.successful) == 2
        assert sub.next(timeout=2).json() == {"n": 1}
        assert sub.decode_next(timeout=2) == "two"
        assert sub.active
        assert sub.channel == CHANNEL
    assert sub.closed
    assert client.closed


@pytest.mark.usefixtures("no_leftover_threads")
def test_sync_close_ends_the_thread(appsync_server: EmulatorThread) -> None:
    """close() ends the background thread; it is idempotent; calls after it raise."""
    client = connect(appsync_server)
    thread = client.thread
    assert thread.is_alive()
    client.close()
    assert not thread.is_alive()
    client.close()
    with pytest.raises(RuntimeError, match="closed"):
        client.publish(CHANNEL, 1)


@pytest.mark.usefixtures("no_leftover_threads")
def test_sync_subscription_context_manager_unsubscribes(appsync_server: EmulatorThread) -> None:
    """Leaving a subscription's block unsubscribes it from the service."""
    with connect(appsync_server) as client:
        with client.subscribe(CHANNEL) as sub:
            appsync_server.wait_subscribed_sync(f"/{CHANNEL}")
        assert sub.state is SubscriptionState.CLOSED
        with pytest.raises(SubscriptionClosedError):
            sub.next(timeout=1)
        sub.close()  # idempotent


@pytest.mark.usefixtures("no_leftover_threads")
def test_sync_next_timeout_loses_no_event(appsync_server: EmulatorThread) -> None:
    """next(timeout=) raises TimeoutError when nothing comes; a later event is still read."""
    with connect(appsync_server) as client, client.subscribe(CHANNEL) as sub:
        with pytest.raises(TimeoutError, match="no event within"):
            sub.next(timeout=50 * MS)
        client.publish(CHANNEL, "late")
        assert sub.next(timeout=2).json() == "late"


def test_sync_next_rejects_a_bad_timeout(appsync_server: EmulatorThread) -> None:
    """A negative or non-numeric timeout is a ValueError, before anything waits."""
    with connect(appsync_server) as client, client.subscribe(CHANNEL) as sub:
        for bad in (-1, "1", True):
            with pytest.raises(ValueError, match="timeout must be"):
                sub.next(timeout=bad)  # type: ignore[arg-type]


@pytest.mark.usefixtures("no_leftover_threads")
def test_sync_iteration_ends_when_the_client_closes(appsync_server: EmulatorThread) -> None:
    """``for message in sub`` yields events and ends quietly when another thread closes."""
    client = connect(appsync_server)
    sub = client.subscribe(CHANNEL)
    client.publish(CHANNEL, 1, 2)
    seen: list[object] = []
    for message in sub:
        seen.append(message.json())
        if len(seen) == 2:
            closer = threading.Thread(target=client.close)
            closer.start()
    closer.join(5)
    assert seen == [1, 2]
    assert not client.thread.is_alive()


@pytest.mark.usefixtures("no_leftover_threads")
def test_sync_reads_after_the_client_closed(appsync_server: EmulatorThread) -> None:
    """Once the client is closed (its thread is gone), iterating ends at once and
    ``next()``/``decode_next()`` raise the asyncio subscription's own
    ``SubscriptionClosedError``, as the asyncio reads do after a close (not the thread's
    ``RuntimeError``): the iteration that another thread's close ended by a hair's breadth
    before its next read."""
    client = connect(appsync_server)
    sub = client.subscribe(CHANNEL)
    client.close()
    assert not client.thread.is_alive()
    assert list(sub) == []
    with pytest.raises(SubscriptionClosedError, match="the client was closed") as info:
        sub.next(timeout=1)
    assert info.value.subscription_id == sub.id
    with pytest.raises(SubscriptionClosedError, match="the client was closed"):
        sub.decode_next()
    assert list(sub) == []


# The asyncio client is left unclosed on purpose (its loop is gone): its session and
# socket are collected in the test, with the warnings that go with that.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.usefixtures("no_leftover_threads")
def test_sync_reads_when_the_thread_stops_without_closing_the_subscription(
    appsync_server: EmulatorThread,
) -> None:
    """A close that never reached the subscription (its thread stopped first, as when
    the close times out): a read waiting then, and any read after, raise a
    ``SubscriptionClosedError`` naming the client's close; iterating ends."""
    _stop_the_thread_under_a_read(appsync_server)
    gc.collect()  # the client the scenario left behind, here rather than in a later test


def _stop_the_thread_under_a_read(server: EmulatorThread) -> None:
    client = connect(server)
    sub = client.subscribe(CHANNEL)
    waiting = threading.Event()
    raised: list[BaseException] = []

    def read() -> None:
        waiting.set()
        try:
            sub.next()
        except BaseException as exc:
            raised.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    assert waiting.wait(5)
    try:
        client._portal.stop()  # what close() does last, whatever became of the close
        client._finalizer.detach()  # as close() does (it would keep the asyncio client)
    finally:
        reader.join(5)
    assert not reader.is_alive()
    assert [type(e) for e in raised] == [SubscriptionClosedError], raised
    assert "closed (the client was closed)" in str(raised[0])
    with pytest.raises(SubscriptionClosedError, match="the client was closed"):
        sub.next()
    assert list(sub) == []
    client.close()  # nothing left to do: returns at once


@pytest.mark.usefixtures("no_leftover_threads")
def test_sync_connect_refused_ends_the_thread(appsync_server: EmulatorThread) -> None:
    """A refused connection raises the asyncio API's error and leaves no thread."""
    with pytest.raises(UnauthorizedError) as info:
        connect(appsync_server, authorizer=authorizer.ApiKey("da2-wrong"))
    assert info.value.operation == "connect"


def test_sync_bad_argument_starts_no_thread(appsync_server: EmulatorThread) -> None:
    """A bad argument raises ConfigurationError before a thread is started."""
    before = len(sync_threads())
    with pytest.raises(ConfigurationError, match="operation_timeout"):
        connect(appsync_server, operation_timeout=-1)
    with pytest.raises(ConfigurationError):
        sync.HttpPublisher("ftp://x", authorizer=authorizer.ApiKey("k"))
    assert len(sync_threads()) == before


@pytest.mark.usefixtures("no_leftover_threads")
def test_sync_operation_errors(appsync_server: EmulatorThread) -> None:
    """Bad channels and events raise the same errors as the asyncio API."""
    with connect(appsync_server) as client:
        with pytest.raises(InvalidChannelError):
            client.subscribe("no-namespace-/**")
        with pytest.raises(ConfigurationError, match="5"):
            client.publish(CHANNEL, *range(6))
        with pytest.raises(PublishUnauthorizedError):
            client.publish(CHANNEL, 1, authorizer=authorizer.ApiKey("da2-wrong"))
        assert client.publish(CHANNEL, 1).ok  # the connection is still usable


@pytest.mark.usefixtures("no_leftover_threads")
def test_sync_operation_timeout(appsync_server: EmulatorThread) -> None:
    """An unanswered publish raises OperationTimeoutError after operation_timeout."""
    with (
        connect(appsync_server, operation_timeout=100 * MS) as client,
        appsync_server.inject(WithholdReply("publish_success")),
        pytest.raises(OperationTimeoutError),
    ):
        client.publish(CHANNEL, 1)


@pytest.mark.appsync(auth_modes=["API_KEY", "AWS_IAM"])
@pytest.mark.usefixtures("no_leftover_threads")
def test_sync_iam_authorizer(appsync_server: EmulatorThread, appsync_auth: Authorizers) -> None:
    """The IAM authorizer signs from the background thread (credentials in a worker)."""
    with connect(appsync_server, authorizer=appsync_auth.iam()) as client:
        with client.subscribe(CHANNEL) as sub:
            client.publish(CHANNEL, {"signed": True})
            assert sub.next(timeout=2).json() == {"signed": True}


@pytest.mark.usefixtures("no_leftover_threads")
def test_sync_http_publisher(appsync_server: EmulatorThread) -> None:
    """HttpPublisher and publish_http publish over POST /event and end their thread."""
    authz = authorizer.ApiKey(appsync_server.api_key or "")
    with connect(appsync_server) as client, client.subscribe(CHANNEL) as sub:
        with sync.HttpPublisher(appsync_server.http_endpoint, authorizer=authz) as publisher:
            assert publisher.publish(CHANNEL, "a").ok
            assert publisher.publish(CHANNEL, "b", "c").ok
            thread = publisher.thread
        assert not thread.is_alive()
        assert publisher.closed
        with pytest.raises(RuntimeError, match="closed"):
            publisher.publish(CHANNEL, "d")
        result = sync.publish_http(appsync_server.http_endpoint, CHANNEL, "e", authorizer=authz)
        assert result.ok
        assert [sub.next(timeout=2).json() for _ in range(4)] == ["a", "b", "c", "e"]


@pytest.mark.usefixtures("no_leftover_threads")
def test_sync_http_publish_error(appsync_server: EmulatorThread) -> None:
    """A refused HTTP publish raises the asyncio API's error with its status."""
    bad = authorizer.ApiKey("da2-wrong")
    with pytest.raises(PublishUnauthorizedError) as info:
        sync.publish_http(appsync_server.http_endpoint, CHANNEL, 1, authorizer=bad)
    assert info.value.status == 401


@pytest.mark.usefixtures("no_leftover_threads")
def test_sync_threads_publish_and_read_concurrently(appsync_server: EmulatorThread) -> None:
    """Several threads publish and several read one subscription: each event once."""
    writers, per_writer, readers = 4, 10, 3
    total = writers * per_writer
    received: Counter[object] = Counter()
    lock = threading.Lock()
    errors: list[BaseException] = []
    with connect(appsync_server) as client, client.subscribe(CHANNEL) as sub:

        def write(w: int) -> None:
            try:
                for i in range(per_writer):
                    assert client.publish(CHANNEL, f"{w}-{i}").ok
            except BaseException as exc:
                errors.append(exc)

        def read() -> None:
            try:
                while True:
                    with lock:
                        if sum(received.values()) >= total:
                            return
                    try:
                        message = sub.next(timeout=200 * MS)
                    except TimeoutError:
                        continue
                    with lock:
                        received[message.json()] += 1
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
        threads += [threading.Thread(target=read) for _ in range(readers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        assert not any(t.is_alive() for t in threads)
    assert not errors
    assert received == Counter(f"{w}-{i}" for w in range(writers) for i in range(per_writer))


@pytest.mark.usefixtures("no_leftover_threads")
def test_sync_close_from_several_threads(appsync_server: EmulatorThread) -> None:
    """close() called from several threads at once closes once and ends the thread."""
    client = connect(appsync_server)
    sub = client.subscribe(CHANNEL)
    closers = [threading.Thread(target=client.close) for _ in range(4)]
    for t in closers:
        t.start()
    for t in closers:
        t.join(10)
    assert client.closed
    assert sub.closed
    assert not client.thread.is_alive()


@pytest.mark.usefixtures("no_leftover_threads")
def test_sync_works_under_freezegun(appsync_server: EmulatorThread) -> None:
    """With the clock frozen, operations complete and timeouts still fire on real time."""
    with freeze_time("2020-01-01T00:00:00Z"):
        with connect(appsync_server) as client, client.subscribe(CHANNEL) as sub:
            client.publish(CHANNEL, "frozen")
            assert sub.next(timeout=2).json() == "frozen"
            with pytest.raises(TimeoutError):
                sub.next(timeout=50 * MS)


@pytest.mark.usefixtures("no_leftover_threads")
def test_sync_keyboard_interrupt_ends_the_thread(appsync_server: EmulatorThread) -> None:
    """Ctrl+C while next() waits re-raises KeyboardInterrupt and leaves no thread running."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals are delivered to the main thread only")
    client = connect(appsync_server)
    sub = client.subscribe(CHANNEL)
    waiting = threading.Event()

    class Told(AsyncSubscription):
        __slots__ = ()  # the same layout: the subscription can become one

        async def next(self) -> Any:
            waiting.set()
            return await super().next()

    sub._sub.__class__ = Told
    main = threading.main_thread().ident
    assert main is not None

    def interrupt() -> None:
        if waiting.wait(5):
            signal.pthread_kill(main, signal.SIGINT)

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    interrupter = threading.Thread(target=interrupt)
    try:
        interrupter.start()
        with pytest.raises(KeyboardInterrupt):
            sub.next(timeout=10)
    finally:
        signal.signal(signal.SIGINT, previous)
        interrupter.join(5)
    assert not client.thread.is_alive()
    assert client.closed


@pytest.mark.usefixtures("no_leftover_threads")
def test_sync_call_from_a_callback_is_refused(appsync_server: EmulatorThread) -> None:
    """Calling the sync API from its own background thread raises instead of deadlocking."""
    errors: list[BaseException] = []
    with connect(appsync_server) as client:

        async def from_the_loop() -> None:
            try:
                client.publish(CHANNEL, 1)
            except RuntimeError as exc:
                errors.append(exc)

        client._portal.call(from_the_loop(), 5, client.close)
    assert len(errors) == 1
    assert "own callbacks" in str(errors[0])


@pytest.mark.usefixtures("no_leftover_threads")
def test_sync_forgotten_client_is_closed_when_collected(appsync_server: EmulatorThread) -> None:
    """A client garbage-collected without close() closes its connection and ends its thread."""
    client = connect(appsync_server)
    thread = client.thread
    appsync_server.wait_connected_sync(1)
    del client
    gc.collect()
    thread.join(10)
    assert not thread.is_alive()
