"""One suite, two targets: ``--appsync-target`` against an emulator started as another process.

Each test writes a user test file and runs pytest on it in-process (as the other plugin
tests do) with ``--appsync-target`` pointing at one ``python -m appsync_emulator``
subprocess started for this module, the way CI runs the example suite.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TIMEOUT_FACTOR

START_TIMEOUT = 30.0 * TIMEOUT_FACTOR
"""Seconds the emulator process may take to listen."""

CONFIG = """
[[iamCredentials]]
accessKeyId = "AKIATARGETTESTS00000"
secretAccessKey = "target/tests/secret/access/key/00000000"

[eventConfig]
authProviders = [{ authType = "API_KEY" }, { authType = "AWS_IAM" }]
connectionAuthModes = [{ authType = "API_KEY" }, { authType = "AWS_IAM" }]
defaultPublishAuthModes = [{ authType = "API_KEY" }, { authType = "AWS_IAM" }]
defaultSubscribeAuthModes = [{ authType = "API_KEY" }, { authType = "AWS_IAM" }]
"""
"""The external emulator's configuration: API key and IAM, namespace ``default``."""

NEUTRAL = """
import pytest

from appsync_emulator.remote import RemoteTarget
from appsync_events import sync


@pytest.mark.asyncio
async def test_roundtrip(appsync_server, appsync_client):
    assert isinstance(appsync_server, RemoteTarget)
    sub = await appsync_client.subscribe("default/room")
    result = await appsync_client.publish("default/room", {"n": 1})
    assert len(result.successful) == 1
    assert (await sub.next()).json() == {"n": 1}


def test_sync_http_publish(appsync_server, appsync_authorizer):
    ssl = appsync_server.client_ssl_context() if appsync_server.tls else None
    result = sync.publish_http(
        appsync_server.http_endpoint, "default/jobs", {"job": 1},
        authorizer=appsync_authorizer, ssl=ssl,
    )
    assert [s.index for s in result.successful] == [0]
"""


def _wait_for_banner(process: subprocess.Popen[str], ready: threading.Event) -> None:
    # Drain stdout so that the emulator never blocks on a full pipe; the banner's
    # "HTTP publish" line comes right after the ready file is written.
    assert process.stdout is not None
    for line in process.stdout:
        if "HTTP publish" in line:
            ready.set()
    ready.set()  # the process ended: let the waiter look at why


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """An emulator process (API key and IAM); yields its ready file's contents."""
    folder = tmp_path_factory.mktemp("target")
    (folder / "emulator.toml").write_text(CONFIG, encoding="utf-8")
    ready_file = folder / "ready.json"
    command = [sys.executable, "-u", "-m", "appsync_emulator", "--port", "0", "--no-console"]
    command += ["--config", str(folder / "emulator.toml"), "--ready-file", str(ready_file)]
    command += ["--log-level", "warning"]
    log = folder / "emulator.log"
    with (
        log.open("w", encoding="utf-8") as stderr,
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True) as process,
    ):
        ready = threading.Event()
        reader = threading.Thread(target=_wait_for_banner, args=(process, ready), daemon=True)
        reader.start()
        try:
            assert ready.wait(START_TIMEOUT), "the emulator process did not start in time"
            assert process.poll() is None, log.read_text(encoding="utf-8")
            yield json.loads(ready_file.read_text(encoding="utf-8"))
        finally:
            process.terminate()
            process.wait(timeout=START_TIMEOUT)
            reader.join(START_TIMEOUT)


