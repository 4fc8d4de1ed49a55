"""Automatic reconnection (``connect(..., reconnect=...)``) against the emulator.

Real loopback sockets; ka every 50 ms, connectionTimeoutMs 300 ms, backoff of a few ms.
Synchronisation is by events (``on_state_change``) and recorder waits, never by sleeping.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio

import appsync_events
from appsync_emulator import EmulatorConfig, EmulatorServer, faults
from appsync_emulator.recorder import Recorder, SubscriptionRecord
from appsync_events import authorizer
from appsync_events.authorizer import AuthorizeRequest, AuthorizeResult, Operation
from appsync_events.errors import (
    AppSyncEventsError,
    ConfigurationError,
    ConnectionClosedError,
    CredentialsError,
    ErrorDetail,
    HandshakeError,
    HandshakeTimeoutError,
    HeartbeatTimeoutError,
    OperationError,
    RemoteProtocolError,
    SubscribeError,
    SubscriptionClosedError,
    UnauthorizedError,
)
from appsync_events.reconnect import ConnectionState, Reconnect, is_retryable

from .helpers import MS, WAIT

FAST = Reconnect(initial_delay=10 * MS, max_delay=50 * MS, random=lambda: 0.5)
"""Backoff of 5, 10, 20, 25, 25 ... ms."""


@pytest_asyncio.fixture
async def emulator() -> AsyncIterator[EmulatorServer]:
    config = EmulatorConfig(
        keepalive_interval=50 * MS, connection_timeout_ms=round(300 * MS * 1000)
    )
    async with EmulatorServer(config) as server:
        yield server


class CountingAuthorizer:
    """An API-key authorizer that counts calls per operation."""

    def __init__(self, inner: authorizer.ApiKey) -> None:
        self.inner = inner
        self.calls: list[Operation] = []

    async def authorize(self, request: AuthorizeRequest) -> AuthorizeResult:
        self.calls.append(request.operation)
        return await self.inner.authorize(request)

    def count(self, operation: Operation) -> int:
        return self.calls.count(operation)


class States:
    """Records ``on_state_change`` calls and lets a test wait for one."""

    def __init__(self) -> None:
        self.seen: list[ConnectionState] = []
        self._changed = asyncio.Event()
        self.hooks: list[Callable[[ConnectionState], None]] = []

    def __call__(self, state: ConnectionState) -> None:
        self.seen.append(state)
        for hook in self.hooks:
            hook(state)
        self._changed.set()

    async def wait(self, state: ConnectionState, count: int = 1) -> None:
        async with asyncio.timeout(WAIT):
            while self.seen.count(state) < count:
                self._changed.clear()
                await self._changed.wait()


def key(server: EmulatorServer) -> authorizer.ApiKey:
    return authorizer.ApiKey(api_key=server.api_key or "", endpoint=server.http_endpoint)


def connect(server: EmulatorServer, **kwargs: Any) -> appsync_events.connect:
    kwargs.setdefault("authorizer", key(server))
    kwargs.setdefault("operation_timeout", 1.0)
    kwargs.setdefault("handshake_timeout", 1.0)
    kwargs.setdefault("close_timeout", 0.3)
    kwargs.setdefault("reconnect", FAST)
    return appsync_events.connect(server.realtime_endpoint, **kwargs)


async def resubscribed(server: EmulatorServer, sub_id: str, old: str) -> SubscriptionRecord:
    """Wait until ``sub_id`` is active on a connection other than ``old``."""

    def check(r: Recorder) -> SubscriptionRecord | None:
        found = [s for s in r.subscriptions if s.id == sub_id and s.connection_id != old]
        return found[0] if found and found[0].active else None

    return await server.recorder.wait_for(check, timeout=WAIT)


async def next_json(sub: appsync_events.Subscription) -> object:
    async with asyncio.timeout(WAIT):
        return (await sub.next()).json()


# --- the policy (no sockets) ---------------------------------------------------------------


def test_backoff_delays_are_deterministic_with_injected_random() -> None:
    """Exponential growth, capped at max_delay, scaled by 1 - jitter * random()."""
    half = Reconnect(initial_delay=0.1, max_delay=1.0, factor=2.0, jitter=1.0, random=lambda: 0.5)
    assert [half.delay(n) for n in range(6)] == pytest.approx([0.05, 0.1, 0.2, 0.4, 0.5, 0.5])
    none = Reconnect(initial_delay=0.1, max_delay=1.0, jitter=0.0, random=lambda: 0.9)
    assert [none.delay(n) for n in range(5)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0])
    values = itertools.cycle([0.0, 0.25, 0.999])
    part = Reconnect(
        initial_delay=1.0, max_delay=8.0, factor=3.0, jitter=0.5, random=values.__next__
    )
    assert [part.delay(n) for n in range(3)] == pytest.approx([1.0, 3 * 0.875, 8 * 0.5005])
    assert Reconnect(factor=10.0).delay(100_000) <= 10.0  # no OverflowError


def test_reconnect_defaults() -> None:
    """The documented defaults."""
    policy = Reconnect()
    assert (policy.initial_delay, policy.max_delay, policy.factor, policy.jitter) == (
        0.1,
        10.0,
        2.0,
        1.0,
    )
    assert policy.max_attempts is None
    assert 0.0 <= policy.delay(0) < 0.1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial_delay": -1},
        {"initial_delay": float("nan")},
        {"max_delay": 0.01},
        {"factor": 0.5},
        {"jitter": 1.5},
        {"max_attempts": 0},
        {"max_attempts": True},
        {"random": 3},
        {"factor": "2"},
    ],
)
def test_reconnect_rejects_bad_values(kwargs: dict[str, Any]) -> None:
    """Out-of-range settings raise ConfigurationError."""
    with pytest.raises(ConfigurationError, match="Reconnect"):
        Reconnect(**kwargs)


def test_connect_rejects_bad_reconnect_argument() -> None:
    """reconnect must be a bool or a Reconnect; on_state_change callable."""
    with pytest.raises(ConfigurationError, match="reconnect"):
        appsync_events.connect(
            "ws://127.0.0.1:1/event/realtime",
            authorizer=authorizer.ApiKey(api_key="k", endpoint="http://127.0.0.1:1/event"),
            reconnect="yes",  # type: ignore[arg-type]
        )
    with pytest.raises(ConfigurationError, match="on_state_change"):
        appsync_events.connect(
            "ws://127.0.0.1:1/event/realtime",
            authorizer=authorizer.ApiKey(api_key="k", endpoint="http://127.0.0.1:1/event"),
            on_state_change=1,  # type: ignore[arg-type]
        )


UNAUTH = ErrorDetail(error_type="UnauthorizedException", message="no", error_code=401)
BAD = ErrorDetail(error_type="BadRequestException", message="bad")
BUSY = ErrorDetail(error_type="InternalFailure", message="busy")


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (ConnectionClosedError(1006, ""), True),
        (ConnectionClosedError(None, "", message="internal"), True),
        (ConnectionClosedError(1001, "going away"), True),
        (ConnectionClosedError(4401, "unauthorized"), False),
        (ConnectionClosedError(4403, "forbidden"), False),
        (HeartbeatTimeoutError(0.3), True),
        (HandshakeTimeoutError(1.0), True),
        (HandshakeError("HTTP 503"), True),
        (HandshakeError("refused", [BUSY]), True),
        (HandshakeError("refused", [BAD]), False),
        (
            HandshakeError("refused", [ErrorDetail(error_type="X", message="m", error_code=403)]),
            False,
        ),
        (UnauthorizedError([UNAUTH], operation="connect"), False),
        (CredentialsError("nothing to sign with"), False),
        (OperationError([BUSY]), True),
        (OperationError([UNAUTH]), False),
        (RemoteProtocolError("invalid JSON"), False),
        (ValueError("not ours"), False),
    ],
)
def test_retryable_classification(error: BaseException, retryable: bool) -> None:
    """Amplify's rule: auth and bad-request failures are final; transport failures are not."""
    assert is_retryable(error) is retryable


