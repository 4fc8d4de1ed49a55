"""The client's write path over real loopback sockets.

A frame is written by the caller itself, synchronously and whole, when the socket takes
it without waiting; otherwise (the socket's buffer is full, frames are already queued or
being written) it is queued for the writer task.  These tests pin what that must keep:
the order of frames, whole-or-nothing under cancellation, a bounded queue while the
peer does not read, and clean failures when the connection goes during a publish.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

import appsync_events
from appsync_events._transport import TransportClosed, WebSocket, _direct_writer
from appsync_events.errors import ConnectionClosedError

from .conftest import open_client
from .helpers import WAIT, PeerConnection, ScriptedServer, scripted

pytestmark = pytest.mark.asyncio

BIG = "y" * (200 * 1024)
"""An event of 200 KiB: five of them make a publish frame of about 1 MB."""


def _paused(client: appsync_events.Client) -> bool:
    ws = client._connection.ws
    return bool(ws._direct is not None and ws._direct.protocol._paused)


async def _stall(client: appsync_events.Client, peer: PeerConnection) -> list[asyncio.Task[Any]]:
    """Stop the peer reading and publish big frames until the socket's buffer is full.

    Returns the publishes started (their frames are written or queued, none answered).
    """
    peer.reading.clear()
    started: list[asyncio.Task[Any]] = []
    for n in range(200):  # bounded: a few MB of kernel buffers fill long before
        started.append(asyncio.ensure_future(_publish_big(client, n)))
        await asyncio.sleep(0)  # let it run up to its write
        if _paused(client):
            return started
    raise AssertionError("the socket never filled up")


async def _open_outbound(
    server: ScriptedServer, outbound: int
) -> tuple[appsync_events.Client, PeerConnection]:
    """A client with an outbox of ``outbound`` frames and timeouts that outlast a stall."""
    return await open_client(
        server,
        backpressure=appsync_events.Backpressure(connection_outbound=outbound),
        heartbeat_timeout=WAIT * 4,
        operation_timeout=WAIT * 4,
    )


async def _answer_all(peer: PeerConnection, count: int) -> list[dict[str, Any]]:
    """Resume reading and answer ``count`` publishes; return their frames in arrival order."""
    peer.reading.set()
    return [await peer.published(within=WAIT * 4) for _ in range(count)]


def _publish_big(client: appsync_events.Client, n: int) -> Any:
    """A publish of about 1 MB: over aiohttp's write limit, so its writer waits for the
    socket to drain, and frames queued behind it stay in the outbox."""
    return client.publish("default/a", *([{"n": n, "x": BIG}] * 5))


def _first(frame: dict[str, Any]) -> Any:
    return json.loads(frame["events"][0])


async def test_direct_write_is_used_and_frames_keep_their_order() -> None:
    """Concurrent publishes reach the server in the order they were made."""
    async with scripted() as server:
        client, peer = await open_client(server)
        async with client:
            assert client._connection.ws._direct is not None  # aiohttp offers the sync path
            publishing = [
                asyncio.ensure_future(client.publish("default/a", {"n": n})) for n in range(50)
            ]
            frames = [await peer.published() for _ in range(50)]
            await asyncio.gather(*publishing)
            assert [_first(f)["n"] for f in frames] == list(range(50))
            assert len(client._connection._outbox) == 0


async def test_paused_socket_queues_then_sends_everything_in_order() -> None:
    """While the peer does not read, frames wait in the bounded outbox; afterwards every
    frame arrives once, whole and in call order, queued and direct ones alike."""
    async with scripted(max_queue=1) as server:
        client, peer = await _open_outbound(server, 4)
        async with client:
            outbox = client._connection._outbox
            started = await _stall(client, peer)
            assert not client._connection.ws.send_now('{"type":"never"}')  # paused: refused
            before = len(outbox)  # the last frames may wait already, behind the writer's
            queued = [asyncio.ensure_future(_publish_big(client, 1000 + n)) for n in range(3)]
            await asyncio.sleep(0)
            assert len(outbox) == before + 3  # queued behind the stalled socket, in order
            frames = await _answer_all(peer, len(started) + len(queued))
            await asyncio.gather(*started, *queued)
            numbers = [_first(f)["n"] for f in frames]
            assert numbers == [*range(len(started)), 1000, 1001, 1002]
            # The socket drained: the next publish is written directly again.
            after = asyncio.ensure_future(client.publish("default/a", {"n": 2000}))
            assert _first(await peer.published())["n"] == 2000
            await after
            assert len(outbox) == 0


async def test_outbox_stays_bounded_while_paused() -> None:
    """A full outbox makes further publishes wait for room: memory stays bounded."""
    async with scripted(max_queue=1) as server:
        client, peer = await _open_outbound(server, 2)
        async with client:
            outbox = client._connection._outbox
            started = await _stall(client, peer)
            waiting = [asyncio.ensure_future(_publish_big(client, 1000 + n)) for n in range(5)]
            for _ in range(10):
                await asyncio.sleep(0)
                assert len(outbox) <= 2
            frames = await _answer_all(peer, len(started) + len(waiting))
            await asyncio.gather(*started, *waiting)
            assert [_first(f)["n"] for f in frames][-5:] == [1000, 1001, 1002, 1003, 1004]


async def test_cancelled_publishes_are_sent_whole_or_not_at_all() -> None:
    """Cancelling publishes at every stage loses or cuts no frame: a publish cancelled
    after its frame was written or queued is sent whole (the answer is ignored), one
    cancelled while it waited for room is never sent, and the connection stays usable."""
    async with scripted(max_queue=1) as server:
        client, peer = await _open_outbound(server, 2)
        async with client:
            started = await _stall(client, peer)
            queued = [asyncio.ensure_future(_publish_big(client, 1000 + n)) for n in range(2)]
            waiting = [asyncio.ensure_future(_publish_big(client, 2000 + n)) for n in range(3)]
            await asyncio.sleep(0)
            assert len(client._connection._outbox) == 2
            cancelled = [started[0], started[-1], queued[0], *waiting]
            for task in cancelled:
                task.cancel()
            results = await asyncio.gather(*cancelled, return_exceptions=True)
            assert all(isinstance(r, asyncio.CancelledError) for r in results)
            expected = [*range(len(started)), 1000, 1001]
            frames = await _answer_all(peer, len(expected))
            assert [_first(f)["n"] for f in frames] == expected
            await asyncio.gather(*started[1:-1], queued[1])
            # Nothing else was sent, and the connection works.
            after = asyncio.ensure_future(client.publish("default/a", {"n": 3000}))
            assert _first(await peer.published())["n"] == 3000
            await after
            assert not any(_first(f)["n"] >= 2000 for f in frames)


async def test_connection_lost_during_publish_fails_every_publish() -> None:
    """The peer vanishing while publishes are written, queued and waiting for room fails
    them all with ConnectionClosedError; none hangs."""
    async with scripted(max_queue=1) as server:
        client, peer = await _open_outbound(server, 2)
        async with client:
            started = await _stall(client, peer)
            more = [asyncio.ensure_future(_publish_big(client, 1000 + n)) for n in range(4)]
            await asyncio.sleep(0)
            peer.ws.transport.abort()
            peer.reading.set()  # the server's handler reads again: it sees the end and exits
            async with asyncio.timeout(WAIT):
                results = await asyncio.gather(*started, *more, return_exceptions=True)
            assert all(isinstance(r, ConnectionClosedError) for r in results), results
            with pytest.raises(ConnectionClosedError):
                await client.publish("default/a", {"n": 0})


async def test_send_now_refuses_when_closing_or_without_a_sync_writer() -> None:
    """send_now writes nothing once the connection is closing, or when aiohttp offers no
    synchronous frame write (then every frame goes through the writer task)."""
    async with scripted() as server:
        client, peer = await open_client(server)
        ws: WebSocket = client._connection.ws
        direct = ws._direct
        assert direct is not None
        ws._direct = None
        try:
            publishing = [
                asyncio.ensure_future(client.publish("default/a", {"n": n})) for n in range(3)
            ]
            # Through the writer task, one frame at a time, in order.
            assert [_first(await peer.published())["n"] for _ in range(3)] == [0, 1, 2]
            await asyncio.gather(*publishing)
            assert not ws.send_now('{"type":"x"}')
        finally:
            ws._direct = direct
        await client.close()
        assert not ws.send_now('{"type":"x"}')  # closing/closed: refused
        with pytest.raises(TransportClosed):
            await ws.send_batch(['{"type":"x"}', '{"type":"y"}'])


class _Writer:
    def __init__(self, **attrs: Any) -> None:
        self.__dict__.update(attrs)

    def _write_websocket_frame(self, message: bytes, opcode: int, rsv: int) -> None:
        raise AssertionError("never called")


class _Protocol:
    _paused = False


class _Response:
    def __init__(self, writer: Any) -> None:
        self._writer = writer


@pytest.mark.parametrize(
    ("attrs", "usable"),
    [
        ({"compress": 0, "_closing": False, "protocol": _Protocol(), "transport": object()}, True),
        (
            {"compress": 15, "_closing": False, "protocol": _Protocol(), "transport": object()},
            False,
        ),
        ({"compress": 0, "protocol": _Protocol(), "transport": object()}, False),
        ({"compress": 0, "_closing": False, "protocol": object(), "transport": object()}, False),
        ({"compress": 0, "_closing": False, "protocol": _Protocol(), "transport": None}, False),
    ],
)
async def test_direct_writer_detection(attrs: dict[str, Any], usable: bool) -> None:
    """Only an uncompressed aiohttp writer with the expected internals is written to directly."""
    writer = _Writer(**attrs)
    assert (_direct_writer(_Response(writer)) is writer) is usable  # type: ignore[arg-type]
    assert _direct_writer(_Response(None)) is None  # type: ignore[arg-type]


def count_writes(transport: Any) -> list[bytes]:
    """What ``transport`` writes from now on, in a list (still written); ``del
    transport.write`` stops counting."""
    writes: list[bytes] = []
    write = transport.write

    def counting(data: bytes) -> None:
        writes.append(data)
        write(data)

    transport.write = counting
    return writes


async def test_frames_of_one_loop_iteration_share_one_socket_write() -> None:
    """Publishes made together: the first frame is written at once, the others queue
    behind it and the writer task sends them in one socket write, in order."""
    async with scripted() as server:
        client, peer = await open_client(server)
        async with client:
            direct = client._connection.ws._direct
            assert direct is not None
            transport = direct.transport
            writes = count_writes(transport)
            try:
                publishing = [
                    asyncio.ensure_future(client.publish("default/a", {"n": n})) for n in range(16)
                ]
                frames = [await peer.published() for _ in range(16)]
                await asyncio.gather(*publishing)
            finally:
                del transport.write
            assert [_first(f)["n"] for f in frames] == list(range(16))
            assert len(writes) == 2  # the first frame alone, then the other 15 together
            # Answers were read: the next publish is written at once again.
            writes = count_writes(transport)
            try:
                after = asyncio.ensure_future(client.publish("default/a", {"n": 99}))
                assert _first(await peer.published())["n"] == 99
                await after
            finally:
                del transport.write
            assert len(writes) == 1


async def test_operation_ids_are_version_4_uuids() -> None:
    """Publish ids have the form and randomness of str(uuid.uuid4())."""
    import uuid

    from appsync_events.client import new_operation_id
    from appsync_events.protocol.limits import is_valid_id

    ids = [new_operation_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert is_valid_id(text)
    assert {text[19] for text in ids} == set("89ab")  # every variant nibble occurs


def _forked_ids() -> bytes:
    """In a forked child: b"1" if no spare id was inherited, then a new id."""
    import os

    from appsync_events import client as client_module

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        try:
            os.write(write, b"1" if client_module._operation_ids == [] else b"0")
            os.write(write, client_module.new_operation_id().encode())
        finally:
            os._exit(0)
    os.close(write)
    try:
        answer = b""
        while chunk := os.read(read, 100):
            answer += chunk
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    return answer


async def test_operation_ids_made_in_advance_are_not_shared_with_a_forked_child() -> None:
    """Ids are drawn 64 at a time; a forked child forgets the parent's spare ones."""
    from appsync_events import client as client_module

    client_module._operation_ids.clear()
    client_module.new_operation_id()
    spare = list(client_module._operation_ids)
    assert len(spare) == 63  # made in advance
    answer = _forked_ids()
    assert answer[:1] == b"1"
    assert answer[1:].decode() not in spare