@pytest.fixture
def environ(monkeypatch: pytest.MonkeyPatch, target: dict[str, str]) -> pytest.MonkeyPatch:
    """A clean environment for the inner runs, with the target's API key."""
    for name in ("APPSYNC_TARGET", "APPSYNC_AUTH", "APPSYNC_CA_FILE", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("APPSYNC_API_KEY", target["api_key"])
    return monkeypatch


def run(pytester: pytest.Pytester, source: str, *args: str, ini: str = "") -> pytest.RunResult:
    """Run ``source`` as a user's test module (strict asyncio mode, warnings are errors)."""
    pytester.makeini(
        "[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n"
        "filterwarnings =\n    error\n"
        "    ignore:Module already imported:pytest.PytestAssertRewriteWarning\n"
        f"{textwrap.dedent(ini)}"
    )
    pytester.makepyfile(test_user=textwrap.dedent(source))
    return pytester.runpytest("-p", "no:cacheprovider", "-rs", *args)


def targeted(pytester: pytest.Pytester, url: str, source: str, *args: str) -> pytest.RunResult:
    """:func:`run` with ``--appsync-target=url``."""
    return run(pytester, source, f"--appsync-target={url}", *args)


def test_target_fixtures_connect_publish_and_subscribe(
    pytester: pytest.Pytester, environ: pytest.MonkeyPatch, target: dict[str, str]
) -> None:
    """Against another emulator process the fixtures connect, publish and subscribe."""
    result = targeted(pytester, target["http_endpoint"], NEUTRAL)
    result.assert_outcomes(passed=2)


def test_target_endpoints_are_the_targets(
    pytester: pytest.Pytester, environ: pytest.MonkeyPatch, target: dict[str, str]
) -> None:
    """appsync_server names the target's endpoints (the real-time one derived), starts none."""
    source = f"""
    def test_endpoints(appsync_server):
        assert appsync_server.http_endpoint == {target["http_endpoint"]!r}
        assert appsync_server.realtime_endpoint == {target["realtime_endpoint"]!r}
        assert appsync_server.api_key == {target["api_key"]!r}
        assert appsync_server.region == "us-east-1"
        assert not appsync_server.tls
    """
    targeted(pytester, target["http_endpoint"], source).assert_outcomes(passed=1)


def test_target_emulator_only_member_skips_with_its_name(
    pytester: pytest.Pytester, environ: pytest.MonkeyPatch, target: dict[str, str]
) -> None:
    """Reading an emulator-only member skips the test, naming the member and the target."""
    source = """
    import pytest

    @pytest.mark.asyncio
    async def test_recorder(appsync_server, appsync_client):
        await appsync_client.publish("default/room", {"n": 1})
        appsync_server.assert_published("/default/room", count=1)

    def test_inject(appsync_server):
        from appsync_emulator.faults import NeverAck
        appsync_server.inject(NeverAck())
    """
    result = targeted(pytester, target["http_endpoint"], source)
    result.assert_outcomes(skipped=2)
    url = target["http_endpoint"]
    result.stdout.fnmatch_lines(
        [
            f"SKIPPED*test_user.py:*: emulator-only: appsync_server.assert_published needs the "
            f"emulator; the target is {url}",
            f"SKIPPED*test_user.py:*: emulator-only: appsync_server.inject needs the emulator; "
            f"the target is {url}",
        ],
        consecutive=False,
    )


def test_target_marked_emulator_only_skips_before_setup(
    pytester: pytest.Pytester, environ: pytest.MonkeyPatch, target: dict[str, str]
) -> None:
    """``@pytest.mark.appsync_emulator_only`` skips before any fixture runs."""
    source = """
    import pytest

    @pytest.fixture
    def boom():
        raise AssertionError("set-up must not run")

    @pytest.mark.appsync_emulator_only(reason="injects faults")
    def test_faults(boom, appsync_server):
        pass
    """
    result = targeted(pytester, target["http_endpoint"], source)
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        ["SKIPPED*emulator-only: test_faults (marked appsync_emulator_only: injects faults)*"]
    )


def test_target_marked_emulator_only_runs_on_the_emulator(
    pytester: pytest.Pytester, environ: pytest.MonkeyPatch
) -> None:
    """Without a target the marker changes nothing."""
    source = """
    import pytest

    @pytest.mark.appsync_emulator_only
    def test_faults(appsync_server):
        assert appsync_server.recorder.published == []
    """
    run(pytester, source, "--strict-markers").assert_outcomes(passed=1)


def test_target_server_mark_skips_and_client_mark_runs(
    pytester: pytest.Pytester, environ: pytest.MonkeyPatch, target: dict[str, str]
) -> None:
    """A mark that configures the server skips; ``client=`` options still apply."""
    source = """
    import pytest

    @pytest.mark.appsync(namespaces=["default", "chat"], keepalive_interval=1)
    def test_configured(appsync_server):
        pass

    @pytest.mark.appsync(client={"operation_timeout": 7})
    @pytest.mark.asyncio
    async def test_client_options(appsync_client, appsync_client_options):
        assert appsync_client_options["operation_timeout"] == 7
        await appsync_client.publish("default/room", {"n": 1})
    """
    result = targeted(pytester, target["http_endpoint"], source)
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "SKIPPED*emulator-only: @pytest.mark.appsync(keepalive_interval=..., "
            "namespaces=...) (it configures the server) needs the emulator*"
        ]
    )


def test_target_server_factory_skips(
    pytester: pytest.Pytester, environ: pytest.MonkeyPatch, target: dict[str, str]
) -> None:
    """Starting more emulators is emulator-only; the client factory still works."""
    source = """
    import pytest

    @pytest.mark.asyncio
    async def test_two(appsync_server, appsync_client_factory):
        first = await appsync_client_factory(appsync_server)
        await first.publish("default/room", {"n": 1})

    def test_factory(appsync_server_factory):
        appsync_server_factory(namespaces=["x"])
    """
    result = targeted(pytester, target["http_endpoint"], source)
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED*emulator-only: appsync_server_factory*"])


