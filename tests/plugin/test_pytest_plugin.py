"""The pytest plugin as users meet it, driven through ``pytester``.

Each test writes a user test file and an ini file, runs pytest on it in-process (the plugin
comes from the installed ``appsync`` entry point, as for users) and checks the outcome.
"""

from __future__ import annotations

import sys
import textwrap
import time

import pytest

from tests.conftest import MS

ROUNDTRIP = """
import pytest

@pytest.mark.asyncio
async def test_roundtrip(appsync_server, appsync_client):
    sub = await appsync_client.subscribe("default/room")
    result = await appsync_client.publish("default/room", {"n": 1})
    assert len(result.successful) == 1
    assert (await sub.next()).json() == {"n": 1}
    appsync_server.recorder.assert_published("/default/room", count=1)
"""


def run(
    pytester: pytest.Pytester,
    source: str,
    *args: str,
    mode: str = "strict",
    fixture_scope: str = "function",
    test_scope: str = "function",
    ini: str = "",
    subprocess: bool = False,
) -> pytest.RunResult:
    """Run ``source`` as a user's test module under the given pytest-asyncio settings."""
    pytester.makeini(
        f"[pytest]\nasyncio_mode = {mode}\n"
        f"asyncio_default_fixture_loop_scope = {fixture_scope}\n"
        f"asyncio_default_test_loop_scope = {test_scope}\n"
        "filterwarnings =\n    error\n"
        # inline runs only: the outer session imported the plugin before the inner one
        "    ignore:Module already imported:pytest.PytestAssertRewriteWarning\n"
        f"{textwrap.dedent(ini)}"
    )
    pytester.makepyfile(test_user=textwrap.dedent(source))
    if subprocess:
        return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)
    return pytester.runpytest("-p", "no:cacheprovider", *args)


@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_plugin_async_test_in_both_modes(pytester: pytest.Pytester, mode: str) -> None:
    """A marked async test gets a connected client in strict and auto mode."""
    run(pytester, ROUNDTRIP, mode=mode).assert_outcomes(passed=1)


def test_plugin_auto_mode_unmarked_async_test(pytester: pytest.Pytester) -> None:
    """In auto mode an unmarked async test works too."""
    source = ROUNDTRIP.replace("@pytest.mark.asyncio\n", "")
    run(pytester, source, mode="auto").assert_outcomes(passed=1)


@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_plugin_session_loop_scope(pytester: pytest.Pytester, mode: str) -> None:
    """With both loop scopes 'session', every test gets its own server and client."""
    source = (
        ROUNDTRIP
        + """
@pytest.mark.asyncio(loop_scope="session")
async def test_second(appsync_server, appsync_client):
    assert appsync_server.recorder.published == []  # a fresh server
    await appsync_client.publish("default/room", {"n": 2})
    appsync_server.recorder.assert_published("/default/room", events=[{"n": 2}])
"""
    )
    result = run(pytester, source, mode=mode, fixture_scope="session", test_scope="session")
    result.assert_outcomes(passed=2)


def test_plugin_sync_test_publishes_over_http(pytester: pytest.Pytester) -> None:
    """A sync test uses appsync_server with sync application code publishing over HTTP."""
    source = """
    import http.client, json
    from urllib.parse import urlsplit

    def notify(endpoint, api_key, text):
        url = urlsplit(endpoint)
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
        body = json.dumps({"channel": "default/alerts", "events": [json.dumps({"text": text})]})
        headers = {"content-type": "application/json", "x-api-key": api_key}
        try:
            conn.request("POST", url.path, body, headers)
            return conn.getresponse().status
        finally:
            conn.close()

    def test_notify(appsync_server):
        assert notify(appsync_server.http_endpoint, appsync_server.api_key, "hi") == 200
        appsync_server.recorder.assert_published("/default/alerts", count=1)
    """
    run(pytester, source).assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("fixture_scope", "test_scope", "mark"),
    [
        ("session", "function", "@pytest.mark.asyncio"),
        ("function", "function", '@pytest.mark.asyncio(loop_scope="session")'),
        ("function", "module", "@pytest.mark.asyncio"),
    ],
)
def test_plugin_loop_scope_mismatch_fails_fast(
    pytester: pytest.Pytester, fixture_scope: str, test_scope: str, mark: str
) -> None:
    """Different test and fixture loop scopes give a clear error at once, not a stall."""
    source = ROUNDTRIP.replace("@pytest.mark.asyncio", mark)
    started = time.perf_counter()
    result = run(pytester, source, fixture_scope=fixture_scope, test_scope=test_scope)
    elapsed = time.perf_counter() - started
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*LoopScopeError: appsync_client runs on the *-scoped event loop but*"]
    )
    result.stdout.fnmatch_lines(["*Set asyncio_default_fixture_loop_scope = *"])
    assert elapsed < 3000 * MS


