"""Replaying recordings: a recorded session replays to the client with the same outcome.

Each test records a real session (the project's client against the emulator, with a
fault), replays the file with :class:`~appsync_emulator.replay.Replayer` to the same client
code, and compares what the client observed: the events in order and the error raised.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from appsync_emulator import EmulatorServer
from appsync_emulator.faults import (
    CloseConnection,
    DropConnection,
    DropKeepAlives,
    FloodSubscription,
    RefuseUpgrade,
)
from appsync_emulator.recording_file import RecordingFormatError, start_recording
from appsync_emulator.replay import MISMATCH_CLOSE_CODE, Replayer, ReplayMismatchError
from appsync_events import (
    Backpressure,
    ConnectionClosedError,
    HeartbeatTimeoutError,
    SubscriptionInboxFullError,
    UnauthorizedError,
    connect,
    publish_http,
)
from appsync_events.authorizer import ApiKey
from appsync_events.protocol.subprotocol import PROTOCOL_EVENTS
from tests.helpers import ClockLoop, run_on_clock

from .conftest import WAIT, fast_config

Step = Callable[[Any], Awaitable[None]]
"""What a session does at its fault point: inject on the emulator, wait on the replayer."""


def _auth(target: EmulatorServer | Replayer) -> ApiKey:
    return ApiKey(api_key=target.api_key or "", endpoint=target.http_endpoint)


async def _chat_session(target: Any, at_fault: Step) -> list[str]:
    """Subscribe, publish over WebSocket and HTTP, then lose the keep-alives."""
    seen: list[str] = []
    realtime, http, auth = target.realtime_endpoint, target.http_endpoint, _auth(target)
    async with asyncio.timeout(WAIT * 5):
        async with connect(realtime, authorizer=auth) as client:
            sub = await client.subscribe("default/chat")
            await client.publish("default/chat", {"n": 1}, {"n": 2})
            seen += [(await sub.next()).data for _ in range(2)]
            await publish_http(http, "default/chat", {"n": 3}, authorizer=auth)
            seen.append((await sub.next()).data)
            await at_fault(target)
            with pytest.raises(HeartbeatTimeoutError) as raised:
                await sub.next()
            seen.append(type(raised.value).__name__)
    return seen


async def _flood_session(target: Any, at_fault: Step) -> list[str]:
    """A burst overflows a five-event inbox."""
    realtime, auth = target.realtime_endpoint, _auth(target)
    async with asyncio.timeout(WAIT * 5):
        async with connect(
            realtime, authorizer=auth, backpressure=Backpressure(subscription_events=5)
        ) as client:
            sub = await client.subscribe("default/firehose")
            await at_fault((target, sub.id))
            seen = [(await sub.next()).data for _ in range(5)]
            with pytest.raises(SubscriptionInboxFullError) as raised:
                await sub.next()
            seen.append(type(raised.value).__name__)
    return seen


async def _close_session(target: Any, at_fault: Step) -> list[str]:
    """The service closes the connection with a code."""
    realtime, auth = target.realtime_endpoint, _auth(target)
    async with asyncio.timeout(WAIT * 5):
        client = await connect(realtime, authorizer=auth)
        try:
            sub = await client.subscribe("default/chat")
            await at_fault(target)
            with pytest.raises(ConnectionClosedError) as raised:
                await sub.next()
        finally:
            await client.close()
    return [f"{type(raised.value).__name__} {raised.value.code}"]


async def _drop_keepalives(server: EmulatorServer) -> None:
    server.inject(DropKeepAlives())


async def _flood(target: tuple[EmulatorServer, str]) -> None:
    server, sub_id = target
    server.inject(FloodSubscription(subscription_id=sub_id, count=50))
    await server.wait_for(lambda r: not r.active_subscriptions or None)


async def _close_4001(server: EmulatorServer) -> None:
    server.inject(CloseConnection(code=4001, reason="maintenance"))


async def _nothing(target: Any) -> None:
    pass


async def _after_unsubscribe(target: tuple[Replayer, str]) -> None:
    await target[0].wait_received("unsubscribe")


Session = Callable[[Any, Step], Awaitable[list[str]]]


async def _record(path: Path, session: Session, at_fault: Step) -> list[str]:
    async with EmulatorServer(fast_config()) as server:
        start_recording(server, path)
        return await session(server, at_fault)


async def _replay(path: Path, session: Session, at_fault: Step, speed: float = 1.0) -> list[str]:
    async with Replayer(path, speed=speed, input_timeout=WAIT) as replayer:
        seen = await session(replayer, at_fault)
        await replayer.wait_done(WAIT)
    return seen


@pytest.mark.asyncio
async def test_replay_reproduces_events_and_heartbeat_timeout(tmp_path: Path) -> None:
    """Same events in order over WebSocket and HTTP, then the same heartbeat timeout."""
    path = tmp_path / "chat.jsonl"
    recorded = await _record(path, _chat_session, _drop_keepalives)
    assert recorded == ['{"n":1}', '{"n":2}', '{"n":3}', "HeartbeatTimeoutError"]
    assert await _replay(path, _chat_session, _nothing) == recorded


@pytest.mark.asyncio
async def test_replay_reproduces_an_inbox_flood(tmp_path: Path) -> None:
    """A recorded flood overflows the replayed client's inbox the same way."""
    path = tmp_path / "flood.jsonl"
    recorded = await _record(path, _flood_session, _flood)
    assert recorded[-1] == "SubscriptionInboxFullError"
    assert await _replay(path, _flood_session, _after_unsubscribe) == recorded


