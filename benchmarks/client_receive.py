"""Client consume rate: events/s and CPU per event of ``sub.next()`` vs raw WebSocket readers.

Run: ``python benchmarks/client_receive.py [--quick] [--json PATH] [--rounds N] [--events N]``

A server in a separate process (``_client_bench.BenchServer``: aiohttp, every frame
encoded once, the whole flood written in one transport write) answers a subscription
with ``--events`` ``data`` frames, so the reader is always the bottleneck.  Each round
runs, in turn (the order rotates), in this process:

* **ours**: ``appsync_events.connect`` + ``subscribe`` + ``await sub.next()`` per event
  (the full client: transport, reader task, sans-I/O protocol, routing, inbox), plus
  ``message.json()`` in the *small events* case;
* **raw readers** doing the same decoding work and no more: ``loads`` of each frame,
  the ``event`` field taken, and ``loads`` of the event in the *small* case, where
  ``loads`` is ``orjson.loads`` when ``orjson`` is installed (as the client then parses
  with it too), else ``json.loads``:
  aiohttp's client (``await ws.receive()``, compiled reader), ``websockets``
  (``await ws.recv()``), and, when installed, ``picows`` (a frame callback, no await per
  frame) and ``wsproto`` (sans-I/O, fed from an asyncio protocol).

The baseline of each case is the fastest raw reader of that case (median over rounds);
ratios are per round (ours / that reader), reported as median [min-max].  CPU per event
is this process's CPU time over the run divided by the events.  With ``uvloop``
installed, ours also runs on a ``uvloop`` event loop (``ours, uvloop``: its own row, the
raw readers stay on asyncio's loop).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

try:
    import orjson
except ImportError:  # the raw readers parse as the client does: json without orjson
    loads: Callable[[str], Any] = json.loads
else:
    loads = orjson.loads

import _client_bench as bench

import appsync_events
from appsync_events import authorizer
from appsync_events.protocol.subprotocol import encode_auth_subprotocol

Result = tuple[float, float]
"""(events/s, CPU µs per event) of one run."""


def _offered(url: str) -> list[str]:
    auth = {"host": url.split("/")[2], "x-api-key": bench.API_KEY}
    return [bench.SUBPROTOCOL, encode_auth_subprotocol(auth)]


# --- ours ---------------------------------------------------------------------------------


async def _ours(url: str, channel: str, count: int, decode: bool, start: list[float]) -> None:
    authz = authorizer.ApiKey(api_key=bench.API_KEY, endpoint=url)
    backpressure = appsync_events.Backpressure(subscription_events=count + 10)
    async with appsync_events.connect(url, authorizer=authz, backpressure=backpressure) as client:
        start.extend((time.perf_counter(), time.process_time()))
        sub = await client.subscribe(channel)
        next_message = sub.next
        if decode:
            for _ in range(count):
                (await next_message()).json()
        else:
            for _ in range(count):
                await next_message()


LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def uvloop_factory() -> LoopFactory | None:
    """``uvloop.new_event_loop`` when ``uvloop`` is installed, else ``None``."""
    try:
        import uvloop
    except ImportError:
        return None
    factory: LoopFactory = uvloop.new_event_loop
    return factory


def ours(
    url: str, channel: str, count: int, decode: bool, loop_factory: LoopFactory | None = None
) -> Result:
    """Events/s and CPU µs/event of our client (timed from the subscribe request)."""
    return _timed_from_subscribe(
        lambda start: _ours(url, channel, count, decode, start), count, loop_factory
    )


def _timed_from_subscribe(
    run: Callable[[list[float]], Awaitable[None]],
    count: int,
    loop_factory: LoopFactory | None = None,
) -> Result:
    async def timed() -> Result:
        start: list[float] = []
        await run(start)
        end, cpu = time.perf_counter(), time.process_time()
        return count / (end - start[0]), (cpu - start[1]) / count * 1e6

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(timed())


# --- raw readers -------------------------------------------------------------------------


def _subscribe_frame(channel: str) -> str:
    return json.dumps({"type": "subscribe", "id": "raw-1", "channel": channel})


async def _aiohttp(url: str, channel: str, count: int, decode: bool, start: list[float]) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url, protocols=_offered(url), max_msg_size=0) as ws:
            await ws.send_str('{"type":"connection_init"}')
            loads((await ws.receive()).data)
            start.extend((time.perf_counter(), time.process_time()))
            await ws.send_str(_subscribe_frame(channel))
            loads((await ws.receive()).data)
            receive = ws.receive
            for _ in range(count):
                event = loads((await receive()).data)["event"]
                if decode:
                    loads(event)


async def _websockets(url: str, channel: str, count: int, decode: bool, start: list[float]) -> None:
    from websockets.asyncio.client import connect
    from websockets.typing import Subprotocol

    offered = [Subprotocol(p) for p in _offered(url)]
    async with connect(url, subprotocols=offered, max_size=None, proxy=None) as ws:
        await ws.send('{"type":"connection_init"}')
        loads(await ws.recv())
        start.extend((time.perf_counter(), time.process_time()))
        await ws.send(_subscribe_frame(channel))
        loads(await ws.recv())
        recv = ws.recv
        for _ in range(count):
            event = loads(await recv())["event"]
            if decode:
                loads(event)


async def _picows(url: str, channel: str, count: int, decode: bool, start: list[float]) -> None:
    from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    class Reader(WSListener):  # type: ignore[misc]
        def __init__(self) -> None:
            self.seen = -2  # the ack and subscribe_success come first

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type != WSMsgType.TEXT:
                return
            message = loads(frame.get_payload_as_utf8_text())
            self.seen += 1
            if self.seen == -1:
                start.extend((time.perf_counter(), time.process_time()))
                transport.send(WSMsgType.TEXT, _subscribe_frame(channel).encode())
            elif self.seen > 0:
                event = message["event"]
                if decode:
                    loads(event)
                if self.seen == count and not done.done():
                    done.set_result(None)

    headers = {"Sec-WebSocket-Protocol": ", ".join(_offered(url))}
    transport, _ = await ws_connect(Reader, url, extra_headers=headers, max_frame_size=1 << 30)
    transport.send(WSMsgType.TEXT, b'{"type":"connection_init"}')
    await done
    transport.send_close()
    transport.disconnect()
    await transport.wait_disconnected()


async def _wsproto(url: str, channel: str, count: int, decode: bool, start: list[float]) -> None:
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, Request, TextMessage

    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    host, port = url.split("/")[2].split(":")
    ws = WSConnection(ConnectionType.CLIENT)

    class Reader(asyncio.Protocol):
        def __init__(self) -> None:
            self.seen = -2
            self.partial: list[str] = []

        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            request = Request(
                host=f"{host}:{port}", target="/event/realtime", subprotocols=_offered(url)
            )
            transport.write(ws.send(request))

        def data_received(self, data: bytes) -> None:
            ws.receive_data(data)
            for event in ws.events():
                if isinstance(event, AcceptConnection):
                    self.transport.write(ws.send(TextMessage('{"type":"connection_init"}')))
                elif isinstance(event, TextMessage):
                    self.partial.append(event.data)
                    if event.message_finished:
                        self.frame("".join(self.partial))
                        self.partial.clear()

        def frame(self, text: str) -> None:
            message = loads(text)
            self.seen += 1
            if self.seen == -1:
                start.extend((time.perf_counter(), time.process_time()))
                self.transport.write(ws.send(TextMessage(_subscribe_frame(channel))))
            elif self.seen > 0:
                event = message["event"]
                if decode:
                    loads(event)
                if self.seen == count and not done.done():
                    done.set_result(None)

    transport, _ = await loop.create_connection(Reader, host, int(port))
    await done
    transport.close()


def available() -> dict[str, Callable[..., Awaitable[None]]]:
    readers: dict[str, Callable[..., Awaitable[None]]] = {
        "aiohttp": _aiohttp,
        "websockets": _websockets,
    }
    for name, reader in (("picows", _picows), ("wsproto", _wsproto)):
        try:
            __import__(name)
        except ImportError:
            print(f"({name} is not installed: not measured)")
        else:
            readers[name] = reader
    return readers


READER_NAMES = {
    "aiohttp": "aiohttp ws.receive()",
    "websockets": "websockets ws.recv()",
    "picows": "picows frame callback",
    "wsproto": "wsproto over an asyncio protocol",
}


def raw(
    reader: Callable[..., Awaitable[None]], url: str, channel: str, count: int, decode: bool
) -> Result:
    return _timed_from_subscribe(lambda start: reader(url, channel, count, decode, start), count)


# --- the cases -----------------------------------------------------------------------------


def case(
    server: bench.BenchServer, kind: str, count: int, rounds: int, decode: bool
) -> tuple[list[bench.Row], dict[str, list[Result]]]:
    channel = bench.flood_channel(kind, count)
    runs: dict[str, Callable[[], Result]] = {
        "ours": lambda: ours(server.url, channel, count, decode),
    }
    factory = uvloop_factory()
    if factory is not None:
        runs["ours, uvloop"] = lambda: ours(server.url, channel, count, decode, factory)
    for name, reader in available().items():
        runs[name] = lambda reader=reader: raw(reader, server.url, channel, count, decode)  # type: ignore[misc]
    results = bench.alternate(rounds, runs)
    raw_names = [n for n in results if not n.startswith("ours")]
    fastest = max(raw_names, key=lambda n: statistics.median(r[0] for r in results[n]))
    label = f"{'small events, .json()' if decode else '1 KB events'} ({count} events)"
    ours_rate = [r[0] for r in results["ours"]]
    ours_cpu = [r[1] for r in results["ours"]]
    rows = [
        bench.row(
            "client_receive",
            label,
            "events/s",
            "1/s",
            ours_rate,
            [r[0] for r in results[fastest]],
            baseline_name=f"raw {READER_NAMES[fastest]}",
        ),
        bench.row(
            "client_receive",
            label,
            "CPU per event",
            "us",
            ours_cpu,
            [r[1] for r in results[fastest]],
            baseline_name=f"raw {READER_NAMES[fastest]}",
            higher_is_better=False,
        ),
    ]
    if "ours, uvloop" in results:
        rows.append(
            bench.row(
                "client_receive",
                label,
                "events/s, ours on uvloop",
                "1/s",
                [r[0] for r in results["ours, uvloop"]],
                [r[0] for r in results[fastest]],
                baseline_name=f"raw {READER_NAMES[fastest]}",
            )
        )
    for name in raw_names:
        if name != fastest:
            rows.append(
                bench.row(
                    "client_receive",
                    label,
                    f"events/s vs {name}",
                    "1/s",
                    ours_rate,
                    [r[0] for r in results[name]],
                    baseline_name=f"raw {READER_NAMES[name]}",
                )
            )
    return rows, results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer events and rounds (< 60 s)")
    parser.add_argument("--json", metavar="PATH", help="write the result rows as JSON")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--events", type=int, default=None)
    args = parser.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 7)
    events = args.events or (30_000 if args.quick else 200_000)
    rows: list[bench.Row] = []
    with bench.BenchServer() as server:
        for kind, count, decode in (("small", events, True), ("kb", events // 2, False)):
            rows += case(server, kind, count, rounds, decode)[0]
    bench.report(f"client_receive: {rounds} alternating rounds", rows, args.json)


if __name__ == "__main__":
    main()
