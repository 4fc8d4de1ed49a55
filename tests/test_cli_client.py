"""The ``appsync-events`` command line, run as a subprocess against the emulator."""

from __future__ import annotations

import datetime
import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

import appsync_emulator
import appsync_events
from appsync_emulator import EmulatorThread
from appsync_emulator.cli import ready_info, write_ready_file
from appsync_emulator.config import AuthType
from appsync_emulator.faults import FailEvents
from appsync_events import Message, authorizer, sync
from appsync_events.cli import _Printer

from .conftest import TIMEOUT_FACTOR

CHANNEL = "default/cli"
RUN_TIMEOUT = 30 * TIMEOUT_FACTOR
"""Seconds any one command may take before the test fails (never reached when it works)."""

_PATHS = [
    str(Path(appsync_events.__file__).parents[1]),
    str(Path(appsync_emulator.__file__).parents[1]),
]


def allow_let_me_in(request: Mapping[str, Any]) -> dict[str, Any]:
    """The emulator's stand-in Lambda authorizer: only the token ``let-me-in`` passes."""
    return {"isAuthorized": request["authorizationToken"] == "let-me-in"}


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """An environment without ambient AppSync or AWS settings (no profile, no IMDS)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("APPSYNC_EVENTS_", "AWS_")) and k != "NO_COLOR"
    }
    env["PYTHONPATH"] = os.pathsep.join([*_PATHS, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["AWS_CONFIG_FILE"] = str(tmp_path / "no-aws-config")
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp_path / "no-aws-credentials")
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    return env


def cli(
    *args: str, env: Mapping[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m appsync_events ARGS`` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "appsync_events", *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        env=dict(env),
        timeout=RUN_TIMEOUT,
        check=False,
    )


def start_cli(
    *args: str, env: Mapping[str, str], stdin: int = subprocess.DEVNULL
) -> subprocess.Popen[str]:
    """Start ``python -m appsync_events ARGS`` as a foreground program would run (SIGINT on)."""
    return subprocess.Popen(
        [sys.executable, "-m", "appsync_events", *args],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(env),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=RUN_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, out, err


def key_args(server: EmulatorThread) -> list[str]:
    return ["--endpoint", server.http_endpoint, "--api-key", server.api_key or ""]


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture
def subscriber(appsync_server: EmulatorThread) -> Iterator[sync.Subscription]:
    """A subscriber to CHANNEL (the sync API), to see what the command published."""
    authz = authorizer.ApiKey(appsync_server.api_key or "")
    with (
        sync.connect(appsync_server.realtime_endpoint, authorizer=authz) as client,
        client.subscribe(CHANNEL) as sub,
    ):
        yield sub


# --- sub and pub -----------------------------------------------------------------------------


def test_cli_sub_pub_round_trip(appsync_server: EmulatorThread, cli_env: dict[str, str]) -> None:
    """`sub --count 2` prints the two events `pub` sends, as JSON lines, and exits 0."""
    proc = start_cli("sub", *key_args(appsync_server), "--count", "2", CHANNEL, env=cli_env)
    try:
        appsync_server.wait_subscribed_sync(f"/{CHANNEL}", timeout=RUN_TIMEOUT)
        done = cli("pub", *key_args(appsync_server), CHANNEL, '{"n": 1}', '"two"', env=cli_env)
    finally:
        status, out, err = finish(proc)
    assert done.returncode == 0, done.stderr
    assert status == 0, err
    lines = json_lines(out)
    assert [line["event"] for line in lines] == [{"n": 1}, "two"]
    for line in lines:
        assert set(line) == {"channel", "id", "event", "received_at"}
        assert line["channel"] == CHANNEL
        when = datetime.datetime.fromisoformat(line["received_at"].replace("Z", "+00:00"))
        assert when.tzinfo is not None
    assert lines[0]["id"] == lines[1]["id"]
    assert f"subscribed to {CHANNEL}" in err


def test_cli_sub_several_channels_and_wildcards(
    appsync_server: EmulatorThread, cli_env: dict[str, str]
) -> None:
    """One `sub` listens on several channels, patterns included."""
    proc = start_cli(
        "sub", *key_args(appsync_server), "--count", "2", "default/a", "default/b/*", env=cli_env
    )
    try:
        appsync_server.wait_subscribed_sync("/default/b/*", timeout=RUN_TIMEOUT)
        assert cli("pub", *key_args(appsync_server), "default/a", "1", env=cli_env).returncode == 0
        assert (
            cli("pub", *key_args(appsync_server), "default/b/c", "2", env=cli_env).returncode == 0
        )
    finally:
        status, out, err = finish(proc)
    assert status == 0, err
    assert sorted((line["channel"], line["event"]) for line in json_lines(out)) == [
        ("default/a", 1),
        ("default/b/*", 2),
    ]


def test_cli_pub_prints_results(
    appsync_server: EmulatorThread, cli_env: dict[str, str], subscriber: sync.Subscription
) -> None:
    """`pub` prints one result line per batch; the events reach subscribers."""
    done = cli("pub", *key_args(appsync_server), CHANNEL, "[1, 2]", "null", env=cli_env)
    assert done.returncode == 0, done.stderr
    (result,) = json_lines(done.stdout)
    assert result["channel"] == CHANNEL
    assert [item["index"] for item in result["successful"]] == [0, 1]
    assert result["failed"] == []
    assert [subscriber.next(timeout=5).json() for _ in range(2)] == [[1, 2], None]
    (record,) = appsync_server.assert_published(f"/{CHANNEL}")
    assert record.transport == "websocket"


def test_cli_pub_stdin_is_batched_by_five(
    appsync_server: EmulatorThread, cli_env: dict[str, str], subscriber: sync.Subscription
) -> None:
    """JSON lines on stdin go out in batches of at most 5, blank lines skipped."""
    lines = "".join(f'{{"n": {i}}}\n' for i in range(12)) + "\n"
    done = cli("pub", *key_args(appsync_server), CHANNEL, stdin=lines, env=cli_env)
    assert done.returncode == 0, done.stderr
    results = json_lines(done.stdout)
    assert [len(r["successful"]) for r in results] == [5, 5, 2]
    indexes = [item["index"] for r in results for item in r["successful"]]
    assert indexes == list(range(12))
    assert [subscriber.next(timeout=5).json() for _ in range(12)] == [{"n": i} for i in range(12)]
    assert len(appsync_server.assert_published(f"/{CHANNEL}")) == 3


def test_cli_pub_more_than_five_arguments(
    appsync_server: EmulatorThread, cli_env: dict[str, str]
) -> None:
    """More than 5 EVENT arguments are batched too."""
    done = cli("pub", *key_args(appsync_server), CHANNEL, *map(str, range(7)), env=cli_env)
    assert done.returncode == 0, done.stderr
    assert [len(r["successful"]) for r in json_lines(done.stdout)] == [5, 2]


def test_cli_pub_http(
    appsync_server: EmulatorThread, cli_env: dict[str, str], subscriber: sync.Subscription
) -> None:
    """`pub --http` publishes with POST /event."""
    done = cli("pub", "--http", *key_args(appsync_server), CHANNEL, '"over http"', env=cli_env)
    assert done.returncode == 0, done.stderr
    assert subscriber.next(timeout=5).json() == "over http"
    (record,) = appsync_server.assert_published(f"/{CHANNEL}")
    assert record.transport == "http"


@pytest.mark.parametrize("http", [False, True], ids=["websocket", "http"])
def test_cli_pub_failed_event_exits_1(
    appsync_server: EmulatorThread, cli_env: dict[str, str], http: bool
) -> None:
    """An event in `failed` is printed and makes the exit status 1."""
    appsync_server.inject(FailEvents(indexes=(1,)))
    flags = ["--http"] if http else []
    done = cli("pub", *flags, *key_args(appsync_server), CHANNEL, "1", "2", env=cli_env)
    assert done.returncode == 1
    (result,) = json_lines(done.stdout)
    assert [item["index"] for item in result["successful"]] == [0]
    assert result["failed"][0]["index"] == 1
    assert result["failed"][0]["code"] == "EventProcessingError"
    assert "1 of 2 events failed" in done.stderr


# --- sub's ending --------------------------------------------------------------------------


def test_cli_sub_ctrl_c_exits_0(appsync_server: EmulatorThread, cli_env: dict[str, str]) -> None:
    """SIGINT ends `sub` with status 0, no traceback, after unsubscribing."""
    proc = start_cli("sub", *key_args(appsync_server), CHANNEL, env=cli_env)
    try:
        appsync_server.wait_subscribed_sync(f"/{CHANNEL}", timeout=RUN_TIMEOUT)
        proc.send_signal(signal.SIGINT)
    finally:
        status, out, err = finish(proc)
    assert status == 0, err
    assert "Traceback" not in err
    assert out == ""


def test_cli_pub_ctrl_c_exits_130(
    appsync_server: EmulatorThread, cli_env: dict[str, str], subscriber: sync.Subscription
) -> None:
    """SIGINT while `pub` waits for stdin ends it with status 130, what was sent stays sent."""
    proc = start_cli("pub", *key_args(appsync_server), CHANNEL, env=cli_env, stdin=subprocess.PIPE)
    try:
        assert proc.stdin is not None
        proc.stdin.write("1\n")
        proc.stdin.flush()
        assert subscriber.next(timeout=RUN_TIMEOUT).json() == 1
        assert proc.stdout is not None
        (result,) = json_lines(proc.stdout.readline())  # printed once the publish is acked
        proc.send_signal(signal.SIGINT)
    finally:
        status, out, err = finish(proc)
    assert status == 130, err
    assert "Traceback" not in err
    assert [item["index"] for item in result["successful"]] == [0]
    assert out == ""


def test_cli_sub_timeout_without_count_exits_0(
    appsync_server: EmulatorThread, cli_env: dict[str, str]
) -> None:
    """`--timeout` alone just bounds how long `sub` listens."""
    done = cli("sub", *key_args(appsync_server), "--timeout", "0.2", CHANNEL, env=cli_env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""


def test_cli_sub_count_not_reached_exits_1(
    appsync_server: EmulatorThread, cli_env: dict[str, str]
) -> None:
    """`--count` not reached within `--timeout` is a failure, said on one line."""
    done = cli(
        "sub", *key_args(appsync_server), "--count", "1", "--timeout", "0.2", CHANNEL, env=cli_env
    )
    assert done.returncode == 1
    assert "received 0 of 1 events within 0.2s" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 2  # "subscribed to", then the error


# --- endpoint and credentials ----------------------------------------------------------------


def test_cli_emulator_ready_file(
    appsync_server_factory: Any, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """`--emulator READY_FILE` takes endpoint, key and CA (TLS) from the emulator's file."""
    server = appsync_server_factory(tls=True)
    ready = tmp_path / "ready.json"
    write_ready_file(ready, ready_info(server))  # what `appsync-emulator --ready-file` writes
    for flags in ([], ["--http"]):
        done = cli("pub", *flags, "--emulator", str(ready), CHANNEL, "1", env=cli_env)
        assert done.returncode == 0, done.stderr
    assert server.http_endpoint.startswith("https:")
    assert len(server.assert_published(f"/{CHANNEL}")) == 2


