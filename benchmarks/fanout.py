"""Fan-out throughput and latency of the emulator against a minimal aiohttp baseline.

One publisher and N subscribers (N = 1, 10, 100 by default) connect over loopback to a
server running in its own process: first the emulator (``python -m appsync_emulator``),
then a bare aiohttp WebSocket broadcast server speaking the same frames (no auth, no
validation, no queues, no recorder).  The publisher sends ``publish`` frames of 5 events
with at most ``--window`` unacknowledged; every subscriber counts its ``data`` frames.

Printed per server, N and round: events/s delivered (data frames received by all
subscribers per second), p50/p99 publish-to-delivery latency and, on Linux, the server
process's CPU time per delivered event (µs).  Each N runs ``--rounds``
times per server, alternating which goes first, and the summary gives the median of the
rounds' emulator/baseline throughput ratios with their range: loopback figures on a shared
machine move by 10% from run to run.

    python benchmarks/fanout.py                      # N = 1, 10, 100
    python benchmarks/fanout.py --subscribers 10 --deliveries 50000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

CHANNEL = "default/bench"
BATCH = 5
SERVERS = ("emulator", "baseline")


# --- the baseline server (run in a subprocess with --baseline-server) -------------------------


async def _baseline_server(ready_file: Path) -> None:
    from aiohttp import WSMsgType, web

    channels: dict[str, list[tuple[web.WebSocketResponse, str]]] = defaultdict(list)

    async def realtime(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("aws-appsync-event-ws",), compress=False)
        await ws.prepare(request)
        mine: list[tuple[str, str]] = []
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                kind = frame.get("type")
                if kind == "connection_init":
                    await ws.send_str('{"type":"connection_ack","connectionTimeoutMs":300000}')
                    await ws.send_str('{"type":"ka"}')
                elif kind == "subscribe":
                    channel = "/" + frame["channel"].strip("/")
                    channels[channel].append((ws, frame["id"]))
                    mine.append((channel, frame["id"]))
                    await ws.send_str(json.dumps({"type": "subscribe_success", "id": frame["id"]}))
                elif kind == "publish":
                    channel = "/" + frame["channel"].strip("/")
                    events = frame["events"]
                    ok = [{"identifier": str(uuid.uuid4()), "index": i} for i in range(len(events))]
                    await ws.send_str(
                        json.dumps(
                            {
                                "type": "publish_success",
                                "id": frame["id"],
                                "successful": ok,
                                "failed": [],
                            }
                        )
                    )
                    for event in events:
                        for sub_ws, sub_id in list(channels[channel]):
                            with contextlib.suppress(ConnectionError, RuntimeError):
                                await sub_ws.send_str(
                                    json.dumps({"type": "data", "id": sub_id, "event": event})
                                )
        finally:
            for channel, _ in mine:
                channels[channel] = [(w, s) for w, s in channels[channel] if w is not ws]
        return ws

    app = web.Application()
    app.add_routes([web.get("/event/realtime", realtime)])
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    tmp = ready_file.with_suffix(".tmp")
    tmp.write_text(json.dumps({"realtime_endpoint": f"ws://127.0.0.1:{port}/event/realtime"}))
    os.replace(tmp, ready_file)
    await asyncio.Event().wait()  # until killed


# --- server processes ------------------------------------------------------------------------


class ServerProcess:
    def __init__(self, kind: str, workdir: Path) -> None:
        self.kind = kind
        self.ready = workdir / f"{kind}.json"
        self.ready.unlink(missing_ok=True)
        if kind == "emulator":
            cmd = [sys.executable, "-m", "appsync_emulator", "--port", "0", "--log-level", "error"]
            cmd += ["--ready-file", str(self.ready)]
        else:
            cmd = [sys.executable, __file__, "--baseline-server", "--ready-file", str(self.ready)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def wait(self, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while not self.ready.exists():
            try:
                code = self.proc.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.kind} server did not start") from None
                continue
            raise RuntimeError(f"{self.kind} server exited with {code}: {self.proc.stderr}")
        info: dict[str, Any] = json.loads(self.ready.read_text())
        return info

    def cpu_seconds(self) -> float | None:
        """User+system CPU the server process has used (Linux ``/proc``; else ``None``)."""
        try:
            stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        except OSError:
            return None
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# --- the load ------------------------------------------------------------------------------------


async def _run_load(
    info: dict[str, Any], subscribers: int, events: int, window: int
) -> dict[str, float]:
    from websockets.asyncio.client import connect

    from appsync_events.protocol.subprotocol import PROTOCOL_EVENTS, encode_auth_subprotocol

    key = info.get("api_key") or "none"
    auth = {"host": "127.0.0.1", "x-api-key": key}
    protocols: Any = [PROTOCOL_EVENTS, encode_auth_subprotocol(auth)]
    options: dict[str, Any] = {
        "subprotocols": protocols,
        "ping_interval": None,
        "proxy": None,
        "max_size": None,
        "compression": None,
        "max_queue": None,
    }
    publishes = events // BATCH
    expected = publishes * BATCH
    latencies: list[float] = []
    done = asyncio.Event()
    remaining = subscribers

    async def subscriber(index: int, ready: asyncio.Event) -> None:
        nonlocal remaining
        async with connect(info["realtime_endpoint"], **options) as ws:
            await ws.send(json.dumps({"type": "connection_init"}))
            await ws.send(
                json.dumps(
                    {
                        "type": "subscribe",
                        "id": f"s{index}",
                        "channel": CHANNEL,
                        "authorization": auth,
                    }
                )
            )
            while json.loads(await ws.recv()).get("type") != "subscribe_success":
                pass
            ready.set()
            got = 0
            sample = index % max(1, subscribers // 10) == 0  # latency from ~10 subscribers
            while got < expected:
                frame = json.loads(await ws.recv())
                if frame.get("type") != "data":
                    continue
                got += 1
                if sample:
                    sent = json.loads(frame["event"])["t"]
                    latencies.append(time.perf_counter() - sent)
            remaining -= 1
            if remaining == 0:
                done.set()

    readies = [asyncio.Event() for _ in range(subscribers)]
    tasks = [asyncio.create_task(subscriber(i, r)) for i, r in enumerate(readies)]
    async with asyncio.timeout(60):
        for ready in readies:
            await ready.wait()
    async with connect(info["realtime_endpoint"], **options) as pub:
        await pub.send(json.dumps({"type": "connection_init"}))
        credit = asyncio.Semaphore(window)

        async def acks() -> None:
            while True:
                frame = json.loads(await pub.recv())
                if frame.get("type") == "publish_success":
                    credit.release()
                elif frame.get("type") in ("publish_error", "error"):
                    raise RuntimeError(f"publish failed: {frame}")

        ack_task = asyncio.create_task(acks())
        started = time.perf_counter()
        for n in range(publishes):
            await credit.acquire()
            now = time.perf_counter()
            batch = [json.dumps({"t": now, "i": n * BATCH + j}) for j in range(BATCH)]
            await pub.send(
                json.dumps(
                    {
                        "type": "publish",
                        "id": f"p{n}",
                        "channel": CHANNEL,
                        "events": batch,
                        "authorization": auth,
                    }
                )
            )
        async with asyncio.timeout(300):
            await done.wait()
        elapsed = time.perf_counter() - started
        ack_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ack_task
    await asyncio.gather(*tasks)
    latencies.sort()
    return {
        "rate": expected * subscribers / elapsed,
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "elapsed": elapsed,
        "deliveries": expected * subscribers,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", default="1,10,100", help="comma-separated N values")
    parser.add_argument(
        "--deliveries", type=int, default=100_000, help="target data frames per run (all subs)"
    )
    parser.add_argument("--max-events", type=int, default=50_000, help="cap on events per run")
    parser.add_argument("--window", type=int, default=20, help="unacknowledged publishes")
    parser.add_argument(
        "--rounds", type=int, default=3, help="runs per server and N, alternating the order"
    )
    parser.add_argument("--baseline-server", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ready-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_server:
        asyncio.run(_baseline_server(args.ready_file))
        return

    counts = [int(n) for n in args.subscribers.split(",")]
    print(f"fan-out benchmark: 1 publisher, {BATCH} events per publish, window {args.window}")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, loopback, own-process servers")
    print(f"{args.rounds} rounds per N, emulator and baseline alternating")
    header = f"{'server':<9} {'N':>4} {'round':>5} {'events':>7} {'deliveries':>10}"
    print(header + f" {'events/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'cpu µs':>8}")
    results: dict[tuple[str, int], list[dict[str, float]]] = defaultdict(list)
    with tempfile.TemporaryDirectory() as tmp:
        for n in counts:
            events = min(args.max_events, max(BATCH * 20, args.deliveries // n))
            events -= events % BATCH
            for round_ in range(1, args.rounds + 1):
                order = ("emulator", "baseline") if round_ % 2 else ("baseline", "emulator")
                for kind in order:
                    server = ServerProcess(kind, Path(tmp))
                    try:
                        info = server.wait()
                        cpu_before = server.cpu_seconds()
                        result = asyncio.run(_run_load(info, n, events, args.window))
                        cpu_after = server.cpu_seconds()
                    finally:
                        server.stop()
                    if cpu_before is not None and cpu_after is not None:
                        result["cpu_us"] = (cpu_after - cpu_before) / result["deliveries"] * 1e6
                    results[(kind, n)].append(result)
                    cpu = f"{result['cpu_us']:>8.1f}" if "cpu_us" in result else f"{'-':>8}"
                    print(
                        f"{kind:<9} {n:>4} {round_:>5} {events:>7} {int(result['deliveries']):>10} "
                        f"{result['rate']:>10.0f} {result['p50']:>8.2f} {result['p99']:>8.2f}",
                        cpu,
                        flush=True,
                    )
    print("\nemulator / baseline throughput (median of the rounds' ratios, [min, max]):")
    for n in counts:
        ratios = sorted(
            emulator["rate"] / baseline["rate"]
            for emulator, baseline in zip(
                results[("emulator", n)], results[("baseline", n)], strict=True
            )
        )
        medians = [statistics.median(r["rate"] for r in results[(k, n)]) for k in SERVERS]
        line = (
            f"  N = {n:>3}: {statistics.median(ratios):.2f}x  [{ratios[0]:.2f}, {ratios[-1]:.2f}]"
            f"   median events/s {medians[0]:.0f} vs {medians[1]:.0f}"
        )
        cpus = [[r["cpu_us"] for r in results[(k, n)] if "cpu_us" in r] for k in SERVERS]
        if all(cpus):
            emulator_cpu, baseline_cpu = (statistics.median(c) for c in cpus)
            line += f", server CPU µs per delivery {emulator_cpu:.1f} vs {baseline_cpu:.1f}"
        print(line)


if __name__ == "__main__":
    main()