@pytest.mark.parametrize(
    "texts",
    [
        ['{"type":"x"}'],
        ["a" * 125, "b" * 126, "c" * 65535, "d" * 65536, '{"é":"ü€"}', ""],
    ],
)
async def test_masked_frames_are_what_aiohttp_writes(texts: list[str]) -> None:
    """Frames built here read back (aiohttp's own reader, as a server reads them) as the
    texts, each masked with its own key: exactly the bytes aiohttp writes with the same
    keys."""
    import random

    from aiohttp._websocket.writer import WebSocketWriter
    from aiohttp.base_protocol import BaseProtocol

    from appsync_events._transport import _Collector, _masked_frames

    keys = random.Random()
    keys.setstate(random.getstate())  # the keys _masked_frames draws, for aiohttp's writer
    data = _masked_frames(texts)

    transport = _Collector()  # keeps what aiohttp's writer writes
    protocol = BaseProtocol(asyncio.get_running_loop())
    writer = WebSocketWriter(protocol, transport, use_mask=True, random=keys)  # type: ignore[arg-type]
    for text in texts:
        writer._write_websocket_frame(text.encode(), 0x1, 0)
    assert data == b"".join(transport.chunks)

    # Read back as RFC 6455 says a server reads them: FIN + text, masked, then the length.
    read, keys_seen, at = [], set(), 0
    while at < len(data):
        assert data[at] == 0x81  # FIN, text
        assert data[at + 1] & 0x80  # masked
        size, at = data[at + 1] & 0x7F, at + 2
        if size == 126:
            size, at = int.from_bytes(data[at : at + 2], "big"), at + 2
        elif size == 127:
            size, at = int.from_bytes(data[at : at + 8], "big"), at + 8
        key, at = data[at : at + 4], at + 4
        keys_seen.add(key)
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(data[at : at + size]))
        read.append(payload.decode())
        at += size
    assert read == texts
    assert len(keys_seen) == len(texts)  # a key of its own for each frame


