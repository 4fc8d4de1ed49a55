"""Client publish: round trips/s (sequential, 16 in flight) and publish-to-receive latency.

Run: ``python benchmarks/client_publish.py [--quick] [--json PATH] [--rounds N] [--publishes N]``

Against ``_client_bench.BenchServer`` (a separate process; it answers each ``publish``
with the events to every subscriber of the channel, then ``publish_success``), each
round runs, in turn:

* **ours**: ``await client.publish(channel, {"i": i, "text": "hello"})`` (API key
  authorization, one event), sequentially and from 16 concurrent tasks; and the latency
  from the publish call to ``(await sub.next()).json()`` returning that event, on one connection
  that subscribes to the channel it publishes to, one publish at a time.  The headline
  latency runs the publish as a task (``asyncio.ensure_future``) while ``next()`` waits,
  so that the event is read as soon as it arrives, before the publish's answer: that
  task costs one event-loop turn (and the task itself) that the raw client, which
  writes its frame inline, does not pay.  A second latency row measures the other
  usual way, with no task: ``await client.publish(...)``, then ``(await
  sub.next()).json()`` (the event is already in the inbox when the publish returns,
  since the service sends it before the answer); it includes reading the answer;
* **raw**: the same frames (a ``publish`` with a random version 4 UUID as its id, the
  JSON-encoded event and the same ``authorization`` object: ``host``, ``x-amz-date`` of
  the moment, ``x-api-key``) on a bare aiohttp WebSocket, on the same (default asyncio)
  event loop, the library of the fastest raw reader in ``client_receive.py``:
  sequentially ``send_str`` + ``receive`` + ``loads`` of the answer; with 16 in flight
  one reader task resolving a future per id; for latency, from making the ``publish``
  frame to the ``data`` frame read and its event ``loads``-ed (as ours decodes it).  It
  does that job as well as ours may: JSON with ``orjson`` when installed (ours parses
  with it), the host worked out once, ``x-amz-date`` formatted once a second, the id made
  straight from 16 random bytes (as ours is).

Ratios are per round, median [min-max]; latency p50/p99 are per round, then the median.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import time
from collections.abc import Callable
from typing import Any

import _client_bench as bench

import appsync_events
from appsync_events import authorizer

CHANNEL = "bench/pub"
LATENCY_CHANNEL = "bench/latency"
IN_FLIGHT = 16


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# --- ours ------------------------------------------------------------------------------------


def _connect(url: str) -> appsync_events.connect:
    authz = authorizer.ApiKey(api_key=bench.API_KEY, endpoint=url)
    return appsync_events.connect(url, authorizer=authz)


async def _ours_round_trips(url: str, total: int, in_flight: int) -> float:
    async with _connect(url) as client:
        await client.publish(CHANNEL, {"warm": True})
        each = total // in_flight

        async def worker() -> None:
            for i in range(each):
                await client.publish(CHANNEL, {"i": i, "text": "hello"})

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        return each * in_flight / (time.perf_counter() - start)


async def _ours_latency(url: str, samples: int) -> list[float]:
    async with _connect(url) as client:
        sub = await client.subscribe(LATENCY_CHANNEL)
        latencies: list[float] = []
        for i in range(samples + 10):
            start = time.perf_counter()
            publishing = asyncio.ensure_future(client.publish(LATENCY_CHANNEL, {"i": i}))
            (await sub.next()).json()  # decoded, as the raw client decodes it
            latencies.append(time.perf_counter() - start)
            await publishing
        return latencies[10:]


async def _ours_latency_awaited(url: str, samples: int) -> list[float]:
    """The latency with the publish awaited first, then ``next()`` (no task)."""
    async with _connect(url) as client:
        sub = await client.subscribe(LATENCY_CHANNEL)
        latencies: list[float] = []
        for i in range(samples + 10):
            start = time.perf_counter()
            await client.publish(LATENCY_CHANNEL, {"i": i})
            (await sub.next()).json()
            latencies.append(time.perf_counter() - start)
        return latencies[10:]


# --- raw -------------------------------------------------------------------------------------

try:
    import orjson
except ImportError:  # pragma: no cover - the stdlib then, as ours does
    _dumps: Callable[[Any], str] = functools.partial(json.dumps, separators=(",", ":"))
    _loads: Callable[[str | bytes], Any] = json.loads
else:

    def _dumps(value: Any) -> str:
        return orjson.dumps(value).decode()

    _loads = orjson.loads

_date: list[Any] = [None, ""]


def _amz_date() -> str:
    """``x-amz-date`` of the moment, formatted once a second."""
    second = int(time.time())
    if second != _date[0]:
        _date[0], _date[1] = second, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(second))
    return str(_date[1])


def _new_id() -> str:
    """A random version 4 UUID as text, straight from 16 random bytes."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def _publish_frame(host: str, event: Any, channel: str = CHANNEL) -> tuple[str, str]:
    operation_id = _new_id()
    frame = {
        "type": "publish",
        "id": operation_id,
        "channel": channel,
        "events": [_dumps(event)],
        # What ours sends for an API key (as Amplify does): host, x-amz-date, x-api-key.
        "authorization": {"host": host, "x-amz-date": _amz_date(), "x-api-key": bench.API_KEY},
    }
    return operation_id, _dumps(frame)