# --- reconnecting ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_drop_reconnects_and_resumes_with_same_ids(emulator: EmulatorServer) -> None:
    """TCP abort -> reconnect -> same subscription id re-sent -> new events arrive."""
    states = States()
    async with connect(emulator, on_state_change=states) as client:
        sub = await client.subscribe("default/room")
        first = emulator.recorder.connections[-1].id
        emulator.inject(faults.DropConnection())
        await states.wait(ConnectionState.CONNECTED)
        record = await resubscribed(emulator, sub.id, first)
        assert (record.channel, record.id) == ("default/room", sub.id)
        assert isinstance(client.last_error, ConnectionClosedError)
        assert client.reconnects == 1
        assert client.state is ConnectionState.CONNECTED
        assert not client.closed
        assert client.failure is None
        assert (await client.publish("default/room", {"n": 1})).ok
        assert await next_json(sub) == {"n": 1}
        assert not sub.closed
        assert client.subscriptions == (sub,)
    assert states.seen == [
        ConnectionState.DISCONNECTED,
        ConnectionState.RECONNECTING,
        ConnectionState.CONNECTED,
        ConnectionState.CLOSED,
    ]
    subscribes = [f for f in emulator.recorder.received if f.frame_type == "subscribe"]
    assert len(subscribes) == 2
    assert len({f.connection_id for f in subscribes}) == 2


