"""Memory per idle connection and per subscription: the emulator against the baseline.

Each round starts both servers fresh (the emulator, ``python -m appsync_emulator``, and the
minimal aiohttp broadcaster of ``_baseline.py``), in alternating order, and for each:
opens a few warm-up connections, reads the server's RSS (``/proc``), opens K more
connections (``connection_init`` answered, nothing else), reads the RSS again, then
subscribes each of them to one channel and reads it a third time.  The figures are the
RSS growth per connection and per subscription; the summary gives the median of the
rounds' emulator/baseline ratios and their range.  Target: at most 1.3x per connection.

    python benchmarks/emulator_memory.py            # K = 2000, 3 rounds
    python benchmarks/emulator_memory.py --quick    # K = 1000, 2 rounds
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _loadgen import (
    ACK,
    SUBSCRIBE_OK,
    RawClient,
    ServerProcess,
    connect,
    raise_fd_limit,
    text_frame,
)

BASELINE_NAME = "aiohttp broadcaster (no auth, queue, limit or recorder)"
WARMUP = 20


async def _settle(server: ServerProcess) -> int:
    """The server's RSS once it stopped moving (allocations after the last reply)."""
    last = server.rss_bytes()
    for _ in range(20):
        await asyncio.sleep(0.1)
        now = server.rss_bytes()
        if now == last:
            return now
        last = now
    return last


async def _open(endpoint: str, key: str | None, count: int) -> list[RawClient]:
    limit = asyncio.Semaphore(64)

    async def one() -> RawClient:
        async with limit:
            client = await connect(endpoint, key)
            acked = client.expect(ACK, 1)
            client.send(text_frame('{"type":"connection_init"}'))
            async with asyncio.timeout(30):
                await acked
            return client

    return await asyncio.gather(*(one() for _ in range(count)))


async def _subscribe(clients: list[RawClient], endpoint: str, key: str | None) -> None:
    hostport = endpoint.removeprefix("ws://").partition("/")[0]
    auth = {"host": hostport, "x-api-key": key or "none"}
    done = []
    for i, client in enumerate(clients):
        frame = {"type": "subscribe", "id": f"s{i}", "channel": "default/m", "authorization": auth}
        done.append(client.expect(SUBSCRIBE_OK, 1))
        client.send(text_frame(json.dumps(frame)))
    async with asyncio.timeout(120):
        await asyncio.gather(*done)


async def measure(server: ServerProcess, info: dict[str, Any], count: int) -> dict[str, float]:
    endpoint, key = info["realtime_endpoint"], info.get("api_key")
    warm = await _open(endpoint, key, WARMUP)
    await _subscribe(warm, endpoint, key)
    before = await _settle(server)
    clients = await _open(endpoint, key, count)
    connected = await _settle(server)
    await _subscribe(clients, endpoint, key)
    subscribed = await _settle(server)
    for client in (*warm, *clients):
        if client.transport is not None:
            client.transport.abort()
    return {
        "connection": (connected - before) / count,
        "subscription": (subscribed - connected) / count,
        "rss": subscribed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, help="K, connections per round")
    parser.add_argument("--rounds", type=int, help="rounds (alternating which server goes first)")
    parser.add_argument("--quick", action="store_true", help="K = 1000, 2 rounds")
    parser.add_argument("--json", type=Path, help="write the result rows to this file")
    args = parser.parse_args()
    count = args.connections or (1000 if args.quick else 2000)
    rounds = args.rounds or (2 if args.quick else 3)
    raise_fd_limit(count * 2 + 256)
    print(f"memory: RSS growth per idle connection and per subscription, K = {count}")
    print(f"{'server':<9} {'round':>5} {'KiB/conn':>9} {'KiB/sub':>8} {'RSS MiB':>8}")
    results: dict[str, list[dict[str, float]]] = {"emulator": [], "baseline": []}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(rounds):
            order = ("emulator", "baseline") if round_ % 2 == 0 else ("baseline", "emulator")
            for kind in order:
                if kind == "emulator":
                    server = ServerProcess.emulator(Path(tmp))
                else:
                    server = ServerProcess.baseline(Path(tmp))
                try:
                    info = server.wait()
                    r = asyncio.run(measure(server, info, count))
                finally:
                    server.stop()
                results[kind].append(r)
                print(
                    f"{kind:<9} {round_ + 1:>5} {r['connection'] / 1024:>9.1f} "
                    f"{r['subscription'] / 1024:>8.2f} {r['rss'] / 2**20:>8.1f}",
                    flush=True,
                )
    rows = []
    print("\nemulator / baseline, median of the rounds' ratios [range]:")
    for what, target in (("connection", 1.3), ("subscription", None)):
        ours = [r[what] for r in results["emulator"]]
        base = [r[what] for r in results["baseline"]]
        ratios = [o / b if b > 0 else float("nan") for o, b in zip(ours, base, strict=True)]
        ratio = statistics.median(ratios)
        print(
            f"  per {what}: {ratio:.2f}x [{min(ratios):.2f}-{max(ratios):.2f}] "
            f"({statistics.median(ours) / 1024:.2f} vs {statistics.median(base) / 1024:.2f} KiB)"
        )
        rows.append(
            {
                "benchmark": "emulator_memory",
                "case": f"K={count}",
                "metric": f"RSS per {'idle connection' if what == 'connection' else what}",
                "unit": "KiB",
                "ours": round(statistics.median(ours) / 1024, 2),
                "baseline": round(statistics.median(base) / 1024, 2),
                "baseline_name": BASELINE_NAME,
                "ratio": round(ratio, 3),
                "ratio_min": round(min(ratios), 3),
                "ratio_max": round(max(ratios), 3),
                "higher_is_better": False,
                "target": f"<= {target}x" if target else None,
                "met": ratio <= target if target else None,
            }
        )
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