def test_target_iam_from_the_environment(
    pytester: pytest.Pytester, environ: pytest.MonkeyPatch, target: dict[str, str]
) -> None:
    """APPSYNC_AUTH=iam signs with botocore's chain (here: AWS_* variables)."""
    environ.delenv("APPSYNC_API_KEY")
    environ.setenv("APPSYNC_AUTH", "iam")
    environ.setenv("AWS_ACCESS_KEY_ID", "AKIATARGETTESTS00000")
    environ.setenv("AWS_SECRET_ACCESS_KEY", "target/tests/secret/access/key/00000000")
    environ.delenv("AWS_SESSION_TOKEN", raising=False)
    environ.setenv("AWS_REGION", "us-east-1")
    source = (
        NEUTRAL
        + """

@pytest.mark.asyncio
async def test_auth_fixture(appsync_server, appsync_auth, appsync_client_factory):
    assert appsync_server.api_key is None
    client = await appsync_client_factory(appsync_server, authorizer=appsync_auth.iam())
    await client.publish("default/room", {"n": 2})
    with pytest.raises(Exception, match="has no API key"):
        appsync_auth.api_key()
    appsync_auth.cognito()
"""
    )
    result = targeted(pytester, target["http_endpoint"], source)
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED*emulator-only: appsync_auth.cognito()*"])


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://127.0.0.1/event", "*scheme must be one of https, http, not 'ftp'*"),
        ("http://127.0.0.1:8080/graphql", "*the HTTP endpoint's path must be /event*"),
        ("127.0.0.1:8080", "*expected an absolute URL*"),
    ],
)
def test_target_bad_url_is_one_line_at_start(
    pytester: pytest.Pytester, environ: pytest.MonkeyPatch, url: str, message: str
) -> None:
    """A malformed target fails the session at start with one line, no traceback."""
    result = targeted(pytester, url, "def test_x(appsync_server):\n    pass\n")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if line.strip()]
    assert len(errors) == 1, result.errlines
    assert errors[0].startswith("ERROR: appsync target (from --appsync-target): ")
    result.stderr.fnmatch_lines([message])


def test_target_unreachable_is_one_line_at_start(
    pytester: pytest.Pytester, environ: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A target nothing listens on is reported at start, not as one failure per test."""
    import socket

    with socket.socket() as sock:  # a port that was free a moment ago, and is closed now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/event"
    result = targeted(pytester, url, "def test_x(appsync_server):\n    pass\n")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: appsync target (from --appsync-target): cannot reach {url} *"]
    )


def test_target_missing_api_key_is_reported(
    pytester: pytest.Pytester, environ: pytest.MonkeyPatch, target: dict[str, str]
) -> None:
    """Without APPSYNC_API_KEY (and no APPSYNC_AUTH=iam) the session says what to set."""
    environ.delenv("APPSYNC_API_KEY")
    environ.setenv("APPSYNC_TARGET", target["http_endpoint"])
    result = run(pytester, "def test_x(appsync_server):\n    pass\n")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: appsync target (from APPSYNC_TARGET): no API key for the target *"
            "set APPSYNC_API_KEY (or APPSYNC_AUTH=iam to sign with AWS credentials)"
        ]
    )


def test_target_ini_option_and_the_emulator_override(
    pytester: pytest.Pytester, environ: pytest.MonkeyPatch, target: dict[str, str]
) -> None:
    """The ini option selects a target; ``--appsync-target=emulator`` starts emulators again."""
    source = """
    from appsync_emulator import EmulatorThread

    def test_kind(appsync_server, request):
        wanted = request.config.getoption("appsync_target") != "emulator"
        assert (type(appsync_server).__name__ == "RemoteTarget") is wanted
    """
    ini = f"appsync_target = {target['http_endpoint']}\n"
    run(pytester, source, ini=ini).assert_outcomes(passed=1)
    environ.setenv("APPSYNC_TARGET", "http://256.0.0.1/event")  # beaten by the option
    run(pytester, source, "--appsync-target=emulator", ini=ini).assert_outcomes(passed=1)


def test_target_over_tls_with_a_ca_file(
    pytester: pytest.Pytester, environ: pytest.MonkeyPatch
) -> None:
    """A wss:// target whose CA is named by APPSYNC_CA_FILE: the fixtures trust it."""
    from appsync_emulator import EmulatorThread

    with EmulatorThread(tls=True) as server:
        assert server.ca_cert_path is not None
        environ.setenv("APPSYNC_API_KEY", str(server.api_key))
        environ.setenv("APPSYNC_CA_FILE", server.ca_cert_path)
        result = targeted(pytester, server.http_endpoint, NEUTRAL)
    result.assert_outcomes(passed=2)


def test_target_under_xdist(
    pytester: pytest.Pytester, environ: pytest.MonkeyPatch, target: dict[str, str]
) -> None:
    """Every xdist worker runs against the one target (the option reaches the workers)."""
    pytest.importorskip("xdist")
    pytester.makeini(
        "[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(test_user=textwrap.dedent(NEUTRAL))
    url = target["http_endpoint"]
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "2", f"--appsync-target={url}"
    )
    result.assert_outcomes(passed=2)
