"""Process plumbing for the Amplify interop tests: the emulator subprocess and the Node driver.

The emulator runs as ``python -m appsync_emulator --port 0 --tls --ready-file …`` and announces
itself by writing a JSON ready file. The driver (``amplify/driver.mjs``) takes a JSON scenario on
stdin and prints one JSON object per observed result on stdout.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "AMPLIFY_DIR",
    "DRIVER",
    "NPM_CI_COMMAND",
    "DriverRun",
    "EmulatorInfo",
    "EmulatorProcess",
    "INTEROP_DIR",
    "missing_prerequisite",
    "run_driver",
]

INTEROP_DIR = Path(__file__).resolve().parent
"""This directory (holds modules the emulator subprocess may import, e.g. the Lambda authorizer)."""

AMPLIFY_DIR = INTEROP_DIR / "amplify"
"""The npm project holding the pinned Amplify JS client and the driver."""

DRIVER = AMPLIFY_DIR / "driver.mjs"

NPM_CI_COMMAND = "npm ci --prefix tests/interop/amplify"
"""What CI runs (from the repository root) before these tests."""

READY_TIMEOUT = 30.0
"""Seconds the emulator gets to write its ready file (it generates a CA on start)."""

STOP_TIMEOUT = 10.0
"""Seconds the emulator gets to exit after SIGTERM before it is killed."""

POLL_INTERVAL = 0.05

JSONObject = dict[str, Any]


def missing_prerequisite() -> str | None:
    """Return why the interop tests cannot run here, or ``None`` when they can."""
    if shutil.which("node") is None:
        return f"node is not installed (needs Node >= 20, then `{NPM_CI_COMMAND}`)"
    if not (AMPLIFY_DIR / "node_modules" / "aws-amplify").is_dir():
        return f"Amplify JS is not installed: run `{NPM_CI_COMMAND}` from the repository root"
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class EmulatorInfo:
    """What the emulator's ready file announces."""

    http_endpoint: str
    realtime_endpoint: str
    region: str
    api_key: str
    api_keys: tuple[str, ...]
    ca_cert: Path
    raw: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_ready_file(cls, data: Mapping[str, Any]) -> EmulatorInfo:
        """Build from the parsed ready-file JSON (unknown keys are kept in ``raw``)."""
        api_key = str(data.get("api_key") or "")
        keys = data.get("api_keys") or ([api_key] if api_key else [])
        return cls(
            http_endpoint=str(data["http_endpoint"]),
            realtime_endpoint=str(data["realtime_endpoint"]),
            region=str(data["region"]),
            api_key=api_key,
            api_keys=tuple(str(k) for k in keys),
            ca_cert=Path(str(data["ca_cert"])),
            raw=dict(data),
        )


