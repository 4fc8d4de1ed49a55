"""The command line: subprocess runs with --ready-file and signals, --demo, example-config."""

from __future__ import annotations

import json
import logging
import re
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appsync_emulator import EmulatorConfig, EmulatorServer, cli

from .conftest import fast_config

START_TIMEOUT = 20.0


class Emulator:
    """``python -m appsync_emulator`` as a subprocess, ready once the ready file exists."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.ready_file = tmp_path / "ready.json"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "appsync_emulator",
                "--port",
                "0",
                "--ready-file",
                str(self.ready_file),
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait_ready(self) -> dict[str, Any]:
        deadline = time.monotonic() + START_TIMEOUT
        while not self.ready_file.exists():
            try:
                code = self.proc.wait(timeout=0.05)  # doubles as the poll interval
            except subprocess.TimeoutExpired:
                if time.monotonic() > deadline:
                    raise TimeoutError("no ready file") from None
                continue
            raise AssertionError(f"emulator exited with {code}: {self.proc.communicate()}")
        data: dict[str, Any] = json.loads(self.ready_file.read_text())
        return data

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=START_TIMEOUT)
        return self.proc.returncode, out, err


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Any]:
    started: list[Emulator] = []

    def start(*args: str) -> Emulator:
        emulator = Emulator(tmp_path, *args)
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        if emulator.proc.poll() is None:
            emulator.proc.kill()
            emulator.proc.communicate()


def _publish(ready: dict[str, Any], context: ssl.SSLContext | None = None) -> int:
    request = urllib.request.Request(
        ready["http_endpoint"],
        data=json.dumps({"channel": "default/cli", "events": ['"hi"']}).encode(),
        headers={"x-api-key": ready["api_key"], "content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5, context=context) as response:
        return int(response.status)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_cli_ready_file_serves_and_stops_cleanly_on_signal(spawn: Any, sig: int) -> None:
    """The ready file lists the endpoints and keys; SIGTERM/SIGINT exit with status 0."""
    emulator = spawn()
    ready = emulator.wait_ready()
    assert ready["http_endpoint"].startswith("http://127.0.0.1:")
    assert ready["realtime_endpoint"].endswith("/event/realtime")
    assert ready["region"] == "us-east-1"
    assert ready["api_key"] == ready["api_keys"][0]
    assert "ca_cert" not in ready
    assert _publish(ready) == 200
    code, out, err = emulator.stop(sig)
    assert code == 0, err
    assert f"API key      : {ready['api_key']}" in out
    assert ready["realtime_endpoint"] in out


def test_cli_tls_with_config_file(spawn: Any, tmp_path: Path) -> None:
    """--tls writes ca_cert; --config is honoured (region, keys)."""
    config = tmp_path / "emulator.json"
    config.write_text(json.dumps({"region": "eu-west-1", "apiKeys": ["da2-fromfile"]}))
    emulator = spawn("--tls", "--config", str(config), "--log-level", "debug")
    ready = emulator.wait_ready()
    assert ready["http_endpoint"].startswith("https://")
    assert (ready["region"], ready["api_key"]) == ("eu-west-1", "da2-fromfile")
    context = ssl.create_default_context(cafile=ready["ca_cert"])
    assert _publish(ready, context) == 200
    code, out, err = emulator.stop()
    assert code == 0
    assert "CA cert" in out
    assert "da2-fromfile" not in err  # keys are redacted in logs, even at DEBUG


def test_cli_demo_runs_and_exits_zero() -> None:
    """--demo starts the emulator, subscribes, publishes over WS and HTTP, exits 0."""
    result = subprocess.run(
        [sys.executable, "-m", "appsync_emulator", "--demo"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "--- demo finished ---" in result.stdout
    assert result.stdout.count("received") >= 3


@pytest.mark.asyncio
async def test_raw_websocket_demo(capsys: pytest.CaptureFixture[str]) -> None:
    """The raw-websockets demo path prints every frame it receives."""
    async with EmulatorServer(fast_config()) as server:
        await cli._demo_with_raw_websocket(server)
        server.check()
    out = capsys.readouterr().out
    assert '"type": "connection_ack"' in out
    assert out.count('"type": "data"') == 3
    assert '"type": "unsubscribe_success"' in out


@pytest.mark.asyncio
async def test_run_demo_reports_failure() -> None:
    """run_demo returns 1 (not a traceback) when the demo cannot complete."""
    server = EmulatorServer(fast_config(api_keys=()))
    await server.start()
    try:
        assert await cli.run_demo(server) == 1
    finally:
        await server.stop()


def test_example_config_loads_and_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`example-config` prints a TOML file that loads and builds a working server policy."""
    assert cli.main(["example-config"]) == 0
    path = tmp_path / "emulator.toml"
    path.write_text(capsys.readouterr().out)
    config = EmulatorConfig.from_file(path)
    assert [ns.name for ns in config.namespaces] == ["default", "chat"]
    assert len(config.auth_providers) == 5
    assert config.limits.max_publish_per_second == 25