def test_plugin_strict_mode_unmarked_async_test_is_explained(pytester: pytest.Pytester) -> None:
    """Strict mode without @pytest.mark.asyncio says to mark the test."""
    source = ROUNDTRIP.replace("@pytest.mark.asyncio\n", "")
    result = run(pytester, source, mode="strict")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*has no @pytest.mark.asyncio and asyncio_mode is strict*"])


def test_plugin_sync_test_cannot_use_async_client(pytester: pytest.Pytester) -> None:
    """A sync test asking for appsync_client is told to use appsync_server."""
    source = """
    def test_sync(appsync_client):
        pass
    """
    result = run(pytester, source)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*is not a coroutine function; use appsync_server (sync)*"])


def test_plugin_freezegun_keeps_keepalives_flowing(pytester: pytest.Pytester) -> None:
    """Frozen wall clock (real_asyncio=True) across several ka intervals: no false timeout."""
    source = """
    import asyncio, pytest
    from freezegun import freeze_time

    async def wait_kas(server, n):
        # blocking recorder wait in a worker thread: frame records wake blocking waiters
        pred = lambda r: [f for f in r.sent if f.frame_type == "ka"][n - 1:] or None
        await asyncio.to_thread(server.recorder.wait_for_sync, pred, 5.0)

    @pytest.mark.appsync(keepalive_interval=0.05, connection_timeout_ms=1000)
    @pytest.mark.asyncio
    async def test_frozen(appsync_server, appsync_client, appsync_server_factory,
                          appsync_client_factory):
        with freeze_time("2030-01-01", real_asyncio=True) as frozen:
            # 24 ka intervals, more than connectionTimeoutMs (1 s, room for a loaded
            # machine), pass while the wall clock is frozen
            await wait_kas(appsync_server, 24)
            late = appsync_server_factory(keepalive_interval=0.05, connection_timeout_ms=1000)
            client = await appsync_client_factory(late)
            await wait_kas(late, 24)
            frozen.tick(600)
        for c in (appsync_client, client):
            sub = await c.subscribe("default/t")
            await c.publish("default/t", {"n": 1})
            assert (await sub.next()).json() == {"n": 1}
    """
    run(pytester, source).assert_outcomes(passed=1)


def test_plugin_two_servers_in_one_test(pytester: pytest.Pytester) -> None:
    """Two servers (as under xdist) have their own ports, state and recorders."""
    source = """
    import pytest

    @pytest.mark.asyncio
    async def test_two(appsync_server, appsync_server_factory, appsync_client_factory):
        other = appsync_server_factory(namespaces=["default", "chat"])
        assert other.port != appsync_server.port
        a = await appsync_client_factory(appsync_server)
        b = await appsync_client_factory(other)
        sub = await b.subscribe("chat/x")
        await a.publish("default/x", {"from": "a"})
        await b.publish("chat/x", {"from": "b"})
        assert (await sub.next()).json() == {"from": "b"}
        appsync_server.recorder.assert_published("/default/x", count=1)
        assert [p.channel for p in other.recorder.published] == ["/chat/x"]
    """
    run(pytester, source).assert_outcomes(passed=1)


