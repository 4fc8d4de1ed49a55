"""Per-invocation cost of APPSYNC_JS handlers against Python callables doing the same.

Run: ``python benchmarks/handlers_js.py [--calls N] [--rounds R] [--quick] [--json PATH]``.
Four cases, each called ``N`` times per round from one asyncio coroutine, the cases
alternating round by round so that machine load hits them alike:

* ``js trivial``: ``export const onPublish = (ctx) => ctx.events``;
* ``js transform``: the developer guide's transforming example (upper-case the message,
  add ``util.time.nowISO8601()``);
* ``py trivial`` / ``py transform``: a Python callable doing the same work on the same
  context, awaited through ``asyncio.to_thread`` (the emulator runs blocking handler
  work off the loop too).

Each call uses a 5-event publish context.  Prints the median and the range of the
per-round µs per call, then the JS/Python ratios.  Needs ``mini-racer`` and
``tree-sitter-javascript``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from appsync_emulator.appsync_js import JsHandlers, JsLimits
from appsync_emulator.handler_contract import (
    Broadcast,
    PublishOutcome,
    build_context,
    interpret_publish_result,
)
from appsync_events._types import JSONValue

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

CTX = build_context(
    operation="PUBLISH",
    channel="/default/bench",
    headers={"host": "localhost", "user-agent": "bench"},
    events=[(f"id-{i}", {"message": f"hello {i}", "n": i}) for i in range(5)],
)
IDS = [f"id-{i}" for i in range(5)]


def _py_trivial(ctx: dict[str, JSONValue]) -> JSONValue:
    return ctx["events"]


def _py_transform(ctx: dict[str, JSONValue]) -> JSONValue:
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    events = ctx["events"]
    assert isinstance(events, list)
    out: list[JSONValue] = []
    for event in events:
        assert isinstance(event, dict)
        payload = event["payload"]
        assert isinstance(payload, dict)
        message = payload["message"]
        assert isinstance(message, str)
        out.append(
            {
                "id": event["id"],
                "payload": {**payload, "message": message.upper(), "timestamp": now},
            }
        )
    return out


def python_case(
    func: Callable[[dict[str, JSONValue]], JSONValue],
) -> Callable[[], Awaitable[PublishOutcome]]:
    async def call() -> PublishOutcome:
        result = await asyncio.to_thread(func, CTX)
        return interpret_publish_result(result, IDS)

    return call


def js_case(handlers: JsHandlers) -> Callable[[], Awaitable[PublishOutcome]]:
    async def call() -> PublishOutcome:
        return await handlers.on_publish(CTX)

    return call


async def round_us(call: Callable[[], Awaitable[PublishOutcome]], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        await call()
    return (time.perf_counter() - start) / calls * 1e6


async def run(calls: int, rounds: int) -> list[dict[str, object]]:
    limits = JsLimits(invoke_timeout=5.0, engines=1)
    started = time.perf_counter()
    trivial = JsHandlers.load(TRIVIAL_JS, filename="trivial.js", limits=limits)
    loaded = time.perf_counter() - started
    transform = JsHandlers.load(TRANSFORM_JS, filename="transform.js", runtime=trivial.runtime)
    cases = {
        "js trivial": js_case(trivial),
        "js transform": js_case(transform),
        "py trivial": python_case(_py_trivial),
        "py transform": python_case(_py_transform),
    }
    sample = await cases["js transform"]()
    if not isinstance(sample, Broadcast) or len(sample.events) != 5:
        raise SystemExit(f"the transform handler answered {sample!r}")
    for call in cases.values():  # warm up
        await round_us(call, max(1, calls // 10))
    results: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, call in cases.items():
            results[name].append(await round_us(call, calls))
    transform.close()
    trivial.close()
    print(f"first load (engine start + compile): {loaded * 1e3:.1f} ms")
    print(f"{calls} calls x {rounds} rounds, 5 events per publish, µs per call")
    print(f"{'case':<14}{'median':>10}{'min':>10}{'max':>10}")
    medians = {}
    for name, values in results.items():
        medians[name] = statistics.median(values)
        print(f"{name:<14}{medians[name]:>10.0f}{min(values):>10.0f}{max(values):>10.0f}")
    rows: list[dict[str, object]] = []
    for kind in ("trivial", "transform"):
        ratio = medians[f"js {kind}"] / medians[f"py {kind}"]
        print(f"js/py {kind}: {ratio:.2f}x")
        per_round = [
            js / py for js, py in zip(results[f"js {kind}"], results[f"py {kind}"], strict=True)
        ]
        ours = medians[f"js {kind}"]
        rows.append(
            {
                "benchmark": "handlers_js",
                "case": f"{kind} onPublish, 5 events",
                "metric": "time per invocation",
                "unit": "us",
                "ours": ours,
                "baseline": medians[f"py {kind}"],
                "baseline_name": "a Python callable doing the same work (asyncio.to_thread)",
                "ratio": statistics.median(per_round),
                "ratio_min": min(per_round),
                "ratio_max": max(per_round),
                "higher_is_better": False,
                "target": "< 1000 us" if kind == "trivial" else None,
                "met": ours < 1000 if kind == "trivial" else None,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=None, help="calls per case per round")
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds")
    parser.add_argument("--quick", action="store_true", help="a short run (seconds)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the rows as JSON")
    args = parser.parse_args()
    calls = args.calls or (200 if args.quick else 500)
    rounds = args.rounds or (3 if args.quick else 7)
    rows = asyncio.run(run(calls, rounds))
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
