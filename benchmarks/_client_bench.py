"""Shared parts of the client benchmarks: a server that is never the bottleneck, rounds, rows.

The server runs in its own process (``spawn``) and speaks just enough of the AppSync
Events protocol for a client: ``connection_init`` -> ``connection_ack``, ``subscribe`` ->
``subscribe_success``, ``publish`` -> the events to every subscriber of the channel, then
``publish_success``, ``unsubscribe`` -> ``unsubscribe_success``.  It is aiohttp's server
(compiled frame reader) and never builds a frame twice:

* a subscription to ``bench/flood-<kind>-<count>`` is answered with ``count`` ``data``
  frames of a pre-encoded event (``kind``: ``small`` or ``kb``), all of them built once
  and written in one transport write right after ``subscribe_success``, so the client
  reads a socket that is always full;
* every other frame it sends is one ``%`` formatting of a template.

Rounds alternate between the measured clients (``alternate``) and every figure is the
median over rounds with its range; ``Row`` is one line of the JSON result convention
shared by every script in ``benchmarks/``.
"""

from __future__ import annotations

import asyncio
import gc
import json
import multiprocessing
import os
import platform
import statistics
import struct
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

API_KEY = "da2-benchmarkbenchmarkbenchmark"
SUBPROTOCOL = "aws-appsync-event-ws"

EVENTS: dict[str, str] = {
    "small": json.dumps({"message": "hello", "n": 12345, "user": "ada"}),
    "kb": json.dumps({"message": "x" * 1000, "n": 1}),
}
"""The event texts a flood sends: a small JSON object and one of about 1 KB."""


def flood_channel(kind: str, count: int) -> str:
    """The channel whose subscription is answered by ``count`` events of ``kind``."""
    return f"bench/flood-{kind}-{count}"


def _frame(text: str) -> bytes:
    payload = text.encode()
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x81, size)
    elif size < 65536:
        header = struct.pack("!BBH", 0x81, 126, size)
    else:
        header = struct.pack("!BBQ", 0x81, 127, size)
    return header + payload


# --- the server (its own process) -----------------------------------------------------------


def _serve(conn: Any, host: str) -> None:
    from aiohttp import WSMsgType, web

    subscribers: dict[str, list[tuple[Any, str]]] = {}

    async def handle(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=(SUBPROTOCOL,), max_msg_size=0, compress=False)
        await ws.prepare(request)
        transport = request.transport
        assert transport is not None
        mine: list[tuple[str, str]] = []
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                break
            frame = json.loads(msg.data)
            kind = frame.get("type")
            if kind == "connection_init":
                transport.write(_frame('{"type":"connection_ack","connectionTimeoutMs":300000}'))
            elif kind == "subscribe":
                sub_id, channel = frame["id"], frame["channel"]
                transport.write(_frame('{"type":"subscribe_success","id":"' + sub_id + '"}'))
                channel = channel.lstrip("/")  # Amplify sends "/namespace/..."
                if channel.startswith("bench/flood-"):
                    _, what, count = channel.split("-")
                    text = json.dumps({"type": "data", "id": sub_id, "event": EVENTS[what]})
                    transport.write(_frame(text) * int(count))
                else:
                    subscribers.setdefault(channel, []).append((transport, sub_id))
                    mine.append((channel, sub_id))
            elif kind == "publish":
                channel = frame["channel"]
                for event in frame["events"]:
                    for target, sub_id in subscribers.get(channel, ()):
                        data = json.dumps({"type": "data", "id": sub_id, "event": event})
                        target.write(_frame(data))
                ok = ",".join(
                    f'{{"identifier":"x{i}","index":{i}}}' for i in range(len(frame["events"]))
                )
                answer = f'"id":"{frame["id"]}","successful":[{ok}],"failed":[]}}'
                transport.write(_frame('{"type":"publish_success",' + answer))
            elif kind == "unsubscribe":
                transport.write(_frame('{"type":"unsubscribe_success","id":"' + frame["id"] + '"}'))
        for channel, sub_id in mine:
            entries = subscribers.get(channel, [])
            if (transport, sub_id) in entries:
                entries.remove((transport, sub_id))
        return ws

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/event/realtime", handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, host, 0, backlog=4096)
        await site.start()
        server = site._server
        assert server is not None
        conn.send(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)
        await runner.cleanup()

    asyncio.run(main())


