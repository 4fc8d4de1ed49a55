"""The client against the emulator (interface D), over real loopback sockets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

import appsync_events
from appsync_emulator import (
    AuthType,
    EmulatorConfig,
    EmulatorServer,
    IamCredentials,
    NamespaceConfig,
    faults,
)
from appsync_events import authorizer
from appsync_events.errors import (
    BroadcastError,
    ConfigurationError,
    ConnectionClosedError,
    HandshakeError,
    HandshakeTimeoutError,
    HeartbeatTimeoutError,
    OperationTimeoutError,
    PublishError,
    SubscribeError,
    SubscriptionInboxFullError,
    UnauthorizedError,
)

from .helpers import CREDENTIALS, MS, REGION, WAIT

pytestmark = pytest.mark.asyncio

TRICKY = {"html": "<b>Tom & Jerry</b>", "quote": "it's a=b", "unicode": "Grüße, 東京 €"}
BOTH = (AuthType.API_KEY, AuthType.AWS_IAM)


def config(**changes: object) -> EmulatorConfig:
    base = EmulatorConfig(
        region=REGION,
        connection_timeout_ms=round(300 * MS * 1000),
        keepalive_interval=50 * MS,
        auth_providers=BOTH,
        connection_auth_modes=BOTH,
        default_publish_auth_modes=BOTH,
        default_subscribe_auth_modes=BOTH,
        iam_credentials=(
            IamCredentials(
                access_key_id=CREDENTIALS.access_key,
                secret_access_key=CREDENTIALS.secret_key,
                session_token=CREDENTIALS.token,
            ),
        ),
        namespaces=(
            NamespaceConfig(name="default"),
            NamespaceConfig(
                name="private",
                subscribe_auth_modes=(AuthType.AWS_IAM,),
                publish_auth_modes=(AuthType.API_KEY,),
            ),
        ),
    )
    return base.replace(**changes)


@pytest_asyncio.fixture
async def emulator() -> AsyncIterator[EmulatorServer]:
    async with EmulatorServer(config()) as server:
        yield server
        server.check()


def key(server: EmulatorServer, api_key: str | None = None) -> authorizer.ApiKey:
    return authorizer.ApiKey(api_key=api_key or server.api_key or "", endpoint=server.http_endpoint)


def iam(server: EmulatorServer) -> authorizer.IAM:
    return authorizer.IAM(region=REGION, endpoint=server.http_endpoint, credentials=CREDENTIALS)


def connect(server: EmulatorServer, **kwargs: object) -> appsync_events.connect:
    kwargs.setdefault("authorizer", key(server))
    kwargs.setdefault("operation_timeout", 2.0)
    return appsync_events.connect(server.realtime_endpoint, **kwargs)  # type: ignore[arg-type]


async def test_emulator_round_trip(emulator: EmulatorServer) -> None:
    """Subscribe, publish a 5-event batch over WS and one over HTTP, receive all in order."""
    async with connect(emulator) as client:
        sub = await client.subscribe("default/*")
        events = [{"n": n, "text": "é<>"} for n in range(5)]
        result = await client.publish("default/room", *events)
        assert [e.index for e in result.successful] == [0, 1, 2, 3, 4]
        http = await appsync_events.publish_http(
            emulator.http_endpoint, "default/room/deep", {"n": 5}, authorizer=key(emulator)
        )
        assert http.ok
        got = [(await asyncio.wait_for(sub.next(), WAIT)).json() for _ in range(6)]
        assert got == [*events, {"n": 5}]
        emulator.recorder.assert_published("/default/room", count=5)
        assert emulator.recorder.assert_subscribed("/default/*").id == sub.id
        await sub.close()
        await emulator.recorder.wait_for(lambda r: r.subscriptions[0].unsubscribed_at, timeout=WAIT)


async def test_emulator_six_events_refused_locally(emulator: EmulatorServer) -> None:
    """A 6-event publish never reaches the server."""
    async with connect(emulator) as client:
        with pytest.raises(ConfigurationError, match="6 events"):
            await client.publish("default/a", 1, 2, 3, 4, 5, 6)
        assert emulator.recorder.published == []
        assert [f.frame_type for f in emulator.recorder.received] == ["connection_init"]


async def test_emulator_iam_everywhere_strict_escaping() -> None:
    """IAM connect/subscribe/publish and HTTP publish pass the emulator's strict verifier."""
    async with EmulatorServer(config(strict_aws_escaping=True)) as server:
        async with connect(server, authorizer=iam(server)) as client:
            sub = await client.subscribe("default/iam")
            result = await client.publish("default/iam", TRICKY, b'{"raw":"<&>"}')
            assert result.ok
            http = await appsync_events.publish_http(
                server.http_endpoint, "default/iam", TRICKY, authorizer=iam(server)
            )
            assert http.ok
            got = [(await asyncio.wait_for(sub.next(), WAIT)).json() for _ in range(3)]
            assert got == [TRICKY, {"raw": "<&>"}, TRICKY]
            [record] = [r for r in server.recorder.subscriptions if r.id == sub.id]
            assert record.identity is not None
            assert record.identity.mode is AuthType.AWS_IAM
        server.check()


