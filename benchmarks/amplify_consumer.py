"""Client consume rate vs the official Amplify JS consumer, on the same server in one run.

Run: ``python benchmarks/amplify_consumer.py [--quick] [--json PATH] [--rounds N] [--events N]``

Needs ``node`` and Amplify JS (``npm ci --prefix tests/interop/amplify``); without them
it prints why and writes no rows.

The server (``_client_bench.BenchServer``, a separate process that pre-encodes the whole
flood and writes it in one transport write) is consumer-bound: it answers a subscription
with ``--events`` ``data`` frames at once.  Each round runs, in turn:

* **ours**: ``appsync_events.connect`` + ``subscribe`` + ``await sub.next()`` and
  ``message.json()`` per event, in this process (the same work as Amplify's consumer:
  every event's JSON decoded, in both cases);
* **ours, uvloop** (when ``uvloop`` is installed): the same on a ``uvloop`` event loop,
  reported on its own row; the headline row is asyncio's default loop;
* **Amplify**: ``benchmarks/amplify_consumer.mjs`` in Node: ``events.connect`` +
  ``channel.subscribe({next})`` counting events (Amplify JSON-parses every event before
  calling ``next``, in both cases);
* for scale, the raw aiohttp reader and (when installed) the ``picows`` reader of
  ``client_receive.py`` (parsing with ``orjson`` when installed, as the client does): the
  practical limit of Python on the same job, also against Amplify.

Both are timed from the subscribe call to the last event; CPU per event is the consumer
process's CPU time over the same span.  Both speak plain ``ws://`` to the same server
(Amplify's ``wss://`` is rewritten to ``ws://`` by the WebSocket class it is given).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import _client_bench as bench
import client_receive

ROOT = Path(__file__).resolve().parent.parent
AMPLIFY_DIR = ROOT / "tests" / "interop" / "amplify"
CONSUMER = Path(__file__).resolve().parent / "amplify_consumer.mjs"


def missing() -> str | None:
    """Why the Amplify consumer cannot run here, or ``None``."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (AMPLIFY_DIR / "node_modules" / "aws-amplify").is_dir():
        return "Amplify JS is not installed (npm ci --prefix tests/interop/amplify)"
    return None


def amplify(server: bench.BenchServer, channel: str, count: int) -> tuple[float, float]:
    """Events/s and CPU µs/event of the Amplify consumer."""
    args = {
        "amplifyDir": str(AMPLIFY_DIR),
        "endpoint": f"http://127.0.0.1:{server.port}/event",
        "apiKey": bench.API_KEY,
        "channel": channel,
        "count": count,
    }
    done = subprocess.run(
        ["node", str(CONSUMER), json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(
            f"the Amplify consumer failed ({done.returncode}): {done.stderr[-2000:]}"
        )
    result = json.loads(lines[-1])
    return result["events"] / result["seconds"], result["cpu_us"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (< 60 s)")
    parser.add_argument("--json", metavar="PATH", help="write the result rows as JSON")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--events", type=int, default=None)
    args = parser.parse_args(argv)
    reason = missing()
    if reason is not None:
        print(f"amplify_consumer: not run: {reason}")
        if args.json:
            Path(args.json).write_text("[]", encoding="utf-8")
        return
    rounds = args.rounds or (3 if args.quick else 7)
    # The same number of events in both modes: Amplify (Node) reaches its full rate
    # only over a long flood.  With 30,000 events it measured 40-65% of its rate over
    # 200,000 (ours 65-75%), so a short flood flattered ours.
    events = args.events or 200_000
    rows: list[bench.Row] = []
    with bench.BenchServer() as server:
        factory = client_receive.uvloop_factory()
        decode = True  # Amplify decodes every event: so does ours, in both cases
        for kind, count in (("small", events), ("kb", events // 2)):
            channel = bench.flood_channel(kind, count)
            runs: dict[str, Any] = {
                "ours": lambda c=channel, n=count: client_receive.ours(server.url, c, n, decode),
                "amplify": lambda c=channel, n=count: amplify(server, c, n),
            }
            if factory is not None:
                runs["ours, uvloop"] = lambda c=channel, n=count: client_receive.ours(
                    server.url, c, n, decode, factory
                )
            # The practical limit of Python on the same job, for scale: the raw readers.
            for reader in ("aiohttp", "picows"):
                function = client_receive.available().get(reader)
                if function is not None:
                    runs[reader] = lambda c=channel, n=count, d=decode, f=function: (
                        client_receive.raw(f, server.url, c, n, d)
                    )
            results = bench.alternate(rounds, runs)
            label = f"{'small' if kind == 'small' else '1 KB'} events, .json() ({count} events)"
            name = "Amplify JS v6 events (Node)"
            rows.append(
                bench.row(
                    "amplify_consumer",
                    label,
                    "events/s",
                    "1/s",
                    [r[0] for r in results["ours"]],
                    [r[0] for r in results["amplify"]],
                    baseline_name=name,
                    target=(">=", 1.0),
                )
            )
            if "ours, uvloop" in results:
                rows.append(
                    bench.row(
                        "amplify_consumer",
                        label,
                        "events/s, ours on uvloop",
                        "1/s",
                        [r[0] for r in results["ours, uvloop"]],
                        [r[0] for r in results["amplify"]],
                        baseline_name=name,
                    )
                )
            for reader in (r for r in ("aiohttp", "picows") if r in results):
                rows.append(
                    bench.row(
                        "amplify_consumer",
                        label,
                        f"events/s, raw {reader} reader (scale)",
                        "1/s",
                        [r[0] for r in results[reader]],
                        [r[0] for r in results["amplify"]],
                        baseline_name=name,
                    )
                )
            rows.append(
                bench.row(
                    "amplify_consumer",
                    label,
                    "CPU per event",
                    "us",
                    [r[1] for r in results["ours"]],
                    [r[1] for r in results["amplify"]],
                    baseline_name=name,
                    higher_is_better=False,
                )
            )
    bench.report(f"amplify_consumer: {rounds} alternating rounds", rows, args.json)


if __name__ == "__main__":
    main()