def test_plugin_runs_under_xdist(pytester: pytest.Pytester) -> None:
    """Parallel workers each start their own emulators without port clashes."""
    pytest.importorskip("xdist")
    source = "\n".join(ROUNDTRIP.replace("test_roundtrip", f"test_roundtrip_{i}") for i in range(4))
    result = run(pytester, source, "-n", "2", subprocess=True)
    result.assert_outcomes(passed=4)


def test_plugin_marker_configures_server(pytester: pytest.Pytester) -> None:
    """Marker keywords (with shorthands) reach server.config; tests without it get defaults."""
    source = """
    import pytest

    @pytest.mark.appsync(namespaces=["default", "chat"], connection_timeout_ms=300,
                         keepalive_interval=0.05, auth_modes=["API_KEY", "AWS_IAM"])
    def test_marked(appsync_server):
        config = appsync_server.config
        assert [n.name for n in config.namespaces] == ["default", "chat"]
        assert (config.connection_timeout_ms, config.keepalive_interval) == (300, 0.05)
        assert [str(m) for m in config.connection_auth_modes] == ["API_KEY", "AWS_IAM"]

    def test_unmarked(appsync_server):
        assert [n.name for n in appsync_server.config.namespaces] == ["default"]
    """
    run(pytester, source).assert_outcomes(passed=2)


def test_plugin_markers_merge_closest_wins(pytester: pytest.Pytester) -> None:
    """Module, class and function marks combine; the closest keyword wins."""
    source = """
    import pytest

    pytestmark = pytest.mark.appsync(region="eu-west-1", namespaces=["default", "chat"])

    class TestGroup:
        pytestmark = pytest.mark.appsync(region="ap-south-1")

        def test_class(self, appsync_server):
            assert appsync_server.region == "ap-south-1"
            assert len(appsync_server.config.namespaces) == 2

        @pytest.mark.appsync(region="sa-east-1", client={"operation_timeout": 2.0})
        def test_function(self, appsync_server, appsync_client_options):
            assert appsync_server.region == "sa-east-1"
            assert len(appsync_server.config.namespaces) == 2
            assert appsync_client_options == {"operation_timeout": 2.0}

    def test_module(appsync_server):
        assert appsync_server.region == "eu-west-1"
    """
    run(pytester, source).assert_outcomes(passed=3)


def test_plugin_marker_positional_config(pytester: pytest.Pytester) -> None:
    """A positional EmulatorConfig replaces the base config; keywords apply on top."""
    source = """
    import pytest
    from appsync_emulator import EmulatorConfig

    @pytest.mark.appsync(EmulatorConfig(region="me-south-1"), keepalive_interval=2.0)
    def test_config(appsync_server):
        assert appsync_server.region == "me-south-1"
        assert appsync_server.config.keepalive_interval == 2.0

    @pytest.mark.appsync("default")
    def test_bad(appsync_server):
        pass
    """
    result = run(pytester, source)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*expected at most one positional EmulatorConfig*"])


def test_plugin_marker_typo_is_reported(pytester: pytest.Pytester) -> None:
    """An unknown marker keyword errors at setup, naming it."""
    source = """
    import pytest

    @pytest.mark.appsync(keepalive=0.05)
    def test_typo(appsync_server):
        pass
    """
    result = run(pytester, source)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ConfigError: unknown emulator option 'keepalive'*"])


def test_plugin_ini_options_set_defaults(pytester: pytest.Pytester) -> None:
    """appsync_* ini options configure every server and client fixture."""
    source = """
    import pytest

    def test_ini(appsync_server, appsync_client_options):
        config = appsync_server.config
        assert appsync_server.region == "eu-central-1"
        assert [n.name for n in config.namespaces] == ["default", "chat"]
        assert (config.connection_timeout_ms, config.keepalive_interval) == (300, 0.05)
        assert appsync_client_options == {"handshake_timeout": 2.0, "operation_timeout": 1.0}

    @pytest.mark.appsync(region="us-west-2", client={"operation_timeout": 3.0})
    def test_marker_wins(appsync_server, appsync_client_options):
        assert appsync_server.region == "us-west-2"
        assert appsync_client_options["operation_timeout"] == 3.0
    """
    ini = """
    appsync_region = eu-central-1
    appsync_namespaces = default chat
    appsync_connection_timeout_ms = 300
    appsync_keepalive_interval = 0.05
    appsync_handshake_timeout = 2
    appsync_operation_timeout = 1
    """
    run(pytester, source, ini=ini).assert_outcomes(passed=2)