@pytest.mark.asyncio
async def test_replay_reproduces_a_close_code(tmp_path: Path) -> None:
    """A close the service made (a fault) is made again, with its code."""
    path = tmp_path / "close.jsonl"
    recorded = await _record(path, _close_session, _close_4001)
    assert recorded == ["ConnectionClosedError 4001"]
    assert await _replay(path, _close_session, _nothing, speed=4.0) == recorded


async def _id_session(target: Any, at_fault: Step) -> list[str]:
    """Subscribe, publish, read: the ids the client chose and the ones it got back."""
    async with connect(target.realtime_endpoint, authorizer=_auth(target)) as client:
        sub = await client.subscribe("default/chat")
        await client.publish("default/chat", {"n": 1})
        message = await sub.next()
        return [sub.id, message.subscription_id]


@pytest.mark.asyncio
async def test_replay_maps_the_clients_ids_onto_the_recorded_ones(tmp_path: Path) -> None:
    """The client's own subscription id comes back in subscribe_success and data."""
    path = tmp_path / "ids.jsonl"
    recorded_id, _ = await _record(path, _id_session, _nothing)
    sub_id, data_id = await _replay(path, _id_session, _nothing)
    assert sub_id != recorded_id
    assert data_id == sub_id


async def _raw(replayer: Replayer) -> Any:
    return await ws_connect(
        replayer.realtime_endpoint,
        subprotocols=[Subprotocol(PROTOCOL_EVENTS)],
        ping_interval=None,
        proxy=None,
    )


async def _frames_until_closed(ws: Any) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    async with asyncio.timeout(WAIT):
        try:
            while True:
                frames.append(json.loads(await ws.recv()))
        except ConnectionClosed:
            return frames


async def _send_publish_first(replayer: Replayer) -> tuple[list[dict[str, Any]], int | None]:
    ws = await _raw(replayer)
    await ws.send(json.dumps({"type": "publish", "id": "p1"}))
    frames = await _frames_until_closed(ws)
    return frames, ws.close_code


@pytest.mark.asyncio
async def test_replay_mismatch_gets_an_error_frame_a_close_and_a_report(tmp_path: Path) -> None:
    """A frame of another type than recorded: error frame, close 1008, check() raises."""
    path = tmp_path / "chat.jsonl"
    await _record(path, _chat_session, _drop_keepalives)
    replayer = await Replayer(path, input_timeout=WAIT).start()
    try:
        frames, code = await _send_publish_first(replayer)
    finally:
        await replayer.stop()
    assert code == MISMATCH_CLOSE_CODE
    assert [f["type"] for f in frames] == ["error"]
    assert frames[0]["errors"][0]["errorType"] == "ReplayMismatch"
    assert "expects connection_init" in frames[0]["errors"][0]["message"]
    with pytest.raises(ReplayMismatchError) as raised:
        replayer.check()
    assert raised.value.mismatches == tuple(replayer.mismatches)
    assert "mismatches" in replayer.report()


async def _replay_with_a_mismatch(path: Path) -> None:
    async with Replayer(path, input_timeout=WAIT) as replayer:
        await _send_publish_first(replayer)