@pytest.mark.asyncio
async def test_server_close_keeps_buffered_events(emulator: EmulatorServer) -> None:
    """Events buffered before a server close (1012) are read first, then new ones follow."""
    states = States()
    async with connect(emulator, on_state_change=states) as client:
        sub = await client.subscribe("default/buffer")
        first = emulator.recorder.connections[-1].id
        assert (await client.publish("default/buffer", {"n": 1}, {"n": 2})).ok
        await emulator.recorder.wait_for(
            lambda r: r.published[-1].deliveries >= 2 or None, timeout=WAIT
        )
        emulator.inject(faults.CloseConnection(1012, "service restart"))  # after queued frames
        await states.wait(ConnectionState.CONNECTED)
        await resubscribed(emulator, sub.id, first)
        assert isinstance(client.last_error, ConnectionClosedError)
        assert client.last_error.code == 1012
        assert (await client.publish("default/buffer", {"n": 3})).ok
        assert [await next_json(sub) for _ in range(3)] == [{"n": 1}, {"n": 2}, {"n": 3}]


@pytest.mark.asyncio
async def test_heartbeat_timeout_reconnects(emulator: EmulatorServer) -> None:
    """A silent server (no ka) is detected by the heartbeat, and the client reconnects."""
    states = States()
    handle = emulator.inject(faults.DropKeepAlives())
    states.hooks.append(lambda s: handle.remove() if s is ConnectionState.DISCONNECTED else None)
    async with connect(emulator, on_state_change=states) as client:
        sub = await client.subscribe("default/hb")
        first = emulator.recorder.connections[-1].id
        await states.wait(ConnectionState.CONNECTED)
        assert isinstance(client.last_error, HeartbeatTimeoutError)
        await resubscribed(emulator, sub.id, first)
        assert (await client.publish("default/hb", "alive")).ok
        assert await next_json(sub) == "alive"


@pytest.mark.asyncio
async def test_two_subscriptions_both_resumed(emulator: EmulatorServer) -> None:
    """Every live subscription (a wildcard included) is resumed; a closed one is not."""
    states = States()
    async with connect(emulator, on_state_change=states) as client:
        exact = await client.subscribe("default/a/b")
        wild = await client.subscribe("default/a/*")
        gone = await client.subscribe("default/gone")
        await gone.close()
        first = emulator.recorder.connections[-1].id
        emulator.inject(faults.DropConnection())
        await states.wait(ConnectionState.CONNECTED)
        await resubscribed(emulator, exact.id, first)
        await resubscribed(emulator, wild.id, first)
        assert {s.id for s in client.subscriptions} == {exact.id, wild.id}
        assert (await client.publish("default/a/b", {"both": True})).ok
        assert await next_json(exact) == {"both": True}
        assert await next_json(wild) == {"both": True}
        again = [
            s for s in emulator.recorder.subscriptions if s.connection_id != first and s.active
        ]
        assert sorted(s.id for s in again) == sorted([exact.id, wild.id])


