"""Publishes per second through namespace handlers, against a namespace with no handler.

One emulator (in a background thread, as ``EmulatorThread`` runs it) serves four
namespaces; clients publish over real loopback WebSockets:

* ``none``: no handler (the baseline: the emulator's own publish path);
* ``js trivial``: ``export const onPublish = (ctx) => ctx.events``;
* ``js transform``: the developer guide's transforming example (upper-case a field, add
  ``util.time.nowISO8601()``);
* ``python``: a Python callable doing the same transformation (the local extension).

Each case sends ``--publishes`` publish frames of 5 events from ``--connections``
connections, each keeping ``--window`` publishes unacknowledged, and times them until
the last ``publish_success``.  Rounds alternate the order of the cases (rotated by one
each round) so that machine load hits them alike.  Printed: publishes/s per case (median
and range over rounds) and each case's ratio to ``none`` in the same round (median and
range).

    python benchmarks/handlers.py            # full: 2000 publishes per case, 7 rounds
    python benchmarks/handlers.py --quick    # under a minute
    python benchmarks/handlers.py --json out.json

Needs the ``js`` extra (``mini-racer``, ``tree-sitter-javascript``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

from appsync_emulator import EmulatorThread
from appsync_emulator.config import EmulatorConfig, NamespaceConfig
from appsync_events.protocol.subprotocol import PROTOCOL_EVENTS, encode_auth_subprotocol

TRIVIAL_JS = "export const onPublish = (ctx) => ctx.events\n"
TRANSFORM_JS = """\
import { util } from '@aws-appsync/utils'

export function onPublish(ctx) {
  return ctx.events.map(event => ({
    id: event.id,
    payload: {
      ...event.payload,
      message: event.payload.message.toUpperCase(),
      timestamp: util.time.nowISO8601()
    }
  }))
}
"""
BATCH = 5


def python_transform(ctx: Any) -> list[dict[str, Any]]:
    """The transforming handler as a Python callable (``ctx`` is a HandlerContext)."""
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    return [
        {
            "id": event["id"],
            "payload": {
                **event["payload"],
                "message": event["payload"]["message"].upper(),
                "timestamp": now,
            },
        }
        for event in ctx.events or []
    ]


CASES: dict[str, NamespaceConfig] = {
    "none": NamespaceConfig(name="none"),
    "js trivial": NamespaceConfig(name="jstrivial", code_handlers=TRIVIAL_JS),
    "js transform": NamespaceConfig(name="jstransform", code_handlers=TRANSFORM_JS),
    "python": NamespaceConfig(name="python", on_publish=python_transform),
}
BASELINE = "none"


async def _publisher(
    server: EmulatorThread, channel: str, count: int, window: int, frames: list[str]
) -> None:
    host = server.http_endpoint.split("://", 1)[1].split("/", 1)[0]
    auth = {"host": host, "x-api-key": server.api_key or ""}
    async with connect(
        server.realtime_endpoint,
        subprotocols=[PROTOCOL_EVENTS, encode_auth_subprotocol(auth)],  # type: ignore[list-item]
        ping_interval=None,
        proxy=None,
        compression=None,
        max_size=None,
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init"}))
        while json.loads(await ws.recv())["type"] != "connection_ack":
            pass
        sent = acked = 0
        template = {"type": "publish", "channel": channel, "events": frames, "authorization": auth}
        while acked < count:
            while sent < count and sent - acked < window:
                await ws.send(json.dumps({**template, "id": f"p{sent}"}))
                sent += 1
            frame = json.loads(await ws.recv())
            if frame["type"] == "publish_success":
                acked += 1
            elif frame["type"] != "ka":
                raise RuntimeError(f"unexpected frame: {frame}")


async def _case(
    server: EmulatorThread, namespace: str, publishes: int, connections: int, window: int
) -> float:
    """Publishes per second of one case."""
    events = [json.dumps({"message": f"hello {i}", "n": i}) for i in range(BATCH)]
    per = publishes // connections
    start = time.perf_counter()
    async with asyncio.timeout(300):
        await asyncio.gather(
            *(
                _publisher(server, f"/{namespace}/bench", per, window, events)
                for _ in range(connections)
            )
        )
    return per * connections / (time.perf_counter() - start)


def _summary(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    config = EmulatorConfig(namespaces=tuple(CASES.values()))
    names = list(CASES)
    rates: dict[str, list[float]] = {name: [] for name in names}
    ratios: dict[str, list[float]] = {name: [] for name in names if name != BASELINE}
    with EmulatorThread(config, console=False) as server:
        # warm-up: engines started, handlers compiled and run once
        for name in names:
            await _case(server, CASES[name].name, args.connections * 4, args.connections, 2)
        for round_no in range(args.rounds):
            order = names[round_no % len(names) :] + names[: round_no % len(names)]
            got = {}
            for name in order:
                got[name] = await _case(
                    server, CASES[name].name, args.publishes, args.connections, args.window
                )
            for name in names:
                rates[name].append(got[name])
            for name in ratios:
                ratios[name].append(got[name] / got[BASELINE])
            print(
                f"round {round_no + 1}: "
                + ", ".join(f"{name} {got[name]:,.0f}/s" for name in names),
                flush=True,
            )
    print(
        f"\npublishes/s ({args.publishes} publishes of {BATCH} events per case per round, "
        f"{args.connections} connections, window {args.window}, {args.rounds} rounds)"
    )
    rows = []
    base = _summary(rates[BASELINE])
    print(f"  {BASELINE:13} median {base[0]:9,.0f}/s  range {base[1]:,.0f}..{base[2]:,.0f}")
    for name in ratios:
        med, lo, hi = _summary(rates[name])
        r_med, r_lo, r_hi = _summary(ratios[name])
        print(
            f"  {name:13} median {med:9,.0f}/s  range {lo:,.0f}..{hi:,.0f}   "
            f"ratio to none {r_med:.2f}x (range {r_lo:.2f}..{r_hi:.2f})"
        )
        rows.append(
            {
                "benchmark": "handlers",
                "case": name,
                "metric": "publishes/s",
                "unit": "1/s",
                "ours": med,
                "baseline": base[0],
                "baseline_name": "the same emulator, namespace without a handler",
                "ratio": r_med,
                "ratio_min": r_lo,
                "ratio_max": r_hi,
                "higher_is_better": True,
                "target": None,
                "met": None,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a short run (under a minute)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the rows as JSON")
    parser.add_argument("--publishes", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--window", type=int, default=8)
    args = parser.parse_args(argv)
    args.publishes = args.publishes or (400 if args.quick else 2000)
    args.rounds = args.rounds or (3 if args.quick else 7)
    rows = asyncio.run(run(args))
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