def test_cli_emulator_ready_file_problems(cli_env: dict[str, str], tmp_path: Path) -> None:
    """A missing, malformed or stale ready file is a usage error saying what is wrong."""
    missing = cli("pub", "--emulator", str(tmp_path / "nope.json"), CHANNEL, "1", env=cli_env)
    assert missing.returncode == 2
    assert "cannot read the emulator's ready file" in missing.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{", encoding="utf-8")
    assert cli("pub", "--emulator", str(bad), CHANNEL, "1", env=cli_env).returncode == 2
    stale = tmp_path / "stale.json"
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    info = {"http_endpoint": "http://127.0.0.1:9/event", "pid": int(gone.stdout)}
    stale.write_text(json.dumps(info), encoding="utf-8")
    done = cli("pub", "--emulator", str(stale), CHANNEL, "1", env=cli_env)
    assert done.returncode == 2
    assert "is not running" in done.stderr


def test_cli_endpoint_and_key_from_environment(
    appsync_server: EmulatorThread, cli_env: dict[str, str]
) -> None:
    """APPSYNC_EVENTS_ENDPOINT and APPSYNC_EVENTS_API_KEY stand in for the flags."""
    env = {
        **cli_env,
        "APPSYNC_EVENTS_ENDPOINT": appsync_server.http_endpoint,
        "APPSYNC_EVENTS_API_KEY": appsync_server.api_key or "",
    }
    assert cli("pub", CHANNEL, "1", env=env).returncode == 0
    env_rt = {**env, "APPSYNC_EVENTS_REALTIME_ENDPOINT": appsync_server.realtime_endpoint}
    del env_rt["APPSYNC_EVENTS_ENDPOINT"]
    done = cli("pub", "--http", CHANNEL, "2", env=env_rt)  # the HTTP endpoint is derived
    assert done.returncode == 0, done.stderr
    assert len(appsync_server.assert_published(f"/{CHANNEL}")) == 2


@pytest.mark.appsync(auth_modes=["AWS_IAM"])
def test_cli_iam_from_environment_credentials(
    appsync_server: EmulatorThread, cli_env: dict[str, str]
) -> None:
    """`--iam` signs with the credential chain (here: AWS_ACCESS_KEY_ID/SECRET)."""
    creds = appsync_server.config.iam_credentials[0]
    env = {
        **cli_env,
        "AWS_ACCESS_KEY_ID": creds.access_key_id,
        "AWS_SECRET_ACCESS_KEY": creds.secret_access_key,
        "AWS_REGION": appsync_server.region,
    }
    for flags in ([], ["--http"]):
        done = cli(
            "pub",
            *flags,
            "--endpoint",
            appsync_server.http_endpoint,
            "--iam",
            CHANNEL,
            "1",
            env=env,
        )
        assert done.returncode == 0, done.stderr
    records = appsync_server.assert_published(f"/{CHANNEL}")
    assert {r.auth_mode for r in records} == {AuthType.AWS_IAM}


@pytest.mark.appsync(auth_modes=["AWS_IAM"])
def test_cli_iam_profile(
    appsync_server: EmulatorThread, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """`--profile` (or AWS_PROFILE) picks a profile of the shared credentials file."""
    creds = appsync_server.config.iam_credentials[0]
    (tmp_path / "credentials").write_text(
        f"[emu]\naws_access_key_id = {creds.access_key_id}\n"
        f"aws_secret_access_key = {creds.secret_access_key}\n",
        encoding="utf-8",
    )
    env = {**cli_env, "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials")}
    base = ["pub", "--endpoint", appsync_server.http_endpoint, "--region", appsync_server.region]
    done = cli(*base, "--iam", "--profile", "emu", CHANNEL, "1", env=env)
    assert done.returncode == 0, done.stderr
    done = cli(*base, "--iam", CHANNEL, "2", env={**env, "AWS_PROFILE": "emu"})
    assert done.returncode == 0, done.stderr
    missing = cli(*base, "--iam", "--profile", "nobody", CHANNEL, "3", env=env)
    assert missing.returncode == 2
    assert "no AWS profile named 'nobody'" in missing.stderr


@pytest.mark.appsync(auth_modes=["AWS_IAM"])
def test_cli_iam_without_credentials(
    appsync_server: EmulatorThread, cli_env: dict[str, str]
) -> None:
    """`--iam` with an empty credential chain fails on one line, status 1."""
    base = ["pub", "--endpoint", appsync_server.http_endpoint, "--region", appsync_server.region]
    done = cli(*base, "--iam", CHANNEL, "1", env=cli_env)
    assert done.returncode == 1
    assert "CredentialsError" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.appsync(auth_modes=["AWS_LAMBDA"], lambda_authorizer=allow_let_me_in)
def test_cli_token_lambda(appsync_server: EmulatorThread, cli_env: dict[str, str]) -> None:
    """`--token` (and APPSYNC_EVENTS_TOKEN) authorize with a Lambda-configured emulator."""
    base = ["pub", "--endpoint", appsync_server.http_endpoint]
    done = cli(*base, "--token", "let-me-in", CHANNEL, "1", env=cli_env)
    assert done.returncode == 0, done.stderr
    done = cli(*base, CHANNEL, "2", env={**cli_env, "APPSYNC_EVENTS_TOKEN": "let-me-in"})
    assert done.returncode == 0, done.stderr
    refused = cli(*base, "--token", "wrong", CHANNEL, "3", env=cli_env)
    assert refused.returncode == 1
    assert "UnauthorizedException" in refused.stderr


@pytest.mark.appsync(auth_modes=["OPENID_CONNECT"], oidc=True)
def test_cli_token_oidc(appsync_server: EmulatorThread, cli_env: dict[str, str]) -> None:
    """`--token` carries an OIDC token from the emulator's local issuer."""
    issuer = appsync_server.issuer
    oidc = appsync_server.config.oidc
    audience = {"audience": oidc.client_id} if oidc is not None and oidc.client_id else {}
    token = issuer.mint("user-1", issuer=issuer.oidc_issuer, **audience)
    done = cli(
        "sub",
        "--endpoint",
        appsync_server.http_endpoint,
        "--token",
        token,
        "--timeout",
        "0.1",
        CHANNEL,
        env=cli_env,
    )
    assert done.returncode == 0, done.stderr
    done = cli(
        "pub",
        "--http",
        "--endpoint",
        appsync_server.http_endpoint,
        "--token",
        token,
        CHANNEL,
        "1",
        env=cli_env,
    )
    assert done.returncode == 0, done.stderr


RESOLVE_AWS_LOCALLY = """\
import socket

_real = socket.getaddrinfo


def getaddrinfo(host, *args, **kwargs):
    if isinstance(host, str) and host.endswith(".amazonaws.com"):
        host = "127.0.0.1"
    return _real(host, *args, **kwargs)


socket.getaddrinfo = getaddrinfo
"""


def aws_dns(env: Mapping[str, str], tmp_path: Path) -> dict[str, str]:
    """``env`` for a subprocess that resolves every ``*.amazonaws.com`` host to 127.0.0.1."""
    (tmp_path / "dns").mkdir()
    (tmp_path / "dns" / "sitecustomize.py").write_text(RESOLVE_AWS_LOCALLY, encoding="utf-8")
    return {**env, "PYTHONPATH": os.pathsep.join([str(tmp_path / "dns"), env["PYTHONPATH"]])}


def test_cli_aws_shaped_endpoint(
    appsync_server: EmulatorThread, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """An AWS host name: the real-time host is derived and IAM takes the region from it.

    The test double is the emulator, reached through AWS-shaped host names that the
    subprocess resolves to 127.0.0.1 (a ``sitecustomize`` module wraps ``getaddrinfo``).
    """
    env = aws_dns(cli_env, tmp_path)
    port = appsync_server.port
    endpoint = f"http://abc123example.appsync-api.us-east-1.amazonaws.com:{port}/event"
    done = cli(
        "pub",
        "--endpoint",
        endpoint,
        "--api-key",
        appsync_server.api_key or "",
        "--debug",
        CHANNEL,
        "1",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert (
        f"ws://abc123example.appsync-realtime-api.us-east-1.amazonaws.com:{port}/event/realtime"
        in done.stderr
    )
    assert f'"host":"abc123example.appsync-api.us-east-1.amazonaws.com:{port}"' in done.stderr
    appsync_server.assert_published(f"/{CHANNEL}", count=1)


# The emulator accepts a signature for an AWS host name only when it is listed (it would
# otherwise accept a request signed for another API).
@pytest.mark.appsync(
    auth_modes=["AWS_IAM"],
    custom_domains=("abc123example.appsync-api.us-east-1.amazonaws.com",),
)
def test_cli_aws_shaped_endpoint_iam_region(
    appsync_server: EmulatorThread, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """IAM signs for the AWS host's region without --region."""
    creds = appsync_server.config.iam_credentials[0]
    env = {
        **aws_dns(cli_env, tmp_path),
        "AWS_ACCESS_KEY_ID": creds.access_key_id,
        "AWS_SECRET_ACCESS_KEY": creds.secret_access_key,
    }
    endpoint = f"http://abc123example.appsync-api.{appsync_server.region}.amazonaws.com:{appsync_server.port}/event"
    for flags in ([], ["--http"]):
        done = cli("pub", *flags, "--endpoint", endpoint, "--iam", CHANNEL, "1", env=env)
        assert done.returncode == 0, done.stderr
    assert len(appsync_server.assert_published(f"/{CHANNEL}")) == 2


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("http", [False, True], ids=["websocket", "http"])
def test_cli_bad_key_is_one_line(
    appsync_server: EmulatorThread, cli_env: dict[str, str], http: bool
) -> None:
    """A refused API key: exit 1, one line naming the AppSync error type, no traceback."""
    flags = ["--http"] if http else []
    done = cli(
        "pub",
        *flags,
        "--endpoint",
        appsync_server.http_endpoint,
        "--api-key",
        "da2-wrong",
        CHANNEL,
        "1",
        env=cli_env,
    )
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("appsync-events: error: ")
    assert "UnauthorizedException" in line


def test_cli_bad_key_for_sub(appsync_server: EmulatorThread, cli_env: dict[str, str]) -> None:
    """`sub` with a refused key fails the same way."""
    done = cli(
        "sub",
        "--endpoint",
        appsync_server.http_endpoint,
        "--api-key",
        "da2-wrong",
        CHANNEL,
        env=cli_env,
    )
    assert done.returncode == 1
    assert "UnauthorizedException" in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_unreachable_endpoint(cli_env: dict[str, str]) -> None:
    """Nothing listening: exit 1 with one line saying the connection could not be made."""
    # Port 9 (discard) on loopback: nothing listens there in a test environment.
    endpoint = "http://127.0.0.1:9/event"
    for command in (["pub", CHANNEL, "1"], ["pub", "--http", CHANNEL, "1"], ["sub", CHANNEL]):
        done = cli(command[0], "--endpoint", endpoint, "--api-key", "k", *command[1:], env=cli_env)
        assert done.returncode == 1, command
        (line,) = done.stderr.strip().splitlines()
        assert "127.0.0.1:9" in line
        assert "Traceback" not in line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["pub", "--api-key", "k", CHANNEL, "1"], "no endpoint"),
        (["pub", "--endpoint", "ftp://x/event", "--api-key", "k", CHANNEL, "1"], "scheme"),
        (["pub", "--endpoint", "http://127.0.0.1:9/event", CHANNEL, "1"], "no credentials"),
        (
            ["pub", "--endpoint", "http://127.0.0.1:9/event", "--api-key", "k", CHANNEL, "hi"],
            "not JSON",
        ),
        (
            ["pub", "--endpoint", "http://127.0.0.1:9/event", "--api-key", "k", "default/*", "1"],
            "InvalidChannelError",
        ),
        (["sub", "--endpoint", "http://127.0.0.1:9/event", "--api-key", "k", "a//b"], "Invalid"),
        (["sub", "--count", "0", CHANNEL], "positive integer"),
        (["sub", "--timeout", "soon", CHANNEL], "number of seconds"),
        (["pub", "--api-key", "k", "--iam", CHANNEL, "1"], "not allowed with"),
        (["fly"], "invalid choice"),
        ([], "required"),
    ],
)
def test_cli_usage_errors_exit_2(cli_env: dict[str, str], args: list[str], message: str) -> None:
    """Usage errors exit with status 2 and say what is wrong, without a traceback."""
    done = cli(*args, env=cli_env)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_debug_shows_frames_without_secrets(
    appsync_server: EmulatorThread, cli_env: dict[str, str]
) -> None:
    """`--debug` logs the frames on stderr; the API key never appears."""
    key = appsync_server.api_key or ""
    done = cli("pub", *key_args(appsync_server), "--debug", CHANNEL, "1", env=cli_env)
    assert done.returncode == 0, done.stderr
    assert '> {"type":"publish"' in done.stderr
    assert "<redacted>" in done.stderr
    assert key[4:] not in done.stderr
    http = cli("pub", "--http", *key_args(appsync_server), "--debug", CHANNEL, "1", env=cli_env)
    assert "> POST" in http.stderr
    assert key[4:] not in http.stderr


def test_cli_console_script_is_declared() -> None:
    """pyproject.toml names appsync_events.cli:main as the appsync-events script."""
    import tomllib

    pyproject = Path(__file__).parents[1] / "pyproject.toml"
    scripts = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["scripts"]
    assert scripts["appsync-events"] == "appsync_events.cli:main"


# --- output formats (in process) ---------------------------------------------------------------


def test_cli_readable_output_is_coloured(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a terminal, events are readable lines with colour unless NO_COLOR is set."""
    monkeypatch.delenv("NO_COLOR", raising=False)
    stream = io.StringIO()
    _Printer(stream, readable=True).event(Message('{"a": 1}', "sub-1", "default/x"))
    line = stream.getvalue()
    assert "\033[36mdefault/x\033[0m" in line
    assert line.rstrip().endswith('{"a": 1}')
    monkeypatch.setenv("NO_COLOR", "1")
    plain = io.StringIO()
    _Printer(plain, readable=True).event(Message('"x"', "sub-1", "default/x"))
    assert "\033" not in plain.getvalue()