@pytest.mark.asyncio
async def test_pending_publish_fails_with_original_error(emulator: EmulatorServer) -> None:
    """A publish in flight when the connection drops raises that error; no silent retry."""
    states = States()
    async with connect(emulator, on_state_change=states) as client:
        sub = await client.subscribe("default/p")
        with emulator.inject(faults.WithholdReply(match="publish_success")):
            publishing = asyncio.ensure_future(client.publish("default/p", {"n": 1}))
            await emulator.recorder.wait_published("default/p", timeout=WAIT)
            emulator.inject(faults.DropConnection())
            with pytest.raises(ConnectionClosedError) as info:
                await asyncio.wait_for(publishing, WAIT)
            assert info.value is client.last_error
        await states.wait(ConnectionState.CONNECTED)
        publishes = [f for f in emulator.recorder.received if f.frame_type == "publish"]
        assert len(publishes) == 1  # not re-sent on the new connection
        # The event was broadcast before the drop: it is in the inbox, then the stream goes on.
        assert await next_json(sub) == {"n": 1}
        assert (await client.publish("default/p", {"n": 2})).ok
        assert await next_json(sub) == {"n": 2}


@pytest.mark.asyncio
async def test_operation_while_disconnected_waits_for_reconnection(
    emulator: EmulatorServer,
) -> None:
    """A publish started during the backoff goes through once reconnected."""
    states = States()
    slow = Reconnect(initial_delay=100 * MS, jitter=0.0)
    async with connect(emulator, on_state_change=states, reconnect=slow) as client:
        sub = await client.subscribe("default/w")
        dropped = await client.subscribe("default/w")
        emulator.inject(faults.DropConnection())
        await states.wait(ConnectionState.DISCONNECTED)
        await dropped.close()  # while disconnected: closed locally, not resumed
        result = await client.publish("default/w", {"late": True})
        assert result.ok
        assert client.reconnects == 1
        assert await next_json(sub) == {"late": True}
        assert client.subscriptions == (sub,)
        assert [s.id for s in emulator.recorder.active_subscriptions] == [sub.id]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "fault",
    [faults.RejectConnection(), faults.RefuseUpgrade(status=401)],
    ids=["connection_error-401", "http-401"],
)
async def test_refused_reconnect_fails_subscriptions_and_closes(
    emulator: EmulatorServer, fault: faults.Fault
) -> None:
    """connection_error 401 (or HTTP 401) on reconnect is final: UnauthorizedError everywhere."""
    states = States()
    client = await connect(emulator, on_state_change=states)
    try:
        one = await client.subscribe("default/x")
        two = await client.subscribe("default/y")
        emulator.inject(fault)
        emulator.inject(faults.DropConnection())
        with pytest.raises(UnauthorizedError) as info:
            await next_json(one)
        with pytest.raises(UnauthorizedError):
            await next_json(two)
        async with asyncio.timeout(WAIT):
            await client.wait_closed()
        assert client.closed
        assert client.state is ConnectionState.CLOSED
        assert client.failure is info.value
        assert client.subscriptions == ()
        with pytest.raises(UnauthorizedError):
            await client.publish("default/x", 1)
        assert states.seen[-1] is ConnectionState.CLOSED
        assert states.seen.count(ConnectionState.RECONNECTING) == 1
    finally:
        await client.close()
    assert client.failure is info.value  # close() keeps the real reason


@pytest.mark.asyncio
async def test_max_attempts_exhausted(emulator: EmulatorServer) -> None:
    """With the service refusing (503, retryable), max_attempts attempts are made, then stop."""
    states = States()
    policy = Reconnect(initial_delay=5 * MS, max_delay=10 * MS, max_attempts=3, random=lambda: 0)
    async with connect(emulator, on_state_change=states, reconnect=policy) as client:
        sub = await client.subscribe("default/m")
        emulator.inject(faults.RefuseUpgrade(status=503, body="{}"))
        emulator.inject(faults.DropConnection())
        with pytest.raises(HandshakeError, match="503"):
            await next_json(sub)
        assert client.closed
        assert states.seen.count(ConnectionState.RECONNECTING) == 3
        assert client.reconnects == 0
        assert isinstance(client.failure, HandshakeError)