async def test_frames_are_built_by_aiohttp_without_the_masking_function() -> None:
    """Without aiohttp's masking function here, aiohttp builds every frame: the same
    frames reach the peer, in order."""
    async with scripted() as server:
        client, peer = await open_client(server)
        ws: WebSocket = client._connection.ws
        assert ws._masked
        ws._masked = False
        publishing = [
            asyncio.ensure_future(client.publish("default/a", {"n": n})) for n in range(5)
        ]
        assert [_first(await peer.published())["n"] for _ in range(5)] == list(range(5))
        await asyncio.gather(*publishing)
        await client.close()


async def _answer_together(client: appsync_events.Client, frames: list[dict[str, Any]]) -> None:
    """Answer ``frames`` as if their answers were read from one chunk."""
    connection = client._connection
    for frame in frames:
        answer = {"type": "publish_success", "id": frame["id"], "successful": [], "failed": []}
        event = connection.protocol.receive_event(json.dumps(answer))
        assert event is not None
        connection._answer_publish(event)  # type: ignore[arg-type]


@pytest.mark.parametrize("masked", [True, False])
async def test_publishes_answered_together_write_their_next_frames_together(masked: bool) -> None:
    """Callers woken by answers read together publish again in the next loop iteration:
    their frames are gathered and written in one socket write, in that iteration (or, when
    they cannot be written at once, by the writer task), in order."""
    async with scripted() as server:
        client, peer = await open_client(server)
        ws: WebSocket = client._connection.ws
        ws._masked = masked
        assert ws._direct is not None
        transport = ws._direct.transport
        writes = count_writes(transport)

        async def twice(n: int) -> None:
            await client.publish("default/a", {"n": n})
            await client.publish("default/a", {"n": n + 10})

        tasks = [asyncio.ensure_future(twice(n)) for n in range(3)]
        firsts = [await peer.recv("publish") for _ in range(3)]
        writes.clear()
        await _answer_together(client, firsts)
        assert client._connection._gathering
        seconds = [await peer.published() for _ in range(3)]
        assert [_first(f)["n"] for f in seconds] == [10, 11, 12]
        assert len(writes) == 1  # the three frames in one socket write
        await asyncio.wait_for(asyncio.gather(*tasks), WAIT)
        await client.close()


