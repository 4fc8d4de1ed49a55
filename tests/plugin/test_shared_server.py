"""Shared servers (``appsync_server_scope``): which tests share a server, and what they see.

The isolation of a test's leftovers is in ``test_shared_isolation.py``; the reset itself
in ``test_shared_reset.py``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.plugin.test_pytest_plugin import run

DOCS = Path(__file__).resolve().parents[2] / "docs"

RECORD_SERVER = """
import pytest

SEEN = []

def server_of(server):
    SEEN.append(id(server.emulator))
    return len(set(SEEN))
"""


def test_shared_session_scope_shares_one_server_and_ids_restart(pytester: pytest.Pytester) -> None:
    """Every test of the session gets the same emulator, on a new port, with ids from c1."""
    source = (
        RECORD_SERVER
        + """
PORTS = []

@pytest.mark.parametrize("n", range(4))
@pytest.mark.asyncio
async def test_roundtrip(appsync_server, appsync_client, n):
    assert server_of(appsync_server) == 1
    assert appsync_server.port not in PORTS
    PORTS.append(appsync_server.port)
    assert [c.id for c in appsync_server.connections] == ["c1"]
    sub = await appsync_client.subscribe("default/room")
    await appsync_client.publish("default/room", {"n": n})
    assert (await sub.next()).json() == {"n": n}
    appsync_server.assert_published("/default/room", events=[{"n": n}])

def test_sync(appsync_server):
    assert server_of(appsync_server) == 1
    assert appsync_server.recorder.published == []
"""
    )
    result = run(pytester, source, ini="appsync_server_scope = session\n")
    result.assert_outcomes(passed=5)


def test_shared_marker_config_gets_its_own_shared_server(pytester: pytest.Pytester) -> None:
    """Tests with the same marker config share a server; another config gets another one."""
    source = (
        RECORD_SERVER
        + """
from appsync_emulator.faults import NeverAck

def test_plain(appsync_server):
    server_of(appsync_server)
    assert [ns.name for ns in appsync_server.config.namespaces] == ["default"]

@pytest.mark.appsync(namespaces=["default", "chat"])
def test_chat_1(appsync_server):
    server_of(appsync_server)
    assert [ns.name for ns in appsync_server.config.namespaces] == ["default", "chat"]

@pytest.mark.appsync(namespaces=["default", "chat"], faults=[NeverAck()])
def test_chat_2_with_a_fault(appsync_server):
    server_of(appsync_server)
    assert len(appsync_server.emulator.plan) == 1

@pytest.mark.appsync(namespaces=["default", "chat"])
def test_chat_3_fault_gone(appsync_server):
    assert len(appsync_server.emulator.plan) == 0
    assert server_of(appsync_server) == 2
"""
    )
    result = run(pytester, source, ini="appsync_server_scope = session\n")
    result.assert_outcomes(passed=4)


def test_shared_module_scope_one_server_per_module(pytester: pytest.Pytester) -> None:
    """With module scope, the tests of a module share a server; the next module gets another."""
    pytester.makeconftest(
        """
        SEEN = {}
        """
    )
    test = """
import conftest

def test_{n}_a(appsync_server):
    conftest.SEEN.setdefault("{n}", set()).add(id(appsync_server.emulator))

def test_{n}_b(appsync_server):
    conftest.SEEN.setdefault("{n}", set()).add(id(appsync_server.emulator))
    assert len(conftest.SEEN["{n}"]) == 1
    others = {{s for k, v in conftest.SEEN.items() if k != "{n}" for s in v}}
    assert not others & conftest.SEEN["{n}"]
"""
    pytester.makepyfile(test_one=test.format(n=1), test_two=test.format(n=2))
    result = run(pytester, "", ini="appsync_server_scope = module\n")
    result.assert_outcomes(passed=4)


def test_shared_server_error_fails_its_own_test_only(pytester: pytest.Pytester) -> None:
    """A handler crash fails the test it happened in, at teardown; the next test passes."""
    source = """
import pytest
import appsync_events
from appsync_emulator import NamespaceConfig

def crash(ctx):
    raise ZeroDivisionError("handler bug")

@pytest.fixture
def appsync_server_config(appsync_server_config):
    bad = NamespaceConfig(name="bad", on_publish=crash)
    return appsync_server_config.replace(namespaces=(*appsync_server_config.namespaces, bad))

@pytest.mark.asyncio
async def test_1_crash(appsync_client):
    with pytest.raises(appsync_events.PublishError):
        await appsync_client.publish("bad/x", {"n": 1})

@pytest.mark.asyncio
async def test_2_clean(appsync_server, appsync_client):
    await appsync_client.publish("default/x", {"n": 1})
    assert appsync_server.recorder.errors == []