def test_plugin_ini_config_file(pytester: pytest.Pytester) -> None:
    """appsync_config loads a TOML emulator config relative to the rootdir."""
    pytester.makefile(".toml", emulator='region = "ca-central-1"\nnamespaces = ["default", "x"]\n')
    source = """
    def test_file(appsync_server):
        assert appsync_server.region == "ca-central-1"
        assert [n.name for n in appsync_server.config.namespaces] == ["default", "x"]
    """
    run(pytester, source, ini="appsync_config = emulator.toml\n").assert_outcomes(passed=1)


def test_plugin_bad_ini_value_is_reported(pytester: pytest.Pytester) -> None:
    """A malformed ini value errors, naming the option."""
    source = """
    def test_x(appsync_server):
        pass
    """
    result = run(pytester, source, ini="appsync_keepalive_interval = fast\n")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*appsync_keepalive_interval: expected a float, got 'fast'*"])


def test_plugin_config_and_authorizer_fixtures_are_overridable(pytester: pytest.Pytester) -> None:
    """A conftest can override appsync_server_config and appsync_authorizer."""
    pytester.makeconftest(
        """
        import pytest
        from appsync_emulator import EmulatorConfig
        from appsync_emulator.testing import iam_authorizer

        @pytest.fixture
        def appsync_server_config():
            return EmulatorConfig(region="eu-west-3").replace(
                auth_providers=("API_KEY", "AWS_IAM"), connection_auth_modes=("AWS_IAM",),
                default_publish_auth_modes=("AWS_IAM",), default_subscribe_auth_modes=("AWS_IAM",))

        @pytest.fixture
        def appsync_authorizer(appsync_server):
            return iam_authorizer(appsync_server)
        """
    )
    source = (
        ROUNDTRIP
        + """
@pytest.mark.appsync(keepalive_interval=1.0)
def test_marker_composes(appsync_server):
    assert appsync_server.region == "eu-west-3"
    assert appsync_server.config.keepalive_interval == 1.0
"""
    )
    run(pytester, source).assert_outcomes(passed=2)


def test_plugin_each_test_gets_a_fresh_server(pytester: pytest.Pytester) -> None:
    """A fault injected without ``with`` and recorded traffic do not leak into the next test."""
    source = """
    import pytest
    from appsync_emulator.faults import RejectSubscribe
    from appsync_events import SubscribeError

    @pytest.mark.asyncio
    async def test_a(appsync_server, appsync_client):
        appsync_server.inject(RejectSubscribe())
        with pytest.raises(SubscribeError):
            await appsync_client.subscribe("default/a")

    @pytest.mark.asyncio
    async def test_b(appsync_server, appsync_client):
        assert appsync_server.recorder.subscriptions == []
        await appsync_client.subscribe("default/a")
        appsync_server.recorder.assert_subscribed("/default/a")
    """
    run(pytester, source).assert_outcomes(passed=2)


def test_plugin_marker_faults_apply_from_the_start(pytester: pytest.Pytester) -> None:
    """faults=[...] in the marker is active before the client connects."""
    source = """
    import pytest
    from appsync_emulator.faults import NeverAck
    from appsync_events import HandshakeTimeoutError

    @pytest.mark.appsync(faults=[NeverAck()])
    @pytest.mark.asyncio
    async def test_no_ack(appsync_server, appsync_client_factory):
        with pytest.raises(HandshakeTimeoutError):
            await appsync_client_factory(appsync_server, handshake_timeout=0.2)
    """
    run(pytester, source).assert_outcomes(passed=1)