async def test_a_lone_publish_answer_lets_the_next_frame_be_written_at_once() -> None:
    async with scripted() as server:
        client, peer = await open_client(server)
        publishing = asyncio.ensure_future(client.publish("default/a", {"n": 0}))
        frame = await peer.recv("publish")
        await _answer_together(client, [frame])
        assert not client._connection._gathering
        await asyncio.wait_for(publishing, WAIT)
        await client.close()


async def test_gathered_frames_wait_one_loop_iteration_at_most_for_callers() -> None:
    """A woken caller that publishes again later does not hold back the frames gathered
    from the others: they are written one loop iteration later at the latest, and its
    own frame then goes as usual."""
    async with scripted() as server:
        client, peer = await open_client(server)

        async def twice(n: int, later: bool) -> None:
            await client.publish("default/a", {"n": n})
            if later:
                await asyncio.sleep(0)
                await asyncio.sleep(0)
            await client.publish("default/a", {"n": n + 10})

        tasks = [asyncio.ensure_future(twice(n, n == 2)) for n in range(3)]
        firsts = [await peer.recv("publish") for _ in range(3)]
        await _answer_together(client, firsts)
        seconds = [await peer.published() for _ in range(3)]
        assert [_first(f)["n"] for f in seconds] == [10, 11, 12]
        await asyncio.wait_for(asyncio.gather(*tasks), WAIT)
        assert not client._connection._gathering
        await client.close()


async def test_publishes_woken_together_fail_cleanly_when_the_connection_goes() -> None:
    async with scripted() as server:
        client, peer = await open_client(server)

        async def twice(n: int) -> None:
            await client.publish("default/a", {"n": n})
            await client.publish("default/a", {"n": n + 10})

        tasks = [asyncio.ensure_future(twice(n)) for n in range(3)]
        firsts = [await peer.recv("publish") for _ in range(3)]
        await _answer_together(client, firsts)
        client._connection.fail(ConnectionClosedError(1006, "gone"))
        results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), WAIT)
        assert all(isinstance(r, ConnectionClosedError) for r in results), results
        await client.close()