@pytest.mark.asyncio
async def test_close_during_backoff(emulator: EmulatorServer) -> None:
    """close() during a long backoff returns at once; subscriptions end quietly."""
    states = States()
    slow = Reconnect(initial_delay=3600.0, max_delay=3600.0, jitter=0.0)
    client = await connect(emulator, on_state_change=states, reconnect=slow)
    sub = await client.subscribe("default/c")
    emulator.inject(faults.DropConnection())
    await states.wait(ConnectionState.DISCONNECTED)
    assert client.subscriptions == (sub,)
    assert not client.closed
    async with asyncio.timeout(WAIT):  # far below the hour of backoff
        await client.close()
    assert client.closed
    assert isinstance(client.failure, ConnectionClosedError)
    assert client._reconnector is not None
    assert client._reconnector._tasks == set()  # the reconnection task is gone
    with pytest.raises(SubscriptionClosedError):
        await sub.next()
    assert [m async for m in sub] == []  # iteration ends quietly
    assert states.seen == [ConnectionState.DISCONNECTED, ConnectionState.CLOSED]
    assert len(emulator.recorder.connections) == 1  # never dialled again


@pytest.mark.asyncio
async def test_close_during_reconnect_handshake(emulator: EmulatorServer) -> None:
    """close() while a reconnection waits for its ack cancels it without leaking sockets."""
    states = States()
    client = await connect(emulator, on_state_change=states, handshake_timeout=30.0)
    sub = await client.subscribe("default/h")
    emulator.inject(faults.NeverAck())
    emulator.inject(faults.DropConnection())
    await states.wait(ConnectionState.RECONNECTING)
    await emulator.recorder.wait_connected(count=2, timeout=WAIT)
    async with asyncio.timeout(WAIT):
        await client.close()
    assert client._reconnector is not None
    assert client._reconnector._tasks == set()
    with pytest.raises(SubscriptionClosedError):
        await sub.next()
    await emulator.recorder.wait_for(
        lambda r: all(not c.open for c in r.connections) or None, timeout=WAIT
    )


@pytest.mark.asyncio
async def test_authorizer_called_again_on_reconnect(emulator: EmulatorServer) -> None:
    """Reconnecting authorizes the connection again, and every resubscribe."""
    authz = CountingAuthorizer(key(emulator))
    states = States()
    async with connect(emulator, authorizer=authz, on_state_change=states) as client:
        await client.subscribe("default/a")
        await client.subscribe("default/b")
        assert (authz.count(Operation.CONNECT), authz.count(Operation.SUBSCRIBE)) == (1, 2)
        emulator.inject(faults.DropConnection())
        await states.wait(ConnectionState.CONNECTED)
        await emulator.recorder.wait_for(
            lambda r: len([s for s in r.subscriptions if s.active]) == 2 or None, timeout=WAIT
        )
        assert (authz.count(Operation.CONNECT), authz.count(Operation.SUBSCRIBE)) == (2, 4)


@pytest.mark.asyncio
async def test_refused_resubscribe_fails_only_that_subscription(emulator: EmulatorServer) -> None:
    """A subscription whose own authorizer is refused on resubscribe fails; others go on."""

    class Revoked:
        """Valid once, then a wrong key."""

        def __init__(self) -> None:
            self.calls = 0

        async def authorize(self, request: AuthorizeRequest) -> AuthorizeResult:
            self.calls += 1
            api_key = (emulator.api_key or "") if self.calls == 1 else "da2-revokedrevokedrevoked1"
            inner = authorizer.ApiKey(api_key=api_key, endpoint=emulator.http_endpoint)
            return await inner.authorize(request)

    states = States()
    async with connect(emulator, on_state_change=states) as client:
        doomed = await client.subscribe("default/r", authorizer=Revoked())
        kept = await client.subscribe("default/r")
        first = emulator.recorder.connections[-1].id
        emulator.inject(faults.DropConnection())
        await states.wait(ConnectionState.CONNECTED)
        await resubscribed(emulator, kept.id, first)
        with pytest.raises(UnauthorizedError):
            await next_json(doomed)
        assert client.subscriptions == (kept,)
        assert (await client.publish("default/r", "still here")).ok
        assert await next_json(kept) == "still here"
        assert not client.closed