async def test_emulator_iam_unescaped_publish_fails_strict_verifier() -> None:
    """Without the escaping, AWS-style verification of '<' fails (why the option exists)."""
    async with EmulatorServer(config(strict_aws_escaping=True)) as server:
        async with connect(server, authorizer=iam(server), html_escape=False) as client:
            with pytest.raises((PublishError, UnauthorizedError)):
                await client.publish("default/iam", {"html": "<b>"})
            assert (await client.publish("default/iam", {"plain": 1})).ok


async def test_emulator_per_operation_authorizers(emulator: EmulatorServer) -> None:
    """'private' needs IAM to subscribe and an API key to publish, on one API-key connection."""
    async with connect(emulator) as client:
        with pytest.raises(UnauthorizedError):
            await client.subscribe("private/room")
        sub = await client.subscribe("private/room", authorizer=iam(emulator))
        with pytest.raises(UnauthorizedError):
            await client.publish("private/room", 1, authorizer=iam(emulator))
        assert (await client.publish("private/room", {"ok": True})).ok
        assert (await asyncio.wait_for(sub.next(), WAIT)).json() == {"ok": True}
        [record] = [r for r in emulator.recorder.published if r.channel == "/private/room"]
        assert record.auth_mode is AuthType.API_KEY


async def test_emulator_wrong_api_key(emulator: EmulatorServer) -> None:
    """A wrong key gives UnauthorizedError with the service's errors."""
    with pytest.raises(UnauthorizedError) as info:
        await connect(emulator, authorizer=key(emulator, "da2-wrongwrongwrongwrongwrong"))
    [detail] = info.value.errors
    assert (detail.error_type, detail.error_code) == ("UnauthorizedException", 401)


async def test_emulator_never_acks(emulator: EmulatorServer) -> None:
    """NeverAck gives HandshakeTimeoutError."""
    with emulator.inject(faults.NeverAck()):
        with pytest.raises(HandshakeTimeoutError):
            await connect(emulator, handshake_timeout=200 * MS)


async def test_emulator_rejects_connection(emulator: EmulatorServer) -> None:
    """RejectConnection (connection_error) gives UnauthorizedError with .errors."""
    with emulator.inject(faults.RejectConnection()):
        with pytest.raises(UnauthorizedError) as info:
            await connect(emulator)
        assert info.value.errors


async def test_emulator_no_subprotocol(emulator: EmulatorServer) -> None:
    """A server selecting no subprotocol fails the handshake."""
    with emulator.inject(faults.NoSubprotocol()):
        with pytest.raises(HandshakeError, match="no subprotocol"):
            await connect(emulator)


async def test_emulator_refused_upgrade(emulator: EmulatorServer) -> None:
    """RefuseUpgrade(401) gives UnauthorizedError with the HTTP status."""
    with emulator.inject(faults.RefuseUpgrade(status=401)):
        with pytest.raises(UnauthorizedError) as info:
            await connect(emulator)
        assert info.value.status == 401


async def test_emulator_drops_keepalives(emulator: EmulatorServer) -> None:
    """DropKeepAlives gives HeartbeatTimeoutError within the ack's timeout."""
    async with connect(emulator) as client:
        sub = await client.subscribe("default/a")
        assert client.keepalive_timeout == pytest.approx(300 * MS)
        with emulator.inject(faults.DropKeepAlives()):
            with pytest.raises(HeartbeatTimeoutError):
                await asyncio.wait_for(sub.next(), WAIT)
        with pytest.raises(HeartbeatTimeoutError):
            await client.publish("default/a", 1)


