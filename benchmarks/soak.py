"""Soak: clients subscribe, publish, drop and reconnect against one emulator for a fixed time.

The emulator runs in its own process (``python -m appsync_emulator --port 0`` on
127.0.0.1).  ``--clients`` workers, each with the project's client library, repeat a cycle
until ``--duration`` seconds have passed:

1. connect and subscribe to the worker's own channel; once ``subscribe_success`` is in,
   the channel is *open*: any worker may publish to it;
2. publish ``--events`` events, each to a random open channel (the worker's own included),
   over WebSocket or, one in ``--http-every``, over HTTP ``POST /event``; every event
   carries a unique id, recorded as *expected* on its channel before it is sent;
3. hold the subscription for a random moment, then close the channel to new publishes,
   wait for the publishes in flight to it, and wait (bounded) for every expected event;
4. drop the connection: a clean close every other cycle, else an abort of the socket (a
   network failure: no close frame), then reconnect (the next cycle).

An event is *lost* when its channel's subscriber did not receive it although it was
published (and acknowledged) while that subscriber was confirmed subscribed; *duplicated*
when received more than once; *stray* when received by a subscriber that did not expect it.
The server's resident memory and open descriptors are read from ``/proc`` at the start
(before any client) and at the end (after every client is gone and the server's count has
settled, waited for up to ``--settle`` seconds): *leaked* is the difference in descriptors.
Exit status 1 if anything was lost, duplicated, stray or leaked, or a publish failed.

    python benchmarks/soak.py                          # 20 clients, 60 s
    python benchmarks/soak.py --clients 50 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appsync_events import Client, HttpPublisher, Subscription, connect
from appsync_events.authorizer import ApiKey

DELIVERY_WAIT = 10.0
"""Seconds a subscriber waits for the events it expects before they count as lost."""


# --- the server process ---------------------------------------------------------------------------


class ServerProcess:
    """``python -m appsync_emulator`` on 127.0.0.1 with a free port, in a subprocess."""

    def __init__(self, workdir: Path) -> None:
        self.ready = workdir / "ready.json"
        cmd = [sys.executable, "-m", "appsync_emulator", "--host", "127.0.0.1", "--port", "0"]
        cmd += ["--log-level", "warning", "--ready-file", str(self.ready)]
        self.stderr = (workdir / "server.log").open("wb")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.stderr)

    def wait_ready(self, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while not self.ready.exists():
            try:
                code = self.proc.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                if time.monotonic() > deadline:
                    raise TimeoutError("the emulator did not start") from None
                continue
            raise RuntimeError(f"the emulator exited with {code}")
        info: dict[str, Any] = json.loads(self.ready.read_text())
        return info

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.stderr.close()


# --- bookkeeping ----------------------------------------------------------------------------------


@dataclass
class Channel:
    """One worker's channel: what its current subscriber must receive."""

    name: str
    open: bool = False
    inflight: int = 0
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    expected: set[str] = field(default_factory=set)
    received: collections.Counter[str] = field(default_factory=collections.Counter)
    complete: asyncio.Event = field(default_factory=asyncio.Event)

    def check_complete(self) -> None:
        if not self.open and self.inflight == 0 and self.expected <= set(self.received):
            self.complete.set()


@dataclass
class Totals:
    sent: int = 0
    delivered: int = 0
    lost: int = 0
    duplicated: int = 0
    stray: int = 0
    publish_failed: int = 0
    cycles: int = 0
    reconnects: int = 0
    aborts: int = 0
    errors: list[str] = field(default_factory=list)