@pytest.mark.asyncio
async def test_rejected_resubscribe_raises_subscribe_error(emulator: EmulatorServer) -> None:
    """subscribe_error on resubscribe ends the subscription with SubscribeError."""
    states = States()
    async with connect(emulator, on_state_change=states) as client:
        sub = await client.subscribe("default/e")
        emulator.inject(faults.RejectSubscribe())
        emulator.inject(faults.DropConnection())
        with pytest.raises(SubscribeError):
            await next_json(sub)
        await states.wait(ConnectionState.CONNECTED)
        assert client.subscriptions == ()
        assert (await client.publish("default/e", 1)).ok


@pytest.mark.asyncio
async def test_second_drop_during_resubscribe_is_resumed_again(emulator: EmulatorServer) -> None:
    """A drop while a resubscribe waits for its answer keeps the subscription for the next."""
    authz = CountingAuthorizer(key(emulator))
    resubscribing = asyncio.Event()
    inner = authz.authorize

    async def authorize(request: AuthorizeRequest) -> AuthorizeResult:
        result = await inner(request)
        if authz.count(Operation.SUBSCRIBE) == 2:
            resubscribing.set()
        return result

    authz.authorize = authorize  # type: ignore[method-assign]
    states = States()
    async with connect(emulator, authorizer=authz, on_state_change=states) as client:
        sub = await client.subscribe("default/twice")
        handle = emulator.inject(faults.WithholdReply())  # subscribe_success withheld
        emulator.inject(faults.DropConnection())
        async with asyncio.timeout(WAIT):
            await resubscribing.wait()
        assert client.state is ConnectionState.RECONNECTING
        handle.remove()
        emulator.inject(faults.DropConnection())
        await states.wait(ConnectionState.CONNECTED)
        record = await emulator.recorder.wait_for(
            lambda r: [s for s in r.subscriptions if s.id == sub.id and s.active] or None,
            timeout=WAIT,
        )
        assert record[0].connection_id == emulator.recorder.connections[-1].id
        assert client.reconnects == 2
        assert authz.count(Operation.SUBSCRIBE) == 3
        assert (await client.publish("default/twice", "third")).ok
        assert await next_json(sub) == "third"


@pytest.mark.asyncio
async def test_callback_errors_are_ignored(emulator: EmulatorServer) -> None:
    """An on_state_change that raises does not break reconnection."""
    seen: list[ConnectionState] = []

    def broken(state: ConnectionState) -> None:
        seen.append(state)
        raise RuntimeError("user bug")

    async with connect(emulator, on_state_change=broken) as client:
        sub = await client.subscribe("default/cb")
        first = emulator.recorder.connections[-1].id
        emulator.inject(faults.DropConnection())
        await resubscribed(emulator, sub.id, first)
        assert (await client.publish("default/cb", 1)).ok
        assert await next_json(sub) == 1
    assert ConnectionState.CONNECTED in seen


@pytest.mark.asyncio
async def test_without_reconnect_the_client_stays_failed(emulator: EmulatorServer) -> None:
    """reconnect=False (the default): the first loss is final, as before."""
    states = States()
    async with connect(emulator, on_state_change=states, reconnect=False) as client:
        assert client.reconnect is None
        sub = await client.subscribe("default/n")
        emulator.inject(faults.DropConnection())
        with pytest.raises(ConnectionClosedError):
            await next_json(sub)
        assert client.closed
        assert client.state is ConnectionState.CLOSED
        assert client.reconnects == 0
        assert isinstance(client.failure, ConnectionClosedError)
        with pytest.raises(ConnectionClosedError):
            await client.publish("default/n", 1)
    assert states.seen == [ConnectionState.CLOSED]
    assert len(emulator.recorder.connections) == 1