@pytest.mark.asyncio
async def test_replay_block_raises_the_mismatches_at_its_end(tmp_path: Path) -> None:
    """``async with Replayer(...)`` raises ReplayMismatchError when its block ends."""
    path = tmp_path / "chat.jsonl"
    await _record(path, _chat_session, _drop_keepalives)
    with pytest.raises(ReplayMismatchError, match="expects connection_init"):
        await _replay_with_a_mismatch(path)


@pytest.mark.asyncio
async def test_replay_reports_a_client_frame_that_never_comes(tmp_path: Path) -> None:
    """A recorded client frame that does not arrive is a mismatch after input_timeout."""
    path = tmp_path / "chat.jsonl"
    await _record(path, _chat_session, _drop_keepalives)
    replayer = await Replayer(path, input_timeout=0.2).start()
    try:
        ws = await _raw(replayer)
        await ws.send(json.dumps({"type": "connection_init"}))
        frames = await _frames_until_closed(ws)
    finally:
        await replayer.stop()
    assert frames[0]["type"] == "connection_ack"
    assert frames[-1]["errors"][0]["errorType"] == "ReplayMismatch"
    assert "waited 0.2 s for a subscribe frame" in frames[-1]["errors"][0]["message"]
    assert len(replayer.mismatches) == 1


@pytest.mark.asyncio
async def test_replay_refuses_a_connection_more_than_recorded(tmp_path: Path) -> None:
    """A second connection to a one-connection recording is refused and reported."""
    path = tmp_path / "close.jsonl"
    await _record(path, _close_session, _close_4001)
    async with Replayer(path, input_timeout=WAIT) as replayer:
        await _close_session(replayer, _nothing)
        with pytest.raises(Exception, match="400"):
            await _raw(replayer)
        assert replayer.mismatches == ["connection 2: the recording has only 1 connection(s)"]
        replayer.mismatches.clear()


@pytest.mark.asyncio
async def test_replay_refuses_an_http_request_more_than_recorded(tmp_path: Path) -> None:
    """A POST the recording does not have gets 400 ReplayMismatch."""
    path = tmp_path / "close.jsonl"
    await _record(path, _close_session, _close_4001)
    async with Replayer(path, input_timeout=WAIT) as replayer:
        with pytest.raises(Exception, match="ReplayMismatch"):
            await publish_http(
                replayer.http_endpoint,
                "default/x",
                1,
                authorizer=ApiKey(api_key="x", endpoint=replayer.http_endpoint),
            )
        assert len(replayer.mismatches) == 1
        replayer.mismatches.clear()


def test_replayer_refuses_a_bad_file_and_bad_options(tmp_path: Path) -> None:
    """The constructor names the problem: the file's line, or the option."""
    bad = tmp_path / "bad.jsonl"
    bad.write_text("hello\n")
    with pytest.raises(RecordingFormatError, match="line 1: not a recording"):
        Replayer(bad)
    with pytest.raises(RecordingFormatError, match="cannot read"):
        Replayer(tmp_path / "missing.jsonl")
    good = tmp_path / "good.jsonl"
    good.write_text('{"format": "appsync-emulator-recording", "version": 1}\n')
    for speed in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="speed"):
            Replayer(good, speed=speed)
    assert Replayer(good).done


def _write_recording(path: Path, *records: dict[str, Any]) -> None:
    header = {"format": "appsync-emulator-recording", "version": 1}
    path.write_text("\n".join(json.dumps(r) for r in (header, *records)) + "\n")


def test_replay_divides_the_recorded_delays_by_speed(tmp_path: Path) -> None:
    """An ack recorded 2 s after the init is sent 0.5 s after it at speed 4, not before."""
    path = tmp_path / "slow-ack.jsonl"
    ack = '{"type":"connection_ack","connectionTimeoutMs":300000}'
    _write_recording(
        path,
        {"record": "open", "t": 0.0, "conn": "c1", "subprotocols": [], "auth": None,
         "authorized": True, "auth_mode": "API_KEY"},
        {"record": "frame", "t": 1.0, "conn": "c1", "dir": "in", "type": "connection_init",
         "id": None, "text": '{"type":"connection_init"}'},
        {"record": "frame", "t": 3.0, "conn": "c1", "dir": "out", "type": "connection_ack",
         "id": None, "text": ack},
        {"record": "close", "t": 4.0, "conn": "c1", "code": 1000, "reason": "", "by": "client"},
    )  # fmt: skip

    async def main(loop: ClockLoop) -> None:
        async with Replayer(path, speed=4.0) as replayer:
            ws = await _raw(replayer)
            await ws.send(json.dumps({"type": "connection_init"}))
            await replayer.wait_received("connection_init")
            await loop.advance(0.49)
            assert replayer.frames_sent == 0
            await loop.advance(0.01)
            assert replayer.frames_sent == 1
            assert await ws.recv() == ack
            await ws.close()
            await replayer.wait_done()

    run_on_clock(main)


