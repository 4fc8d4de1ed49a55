"""Fan-out: the emulator against the practical limit of the same stack.

One publisher and N subscribers (N = 1, 10, 100, 1000) on one channel.  Two servers run
side by side, each in its own process: the emulator (``python -m appsync_emulator``) and
the baseline in ``_baseline.py``, a minimal aiohttp broadcaster speaking the same frames
that encodes each event once and writes each publish to each subscriber in one transport
write (holding the writes while frames already read wait, as the emulator does: one write
per subscriber per read burst), with no auth, validation, queue, limit or recorder.

The load runs in other processes (one publisher process, subscriber processes) and
counts frames without parsing them (see ``_loadgen.py``), so it costs far less per
delivery than either server.  The publisher sends ``publish`` frames of 5 events with at
most ``--window`` unacknowledged.  For every N the rounds alternate which server goes
first; each round gives:

* **server CPU per delivery** (µs of CPU of the server process per ``data`` frame
  delivered, from the scheduler's per-thread run time in ``/proc``, to the nanosecond:
  the clock-tick counts are 10 ms steps, a fifth of a short round): the headline, the
  least sensitive to the other load on the machine;
* **deliveries/s**: ``data`` frames received by all subscribers per second, from the
  first publish to the last frame.

Each row also shows how busy the server and the busiest load process were (CPU time over
the round's wall time): a load process near 100% would be the bottleneck, not the server.

The summary gives, per N, the median of the rounds' emulator/baseline ratios and their
range.  Targets: deliveries/s at least 0.8x the baseline, CPU per delivery at most
1/0.8 = 1.25x.

    python benchmarks/fanout.py                 # N = 1, 10, 100, 1000, 5 rounds
                                                # (300,000 deliveries per round at N = 1,
                                                # 3,000,000 at N >= 10)
    python benchmarks/fanout.py --quick         # 2 rounds, fewer deliveries (< 60 s)
    python benchmarks/fanout.py --subscribers 100 --rounds 9 --json out.json
    python benchmarks/fanout.py --compare ../before   # A/B: also another checkout's emulator

With ``--compare ROOT`` a third server runs, the emulator of the checkout at ``ROOT`` (say,
the code before a change, from ``git worktree add``), and the rounds rotate through the
three servers; the summary adds this emulator against that one, round by round.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _loadgen import (
    ACK,
    DATA,
    PUBLISH_OK,
    SUBSCRIBE_OK,
    RawClient,
    ServerProcess,
    connect,
    raise_fd_limit,
    text_frame,
)

CHANNEL = "default/bench"
BATCH = 5
FULL_DELIVERIES = 300_000
"""Deliveries per round per subscriber in a full run, up to :data:`MAX_FULL_DELIVERIES`."""
MAX_FULL_DELIVERIES = 3_000_000
"""Deliveries per round at most in a full run (0.5 to 2 s at 10 or more subscribers)."""
BASELINE_NAME = "aiohttp broadcaster, encode once, one write per subscriber per read burst"


def _hostport(endpoint: str) -> str:
    return endpoint.removeprefix("ws://").partition("/")[0]


async def _open(endpoint: str, api_key: str | None, subscribe: str | None) -> RawClient:
    client = await connect(endpoint, api_key)
    acked = client.expect(ACK, 1)
    client.send(text_frame('{"type":"connection_init"}'))
    async with asyncio.timeout(30):
        await acked
    if subscribe is not None:
        auth = {"host": _hostport(endpoint), "x-api-key": api_key or "none"}
        frame = {"type": "subscribe", "id": subscribe, "channel": CHANNEL, "authorization": auth}
        done = client.expect(SUBSCRIBE_OK, 1)
        client.send(text_frame(json.dumps(frame)))
        async with asyncio.timeout(30):
            await done
        if client.error:
            raise RuntimeError(f"subscribe failed: {client.error!r}")
    return client


async def _open_many(endpoint: str, api_key: str | None, count: int, first: int) -> list[RawClient]:
    limit = asyncio.Semaphore(64)

    async def one(i: int) -> RawClient:
        async with limit:
            return await _open(endpoint, api_key, f"s{i}")

    return await asyncio.gather(*(one(first + i) for i in range(count)))


# --- load processes --------------------------------------------------------------------------


def subscriber_process(
    endpoint: str, api_key: str | None, count: int, first: int, expected: int, pipe: Connection
) -> None:
    """Open ``count`` subscriptions, report ready, then the time the last frame arrived."""
    raise_fd_limit(count + 64)

    async def run() -> None:
        clients = await _open_many(endpoint, api_key, count, first)
        reached = [c.expect(DATA, expected) for c in clients]
        pipe.send(("ready", None))
        cpu = time.process_time()
        async with asyncio.timeout(600):
            times = await asyncio.gather(*reached)
        pipe.send(("done", (max(times), time.process_time() - cpu)))
        for client in clients:
            if client.transport is not None:
                client.transport.abort()

    try:
        asyncio.run(run())
    except BaseException as exc:
        pipe.send(("error", repr(exc)))


def publisher_process(
    endpoint: str, api_key: str | None, publishes: int, window: int, pipe: Connection
) -> None:
    """Connect, report ready, wait for go, publish with a window; report start and end."""

    async def run() -> None:
        client = await _open(endpoint, api_key, None)
        auth = {"host": _hostport(endpoint), "x-api-key": api_key or "none"}
        auth_json = json.dumps(auth)
        frames = []
        for n in range(publishes):
            events = json.dumps(
                [json.dumps({"i": n * BATCH + j, "v": "x" * 16}) for j in range(BATCH)]
            )
            frames.append(
                text_frame(
                    f'{{"type":"publish","id":"p{n}","channel":"{CHANNEL}",'
                    f'"events":{events},"authorization":{auth_json}}}'
                )
            )
        sent = 0

        def more(acked: int) -> None:
            nonlocal sent
            end = min(publishes, sent + acked)
            if end > sent:
                client.send(b"".join(frames[sent:end]))
                sent = end

        done = client.expect(PUBLISH_OK, publishes)
        pipe.send(("ready", None))
        pipe.recv()  # go
        client.on_count = more
        cpu = time.process_time()
        start = time.monotonic()
        more(window)
        async with asyncio.timeout(600):
            end = await done
        if client.error:
            raise RuntimeError(f"publish failed: {client.error!r}")
        pipe.send(("done", (start, end, time.process_time() - cpu)))
        if client.transport is not None:
            client.transport.abort()

    try:
        asyncio.run(run())
    except BaseException as exc:
        pipe.send(("error", repr(exc)))


def _expect(pipe: Connection, what: str, timeout: float) -> Any:
    if not pipe.poll(timeout):
        raise TimeoutError(f"load process: no {what!r} within {timeout} s")
    kind, value = pipe.recv()
    if kind != what:
        raise RuntimeError(f"load process failed: {value}")
    return value


def run_once(
    server: ServerProcess, info: dict[str, Any], n: int, events: int, window: int, procs: int
) -> dict[str, float]:
    """One round against one server: returns deliveries/s and CPU µs per delivery."""
    ctx = multiprocessing.get_context("spawn")
    endpoint, key = info["realtime_endpoint"], info.get("api_key")
    publishes = events // BATCH
    expected = publishes * BATCH
    workers = []
    pipes = []
    share = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
    first = 0
    for count in share:
        if not count:
            continue
        parent, child = ctx.Pipe()
        p = ctx.Process(
            target=subscriber_process, args=(endpoint, key, count, first, expected, child)
        )
        p.start()
        workers.append(p)
        pipes.append(parent)
        first += count
    parent, child = ctx.Pipe()
    publisher = ctx.Process(
        target=publisher_process, args=(endpoint, key, publishes, window, child)
    )
    publisher.start()
    try:
        for pipe in pipes:
            _expect(pipe, "ready", 120)
        _expect(parent, "ready", 60)
        split_before = server.cpu_split()
        cpu_before = server.cpu_seconds()
        parent.send("go")
        start, _, publisher_cpu = _expect(parent, "done", 600)
        ends = [_expect(pipe, "done", 600) for pipe in pipes]
        cpu_after = server.cpu_seconds()
        split_after = server.cpu_split()
    finally:
        for p in (*workers, publisher):
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
                p.join()
    deliveries = expected * n
    last = max(end for end, _ in ends)
    elapsed = last - start
    return {
        "rate": deliveries / elapsed,
        "cpu_us": (cpu_after - cpu_before) / deliveries * 1e6,
        "sys_us": (split_after[1] - split_before[1]) / deliveries * 1e6,
        "server_busy": (cpu_after - cpu_before) / elapsed,
        "load_busy": max(publisher_cpu, *(cpu for _, cpu in ends)) / elapsed,
        "deliveries": deliveries,
        "elapsed": elapsed,
    }


def _summary(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", default="1,10,100,1000", help="comma-separated N values")
    parser.add_argument("--deliveries", type=int, help="data frames per round (all subscribers)")
    parser.add_argument("--window", type=int, default=20, help="unacknowledged publishes")
    parser.add_argument("--rounds", type=int, help="rounds per server and N (alternating)")
    parser.add_argument("--procs", type=int, default=2, help="subscriber processes (N >= 100)")
    parser.add_argument("--quick", action="store_true", help="fewer rounds and deliveries")
    parser.add_argument("--json", type=Path, help="write the result rows to this file")
    parser.add_argument(
        "--compare", type=Path, metavar="ROOT", help="also run the emulator of this checkout"
    )
    args = parser.parse_args()
    rounds = args.rounds or (2 if args.quick else 5)

    def deliveries_per_round(n: int) -> int:
        if args.deliveries:
            return int(args.deliveries)
        if args.quick:
            return 50_000
        # Half a second or more per round for either server: with 300,000 deliveries
        # at every N, a round at 100 or 1,000 subscribers lasted 0.1-0.25 s (60
        # publishes at 1,000), and its ratio moved by tens of percent between rounds.
        return min(FULL_DELIVERIES * n, MAX_FULL_DELIVERIES)

    counts = [int(n) for n in args.subscribers.split(",")]
    raise_fd_limit(max(counts) * 2 + 256)

    print(
        f"fan-out: 1 publisher, {BATCH} events per publish, window {args.window}, {rounds} rounds"
    )
    print(f"baseline: {BASELINE_NAME}; load in separate processes, frames counted not parsed")
    print(
        f"{'server':<9} {'N':>5} {'round':>5} {'deliveries':>10} {'deliv/s':>10} "
        f"{'cpu µs':>7} {'sys µs':>7} {'server':>6} {'load':>5}"
    )
    results: dict[tuple[str, int], list[dict[str, float]]] = defaultdict(list)
    with tempfile.TemporaryDirectory() as tmp:
        servers = {
            "emulator": ServerProcess.emulator(Path(tmp)),
            "baseline": ServerProcess.baseline(Path(tmp)),
        }
        if args.compare is not None:
            servers["before"] = ServerProcess.emulator(Path(tmp), root=args.compare.resolve())
        try:
            infos = {name: server.wait() for name, server in servers.items()}
            for n in counts:
                events = max(BATCH * 20, deliveries_per_round(n) // n)
                events -= events % BATCH
                procs = 1 if n < 100 else max(1, args.procs)
                for round_ in range(rounds):
                    if args.compare is None:
                        order: tuple[str, ...] = (
                            ("emulator", "baseline")
                            if round_ % 2 == 0
                            else ("baseline", "emulator")
                        )
                    else:  # each server first, second and last in turn
                        names = ("emulator", "baseline", "before")
                        order = names[round_ % 3 :] + names[: round_ % 3]
                    for kind in order:
                        r = run_once(servers[kind], infos[kind], n, events, args.window, procs)
                        results[(kind, n)].append(r)
                        print(
                            f"{kind:<9} {n:>5} {round_ + 1:>5} {int(r['deliveries']):>10} "
                            f"{r['rate']:>10.0f} {r['cpu_us']:>7.2f} {r['sys_us']:>7.2f} "
                            f"{r['server_busy']:>6.0%} {r['load_busy']:>5.0%}",
                            flush=True,
                        )
        finally:
            for server in servers.values():
                server.stop()

    rows: list[dict[str, Any]] = []
    print("\nemulator / baseline, median of the rounds' ratios [range]:")
    for n in counts:
        ours, base = results[("emulator", n)], results[("baseline", n)]
        rate_ratios = [o["rate"] / b["rate"] for o, b in zip(ours, base, strict=True)]
        cpu_ratios = [o["cpu_us"] / b["cpu_us"] for o, b in zip(ours, base, strict=True)]
        rate = _summary(rate_ratios)
        cpu = _summary(cpu_ratios)
        ours_rate = statistics.median(o["rate"] for o in ours)
        base_rate = statistics.median(b["rate"] for b in base)
        ours_cpu = statistics.median(o["cpu_us"] for o in ours)
        base_cpu = statistics.median(b["cpu_us"] for b in base)
        print(
            f"  N = {n:>4}: CPU/delivery {cpu[0]:.2f}x [{cpu[1]:.2f}-{cpu[2]:.2f}] "
            f"({ours_cpu:.2f} vs {base_cpu:.2f} µs); deliveries/s {rate[0]:.2f}x "
            f"[{rate[1]:.2f}-{rate[2]:.2f}] ({ours_rate:.0f} vs {base_rate:.0f})"
        )
        if args.compare is not None:
            before = results[("before", n)]
            ab = _summary([o["cpu_us"] / b["cpu_us"] for o, b in zip(ours, before, strict=True)])
            ab_rate = _summary([o["rate"] / b["rate"] for o, b in zip(ours, before, strict=True)])
            before_cpu = statistics.median(b["cpu_us"] for b in before)
            print(
                f"           this emulator / {args.compare.name}'s: CPU/delivery {ab[0]:.2f}x "
                f"[{ab[1]:.2f}-{ab[2]:.2f}] ({ours_cpu:.2f} vs {before_cpu:.2f} µs); "
                f"deliveries/s {ab_rate[0]:.2f}x [{ab_rate[1]:.2f}-{ab_rate[2]:.2f}]"
            )
        common = {"benchmark": "fanout", "case": f"N={n}", "baseline_name": BASELINE_NAME}
        rows.append(
            {
                **common,
                "metric": "server CPU per delivery",
                "unit": "µs",
                "ours": round(ours_cpu, 3),
                "baseline": round(base_cpu, 3),
                "ratio": round(cpu[0], 3),
                "ratio_min": round(cpu[1], 3),
                "ratio_max": round(cpu[2], 3),
                "higher_is_better": False,
                "target": "<= 1.25x",
                "met": cpu[0] <= 1.25,
            }
        )
        rows.append(
            {
                **common,
                "metric": "deliveries/s",
                "unit": "1/s",
                "ours": round(ours_rate),
                "baseline": round(base_rate),
                "ratio": round(rate[0], 3),
                "ratio_min": round(rate[1], 3),
                "ratio_max": round(rate[2], 3),
                "higher_is_better": True,
                "target": ">= 0.8x",
                "met": rate[0] >= 0.8,
            }
        )
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