async def test_emulator_withheld_reply_times_out(emulator: EmulatorServer) -> None:
    """A withheld publish_success gives OperationTimeoutError; the connection stays usable."""
    async with connect(emulator, operation_timeout=200 * MS) as client:
        with emulator.inject(faults.WithholdReply(match="publish_success")):
            with pytest.raises(OperationTimeoutError):
                await client.publish("default/a", 1)
        assert (await client.publish("default/a", 2)).ok


async def test_emulator_rejected_subscribe(emulator: EmulatorServer) -> None:
    """RejectSubscribe gives SubscribeError with .errors."""
    async with connect(emulator) as client:
        with emulator.inject(faults.RejectSubscribe()):
            with pytest.raises(SubscribeError) as info:
                await client.subscribe("default/a")
            assert info.value.errors


async def test_emulator_broadcast_error(emulator: EmulatorServer) -> None:
    """SendBroadcastError reaches the subscription in-band."""
    async with connect(emulator) as client:
        sub = await client.subscribe("default/a")
        emulator.inject(faults.SendBroadcastError(subscription_id=sub.id))
        with pytest.raises(BroadcastError):
            await asyncio.wait_for(sub.next(), WAIT)
        await client.publish("default/a", 1)
        assert (await asyncio.wait_for(sub.next(), WAIT)).json() == 1


async def test_emulator_flood_overflows_one_subscription(emulator: EmulatorServer) -> None:
    """A flooded subscription fails with SubscriptionInboxFullError; the other keeps going."""
    backpressure = appsync_events.Backpressure(subscription_events=10)
    async with connect(emulator, backpressure=backpressure) as client:
        flooded = await client.subscribe("default/flood")
        calm = await client.subscribe("default/calm")
        emulator.inject(
            faults.FloodSubscription(subscription_id=flooded.id, count=50, event='{"f":1}')
        )
        await emulator.recorder.wait_for(
            lambda r: next(
                (s for s in r.subscriptions if s.id == flooded.id and s.unsubscribed_at), None
            ),
            timeout=WAIT,
        )
        for _ in range(10):
            assert (await flooded.next()).json() == {"f": 1}
        with pytest.raises(SubscriptionInboxFullError):
            await flooded.next()
        await asyncio.sleep(400 * MS)  # longer than the heartbeat timeout; ka keeps flowing
        assert not client.closed
        await client.publish("default/calm", {"still": "here"})
        assert (await asyncio.wait_for(calm.next(), WAIT)).json() == {"still": "here"}


async def test_emulator_close_unsubscribes_and_closes_1000(emulator: EmulatorServer) -> None:
    """close() unsubscribes every subscription and closes with 1000."""
    client = await connect(emulator)
    await client.subscribe("default/a")
    await client.subscribe("default/b")
    await client.close()
    await client.close()
    info = await emulator.recorder.wait_for(
        lambda r: r.connections[0] if r.connections[0].closed_at else None, timeout=WAIT
    )
    assert info.close_code == 1000
    assert all(s.unsubscribed_at for s in emulator.recorder.subscriptions)


async def test_emulator_dropped_connection(emulator: EmulatorServer) -> None:
    """An abrupt TCP drop fails pending reads with ConnectionClosedError."""
    async with connect(emulator) as client:
        sub = await client.subscribe("default/a")
        emulator.inject(faults.DropConnection())
        with pytest.raises(ConnectionClosedError):
            await asyncio.wait_for(sub.next(), WAIT)


async def test_emulator_publisher_receives_own_events(emulator: EmulatorServer) -> None:
    """Events keep their exact text (no handler: byte fidelity)."""
    async with connect(emulator) as client:
        sub = await client.subscribe("default/a")
        await client.publish("default/a", b'{ "spaced" : 1.0 }')
        message = await asyncio.wait_for(sub.next(), WAIT)
        assert message.data == '{ "spaced" : 1.0 }'
        assert json.loads(message.data) == {"spaced": 1.0}