def test_example_config_limits_are_every_limit() -> None:
    """The example's [limits] table names every Limits field (the schema test covers the rest)."""
    from appsync_emulator import Limits

    limits = re.findall(r"^(\w+) = ", cli.EXAMPLE_CONFIG.split("[limits]")[1], re.MULTILINE)
    assert sorted(limits) == sorted(Limits.__dataclass_fields__)


def test_invalid_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad config file is reported in one line (file, key, problem) with status 2."""
    bad = tmp_path / "bad.json"
    bad.write_text('{"namespaces": ["bad_name"]}')
    assert cli.main(["--config", str(bad), "--port", "0"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("bad.json: namespaces[0].name: ")
    assert captured.err.count("\n") == 1


def test_unwritable_ready_file_is_one_line_before_the_banner(tmp_path: Path) -> None:
    """No banner, no traceback: one line naming the file, status 2, and the server stopped."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "appsync_emulator",
            "--port",
            "0",
            "--ready-file",
            str(blocker / "ready.json"),  # a folder that is a file
        ],
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr == (
        f"appsync-emulator: cannot write --ready-file {blocker / 'ready.json'}: "
        f"{blocker} is not a folder\n"
    )


def test_demo_banner_invites_no_request_to_a_closing_port(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--demo's server stops with the demo: its banner offers no curl and no Ctrl+C."""
    assert cli.main(["--demo", "--log-level", "error"]) == 0
    out = capsys.readouterr().out
    assert "curl" not in out
    assert "Ctrl+C" not in out
    assert "runs only for the demo" in out
    assert "--- demo finished ---" in out


def test_without_the_emulator_extra_one_line_names_the_install(tmp_path: Path) -> None:
    """A client-only install running `appsync-emulator` is told what to pip install."""
    code = (
        "import sys; sys.modules['jwt'] = None\n"
        "from appsync_emulator.cli import main\n"
        "raise SystemExit(main([]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        "appsync-emulator: the emulator needs 'jwt', which is not installed: "
        "pip install 'appsync-events[emulator]'\n"
    )
    from appsync_emulator.pytest_plugin import EMULATOR_EXTRA

    assert cli.EMULATOR_EXTRA == EMULATOR_EXTRA


def test_console_script_imports_handlers_from_the_current_folder(tmp_path: Path) -> None:
    """As the installed script (its own folder first on sys.path, not the current one)."""
    (tmp_path / "first_cli_auth.py").write_text(
        "def authorize(event):\n    return {'isAuthorized': True}\n"
    )
    config = tmp_path / "x.toml"
    config.write_text(
        '[eventConfig]\nauthProviders = [{ authType = "AWS_LAMBDA", lambdaAuthorizerConfig '
        '= { authorizerUri = "first_cli_auth:authorize" } }]\n'
        '[[namespaces]]\nname = "default"\nonPublish = "first_cli_missing:on_publish"\n'
    )
    script = (
        "import sys; sys.path[0] = sys.prefix + '/bin'\n"  # what a console script gets
        "from appsync_emulator.cli import main\n"
        "raise SystemExit(main(sys.argv[1:]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, "--config", "x.toml", "--port", "0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        check=False,
    )
    # The authorizer imported from the current folder; the missing handler fails at start.
    assert result.returncode == 2
    assert result.stderr == (
        "x.toml: namespaces[0].onPublish: handler 'first_cli_missing:on_publish': cannot "
        "import 'first_cli_missing': No module named 'first_cli_missing'\n"
    )


def test_bad_port_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """A port outside 0..65535 is refused with status 2."""
    assert cli.main(["--port", "70000"]) == 2
    assert "--port" in capsys.readouterr().err


def test_port_in_use_exits_1(spawn: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """Binding a port that is taken exits 1 with a message."""
    ready = spawn().wait_ready()
    port = ready["http_endpoint"].rsplit(":", 1)[1].split("/")[0]
    assert cli.main(["--port", port]) == 1
    assert "cannot listen" in capsys.readouterr().err


def test_exposed_host_warns(caplog: pytest.LogCaptureFixture) -> None:
    """0.0.0.0 and :: log a warning; loopback does not."""
    with caplog.at_level(logging.WARNING, logger="appsync_emulator.server"):
        assert cli.warn_if_exposed("0.0.0.0")
        assert cli.warn_if_exposed("::")
        assert not cli.warn_if_exposed("127.0.0.1")
    assert len(caplog.records) == 2


def test_ready_file_is_written_atomically(tmp_path: Path) -> None:
    """The ready file appears complete (no partial JSON), creating parent directories."""
    target = tmp_path / "nested" / "ready.json"
    cli.write_ready_file(target, {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in target.parent.iterdir()] == ["ready.json"]
