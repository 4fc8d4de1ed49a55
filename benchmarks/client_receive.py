"""Client throughput: events/s delivered by ``sub.next()`` vs a raw ``websockets`` reader.

Run: ``.venv/bin/python benchmarks/client_receive.py [--events 100000] [--rounds 5]``

What it measures (no asserts; it prints figures):

1. **Receive.**  A local server in a *separate process* floods ``data`` frames for one
   subscription (pre-serialised frames written straight to the transport, so the server
   is never the bottleneck).  The same run measures

   * ``appsync_events``: ``await sub.next()`` in a loop (the full client: reader task,
     sans-I/O protocol, routing, bounded inbox, ``Message`` objects), and
   * a raw ``websockets`` client: ``await ws.recv()`` + ``json.loads(frame)`` in a loop,
     with the same receive queue size,

   and prints events/s of each and the ratio (target >= 0.8x).  Rounds alternate between
   the two; medians and bests are reported (the raw figure alone varies by ~15 % between
   runs on a shared machine, so the ratio of medians is the steadier figure).
2. **Publish round trips/s.**  ``await client.publish(...)`` against the same server,
   which answers ``publish_success`` at once: sequential, and with 16 in flight.
3. **IAM signing.**  µs per ``sign_request`` (botocore SigV4 over ``signing_body``) and per
   ``IAM.authorize`` with static credentials.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import sys
import time
from datetime import UTC, datetime
from typing import Any

from botocore.credentials import ReadOnlyCredentials
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.frames import Frame, Opcode

import appsync_events
from appsync_events import authorizer
from appsync_events.protocol.signing import signing_body

API_KEY = "da2-benchmarkbenchmarkbenchmark"
INBOUND = 100  # connection_inbound == websockets max_queue, the same for both readers


# --- the server (runs in its own process) --------------------------------------------------


def _frames_blob(sub_id: str, count: int, event: str) -> bytes:
    text = json.dumps({"type": "data", "id": sub_id, "event": event})
    one = Frame(Opcode.TEXT, text.encode()).serialize(mask=False, extensions=[])
    return one * count


async def _handle(ws: ServerConnection, count: int, event: str) -> None:
    async for raw in ws:
        frame = json.loads(raw)
        kind = frame.get("type")
        if kind == "connection_init":
            await ws.send('{"type":"connection_ack","connectionTimeoutMs":300000}')
        elif kind == "subscribe":
            await ws.send(json.dumps({"type": "subscribe_success", "id": frame["id"]}))
            blob = _frames_blob(frame["id"], count, event)
            ws.transport.write(blob)  # bypasses websockets' per-frame work: a fast server
        elif kind == "publish":
            ok = [{"identifier": "x", "index": i} for i in range(len(frame["events"]))]
            answer = {"type": "publish_success", "id": frame["id"], "successful": ok, "failed": []}
            await ws.send(json.dumps(answer))
        elif kind == "unsubscribe":
            await ws.send(json.dumps({"type": "unsubscribe_success", "id": frame["id"]}))


def _server_main(conn: Any, count: int, event: str) -> None:
    async def serve_until_told() -> None:
        async with serve(
            lambda ws: _handle(ws, count, event),
            "127.0.0.1",
            0,
            subprotocols=["aws-appsync-event-ws"],  # type: ignore[list-item]
            compression=None,
            ping_interval=None,
            max_size=None,
        ) as server:
            conn.send(server.sockets[0].getsockname()[1])
            await asyncio.get_running_loop().run_in_executor(None, conn.recv)

    asyncio.run(serve_until_told())


def start_server(count: int, event: str) -> tuple[Any, Any, int]:
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.get_context("spawn").Process(
        target=_server_main, args=(child, count, event), daemon=True
    )
    process.start()
    if not parent.poll(30):
        raise RuntimeError("the benchmark server did not start")
    return process, parent, parent.recv()


def stop_server(process: Any, parent: Any) -> None:
    parent.send("stop")
    process.join(10)
    if process.is_alive():
        process.kill()


# --- the two readers -----------------------------------------------------------------------


async def receive_appsync_events(port: int, count: int) -> float:
    """Events/s through ``sub.next()``."""
    url = f"ws://127.0.0.1:{port}/event/realtime"
    authz = authorizer.ApiKey(api_key=API_KEY, endpoint=url)
    backpressure = appsync_events.Backpressure(
        connection_inbound=INBOUND, subscription_events=count + 10
    )
    async with appsync_events.connect(url, authorizer=authz, backpressure=backpressure) as client:
        sub = await client.subscribe("bench/flood")
        await sub.next()
        start = time.perf_counter()
        for _ in range(count - 1):
            await sub.next()
        elapsed = time.perf_counter() - start
    return (count - 1) / elapsed


async def receive_raw(port: int, count: int) -> float:
    """Events/s through a raw websockets client: recv() + json.loads()."""
    url = f"ws://127.0.0.1:{port}/event/realtime"
    async with ws_connect(
        url,
        subprotocols=["aws-appsync-event-ws"],  # type: ignore[list-item]
        ping_interval=None,
        max_queue=INBOUND,
        max_size=2 * 1024 * 1024,
        proxy=None,
    ) as ws:
        await ws.send('{"type":"connection_init"}')
        json.loads(await ws.recv())
        await ws.send('{"type":"subscribe","id":"raw1","channel":"bench/flood"}')
        json.loads(await ws.recv())
        json.loads(await ws.recv())
        start = time.perf_counter()
        for _ in range(count - 1):
            frame = json.loads(await ws.recv())
            frame["event"]
        elapsed = time.perf_counter() - start
    return (count - 1) / elapsed


def receive_benchmark(count: int, rounds: int, event: str, label: str) -> None:
    process, parent, port = start_server(count, event)
    try:
        ours: list[float] = []
        raw: list[float] = []
        for _ in range(rounds):
            raw.append(asyncio.run(receive_raw(port, count)))
            ours.append(asyncio.run(receive_appsync_events(port, count)))
    finally:
        stop_server(process, parent)
    best_ours, best_raw = max(ours), max(raw)
    med_ours, med_raw = statistics.median(ours), statistics.median(raw)
    print(f"receive, {label} ({len(event)}-byte event, {count} events x {rounds} rounds)")
    print(f"  raw websockets recv()+json.loads : {med_raw:>10,.0f} events/s (best {best_raw:,.0f})")
    print(
        f"  appsync_events sub.next()        : {med_ours:>10,.0f} events/s (best {best_ours:,.0f})"
    )
    print(f"  ratio of medians                 : {med_ours / med_raw:>10.2f}x (target >= 0.8x)")
    print(f"  ratio of bests                   : {best_ours / best_raw:>10.2f}x")


# --- publish and signing -------------------------------------------------------------------


async def publish_round_trips(port: int, total: int, in_flight: int) -> float:
    url = f"ws://127.0.0.1:{port}/event/realtime"
    authz = authorizer.ApiKey(api_key=API_KEY, endpoint=url)
    async with appsync_events.connect(url, authorizer=authz) as client:
        await client.publish("bench/pub", {"warm": True})

        async def worker(n: int) -> None:
            for i in range(n):
                await client.publish("bench/pub", {"i": i, "text": "hello"})

        start = time.perf_counter()
        await asyncio.gather(*(worker(total // in_flight) for _ in range(in_flight)))
        elapsed = time.perf_counter() - start
    return (total // in_flight) * in_flight / elapsed


def iam_signing(iterations: int) -> tuple[float, float]:
    credentials = ReadOnlyCredentials("AKIDEXAMPLE", "secret" * 6, "token")
    host = "example1234567890000.appsync-api.us-east-1.amazonaws.com"
    events = ['{"message":"hello <world> & friends","n":1}'] * 5
    body = signing_body("default/channel", events)
    start = time.perf_counter()
    for _ in range(iterations):
        authorizer.sign_request(
            credentials=credentials, region="us-east-1", host=host, body=body, now=datetime.now(UTC)
        )
    sign_us = (time.perf_counter() - start) / iterations * 1e6
    iam = authorizer.IAM(
        region="us-east-1", endpoint=f"https://{host}/event", credentials=credentials
    )
    request = authorizer.AuthorizeRequest(
        operation=authorizer.Operation.PUBLISH, channel="default/channel", events=tuple(events)
    )

    async def authorize_all() -> float:
        start = time.perf_counter()
        for _ in range(iterations):
            await iam.authorize(request)
        return (time.perf_counter() - start) / iterations * 1e6

    return sign_us, asyncio.run(authorize_all())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--publishes", type=int, default=5_000)
    parser.add_argument("--sign-iterations", type=int, default=5_000)
    args = parser.parse_args(argv)
    print(f"python {sys.version.split()[0]}, appsync_events client benchmark")
    small = json.dumps({"message": "hello", "n": 12345, "user": "ada"})
    receive_benchmark(args.events, args.rounds, small, "small events")
    large = json.dumps({"message": "x" * 1000, "n": 1})
    receive_benchmark(args.events // 2, args.rounds, large, "1 KB events")
    process, parent, port = start_server(10, small)
    try:
        sequential = asyncio.run(publish_round_trips(port, args.publishes, 1))
        concurrent = asyncio.run(publish_round_trips(port, args.publishes, 16))
    finally:
        stop_server(process, parent)
    print("publish round trips (WebSocket, 1 event each)")
    print(f"  sequential                       : {sequential:>10,.0f} publishes/s")
    print(f"  16 in flight                     : {concurrent:>10,.0f} publishes/s")
    sign_us, authorize_us = iam_signing(args.sign_iterations)
    print("IAM signing (5-event publish body)")
    print(f"  sign_request                     : {sign_us:>10.1f} us/op")
    print(f"  IAM.authorize (static creds)     : {authorize_us:>10.1f} us/op")


if __name__ == "__main__":
    main()