class Soak:
    def __init__(self, info: dict[str, Any], args: argparse.Namespace) -> None:
        self.endpoint: str = info["http_endpoint"]
        self.authorizer = ApiKey(info["api_key"])
        self.args = args
        self.channels = [Channel(f"default/soak{i}") for i in range(args.clients)]
        self.totals = Totals()
        self.ids = 0
        self.rng = random.Random(args.seed)

    def next_id(self, worker: int) -> str:
        self.ids += 1
        return f"w{worker}-e{self.ids}"

    async def run(self, server: ServerProcess) -> list[float]:
        """Run the workers until the deadline; return the server's RSS (MB) sampled at
        each quarter of the run (the recorder's bounded history makes it grow, then level)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.args.duration
        samples: list[float] = []
        async with (
            HttpPublisher(self.endpoint, authorizer=self.authorizer) as http,
            asyncio.TaskGroup() as group,
        ):
            workers = [
                group.create_task(self.worker(worker, deadline, http))
                for worker in range(self.args.clients)
            ]
            for quarter in range(1, 4):
                due = deadline - self.args.duration * (1 - quarter / 4)
                await asyncio.wait(workers, timeout=max(0.0, due - loop.time()))
                samples.append(server.rss_mb())
        return samples

    async def worker(self, worker: int, deadline: float, http: HttpPublisher) -> None:
        loop = asyncio.get_running_loop()
        cycle = 0
        while loop.time() < deadline:
            if cycle:
                self.totals.reconnects += 1
            await self.cycle(worker, cycle, http)
            cycle += 1
            self.totals.cycles += 1

    async def cycle(self, worker: int, cycle: int, http: HttpPublisher) -> None:
        channel = self.channels[worker]
        client = await connect(self.endpoint, authorizer=self.authorizer)
        reader: asyncio.Task[None] | None = None
        try:
            sub = await client.subscribe(channel.name)
            channel.expected.clear()
            channel.received.clear()
            channel.complete.clear()
            reader = asyncio.create_task(self.read(sub, channel))
            channel.open = True
            for _ in range(self.args.events):
                await self.publish_one(worker, client, http)
            await asyncio.sleep(self.rng.uniform(0, self.args.hold))
            channel.open = False
            channel.check_complete()
            try:
                async with asyncio.timeout(DELIVERY_WAIT):
                    await channel.complete.wait()
            except TimeoutError:
                pass
            self.account(channel)
        finally:
            channel.open = False
            if reader is not None:
                reader.cancel()
                with contextlib.suppress(BaseException):
                    await reader
            if cycle % 2:
                self.totals.aborts += 1
                abort_socket(client)
            await client.close()

    async def publish_one(self, worker: int, client: Client, http: HttpPublisher) -> None:
        targets = [c for c in self.channels if c.open]
        if not targets:
            return
        target = self.rng.choice(targets)
        event_id = self.next_id(worker)
        target.expected.add(event_id)  # before sending: delivery may beat the answer
        target.inflight += 1
        try:
            event = {"id": event_id, "pad": "x" * self.rng.randrange(0, 2000)}
            if self.ids % self.args.http_every == 0:
                result = await http.publish(target.name, event)
            else:
                result = await client.publish(target.name, event)
            if result.failed:
                raise RuntimeError(f"failed: {result.failed}")
            self.totals.sent += 1
        except Exception as exc:
            target.expected.discard(event_id)
            self.totals.publish_failed += 1
            self.totals.errors.append(f"publish {event_id}: {exc!r}")
        finally:
            target.inflight -= 1
            target.check_complete()

    async def read(self, sub: Subscription, channel: Channel) -> None:
        async for message in sub:
            event_id = json.loads(message.data)["id"]
            channel.received[event_id] += 1
            channel.check_complete()

    def account(self, channel: Channel) -> None:
        totals = self.totals
        for event_id, count in channel.received.items():
            if event_id not in channel.expected:
                totals.stray += count
                continue
            totals.delivered += 1
            totals.duplicated += count - 1
        totals.lost += len(channel.expected - set(channel.received))


def abort_socket(client: Client) -> None:
    """Drop the client's TCP connection without a close frame (a network failure)."""
    with contextlib.suppress(Exception):
        transport = client._current().ws.transport  # the benchmark reaches in on purpose
        transport.abort()


async def settle(server: ServerProcess, target: int, within: float) -> int:
    """Wait (bounded) until the server's descriptor count is back to ``target``."""
    loop = asyncio.get_running_loop()
    end = loop.time() + within
    count = server.fds()
    while count > target and loop.time() < end:
        await asyncio.sleep(0.1)
        count = server.fds()
    return count


async def main_async(args: argparse.Namespace, server: ServerProcess, info: dict[str, Any]) -> int:
    rss_start, fds_start = server.rss_mb(), server.fds()
    soak = Soak(info, args)
    started = time.monotonic()
    async with asyncio.timeout(args.duration + 60 + DELIVERY_WAIT):
        samples = await soak.run(server)
    elapsed = time.monotonic() - started
    fds_end = await settle(server, fds_start, args.settle)
    rss_end = server.rss_mb()
    totals = soak.totals
    leaked = fds_end - fds_start
    rows = [
        ("cycles (connect, subscribe, publish, drop)", f"{totals.cycles}"),
        ("reconnects", f"{totals.reconnects}  ({totals.aborts} after an abort)"),
        ("events sent (acknowledged)", f"{totals.sent}  ({totals.sent / elapsed:.0f}/s)"),
        ("events delivered", f"{totals.delivered}"),
        ("lost", f"{totals.lost}"),
        ("duplicated", f"{totals.duplicated}"),
        ("stray (received, not expected)", f"{totals.stray}"),
        ("publishes failed", f"{totals.publish_failed}"),
        ("server RSS MB", f"start {rss_start:.1f}   end {rss_end:.1f}"),
        ("server RSS MB at 1/4, 1/2, 3/4", "   ".join(f"{mb:.1f}" for mb in samples)),
        ("server open fds", f"start {fds_start}   end {fds_end}   leaked {leaked}"),
    ]
    print(f"soak: {args.clients} clients for {elapsed:.1f} s, emulator pid {server.proc.pid}")
    for name, value in rows:
        print(f"  {name:<44} {value}")
    for error in totals.errors[:10]:
        print(f"  error: {error}")
    bad = totals.lost or totals.duplicated or totals.stray or totals.publish_failed or leaked
    return 1 if bad else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20, help="workers (default 20)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds (default 60)")
    parser.add_argument("--events", type=int, default=20, help="events per worker per cycle")
    parser.add_argument("--hold", type=float, default=0.2, help="max seconds to hold a cycle")
    parser.add_argument("--http-every", type=int, default=5, help="one publish in N over HTTP")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds for fds to settle")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if not 1 <= args.clients <= 500 or not 0 < args.duration <= 3600:
        parser.error("--clients must be 1..500 and --duration 0..3600 s (bounded soak)")
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(Path(tmp))
        try:
            info = server.wait_ready()
            return asyncio.run(main_async(args, server, info))
        finally:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
