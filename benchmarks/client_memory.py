"""Client memory: RSS per subscription and per connection, ours vs a raw aiohttp client.

Run: ``python benchmarks/client_memory.py [--quick] [--json PATH] [--rounds N]``

Every measurement runs in a fresh process (``spawn``), against
``_client_bench.BenchServer`` (another process), and reads the process's RSS from
``/proc/self/statm`` after ``gc.collect()``, and the live Python allocations that
``tracemalloc`` counts (exact where RSS is not: a small per-item size can land in memory
the process already had), before and after:

* **per subscription**: one connection (already holding one subscription, so code paths
  and caches are warm) makes ``--subscriptions`` more.  Ours: ``await client.subscribe``
  each (a :class:`~appsync_events.Subscription` with its inbox, kept in a list).  Raw: the
  same ``subscribe`` frames on a bare aiohttp WebSocket, each answer read, and a dict
  ``{id: channel}`` kept: the least a client must remember to route events;
* **per connection**: ``--connections`` more connections, each acknowledged.  Ours:
  ``appsync_events.connect`` each.  Raw: ``ws_connect`` + ``connection_init`` /
  ``connection_ack`` each, from one shared aiohttp session.

Ours and raw alternate round by round; ratios are per round, median [min-max].  The
per-subscription target (at most 2x raw) applies to the Python heap figure: a raw
subscription is about 150 bytes, below what RSS resolves reliably (its RSS delta can even
be negative, and then no ratio is given).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
import os
import tracemalloc
from typing import Any

import _client_bench as bench

PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss() -> int:
    gc.collect()
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * PAGE


def _usage() -> tuple[int, int]:
    """(RSS less tracemalloc's own bookkeeping, live Python allocations)."""
    rss = _rss() - tracemalloc.get_tracemalloc_memory()
    return rss, tracemalloc.get_traced_memory()[0]


def _per(before: tuple[int, int], after: tuple[int, int], count: int) -> tuple[float, float]:
    return (after[0] - before[0]) / count, (after[1] - before[1]) / count


async def _ours_subscriptions(url: str, count: int) -> tuple[float, float]:
    import appsync_events
    from appsync_events import authorizer

    authz = authorizer.ApiKey(api_key=bench.API_KEY, endpoint=url)
    async with appsync_events.connect(url, authorizer=authz) as client:
        # The handles are kept in a list made beforehand: its growth is the benchmark's,
        # not the client's (the raw client keeps nothing but its routes either).
        keep: list[object] = [None] * count
        keep.append(await client.subscribe("bench/warm"))
        before = _usage()
        for i in range(count):
            keep[i] = await client.subscribe(f"bench/s{i}")
        after = _usage()
        assert len(client.subscriptions) == count + 1
        assert None not in keep
    return _per(before, after, count)


async def _ours_connections(url: str, count: int) -> tuple[float, float]:
    import appsync_events
    from appsync_events import authorizer

    authz = authorizer.ApiKey(api_key=bench.API_KEY, endpoint=url)
    clients = [await appsync_events.connect(url, authorizer=authz)]
    before = _usage()
    for _ in range(count):
        clients.append(await appsync_events.connect(url, authorizer=authz))
    after = _usage()
    for client in clients:
        await client.close()
    return _per(before, after, count)


async def _raw_open(session: Any, url: str) -> Any:
    from appsync_events.protocol.subprotocol import encode_auth_subprotocol

    auth = {"host": url.split("/")[2], "x-api-key": bench.API_KEY}
    ws = await session.ws_connect(url, protocols=[bench.SUBPROTOCOL, encode_auth_subprotocol(auth)])
    await ws.send_str('{"type":"connection_init"}')
    json.loads((await ws.receive()).data)
    return ws


async def _raw_subscriptions(url: str, count: int) -> tuple[float, float]:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        ws = await _raw_open(session, url)
        routes: dict[str, str] = {}

        async def subscribe(sub_id: str, channel: str) -> None:
            frame = {"type": "subscribe", "id": sub_id, "channel": channel}
            await ws.send_str(json.dumps(frame))
            answer = json.loads((await ws.receive()).data)
            assert answer["type"] == "subscribe_success"
            routes[sub_id] = channel

        await subscribe("warm", "bench/warm")
        before = _usage()
        for i in range(count):
            await subscribe(f"sub-{i}", f"bench/s{i}")
        after = _usage()
        await ws.close()
    return _per(before, after, count)


async def _raw_connections(url: str, count: int) -> tuple[float, float]:
    import aiohttp

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        sockets = [await _raw_open(session, url)]
        before = _usage()
        for _ in range(count):
            sockets.append(await _raw_open(session, url))
        after = _usage()
        for ws in sockets:
            await ws.close()
    return _per(before, after, count)


_MEASURES = {
    ("ours", "subscriptions"): _ours_subscriptions,
    ("ours", "connections"): _ours_connections,
    ("raw", "subscriptions"): _raw_subscriptions,
    ("raw", "connections"): _raw_connections,
}


def _child(conn: Any, who: str, what: str, url: str, count: int) -> None:
    tracemalloc.start()
    conn.send(asyncio.run(_MEASURES[(who, what)](url, count)))


def measure(who: str, what: str, url: str, count: int) -> tuple[float, float]:
    """Bytes of RSS and of live Python allocations per item, in a fresh process."""
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.get_context("spawn").Process(
        target=_child, args=(child, who, what, url, count)
    )
    process.start()
    if not parent.poll(300):
        process.kill()
        raise RuntimeError(f"the {who} {what} measurement did not finish")
    value: tuple[float, float] = parent.recv()
    process.join(10)
    return value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer items and rounds (< 60 s)")
    parser.add_argument("--json", metavar="PATH", help="write the result rows as JSON")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--subscriptions", type=int, default=None)
    parser.add_argument("--connections", type=int, default=None)
    args = parser.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 5)
    counts = {
        "subscriptions": args.subscriptions or (2_000 if args.quick else 10_000),
        "connections": args.connections or (100 if args.quick else 500),
    }
    name = "raw aiohttp WebSocket"
    rows: list[bench.Row] = []
    with bench.BenchServer() as server:
        for what, target in (("subscriptions", True), ("connections", False)):
            count = counts[what]
            results = bench.alternate(
                rounds,
                {
                    who: lambda who=who, what=what, count=count: measure(  # type: ignore[misc]
                        who, what, server.url, count
                    )
                    for who in ("ours", "raw")
                },
            )
            per = "subscription" if what == "subscriptions" else "connection"
            for index, metric in ((0, f"RSS per {per}"), (1, f"Python heap per {per}")):
                rows.append(
                    bench.row(
                        "client_memory",
                        f"{count} {what}",
                        metric,
                        "KiB",
                        [v[index] / 1024 for v in results["ours"]],
                        [v[index] / 1024 for v in results["raw"]],
                        baseline_name=name,
                        higher_is_better=False,
                        target=("<=", 2.0) if target and index == 1 else None,
                    )
                )
    bench.report(f"client_memory: {rounds} alternating rounds", rows, args.json)


if __name__ == "__main__":
    main()
