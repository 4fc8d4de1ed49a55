"""Every fault of interface D, observed on the wire with raw clients; and the pure plan."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from websockets.exceptions import InvalidStatus

from appsync_emulator import EmulatorServer, Limits
from appsync_emulator.faults import (
    AckTimeoutOverride,
    CloseConnection,
    CorruptFrame,
    DelayAck,
    DelayKeepAlives,
    DelayReply,
    DropConnection,
    DropKeepAlives,
    FailEvents,
    FaultPlan,
    FloodSubscription,
    FrameLatency,
    NeverAck,
    NoSubprotocol,
    Point,
    RefuseUpgrade,
    RejectConnection,
    RejectPublish,
    RejectSubscribe,
    RejectUnsubscribe,
    SendBroadcastError,
    SendError,
    SendRawText,
    Stall,
    StallSubscriber,
    WithholdReply,
)
from appsync_emulator.recorder import ConnectionInfo
from appsync_events.errors import ErrorDetail
from tests.conftest import MS

from .conftest import RawClient, fast_config, open_raw

CUSTOM = ErrorDetail(error_type="CustomError", message="injected", error_code=418)
CUSTOM_WIRE = [{"errorType": "CustomError", "message": "injected", "errorCode": 418}]
SHORT = 200 * MS
"""How long a test listens to prove that a frame does not arrive."""


async def _nothing_within(raw: RawClient, seconds: float = SHORT) -> None:
    try:
        frame = await raw.recv(within=seconds)
    except TimeoutError:
        return
    pytest.fail(f"unexpected frame {frame}")


def _sent_types(server: EmulatorServer, conn_id: str) -> list[str | None]:
    return [f.frame_type for f in server.recorder.sent_to(conn_id)]


# --- keep-alive ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_drop_keepalives(server: EmulatorServer) -> None:
    """DropKeepAlives: no ka at all, not even right after the ack."""
    server.inject(DropKeepAlives())
    raw = await open_raw(server)
    await raw.init()
    assert await raw.subscribe("default/k") == {"type": "subscribe_success", "id": "s1"}
    assert "ka" not in _sent_types(server, server.connections[-1].id)
    await raw.ws.close()


@pytest.mark.asyncio
async def test_delay_keepalives(server: EmulatorServer) -> None:
    """DelayKeepAlives: the first ka leaves late; other frames are not held back."""
    loop = asyncio.get_running_loop()
    with server.inject(DelayKeepAlives(150 * MS)):
        raw = await open_raw(server)
        started = loop.time()
        await raw.init()
        assert await raw.subscribe("default/k") == {"type": "subscribe_success", "id": "s1"}
        assert await raw.recv(skip_ka=False) == {"type": "ka"}
        assert loop.time() - started >= 150 * MS
    await raw.ws.close()


@pytest.mark.asyncio
async def test_ack_timeout_override(server: EmulatorServer) -> None:
    """AckTimeoutOverride changes connectionTimeoutMs in the ack."""
    with server.inject(AckTimeoutOverride(1234)):
        raw = await open_raw(server)
        assert await raw.init() == {"type": "connection_ack", "connectionTimeoutMs": 1234}
    await raw.ws.close()


# --- handshake ----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_never_ack(server: EmulatorServer) -> None:
    """NeverAck: connection_init gets no answer; pipelined replies stay held
    (docs: protocol.rst, "connection_ack")."""
    with server.inject(NeverAck()):
        raw = await open_raw(server)
        await raw.send({"type": "connection_init"})
        await raw.send(
            {"type": "subscribe", "id": "s1", "channel": "default/x", "authorization": raw.auth}
        )
        await _nothing_within(raw)
    await raw.ws.close()


@pytest.mark.asyncio
async def test_delay_ack(server: EmulatorServer) -> None:
    """DelayAck: the ack arrives late, and frames pipelined behind it follow it."""
    loop = asyncio.get_running_loop()
    with server.inject(DelayAck(100 * MS)):
        raw = await open_raw(server)
        started = loop.time()
        await raw.send({"type": "connection_init"})
        await raw.send(
            {"type": "subscribe", "id": "s1", "channel": "default/x", "authorization": raw.auth}
        )
        await raw.expect("connection_ack")
        assert loop.time() - started >= 100 * MS
        await raw.expect("subscribe_success", id="s1")
    await raw.ws.close()


@pytest.mark.asyncio
async def test_reject_connection(server: EmulatorServer) -> None:
    """RejectConnection: connection_error with the given errors, then close 1000."""
    with server.inject(RejectConnection(errors=[CUSTOM])):
        raw = await open_raw(server)
        await raw.send({"type": "connection_init"})
        assert await raw.recv() == {"type": "connection_error", "errors": CUSTOM_WIRE}
        assert await raw.closed() == (1000, "")


@pytest.mark.asyncio
async def test_refuse_upgrade(server: EmulatorServer) -> None:
    """RefuseUpgrade: HTTP status and body instead of 101."""
    with server.inject(RefuseUpgrade(status=503, body='{"errors":[]}')):
        with pytest.raises(InvalidStatus) as info:
            await open_raw(server)
    assert info.value.response.status_code == 503
    assert info.value.response.body == b'{"errors":[]}'


@pytest.mark.asyncio
async def test_no_subprotocol(server: EmulatorServer) -> None:
    """NoSubprotocol: the upgrade succeeds without selecting a subprotocol."""
    with server.inject(NoSubprotocol()):
        raw = await open_raw(server)
    assert raw.ws.subprotocol is None
    await raw.ws.close()


# --- operations ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_delay_subscribe_success_delays_the_subscription(
    server: EmulatorServer, client: RawClient
) -> None:
    """DelayReply(subscribe_success): no data before the late success."""
    publisher = await open_raw(server)
    with server.inject(DelayReply(150 * MS, match="subscribe_success")):
        await client.send(
            {"type": "subscribe", "id": "s1", "channel": "default/d", "authorization": client.auth}
        )
        await publisher.publish("default/d", ['"early"'])
        await publisher.expect("publish_success")
        await client.expect("subscribe_success", id="s1")
    await publisher.publish("default/d", ['"late"'], "p2")
    assert await client.recv() == {"type": "data", "id": "s1", "event": '"late"'}
    await publisher.ws.close()


@pytest.mark.asyncio
async def test_unsubscribe_while_subscribe_pending_is_dropped(
    server: EmulatorServer, client: RawClient
) -> None:
    """An unsubscribe during a pending subscribe is dropped; the subscribe completes."""
    with server.inject(DelayReply(100 * MS, match="subscribe_success")):
        await client.send(
            {"type": "subscribe", "id": "s1", "channel": "default/u", "authorization": client.auth}
        )
        await client.send({"type": "unsubscribe", "id": "s1"})
        await client.expect("subscribe_success", id="s1")
    await client.publish("default/u", ['"still"'])
    await client.expect("publish_success")
    assert await client.recv() == {"type": "data", "id": "s1", "event": '"still"'}
    assert "unsubscribe_success" not in _sent_types(server, server.connections[-1].id)


@pytest.mark.asyncio
async def test_delay_publish_success_does_not_delay_fanout(
    server: EmulatorServer, client: RawClient
) -> None:
    """DelayReply(publish_success): data arrives before the late ack."""
    await client.subscribe("default/p")
    with server.inject(DelayReply(100 * MS, match="publish_success")):
        await client.publish("default/p", ['"x"'])
        assert (await client.recv())["type"] == "data"
        await client.expect("publish_success", id="p1")


@pytest.mark.asyncio
async def test_delay_unsubscribe_success(server: EmulatorServer, client: RawClient) -> None:
    """DelayReply(unsubscribe_success): the reply leaves late, ka keeps flowing."""
    loop = asyncio.get_running_loop()
    await client.subscribe("default/u")
    with server.inject(DelayReply(100 * MS, match="unsubscribe_success")):
        started = loop.time()
        await client.send({"type": "unsubscribe", "id": "s1"})
        await client.expect("unsubscribe_success", id="s1")
        assert loop.time() - started >= 100 * MS


@pytest.mark.asyncio
async def test_withhold_replies(server: EmulatorServer, client: RawClient) -> None:
    """WithholdReply: no subscribe_success / publish_success / unsubscribe_success."""
    await client.subscribe("default/w", "live")
    with (
        server.inject(WithholdReply(match="subscribe_success")),
        server.inject(WithholdReply(match="publish_success")),
        server.inject(WithholdReply(match="unsubscribe_success")),
    ):
        await client.send(
            {
                "type": "subscribe",
                "id": "pending",
                "channel": "default/never",
                "authorization": client.auth,
            }
        )
        await client.publish("default/w", ['"x"'])
        assert await client.recv() == {"type": "data", "id": "live", "event": '"x"'}
        await client.send({"type": "unsubscribe", "id": "live"})
        await _nothing_within(client)
    types = _sent_types(server, server.connections[-1].id)
    assert "publish_success" not in types
    assert "unsubscribe_success" not in types
    assert types.count("subscribe_success") == 1


@pytest.mark.asyncio
async def test_reject_subscribe_and_publish(server: EmulatorServer, client: RawClient) -> None:
    """RejectSubscribe/RejectPublish answer with the given errors; nothing is broadcast."""
    with server.inject(RejectSubscribe(errors=[CUSTOM])):
        assert await client.subscribe("default/r") == {
            "type": "subscribe_error",
            "id": "s1",
            "errors": CUSTOM_WIRE,
        }
    await client.subscribe("default/r", "s2")
    with server.inject(RejectPublish(errors=[CUSTOM])):
        await client.publish("default/r", ['"x"'])
        assert await client.recv() == {"type": "publish_error", "id": "p1", "errors": CUSTOM_WIRE}
    assert server.recorder.published == []


@pytest.mark.asyncio
async def test_reject_subscribe_default_error(client: RawClient, server: EmulatorServer) -> None:
    """RejectSubscribe() sends the documented SubscriptionProcessingError."""
    with server.inject(RejectSubscribe()):
        frame = await client.subscribe("default/r")
    assert frame["errors"][0]["errorType"] == "SubscriptionProcessingError"


@pytest.mark.asyncio
async def test_reject_unsubscribe_keeps_the_subscription(
    server: EmulatorServer, client: RawClient
) -> None:
    """RejectUnsubscribe: unsubscribe_error UnknownOperationError; data keeps flowing."""
    await client.subscribe("default/ru")
    with server.inject(RejectUnsubscribe()):
        await client.send({"type": "unsubscribe", "id": "s1"})
        frame = await client.expect("unsubscribe_error", id="s1")
    assert frame["errors"][0]["message"] == "Unknown operation id s1"
    await client.publish("default/ru", ['"on"'])
    await client.expect("publish_success")
    assert await client.recv() == {"type": "data", "id": "s1", "event": '"on"'}


@pytest.mark.asyncio
async def test_fail_events(server: EmulatorServer, client: RawClient) -> None:
    """FailEvents: the indexes go to failed[] with the code and are not broadcast."""
    await client.subscribe("default/f")
    with server.inject(FailEvents(indexes=(1,), code="Nope", message="odd one")):
        await client.publish("default/f", ['"a"', '"b"', '"c"'])
        ack = await client.expect("publish_success")
    assert [s["index"] for s in ack["successful"]] == [0, 2]
    assert ack["failed"] == [
        {
            "identifier": ack["failed"][0]["identifier"],
            "index": 1,
            "code": "Nope",
            "message": "odd one",
        }
    ]
    assert [(await client.recv())["event"] for _ in range(2)] == ['"a"', '"c"']
    server.recorder.assert_published("default/f", events=["a", "c"])


@pytest.mark.asyncio
async def test_fail_every_event(server: EmulatorServer, client: RawClient) -> None:
    """FailEvents on every index: publish_success with only failed entries."""
    with server.inject(FailEvents(indexes=(0, 1))):
        await client.publish("default/f", ['"a"', '"b"'])
        ack = await client.expect("publish_success")
    assert ack["successful"] == []
    assert [f["index"] for f in ack["failed"]] == [0, 1]


@pytest.mark.asyncio
async def test_send_broadcast_error(server: EmulatorServer, client: RawClient) -> None:
    """SendBroadcastError: broadcast_error for each active subscription, at once."""
    await client.subscribe("default/a", "s1")
    await client.subscribe("default/b", "s2")
    server.inject(SendBroadcastError())
    frames = [await client.expect("broadcast_error") for _ in range(2)]
    assert {f["id"] for f in frames} == {"s1", "s2"}
    assert frames[0]["errors"][0]["errorType"] == "MessageProcessingError"


@pytest.mark.asyncio
async def test_send_error_with_id(server: EmulatorServer, client: RawClient) -> None:
    """SendError: a generic error frame, with the id when given."""
    server.inject(SendError(errors=[CUSTOM], id="op-1"))
    assert await client.recv() == {"type": "error", "id": "op-1", "errors": CUSTOM_WIRE}


# --- transport ----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_close_connection(server: EmulatorServer, client: RawClient) -> None:
    """CloseConnection: close frame with the code and reason."""
    server.inject(CloseConnection(4001, "bye now"))
    assert await client.closed() == (4001, "bye now")
    info = await server.recorder.wait_for(
        lambda r: r.connections[-1] if not r.connections[-1].open else None
    )
    assert (info.close_code, info.close_reason) == (4001, "bye now")


@pytest.mark.asyncio
async def test_drop_connection(server: EmulatorServer, client: RawClient) -> None:
    """DropConnection: the TCP connection is aborted, no close frame (1006 for the client)."""
    server.inject(DropConnection())
    assert await client.closed() == (None, "")


@pytest.mark.asyncio
async def test_faults_target_one_connection_by_id(server: EmulatorServer) -> None:
    """connection="c2" closes c2 only; the other keeps working."""
    first = await open_raw(server)
    second = await open_raw(server)
    await server.recorder.wait_connected(2)
    target = server.connections[-1].id
    server.inject(CloseConnection(4002), connection=target)
    assert (await second.closed())[0] == 4002
    assert (await first.subscribe("default/x"))["type"] == "subscribe_success"
    await first.ws.close()


@pytest.mark.asyncio
async def test_faults_target_by_predicate(server: EmulatorServer) -> None:
    """A predicate over ConnectionInfo selects the connections (here: the unauthorized one)."""
    good = await open_raw(server)
    await good.init()

    def no_key(info: ConnectionInfo) -> bool:
        return not info.authorized

    with server.inject(AckTimeoutOverride(999), connection=no_key):
        bad = await open_raw(server, subprotocols=["aws-appsync-event-ws"])
        fresh = await open_raw(server)
        assert (await fresh.init())["connectionTimeoutMs"] == 300
    await bad.send({"type": "connection_init"})
    assert (await bad.recv())["type"] == "connection_error"
    for raw in (good, fresh):
        await raw.ws.close()


@pytest.mark.asyncio
async def test_failing_predicate_is_collected(server: EmulatorServer) -> None:
    """A target predicate that raises matches nothing; check() re-raises its error."""

    def broken(info: ConnectionInfo) -> bool:
        raise ValueError("bad predicate")

    server.inject(AckTimeoutOverride(1), connection=broken)
    raw = await open_raw(server)
    assert (await raw.init())["connectionTimeoutMs"] == 300
    with pytest.raises(ValueError, match="bad predicate"):
        server.check()
    server.clear_faults()
    await raw.ws.close()


@pytest.mark.asyncio
async def test_stall_blackholes_the_connection_until_removed(
    server: EmulatorServer, client: RawClient
) -> None:
    """Stall: nothing is read or sent while installed; the flow resumes afterwards."""
    await client.subscribe("default/s")
    handle = server.inject(Stall(), connection=server.connections[-1].id)
    await client.publish("default/s", ['"held"'])
    await _nothing_within(client)
    handle.remove()
    await client.expect("publish_success")
    assert await client.recv() == {"type": "data", "id": "s1", "event": '"held"'}


@pytest.mark.asyncio
async def test_frame_latency(server: EmulatorServer, client: RawClient) -> None:
    """FrameLatency: every frame takes the extra time, in order."""
    loop = asyncio.get_running_loop()
    with server.inject(FrameLatency(100 * MS)):
        started = loop.time()
        assert (await client.subscribe("default/l"))["type"] == "subscribe_success"
        assert loop.time() - started >= 100 * MS


@pytest.mark.asyncio
async def test_corrupt_frame_once(server: EmulatorServer, client: RawClient) -> None:
    """CorruptFrame: the next matching frame is replaced by the text, later ones are intact."""
    server.inject(CorruptFrame(match="subscribe_success", text="garbage{"))
    await client.send(
        {"type": "subscribe", "id": "s1", "channel": "default/c", "authorization": client.auth}
    )
    while (text := await client.recv_text()) == '{"type":"ka"}':
        pass
    assert text == "garbage{"
    assert await client.subscribe("default/c2", "s2") == {"type": "subscribe_success", "id": "s2"}


@pytest.mark.asyncio
async def test_send_raw_text(server: EmulatorServer, client: RawClient) -> None:
    """SendRawText: the text goes out verbatim."""
    server.inject(SendRawText('{"type":"surprise"}'))
    assert await client.recv() == {"type": "surprise"}


# --- slow consumers -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_flood_subscription(server: EmulatorServer, client: RawClient) -> None:
    """FloodSubscription: count data frames of the event for the subscription."""
    await client.subscribe("default/flood")
    server.inject(FloodSubscription(subscription_id="s1", count=50, event='{"f":1}'))
    frames = [await client.recv() for _ in range(50)]
    assert frames == [{"type": "data", "id": "s1", "event": '{"f":1}'}] * 50


@pytest.mark.asyncio
async def test_flood_subscription_at_a_rate(server: EmulatorServer, client: RawClient) -> None:
    """FloodSubscription(rate=...) paces the frames."""
    loop = asyncio.get_running_loop()
    await client.subscribe("default/flood")
    started = loop.time()
    server.inject(FloodSubscription(count=5, rate=1 / (10 * MS)))
    for _ in range(5):
        await client.expect("data", id="s1")
    assert loop.time() - started >= 4 * 10 * MS


@pytest.mark.asyncio
async def test_stalled_subscriber_is_closed_1008_and_others_keep_flowing() -> None:
    """StallSubscriber: its queue overflows (1008); the publisher and others are unaffected."""
    config = fast_config(limits=Limits(send_queue_frames=20), keepalive_interval=10.0)
    async with EmulatorServer(config) as server:
        slow = await open_raw(server)
        fast = await open_raw(server)
        await slow.subscribe("default/hol")
        await fast.subscribe("default/hol")
        slow_id = server.connections[0].id
        server.inject(StallSubscriber(), connection=slow_id)
        publisher = await open_raw(server)
        for i in range(10):
            await publisher.publish("default/hol", [json.dumps(i)] * 5, f"p{i}")
        for i in range(10):
            await publisher.expect("publish_success", id=f"p{i}")
        received = [json.loads((await fast.recv())["event"]) for _ in range(50)]
        assert received == [i for i in range(10) for _ in range(5)]
        assert (await slow.closed())[0] == 1008
        overflow = [e for e in server.recorder.errors if e.frame_type == "overflow"]
        assert overflow[0].connection_id == slow_id
        for raw in (fast, publisher):
            await raw.ws.close()


# --- handles and the plan ----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_fault_handle_scopes_and_reset(server: EmulatorServer) -> None:
    """A handle removes its fault on exit/remove(); clear_faults and reset remove all."""
    with server.inject(AckTimeoutOverride(5)) as handle:
        assert len(server.emulator.plan) == 1
    assert len(server.emulator.plan) == 0
    handle.remove()  # idempotent
    server.inject(DropKeepAlives())
    server.inject(NeverAck())
    server.clear_faults()
    assert len(server.emulator.plan) == 0
    server.inject(DropKeepAlives())
    server.reset()
    assert len(server.emulator.plan) == 0
    assert "installed" in repr(server.inject(NeverAck()))


def test_plan_decisions_are_pure_and_combine() -> None:
    """Delays add up, the first rejection wins, an untargeted fault applies to HTTP."""
    plan = FaultPlan()
    conn = ConnectionInfo(id="c1", opened_at=0.0)
    plan.add(DelayReply(0.1, match="publish_success"))
    plan.add(FrameLatency(0.2), "c1")
    plan.add(RejectPublish(errors=[CUSTOM], status=429))
    plan.add(RejectPublish())
    decision = plan.decide(Point.OUTBOUND, conn, frame_type="publish_success")
    assert (decision.delay, decision.latency) == (0.1, 0.2)
    assert plan.decide(Point.OUTBOUND, None, frame_type="publish_success").latency == 0.0
    publish = plan.decide(Point.PUBLISH, None)
    assert (publish.reject, publish.status) == ((CUSTOM,), 429)
    assert plan.decide(Point.ACK, conn) == plan.decide(Point.ACK, None)


def test_plan_corrupt_frame_counts_down() -> None:
    """CorruptFrame(times=2) replaces two matching frames, then uninstalls itself."""
    plan = FaultPlan()
    plan.add(CorruptFrame(match="data", text="x", times=2))
    conn = ConnectionInfo(id="c1", opened_at=0.0)
    hits = [plan.decide(Point.OUTBOUND, conn, frame_type=t).replace for t in ("ka", "data") * 3]
    assert hits == [None, "x", None, "x", None, None]
    assert len(plan) == 0
    assert not plan.active(Point.OUTBOUND)


def test_plan_remove_and_type_checks() -> None:
    """remove() reports whether the key existed; non-faults and bad targets are refused."""
    plan = FaultPlan()
    key = plan.add(Stall())
    assert plan.decide(Point.FLOW, None).stall_reads
    assert plan.remove(key)
    assert not plan.remove(key)
    with pytest.raises(TypeError):
        plan.add("not a fault")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        plan.add(Stall(), 42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "make",
    [
        lambda: DelayKeepAlives(-1),
        lambda: DelayReply(1, match="ka"),  # type: ignore[arg-type]
        lambda: WithholdReply(match="data"),  # type: ignore[arg-type]
        lambda: AckTimeoutOverride(-5),
        lambda: RejectConnection(errors=[]),
        lambda: RefuseUpgrade(status=200),
        lambda: RejectPublish(status=302),
        lambda: FailEvents(indexes=(-1,)),
        lambda: CloseConnection(1005),
        lambda: CloseConnection(1000, "x" * 124),
        lambda: CorruptFrame(times=0),
        lambda: FloodSubscription(count=0),
        lambda: FloodSubscription(rate=0),
        lambda: FrameLatency(-0.1),
        lambda: DelayAck(float("nan")),
        lambda: SendRawText("\ud800"),
        lambda: CorruptFrame(text="x\udcff"),
    ],
)
def test_fault_values_validate_their_arguments(make: object) -> None:
    """Bad fault arguments raise ValueError at construction."""
    with pytest.raises(ValueError):
        make()  # type: ignore[operator]


# --- faults on HTTP publish ---------------------------------------------------------------------


@pytest.mark.asyncio
async def test_http_publish_faults(server: EmulatorServer, http: aiohttp.ClientSession) -> None:
    """Untargeted publish faults apply to HTTP: FailEvents, RejectPublish status, DelayReply."""
    body = {"channel": "default/h", "events": ['"a"', '"b"']}
    headers = {"x-api-key": server.api_key or ""}
    with server.inject(FailEvents(indexes=(0,), code="Bad")):
        async with http.post(server.http_endpoint, json=body, headers=headers) as response:
            result = await response.json()
    assert response.status == 200
    assert [f["index"] for f in result["failed"]] == [0]
    assert [s["index"] for s in result["successful"]] == [1]
    with server.inject(RejectPublish(errors=[CUSTOM], status=429)):
        async with http.post(server.http_endpoint, json=body, headers=headers) as response:
            assert response.status == 429
            assert (await response.json())["errors"] == CUSTOM_WIRE
    loop = asyncio.get_running_loop()
    with server.inject(DelayReply(100 * MS, match="publish_success")):
        started = loop.time()
        async with http.post(server.http_endpoint, json=body, headers=headers) as response:
            assert response.status == 200
        assert loop.time() - started >= 100 * MS


@pytest.mark.asyncio
async def test_withheld_http_response_is_released_at_shutdown(
    http: aiohttp.ClientSession,
) -> None:
    """WithholdReply(publish_success) holds the HTTP response until the server stops (503)."""
    server = await EmulatorServer(fast_config()).start()
    server.inject(WithholdReply(match="publish_success"))

    async def post() -> int:
        async with http.post(
            server.http_endpoint,
            json={"channel": "default/h", "events": ['"a"']},
            headers={"x-api-key": server.api_key or ""},
        ) as response:
            return response.status

    task = asyncio.ensure_future(post())
    await server.recorder.wait_published("default/h")
    assert not task.done()
    await server.stop()
    assert await task == 503


@pytest.mark.asyncio
async def test_connection_limit() -> None:
    """Beyond limits.max_connections the upgrade is refused with 429."""
    async with EmulatorServer(fast_config(limits=Limits(max_connections=1))) as server:
        first = await open_raw(server)
        with pytest.raises(InvalidStatus) as info:
            await open_raw(server)
        assert info.value.response.status_code == 429
        await first.ws.close()