class BenchServer:
    """The benchmark server in its own process; a context manager (``.url``, ``.port``)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self._parent, child = multiprocessing.Pipe()
        self._process = multiprocessing.get_context("spawn").Process(
            target=_serve, args=(child, host), daemon=True
        )

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}/event/realtime"

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def __enter__(self) -> BenchServer:
        self._process.start()
        if not self._parent.poll(60):
            self._process.kill()
            raise RuntimeError("the benchmark server did not start within 60 s")
        self.port = self._parent.recv()
        return self

    def __exit__(self, *exc: object) -> None:
        self._parent.send("stop")
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)


# --- rounds and rows ------------------------------------------------------------------------


def alternate(rounds: int, runs: dict[str, Callable[[], Any]]) -> dict[str, list[Any]]:
    """Run each of ``runs`` once per round, in turn (the order rotates every round)."""
    results: dict[str, list[Any]] = {name: [] for name in runs}
    names = list(runs)
    for index in range(rounds):
        order = names[index % len(names) :] + names[: index % len(names)]
        for name in order:
            gc.collect()
            results[name].append(runs[name]())
    return results


@dataclass
class Row:
    """One figure, in the JSON result convention of ``benchmarks/``."""

    benchmark: str
    case: str
    metric: str
    unit: str
    ours: float
    baseline: float | None = None
    baseline_name: str | None = None
    ratio: float | None = None
    ratio_min: float | None = None
    ratio_max: float | None = None
    higher_is_better: bool = True
    target: str | None = None
    met: bool | None = None


def row(
    benchmark: str,
    case: str,
    metric: str,
    unit: str,
    ours: list[float],
    baseline: list[float] | None = None,
    *,
    baseline_name: str | None = None,
    higher_is_better: bool = True,
    target: tuple[str, float] | None = None,
) -> Row:
    """Summarise the per-round values of ours and of the baseline as one :class:`Row`.

    ``target`` is ``(">=", 0.8)`` or ``("<=", 1.2)``, applied to the median ratio.
    """
    result = Row(benchmark, case, metric, unit, statistics.median(ours))
    result.higher_is_better = higher_is_better
    if baseline and min(baseline) > 0:
        per_round = [o / b for o, b in zip(ours, baseline, strict=True) if b]
        result.baseline = statistics.median(baseline)
        result.baseline_name = baseline_name
        result.ratio = statistics.median(per_round)
        result.ratio_min, result.ratio_max = min(per_round), max(per_round)
        if target is not None:
            op, bound = target
            result.target = f"{op} {bound}x"
            result.met = result.ratio >= bound if op == ">=" else result.ratio <= bound
    return result


def machine() -> str:
    """One line naming the machine and the interpreter."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, Python {sys.version.split()[0]}"


def report(title: str, rows: list[Row], json_path: str | None) -> None:
    """Print ``rows`` as a table and write them to ``json_path`` when given."""
    print(f"{title}\n({machine()})")
    for r in rows:
        line = f"  {r.case:<34} {r.metric:<22} ours {r.ours:>12,.1f} {r.unit}"
        if r.baseline is not None:
            line += (
                f"  {r.baseline_name}: {r.baseline:,.1f}"
                f"  ratio {r.ratio:.2f}x [{r.ratio_min:.2f}-{r.ratio_max:.2f}]"
            )
            if r.target:
                line += f"  target {r.target}: {'met' if r.met else 'MISSED'}"
        print(line)
    if json_path:
        with open(json_path, "w", encoding="utf-8") as out:
            json.dump([asdict(r) for r in rows], out, indent=1)
