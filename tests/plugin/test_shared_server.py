"""Shared servers (``appsync_server_scope``): which tests share a server, and what they see.

The isolation of a test's leftovers is in ``test_shared_isolation.py``; the reset itself
in ``test_shared_reset.py``.
"""

from __future__ import annotations

import pytest

from tests.plugin.test_pytest_plugin import run

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