def test_plugin_server_side_errors_fail_the_test(pytester: pytest.Pytester) -> None:
    """A crashing onPublish handler is re-raised by server.check() at teardown."""
    source = """
    import pytest
    from appsync_emulator.config import NamespaceConfig
    from appsync_events import PublishError

    def broken(ctx):
        raise ZeroDivisionError("handler bug")

    @pytest.mark.appsync(namespaces=[NamespaceConfig(name="default", on_publish=broken)])
    @pytest.mark.asyncio
    async def test_publish(appsync_client):
        with pytest.raises(PublishError):
            await appsync_client.publish("default/x", {"n": 1})
    """
    result = run(pytester, source)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_publish*", "*handler bug*"])


def test_plugin_auth_fixture_gives_every_mode(pytester: pytest.Pytester) -> None:
    """appsync_auth builds working authorizers for every auth mode (and a wrong token fails)."""
    source = """
    import pytest

    def allow(request):
        return {"isAuthorized": request["authorizationToken"] == "open-sesame"}

    @pytest.mark.appsync(
        auth_modes=["API_KEY", "AWS_IAM", "AMAZON_COGNITO_USER_POOLS", "OPENID_CONNECT",
                    "AWS_LAMBDA"],
        cognito=True, oidc={"client_id": "my-app"}, lambda_authorizer=allow)
    @pytest.mark.asyncio
    async def test_modes(appsync_server, appsync_auth, appsync_client_factory):
        for authz in (appsync_auth.api_key(), appsync_auth.iam(),
                      appsync_auth.cognito(sub="alice"), appsync_auth.oidc(sub="bob"),
                      appsync_auth.lambda_token("open-sesame")):
            client = await appsync_client_factory(appsync_server, authorizer=authz)
            await client.publish("default/x", {"n": 1})
        modes = [str(p.auth_mode) for p in appsync_server.recorder.published]
        assert modes == ["API_KEY", "AWS_IAM", "AMAZON_COGNITO_USER_POOLS", "OPENID_CONNECT",
                         "AWS_LAMBDA"]

    @pytest.mark.appsync(auth_modes=["AWS_LAMBDA"], lambda_authorizer=allow)
    @pytest.mark.asyncio
    async def test_wrong_token(appsync_server, appsync_auth, appsync_client_factory):
        from appsync_events import UnauthorizedError
        with pytest.raises(UnauthorizedError):
            await appsync_client_factory(appsync_server, authorizer=appsync_auth.lambda_token("x"))
    """
    run(pytester, source).assert_outcomes(passed=2)


def test_plugin_tls_ini_option(pytester: pytest.Pytester) -> None:
    """appsync_tls = true serves wss:// and clients trust the local CA automatically."""
    source = ROUNDTRIP.replace(
        "    sub = ", '    assert appsync_server.realtime_endpoint.startswith("wss://")\n    sub = '
    )
    run(pytester, source, ini="appsync_tls = true\n").assert_outcomes(passed=1)


def test_plugin_disabled_with_p_no(pytester: pytest.Pytester) -> None:
    """``-p no:appsync`` unloads the entry point, so its fixtures are gone."""
    source = """
    def test_x(appsync_server):
        pass
    """
    result = run(pytester, source, "-p", "no:appsync")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'appsync_server' not found*"])


def test_plugin_subprocess_run(pytester: pytest.Pytester) -> None:
    """A fresh interpreter loads the plugin from the entry point alone."""
    result = run(pytester, ROUNDTRIP, "-p", "appsync", subprocess=True)
    result.assert_outcomes(passed=1)