"""
    result = run(pytester, source, ini="appsync_server_scope = session\n")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_1_crash*"])
    result.stdout.fnmatch_lines(["*HandlerFailure*handler bug*"])


def test_shared_server_stopped_by_a_test_is_replaced(pytester: pytest.Pytester) -> None:
    """A test that stops the shared server does not break the next one."""
    source = (
        RECORD_SERVER
        + """
def test_1_stop(appsync_server):
    server_of(appsync_server)
    appsync_server.stop()

def test_2_next(appsync_server):
    assert server_of(appsync_server) == 2
    assert appsync_server.running
"""
    )
    result = run(pytester, source, ini="appsync_server_scope = session\n")
    result.assert_outcomes(passed=2)


def test_shared_factory_servers_stay_per_test(pytester: pytest.Pytester) -> None:
    """appsync_server_factory still starts a new server each time, and stops it."""
    source = """
import pytest

KEPT = []

def test_1(appsync_server, appsync_server_factory):
    extra = appsync_server_factory()
    assert extra is not appsync_server
    KEPT.append(extra)

def test_2(appsync_server):
    assert not KEPT[0].running
"""
    result = run(pytester, source, ini="appsync_server_scope = session\n")
    result.assert_outcomes(passed=2)


def test_shared_scope_value_is_checked(pytester: pytest.Pytester) -> None:
    """A bad appsync_server_scope stops the run with one line naming the valid values."""
    result = run(pytester, "def test_x(): pass\n", ini="appsync_server_scope = class\n")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*appsync_server_scope: expected one of function, module, session, got 'class'*"]
    )


def test_shared_function_scope_is_the_default(pytester: pytest.Pytester) -> None:
    """Without the option every test gets a new server, as before."""
    source = (
        RECORD_SERVER
        + """
def test_1(appsync_server):
    assert server_of(appsync_server) == 1

def test_2(appsync_server):
    assert server_of(appsync_server) == 2
"""
    )
    run(pytester, source).assert_outcomes(passed=2)


@pytest.mark.parametrize("scope", ["session", "module"])
def test_shared_docs_example_passes_shared(pytester: pytest.Pytester, scope: str) -> None:
    """The reference page's example passes on shared servers (tests/test_docs.py runs it
    with a server per test)."""
    example = DOCS / "reference" / "shared_server_example.py"
    source = example.read_text(encoding="utf-8")
    shutil.copy(example, pytester.path / "test_example_copy.py")
    result = run(pytester, source, ini=f"appsync_server_scope = {scope}\n")
    result.assert_outcomes(passed=6)


def test_shared_async_fixtures_explain_anyio(pytester: pytest.Pytester) -> None:
    """An anyio test asking for appsync_client is told to connect its own client."""
    source = """
    import pytest

    @pytest.mark.anyio
    async def test_x(appsync_client):
        pass
    """
    result = run(pytester, source, ini="markers = anyio: anyio's marker\n")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*LoopScopeError: appsync_client is a pytest-asyncio fixture*"])
    result.stdout.fnmatch_lines(["*use appsync_server (it works with any backend)*"])


def test_shared_server_under_anyio(pytester: pytest.Pytester) -> None:
    """The documented anyio pattern: appsync_server and a client of the test's own."""
    pytest.importorskip("anyio")
    source = """
    import pytest
    import appsync_events

    @pytest.fixture
    def anyio_backend():
        return "asyncio"

    @pytest.mark.anyio
    async def test_x(appsync_server, appsync_authorizer):
        endpoint = appsync_server.realtime_endpoint
        async with appsync_events.connect(endpoint, authorizer=appsync_authorizer) as client:
            await client.publish("default/x", {"n": 1})
        appsync_server.assert_published("/default/x", count=1)
    """
    run(pytester, source, ini="appsync_server_scope = session\n").assert_outcomes(passed=1)


def test_shared_tls_server_keeps_serving_tls_on_each_port(pytester: pytest.Pytester) -> None:
    """With appsync_tls, the shared server serves wss:// on every new port."""
    source = """
    import pytest

    @pytest.mark.parametrize("n", range(3))
    @pytest.mark.asyncio
    async def test_tls(appsync_server, appsync_client, n):
        assert appsync_server.realtime_endpoint.startswith("wss://")
        await appsync_client.publish("default/x", {"n": n})
        appsync_server.assert_published("/default/x", events=[{"n": n}])
    """
    ini = "appsync_server_scope = session\nappsync_tls = true\n"
    run(pytester, source, ini=ini).assert_outcomes(passed=3)