@pytest.mark.asyncio
async def test_protocol_violation_is_not_retried(emulator: EmulatorServer) -> None:
    """A server that breaks the protocol is not reconnected to."""
    async with connect(emulator) as client:
        sub = await client.subscribe("default/v")
        emulator.inject(faults.SendRawText("not json"))
        with pytest.raises(RemoteProtocolError):
            await next_json(sub)
        assert client.closed
        assert isinstance(client.failure, AppSyncEventsError)


class FlakyAuthorizer(CountingAuthorizer):
    """Raises ``RuntimeError`` for ``operation`` from its ``after``-th call on."""

    def __init__(self, inner: authorizer.ApiKey, operation: Operation, after: int) -> None:
        super().__init__(inner)
        self.operation = operation
        self.after = after

    async def authorize(self, request: AuthorizeRequest) -> AuthorizeResult:
        result = await super().authorize(request)
        if request.operation is self.operation and self.count(self.operation) >= self.after:
            raise RuntimeError("token service down")
        return result


@pytest.mark.asyncio
async def test_authorizer_bug_on_reconnect_stops(emulator: EmulatorServer) -> None:
    """An authorizer raising a non-library exception on reconnect stops reconnection."""
    authz = FlakyAuthorizer(key(emulator), Operation.CONNECT, after=2)
    async with connect(emulator, authorizer=authz) as client:
        sub = await client.subscribe("default/f")
        emulator.inject(faults.DropConnection())
        with pytest.raises(HandshakeError, match="token service down") as info:
            await next_json(sub)
        assert isinstance(info.value.__cause__, RuntimeError)
        assert client.closed
        assert client.failure is info.value


@pytest.mark.asyncio
async def test_authorizer_bug_on_resubscribe_fails_that_subscription(
    emulator: EmulatorServer,
) -> None:
    """A subscription whose authorizer raises on resubscribe fails; the client goes on."""
    flaky = FlakyAuthorizer(key(emulator), Operation.SUBSCRIBE, after=2)
    states = States()
    async with connect(emulator, on_state_change=states) as client:
        doomed = await client.subscribe("default/g", authorizer=flaky)
        kept = await client.subscribe("default/g")
        emulator.inject(faults.DropConnection())
        with pytest.raises(AppSyncEventsError, match="token service down") as info:
            await next_json(doomed)
        assert isinstance(info.value.__cause__, RuntimeError)
        await states.wait(ConnectionState.CONNECTED)
        assert client.subscriptions == (kept,)
        assert (await client.publish("default/g", 7)).ok
        assert await next_json(kept) == 7


@pytest.mark.asyncio
async def test_subscription_closed_while_resumed_is_unsubscribed(
    emulator: EmulatorServer,
) -> None:
    """A subscription closed while its resubscribe is in flight is unsubscribed once accepted."""
    authz = CountingAuthorizer(key(emulator))
    resubscribing = asyncio.Event()
    inner = authz.authorize

    async def authorize(request: AuthorizeRequest) -> AuthorizeResult:
        result = await inner(request)
        if authz.count(Operation.SUBSCRIBE) == 2:
            resubscribing.set()
        return result

    authz.authorize = authorize  # type: ignore[method-assign]
    states = States()
    async with connect(emulator, authorizer=authz, on_state_change=states) as client:
        sub = await client.subscribe("default/late")
        emulator.inject(faults.DelayReply(200 * MS, match="subscribe_success"))
        first = emulator.recorder.connections[-1].id
        emulator.inject(faults.DropConnection())
        async with asyncio.timeout(WAIT):
            await resubscribing.wait()
        await sub.close()
        await states.wait(ConnectionState.CONNECTED)
        await emulator.recorder.wait_for(
            lambda r: (
                [
                    s
                    for s in r.subscriptions
                    if s.id == sub.id and s.connection_id != first and not s.active
                ]
                or None
            ),
            timeout=WAIT,
        )
        assert client.subscriptions == ()