class EmulatorProcess:
    """One ``python -m appsync_emulator`` subprocess serving TLS on 127.0.0.1.

    Args:
        workdir: Private directory for the ready file, the config file and the logs.
        config: Written to ``workdir/config.json`` and passed as ``--config`` when given.
        pythonpath: Directories prepended to the emulator's ``PYTHONPATH`` (for
            ``module:function`` references in the config, such as a Lambda authorizer).
    """

    def __init__(
        self,
        workdir: Path,
        config: Mapping[str, Any] | None = None,
        *,
        pythonpath: Sequence[Path] = (),
    ) -> None:
        self.workdir = workdir
        self.config = config
        self.pythonpath = tuple(pythonpath)
        self.ready_file = workdir / "ready.json"
        self.log_file = workdir / "emulator.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._info: EmulatorInfo | None = None

    @property
    def info(self) -> EmulatorInfo:
        """The ready-file contents of the running emulator."""
        if self._info is None:
            raise RuntimeError("emulator not started")
        return self._info

    def command(self) -> list[str]:
        """The emulator command line."""
        cmd = [sys.executable, "-m", "appsync_emulator", "--port", "0", "--tls"]
        # Debug logging puts every frame (secrets redacted) into the log that failures show.
        cmd += ["--log-level", "debug"]
        cmd += ["--ready-file", str(self.ready_file)]
        if self.config is not None:
            config_file = self.workdir / "config.json"
            config_file.write_text(json.dumps(self.config, indent=2), encoding="utf-8")
            cmd += ["--config", str(config_file)]
        return cmd

    def start(self, timeout: float = READY_TIMEOUT) -> EmulatorInfo:
        """Start the emulator and wait until its ready file is complete.

        Raises:
            RuntimeError: The emulator exited, or wrote no valid ready file within ``timeout``.
        """
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.ready_file.unlink(missing_ok=True)
        env = dict(os.environ)
        if self.pythonpath:
            paths = [str(p) for p in self.pythonpath]
            if env.get("PYTHONPATH"):
                paths.append(env["PYTHONPATH"])
            env["PYTHONPATH"] = os.pathsep.join(paths)
        with self.log_file.open("wb") as log:
            self._proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env=env,
            )
        deadline = time.monotonic() + timeout
        while True:
            info = self._read_ready_file()
            if info is not None:
                self._info = info
                return info
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"emulator wrote no ready file in {timeout} s\n{self.log_tail()}"
                )
            # Bounded poll: waiting on the process doubles as the poll interval and notices an
            # early exit at once.
            try:
                code = self._proc.wait(timeout=POLL_INTERVAL)
            except subprocess.TimeoutExpired:
                continue
            raise RuntimeError(f"emulator exited with status {code}\n{self.log_tail()}")

    def _read_ready_file(self) -> EmulatorInfo | None:
        try:
            data = json.loads(self.ready_file.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return None  # not there yet, or still being written
        return EmulatorInfo.from_ready_file(data)

    def stop(self) -> int | None:
        """SIGTERM the emulator, wait up to ``STOP_TIMEOUT``, then kill it. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                return proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
        return proc.wait(timeout=STOP_TIMEOUT)

    def log_tail(self, lines: int = 40) -> str:
        """The last lines the emulator printed, for failure messages."""
        try:
            text = self.log_file.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return "(no emulator log)"
        return "--- emulator log (tail) ---\n" + "\n".join(text.splitlines()[-lines:])


@dataclass(frozen=True, slots=True)
class DriverRun:
    """The outcome of one driver process."""

    returncode: int
    results: tuple[JSONObject, ...]
    stdout: str
    stderr: str
    endpoint: str = ""
    """The HTTP endpoint the scenario targeted."""

    @property
    def endpoint_host(self) -> str:
        """``host:port`` of the endpoint, as Amplify puts it in its auth maps."""
        return urlsplit(self.endpoint).netloc

    def __iter__(self) -> Iterator[JSONObject]:
        return iter(self.results)

    def describe(self) -> str:
        """Everything the driver printed, for assertion messages."""
        return (
            f"driver exit status {self.returncode}\n--- stdout ---\n{self.stdout}"
            f"--- stderr (tail) ---\n" + "\n".join(self.stderr.splitlines()[-60:])
        )

    def step(self, index: int) -> JSONObject:
        """The result line of step ``index``."""
        for result in self.results:
            if result.get("step") == index and result.get("op") != "done":
                return result
        raise AssertionError(f"no result for step {index}\n{self.describe()}")

    def named(self, op: str, name: str) -> JSONObject:
        """The result of the ``op`` step carrying ``name`` (or ``sub``) ``name``."""
        for result in self.results:
            if result.get("op") == op and name in (result.get("name"), result.get("sub")):
                return result
        raise AssertionError(f"no {op} result for {name!r}\n{self.describe()}")

    def received(self, sub: str) -> list[Any]:
        """Every event the ``receive`` steps reported for subscription ``sub``, in order."""
        return [
            event
            for result in self.results
            if result.get("op") == "receive" and result.get("sub") == sub
            for event in result.get("events", [])
        ]

    def assert_ok(self) -> None:
        """Fail unless every step behaved as the scenario expected."""
        done = [r for r in self.results if r.get("op") == "done"]
        assert self.returncode == 0, self.describe()
        assert done, self.describe()
        assert done[-1].get("ok") is True, self.describe()
        assert all(r.get("ok") for r in self.results), self.describe()


def _parse_lines(stdout: str) -> tuple[JSONObject, ...]:
    results: list[JSONObject] = []
    for line in stdout.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            results.append(value)
    return tuple(results)


def run_driver(
    *,
    endpoint: str,
    region: str,
    auth: Mapping[str, Any],
    steps: Sequence[Mapping[str, Any]],
    ca_cert: Path,
    timeout_ms: int = 20_000,
) -> DriverRun:
    """Run ``driver.mjs`` once with the given scenario and collect its JSON result lines.

    The driver enforces ``timeout_ms`` itself; the subprocess gets ten seconds more before it
    is killed, so a wedged Node process cannot hang the test session.
    """
    scenario = {
        "endpoint": endpoint,
        "region": region,
        "auth": dict(auth),
        "timeoutMs": timeout_ms,
        "steps": [dict(s) for s in steps],
    }
    env = dict(os.environ)
    env["NODE_EXTRA_CA_CERTS"] = str(ca_cert)
    node = shutil.which("node") or "node"
    try:
        proc = subprocess.run(
            [node, str(DRIVER)],
            input=json.dumps(scenario),
            capture_output=True,
            text=True,
            encoding="utf-8",
            cwd=AMPLIFY_DIR,
            env=env,
            timeout=timeout_ms / 1000 + 10,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr or ""
        err += "\n(driver killed: overran its deadline)"
        return DriverRun(-1, _parse_lines(out), out, err, endpoint)
    return DriverRun(proc.returncode, _parse_lines(proc.stdout), proc.stdout, proc.stderr, endpoint)
