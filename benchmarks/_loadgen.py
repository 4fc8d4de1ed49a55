"""Shared pieces of the emulator benchmarks: server processes and a frame-counting load.

The load generator speaks just enough WebSocket to drive a server: an upgrade request,
masked text frames (with an all-zero mask key, which leaves the payload as it is), and on
the way in it *counts* frames without parsing them.  A server's frames are unmasked and
uncompressed, and every ``data`` frame starts with ``{"type":"data"``, a byte string that
cannot occur inside a frame's JSON-encoded event (its quotes are escaped there), so
``bytes.count`` over the received bytes counts ``data`` frames exactly, at C speed.  That
keeps the load generator's cost per delivery far below a server's, so that the
benchmarks measure the server.

Not a test helper and not a client library: no TLS, no fragmentation, no close handshake.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = [
    "DATA",
    "PUBLISH_OK",
    "SUBSCRIBE_OK",
    "ACK",
    "RawClient",
    "ServerProcess",
    "connect",
    "repo_env",
    "text_frame",
]

ROOT = Path(__file__).resolve().parent.parent
DATA = b'{"type":"data"'
PUBLISH_OK = b'"publish_success"'
SUBSCRIBE_OK = b'"subscribe_success"'
ACK = b'"connection_ack"'
ERRORS = (b'"publish_error"', b'"subscribe_error"', b'"connection_error"', b'"type":"error"')


def repo_env(root: Path | None = None) -> dict[str, str]:
    """The environment with this checkout's packages first on ``PYTHONPATH`` (or
    ``root``'s: another checkout, for A/B runs)."""
    env = dict(os.environ)
    if root is None:
        root = Path(env.get("BENCH_EMULATOR_ROOT", ROOT))  # A/B: another checkout's emulator
    paths = [str(root / "src"), str(root / "emulator")]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def text_frame(text: str | bytes) -> bytes:
    """A masked (key 0) client text frame."""
    payload = text.encode() if isinstance(text, str) else text
    n = len(payload)
    if n < 126:
        header = bytes((0x81, 0x80 | n))
    elif n < 65536:
        header = bytes((0x81, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x81, 0x80 | 127)) + n.to_bytes(8, "big")
    return header + b"\0\0\0\0" + payload


class RawClient(asyncio.Protocol):
    """One WebSocket connection that counts one marker in what it receives."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.upgraded = asyncio.get_running_loop().create_future()
        self._head = b""
        self._tail = b""
        self.mark = ACK
        self.count = 0
        self.target = 0
        self.reached: asyncio.Future[float] | None = None
        self.on_count: Any = None
        self.lost = False
        self.error: bytes | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        for future in (self.upgraded, self.reached):
            if future is not None and not future.done():
                future.set_exception(ConnectionError(f"connection lost: {exc}"))

    def expect(self, mark: bytes, target: int) -> asyncio.Future[float]:
        """Count ``mark`` from now on; the future gets the monotonic time ``target`` is met."""
        self.mark = mark
        self.count = 0
        self._tail = b""
        self.target = target
        self.reached = asyncio.get_running_loop().create_future()
        return self.reached

    def data_received(self, data: bytes) -> None:
        if not self.upgraded.done():
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                return
            status = self._head.split(b"\r\n", 1)[0]
            if b" 101 " not in status:
                self.upgraded.set_exception(ConnectionError(status.decode(errors="replace")))
                return
            data = self._head[end + 4 :]
            self._head = b""
            self.upgraded.set_result(None)
        chunk = self._tail + data if self._tail else data
        found = chunk.count(self.mark)
        self._tail = chunk[1 - len(self.mark) :]
        if self.mark is not DATA and self.error is None:
            for error in ERRORS:
                if error in chunk:
                    self.error = chunk[-400:]
        if found:
            self.count += found
            if self.on_count is not None:
                self.on_count(found)
            reached = self.reached
            if self.count >= self.target and reached is not None and not reached.done():
                reached.set_result(time.monotonic())

    def send(self, frame: bytes) -> None:
        assert self.transport is not None
        self.transport.write(frame)


async def connect(endpoint: str, api_key: str | None) -> RawClient:
    """Open and upgrade one connection to ``endpoint`` (``ws://host:port/path``)."""
    rest = endpoint.removeprefix("ws://")
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.rpartition(":")
    auth = {"host": hostport, "x-api-key": api_key or "none"}
    token = base64.urlsafe_b64encode(json.dumps(auth).encode()).rstrip(b"=").decode()
    request = (
        f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Protocol: aws-appsync-event-ws, header-{token}\r\n\r\n"
    ).encode()
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(RawClient, host, int(port))
    client.send(request)
    async with asyncio.timeout(30):
        await client.upgraded
    return client


def authorization(api_key: str | None, hostport: str) -> dict[str, str]:
    return {"host": hostport, "x-api-key": api_key or "none"}


class ServerProcess:
    """A server (the emulator or a baseline) in its own process, on a free port."""

    def __init__(self, cmd: list[str], ready: Path, name: str, root: Path | None = None) -> None:
        self.name = name
        self.ready = ready
        ready.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [*cmd, "--ready-file", str(ready)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=repo_env(root),
        )

    @classmethod
    def emulator(
        cls, workdir: Path, config: Path | None = None, root: Path | None = None
    ) -> ServerProcess:
        """The emulator of this checkout, or of the checkout at ``root`` (its ready file
        then has the checkout's name)."""
        cmd = [sys.executable, "-m", "appsync_emulator", "--port", "0", "--log-level", "error"]
        cmd += ["--no-console"]
        if os.environ.get("BENCH_PROFILE"):  # profile the emulator: a cProfile output path
            cmd[1:1] = ["-m", "cProfile", "-o", os.environ["BENCH_PROFILE"]]
        if config is not None:
            cmd += ["--config", str(config)]
        if root is not None:
            return cls(cmd, workdir / f"emulator-{root.name}.json", "emulator", root)
        return cls(cmd, workdir / "emulator.json", "emulator")

    @classmethod
    def baseline(cls, workdir: Path) -> ServerProcess:
        script = Path(__file__).with_name("_baseline.py")
        return cls([sys.executable, str(script)], workdir / "baseline.json", "baseline")

    def wait(self, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while not self.ready.exists():
            try:
                code = self.proc.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.name} server did not start") from None
                continue
            err = self.proc.stderr.read().decode() if self.proc.stderr else ""
            raise RuntimeError(f"{self.name} server exited with {code}: {err}")
        info: dict[str, Any] = json.loads(self.ready.read_text())
        return info

    def cpu_seconds(self) -> float:
        """User+system CPU the server process has used (Linux ``/proc``), to the nanosecond
        where the kernel keeps scheduler statistics: the sum of its threads' run time
        (``/proc/PID/task/*/schedstat``), else to the clock tick (``/proc/PID/stat``, 10 ms
        on most systems: too coarse for a round of a few hundred milliseconds)."""
        total = 0
        try:
            for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
                total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return sum(self.cpu_split())
        return total / 1e9

    def cpu_split(self) -> tuple[float, float]:
        """User and system CPU seconds the server process has used (Linux ``/proc``)."""
        stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        return int(fields[11]) / tick, int(fields[12]) / tick

    def rss_bytes(self) -> int:
        """The server process's resident set size (Linux ``/proc``)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's open-file limit towards ``wanted``; return the soft limit."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft
