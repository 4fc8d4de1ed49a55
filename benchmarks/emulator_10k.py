"""10,000 concurrent connections on one emulator, and one publish fanned out to all.

The emulator runs in its own process with ``limits.max_connections`` raised above the
count (its default is 10,000); the subscribers are spread over two load processes (see
``_loadgen.py``: raw WebSocket, frames counted, not parsed), each with its open-file
limit raised (``resource.setrlimit``).  Once every connection is open and subscribed,
the server's RSS is read (``/proc``), then one ``publish`` of 5 events goes to the
channel every connection subscribes to.  The delivery time runs from sending the publish
until the last subscriber has received all 5 ``data`` frames.  The baseline broadcaster
of ``_baseline.py`` runs the same load in the same run, for comparison (no target).

    python benchmarks/emulator_10k.py               # 10,000 connections
    python benchmarks/emulator_10k.py --quick       # 2,000 connections
    python benchmarks/emulator_10k.py --connections 5000 --json out.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _loadgen import ServerProcess, raise_fd_limit
from fanout import BATCH, publisher_process, subscriber_process

BASELINE_NAME = "aiohttp broadcaster, encode once, one write per subscriber per read burst"
PROCS = 2


def _expect(pipe: Connection, what: str, timeout: float) -> Any:
    if not pipe.poll(timeout):
        raise TimeoutError(f"load process: no {what!r} within {timeout} s")
    kind, value = pipe.recv()
    if kind != what:
        raise RuntimeError(f"load process failed: {value}")
    return value


def run(server: ServerProcess, info: dict[str, Any], count: int) -> dict[str, float]:
    """Open ``count`` subscribed connections, read the RSS, time one publish to all."""
    ctx = multiprocessing.get_context("spawn")
    endpoint, key = info["realtime_endpoint"], info.get("api_key")
    idle = server.rss_bytes()
    opened = time.monotonic()
    workers, pipes = [], []
    first = 0
    for i in range(PROCS):
        share = count // PROCS + (1 if i < count % PROCS else 0)
        parent, child = ctx.Pipe()
        p = ctx.Process(target=subscriber_process, args=(endpoint, key, share, first, BATCH, child))
        p.start()
        workers.append(p)
        pipes.append(parent)
        first += share
    parent, child = ctx.Pipe()
    publisher = ctx.Process(target=publisher_process, args=(endpoint, key, 1, 1, child))
    publisher.start()
    try:
        for pipe in pipes:
            _expect(pipe, "ready", 600)
        setup = time.monotonic() - opened
        _expect(parent, "ready", 60)
        time.sleep(0.5)  # let the server settle before reading its memory
        rss = server.rss_bytes()
        parent.send("go")
        start = _expect(parent, "done", 300)[0]  # (start, end, CPU seconds)
        last = max(_expect(pipe, "done", 300)[0] for pipe in pipes)  # (last frame, CPU)
    finally:
        for p in (*workers, publisher):
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
                p.join()
    return {
        "delivery_ms": (last - start) * 1000,
        "rss_mib": rss / 2**20,
        "per_conn_kib": (rss - idle) / count / 1024,
        "setup_s": setup,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, help="concurrent subscribed connections")
    parser.add_argument("--rounds", type=int, default=1, help="rounds (alternating order)")
    parser.add_argument("--quick", action="store_true", help="2,000 connections")
    parser.add_argument("--json", type=Path, help="write the result rows to this file")
    args = parser.parse_args()
    count = args.connections or (2000 if args.quick else 10_000)
    limit = raise_fd_limit(count + 1024)  # the servers inherit it
    if limit < count + 64:
        sys.exit(f"open-file limit {limit} is too low for {count} connections (ulimit -n)")
    print(f"{count} concurrent connections, all subscribed to one channel; one publish of")
    print(f"{BATCH} events to all of them; open-file limit {limit}")
    print(f"{'server':<9} {'round':>5} {'setup s':>8} {'RSS MiB':>8} {'KiB/conn':>9} {'ms':>8}")
    results: dict[str, list[dict[str, float]]] = {"emulator": [], "baseline": []}
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "emulator.toml"
        config.write_text(
            "[limits]\n"
            f"max_connections = {count + 100}\n"
            f"max_sockets = {count + 200}\n"
            "max_publish_per_second = 1000\n"
        )
        for round_ in range(args.rounds):
            order = ("emulator", "baseline") if round_ % 2 == 0 else ("baseline", "emulator")
            for kind in order:
                if kind == "emulator":
                    server = ServerProcess.emulator(Path(tmp), config)
                else:
                    server = ServerProcess.baseline(Path(tmp))
                try:
                    r = run(server, server.wait(), count)
                finally:
                    server.stop()
                results[kind].append(r)
                print(
                    f"{kind:<9} {round_ + 1:>5} {r['setup_s']:>8.1f} {r['rss_mib']:>8.1f} "
                    f"{r['per_conn_kib']:>9.1f} {r['delivery_ms']:>8.1f}",
                    flush=True,
                )
    rows = []
    for metric, key, unit in (
        ("delivery time, one publish to all", "delivery_ms", "ms"),
        ("server RSS, all connected and subscribed", "rss_mib", "MiB"),
        ("RSS per subscribed connection", "per_conn_kib", "KiB"),
    ):
        ours = [r[key] for r in results["emulator"]]
        base = [r[key] for r in results["baseline"]]
        ratios = [o / b for o, b in zip(ours, base, strict=True)]
        print(
            f"  {metric}: {statistics.median(ours):.1f} vs {statistics.median(base):.1f} {unit} "
            f"({statistics.median(ratios):.2f}x [{min(ratios):.2f}-{max(ratios):.2f}])"
        )
        rows.append(
            {
                "benchmark": "emulator_10k",
                "case": f"{count} connections",
                "metric": metric,
                "unit": unit,
                "ours": round(statistics.median(ours), 2),
                "baseline": round(statistics.median(base), 2),
                "baseline_name": BASELINE_NAME,
                "ratio": round(statistics.median(ratios), 3),
                "ratio_min": round(min(ratios), 3),
                "ratio_max": round(max(ratios), 3),
                "higher_is_better": False,
                "target": None,
                "met": None,
            }
        )
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