class _Raw:
    """A bare aiohttp WebSocket speaking the protocol's frames."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.host = url.split("/")[2]

    async def __aenter__(self) -> _Raw:
        import aiohttp

        from appsync_events.protocol.subprotocol import encode_auth_subprotocol

        self.session = aiohttp.ClientSession()
        auth = {"host": self.url.split("/")[2], "x-api-key": bench.API_KEY}
        offered = [bench.SUBPROTOCOL, encode_auth_subprotocol(auth)]
        self.ws = await self.session.ws_connect(self.url, protocols=offered)
        await self.ws.send_str('{"type":"connection_init"}')
        _loads((await self.ws.receive()).data)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.ws.close()
        await self.session.close()


async def _raw_sequential(url: str, total: int) -> float:
    async with _Raw(url) as raw:
        ws, loads, host = raw.ws, _loads, raw.host
        start = time.perf_counter()
        for i in range(total):
            operation_id, frame = _publish_frame(host, {"i": i, "text": "hello"})
            await ws.send_str(frame)
            answer = loads((await ws.receive()).data)
            assert answer["id"] == operation_id, answer
        return total / (time.perf_counter() - start)


async def _raw_concurrent(url: str, total: int, in_flight: int) -> float:
    async with _Raw(url) as raw:
        ws, loads, host = raw.ws, _loads, raw.host
        loop = asyncio.get_running_loop()
        waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}

        async def reader() -> None:
            while True:
                message = loads((await ws.receive()).data)
                waiter = waiting.pop(message["id"], None)
                if waiter is not None:
                    waiter.set_result(message)

        async def worker() -> None:
            for i in range(total // in_flight):
                operation_id, frame = _publish_frame(host, {"i": i, "text": "hello"})
                waiter = waiting[operation_id] = loop.create_future()
                await ws.send_str(frame)
                assert (await waiter)["type"] == "publish_success"

        task = asyncio.create_task(reader())
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        elapsed = time.perf_counter() - start
        task.cancel()
        return (total // in_flight) * in_flight / elapsed


async def _raw_latency(url: str, samples: int) -> list[float]:
    async with _Raw(url) as raw:
        ws, loads, host = raw.ws, _loads, raw.host
        await ws.send_str(
            _dumps({"type": "subscribe", "id": "raw-sub", "channel": LATENCY_CHANNEL})
        )
        loads((await ws.receive()).data)
        latencies: list[float] = []
        for i in range(samples + 10):
            start = time.perf_counter()  # the frame is made in the timed part, as ours is
            _, frame = _publish_frame(host, {"i": i}, LATENCY_CHANNEL)
            await ws.send_str(frame)
            while True:
                message = loads((await ws.receive()).data)
                if message["type"] == "data":
                    loads(message["event"])
                    latencies.append(time.perf_counter() - start)
                    break
            loads((await ws.receive()).data)  # publish_success
        return latencies[10:]


# --- rounds ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer publishes and rounds (< 60 s)")
    parser.add_argument("--json", metavar="PATH", help="write the result rows as JSON")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--publishes", type=int, default=None)
    args = parser.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 7)
    total = args.publishes or (2_000 if args.quick else 10_000)
    samples = total // 2
    raw_name = "raw aiohttp WebSocket, same frames"
    rows: list[bench.Row] = []
    with bench.BenchServer() as server:
        url = server.url
        cases: list[tuple[str, Any, Any]] = [
            (
                "sequential",
                lambda: asyncio.run(_ours_round_trips(url, total, 1)),
                lambda: asyncio.run(_raw_sequential(url, total)),
            ),
            (
                f"{IN_FLIGHT} in flight",
                lambda: asyncio.run(_ours_round_trips(url, total, IN_FLIGHT)),
                lambda: asyncio.run(_raw_concurrent(url, total, IN_FLIGHT)),
            ),
        ]
        for label, ours, raw in cases:
            results = bench.alternate(rounds, {"ours": ours, "raw": raw})
            rows.append(
                bench.row(
                    "client_publish",
                    f"round trips, {label}",
                    "publishes/s",
                    "1/s",
                    results["ours"],
                    results["raw"],
                    baseline_name=raw_name,
                    target=(">=", 0.8),
                )
            )
        results = bench.alternate(
            rounds,
            {
                "ours": lambda: asyncio.run(_ours_latency(url, samples)),
                "ours, publish awaited": lambda: asyncio.run(_ours_latency_awaited(url, samples)),
                "raw": lambda: asyncio.run(_raw_latency(url, samples)),
            },
        )
    latency_cases = (
        ("ours", f"publish-to-receive latency ({samples} samples)", ("<=", 1.2)),
        (
            "ours, publish awaited",
            f"publish-to-receive latency, publish awaited then next() ({samples} samples)",
            None,
        ),
    )
    for key, case, p50_target in latency_cases:
        for name, q, target in (("p50", 0.5, p50_target), ("p99", 0.99, None)):
            ours_q = [_percentile(r, q) * 1e6 for r in results[key]]
            raw_q = [_percentile(r, q) * 1e6 for r in results["raw"]]
            rows.append(
                bench.row(
                    "client_publish",
                    case,
                    f"latency {name}",
                    "us",
                    ours_q,
                    raw_q,
                    baseline_name=raw_name,
                    higher_is_better=False,
                    target=target,  # type: ignore[arg-type]
                )
            )
    bench.report(f"client_publish: {rounds} alternating rounds", rows, args.json)


if __name__ == "__main__":
    main()