async def _drop(server: EmulatorServer) -> None:
    server.inject(DropConnection())


@pytest.mark.asyncio
async def test_replay_drops_the_connection_as_recorded(tmp_path: Path) -> None:
    """A recorded abort (no close frame) is an abort again: the same error and code."""
    path = tmp_path / "drop.jsonl"
    recorded = await _record(path, _close_session, _drop)
    assert recorded[0].startswith("ConnectionClosedError")
    assert await _replay(path, _close_session, _nothing) == recorded


async def _refused_session(target: Any, at_fault: Step) -> list[str]:
    """Two connections: the first upgrade is refused, the second works."""
    await at_fault(target)
    seen = []
    with pytest.raises(UnauthorizedError) as raised:
        await connect(target.realtime_endpoint, authorizer=_auth(target))
    seen.append(f"{type(raised.value).__name__}: {raised.value}")
    await at_fault(None)
    async with connect(target.realtime_endpoint, authorizer=_auth(target)) as client:
        sub = await client.subscribe("default/a")
        await client.publish("default/a", {"n": 1})
        seen.append((await sub.next()).data)
    return seen


def _refuse_once() -> Step:
    handles: list[Any] = []

    async def step(target: Any) -> None:
        if target is not None:
            handles.append(target.inject(RefuseUpgrade(status=403)))
        else:
            handles.pop().remove()

    return step


@pytest.mark.asyncio
async def test_replay_refuses_the_upgrade_it_recorded_refused(tmp_path: Path) -> None:
    """A recorded refused upgrade (status and body) is refused again; the next one works."""
    path = tmp_path / "refused.jsonl"
    recorded = await _record(path, _refused_session, _refuse_once())
    assert "403" in recorded[0]
    assert await _replay(path, _refused_session, _nothing) == recorded


async def _two_clients(target: Any, at_fault: Step) -> list[str]:
    """A subscriber and a publisher on two connections, and an HTTP publish."""
    auth = _auth(target)
    async with (
        connect(target.realtime_endpoint, authorizer=auth) as subscriber,
        connect(target.realtime_endpoint, authorizer=auth) as publisher,
    ):
        sub = await subscriber.subscribe("default/room")
        await publisher.publish("default/room", {"from": "ws"})
        await publish_http(target.http_endpoint, "default/room", {"from": "http"}, authorizer=auth)
        return [(await sub.next()).data, (await sub.next()).data]


@pytest.mark.asyncio
async def test_replay_follows_causes_across_connections(tmp_path: Path) -> None:
    """A data frame caused by another connection's publish waits for that publish."""
    path = tmp_path / "two.jsonl"
    recorded = await _record(path, _two_clients, _nothing)
    assert recorded == ['{"from":"ws"}', '{"from":"http"}']
    assert await _replay(path, _two_clients, _nothing) == recorded


@pytest.mark.asyncio
async def test_replay_answers_preflights_itself_and_plays_only_posts(tmp_path: Path) -> None:
    """A recorded OPTIONS is not played (browsers send them as they like); POSTs are."""
    path = tmp_path / "http.jsonl"
    answer = '{"successful":[],"failed":[]}'
    common = {"record": "http", "path": "/event", "headers": {}, "body": None}
    _write_recording(
        path,
        {**common, "t": 0.1, "method": "OPTIONS", "status": 204, "response": None,
         "duration": 0.0},
        {**common, "t": 0.2, "method": "POST", "status": 200, "response": answer,
         "duration": 0.0},
    )  # fmt: skip
    async with Replayer(path, input_timeout=WAIT) as replayer, aiohttp.ClientSession() as http:
        async with http.options(replayer.http_endpoint) as preflight:
            assert preflight.status == 204
            assert preflight.headers["Access-Control-Allow-Origin"] == "*"
        async with http.post(replayer.http_endpoint, data=b"{}") as response:
            assert (response.status, await response.text()) == (200, answer)
        await replayer.wait_done(WAIT)