def test_plugin_marker_is_registered(pytester: pytest.Pytester) -> None:
    """The appsync marker is known under --strict-markers and listed by --markers."""
    source = """
    import pytest

    @pytest.mark.appsync(region="eu-west-1")
    def test_x():
        pass
    """
    run(pytester, source, "--strict-markers").assert_outcomes(passed=1)
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.appsync(config=None, *"])


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX only")
def test_plugin_help_lists_ini_options(pytester: pytest.Pytester) -> None:
    """pytest --help shows the appsync_* ini options."""
    run(pytester, "def test_x():\n    pass\n")
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*appsync_host*", "*appsync_keepalive_interval*"])


def test_plugin_recorder_failures_show_near_misses(pytester: pytest.Pytester) -> None:
    """Failed recorder assertions and waits fail the test, listing what did happen."""
    source = """
    import pytest

    @pytest.mark.asyncio
    async def test_wrong_channel(appsync_server, appsync_client):
        await appsync_client.publish("default/actual", {"n": 1})
        appsync_server.recorder.assert_published("/default/expected", count=1)

    @pytest.mark.asyncio
    async def test_never_subscribed(appsync_server, appsync_client):
        await appsync_client.subscribe("default/other")
        await appsync_server.recorder.wait_subscribed("default/wanted", timeout=0.2)

    def test_sync_wait(appsync_server):
        appsync_server.recorder.wait_published_sync("default/x", timeout=0.2)
    """
    result = run(pytester, source)
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(
        [
            "*expected 1 event(s) on /default/expected, got 0 event(s)*",
            "*publishes to other channels: /default/actual (1 event)*",
        ]
    )
    result.stdout.fnmatch_lines(["*no active subscription to /default/wanted*", "*/default/other*"])
    result.stdout.fnmatch_lines(["*expected 1 event(s) published to /default/x, got 0*"])


HIDE_EMULATOR_DEPENDENCIES = """
import importlib.abc, sys

class HideEmulatorDependencies(importlib.abc.MetaPathFinder):
    # What a client-only install (no [emulator] extra) looks like.
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {"jwt", "cryptography", "trustme"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, HideEmulatorDependencies())
"""


def test_plugin_without_the_emulator_extra(pytester: pytest.Pytester) -> None:
    """Without the emulator's dependencies the plugin loads, tests without its fixtures pass,
    and a test using a fixture fails with one line naming the extra to install."""
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        test_user="""
        import appsync_events
        from appsync_events import authorizer

        def test_client_only():
            assert appsync_events.connect and authorizer.IAM and appsync_events.publish_http

        def test_server(appsync_server):
            pass

        async def test_client(appsync_client):
            pass
        """
    )
    code = (
        HIDE_EMULATOR_DEPENDENCIES
        + "import pytest\n"
        + "code = pytest.main(['-p', 'no:cacheprovider', '-p', 'asyncio', '-p', 'appsync'])\n"
        + "assert 'jwt' not in sys.modules and 'trustme' not in sys.modules\n"
        + "sys.exit(code)\n"
    )
    result = pytester.run(sys.executable, "-c", code, timeout=120)
    result.assert_outcomes(passed=1, errors=2)
    message = (
        "the appsync fixtures need the emulator, and its dependency 'jwt' is not installed: "
        "pip install 'appsync-events[emulator]'"
    )
    errors = result.stdout.str().split("= ERRORS =", 1)[1].split("short test summary")[0]
    shown = [line for line in errors.splitlines() if line.strip(" =_") and "ERROR at" not in line]
    assert shown == [message, message], errors  # one line per test, no traceback


def test_plugin_servers_outlive_the_clients_whatever_the_order(pytester: pytest.Pytester) -> None:
    """A test asking for the client factory before appsync_server still has its clients
    closed before the server goes: the client closes its connection itself (1000), the
    server never has to (1001)."""
    source = """
    import pytest

    SERVERS = []

    @pytest.mark.asyncio
    async def test_1(appsync_client_factory, appsync_server):
        SERVERS.append(appsync_server)
        client = await appsync_client_factory(appsync_server)
        await client.publish("default/x", {"n": 1})

    def test_2():
        [conn] = SERVERS[0].recorder.connections
        assert conn.close_code == 1000, conn
    """
    run(pytester, source).assert_outcomes(passed=2)
