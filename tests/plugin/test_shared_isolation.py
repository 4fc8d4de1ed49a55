"""Shared servers (``appsync_server_scope``): a test's leftovers never reach the next test.

A user suite in which every test first checks that its server is as fresh as a new one,
then leaves something behind: an open client with subscriptions, an installed fault, a
thread that keeps publishing over HTTP, a reconnecting client that keeps publishing over
the WebSocket, a publish held by a handler that never returns (over the WebSocket and over
HTTP), thousands of recorded frames.  It runs in several random orders, and under
pytest-xdist with two workers (one emulator each).
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from tests.plugin.test_pytest_plugin import run

SHUFFLE = """
import os, random

def pytest_collection_modifyitems(items):
    seed = os.environ.get("APPSYNC_SHUFFLE_SEED")
    if seed:
        random.Random(int(seed)).shuffle(items)
"""

LEFTOVERS = '''
import asyncio, json, os, threading, urllib.error, urllib.request
import pytest
import appsync_events
from appsync_events import authorizer, sync
from appsync_emulator import NamespaceConfig
from appsync_emulator.faults import DropKeepAlives, NeverAck
from appsync_emulator.testing import build_config

STOP = threading.Event()
THREADS = []
HTTP_STRAYS = []
REFUSED = threading.Condition()
refusals = [0]


HELD = threading.Condition()
held = [0]
KEEP = []  # clients left open by their test (closed when the module ends)


def wait_held(count):
    with HELD:
        return HELD.wait_for(lambda: held[0] >= count, 10)


async def hold(ctx):
    with HELD:
        held[0] += 1
        HELD.notify_all()
    await asyncio.Event().wait()  # never returns: a reset must end it


@pytest.fixture
def appsync_server_config(appsync_settings):
    slow = NamespaceConfig(name="slow", on_publish=hold)
    return build_config(appsync_settings.config, namespaces=["default", slow])


@pytest.fixture(scope="module", autouse=True)
def stop_strays():
    yield
    STOP.set()
    for thread in THREADS:
        thread.join(10)
    for client in KEEP:
        client.close()


@pytest.fixture(autouse=True)
def fresh(appsync_server, appsync_client):
    """Every test starts on a server that looks new, apart from its own client."""
    log = os.environ.get("APPSYNC_SERVERS_LOG")
    if log:
        with open(log, "a") as f:
            f.write(f"{os.getpid()} {id(appsync_server.emulator)}\\n")
    r = appsync_server.recorder
    assert [(c.id, c.open) for c in r.connections] == [("c1", True)]
    assert r.subscriptions == [] and r.published == [] and r.errors == []
    assert {f.connection_id for f in r.received + r.sent} <= {"c1"}
    emulator = appsync_server.emulator
    assert len(emulator.plan) == 0 and not emulator.http_tasks
    assert list(emulator.connections) == ["c1"] and not emulator.upgrading
    yield
    # the probe: only this test's own traffic is seen


async def probe(server, client):
    sub = await client.subscribe("default/probe")
    await client.publish("default/probe", {"mine": True})
    assert (await sub.next()).json() == {"mine": True}
    assert [p.channel for p in server.recorder.published] == ["/default/probe"]
    await sub.close()


def auth(server):
    return authorizer.ApiKey(api_key=server.api_key, endpoint=server.http_endpoint)


def http_publish(endpoint, api_key, channel):
    body = json.dumps({"channel": channel, "events": [json.dumps({"stray": True})]})
    request = urllib.request.Request(
        endpoint, body.encode(), {"content-type": "application/json", "x-api-key": api_key}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status


@pytest.mark.asyncio
async def test_open_client_with_subscriptions(appsync_server, appsync_client):
    await probe(appsync_server, appsync_client)
    client = sync.connect(appsync_server.realtime_endpoint, authorizer=auth(appsync_server))
    KEEP.append(client)
    for n in range(3):
        client.subscribe(f"default/left{n}")
    client.publish("default/left0", {"n": 1})
    # not closed when the test ends


@pytest.mark.asyncio
async def test_faults_left_installed(appsync_server, appsync_client):
    await probe(appsync_server, appsync_client)
    appsync_server.inject(DropKeepAlives())
    appsync_server.inject(NeverAck())  # new connections would never be acknowledged


@pytest.mark.asyncio
async def test_thread_keeps_publishing_over_http(appsync_server, appsync_client):
    await probe(appsync_server, appsync_client)
    endpoint, key = appsync_server.http_endpoint, appsync_server.api_key

    def publish_forever():
        while not STOP.is_set():
            try:
                http_publish(endpoint, key, "default/stray")
            except (urllib.error.URLError, OSError):
                with REFUSED:
                    refusals[0] += 1
                    REFUSED.notify_all()
                STOP.wait(0.01)  # pacing, not synchronisation

    thread = threading.Thread(target=publish_forever, daemon=True)
    THREADS.append(thread)
    HTTP_STRAYS.append(thread)
    thread.start()
    await appsync_server.wait_published("default/stray")


@pytest.mark.asyncio
async def test_reconnecting_client_keeps_publishing(appsync_server, appsync_client):
    await probe(appsync_server, appsync_client)
    client = sync.connect(
        appsync_server.realtime_endpoint, authorizer=auth(appsync_server), reconnect=True,
        operation_timeout=1,
    )
    client.subscribe("default/stray-ws")

    def publish_forever():
        try:
            while not STOP.is_set():
                try:
                    client.publish("default/stray-ws", {"stray": True})
                except appsync_events.AppSyncEventsError:
                    STOP.wait(0.01)  # pacing, not synchronisation
        finally:
            client.close()

    thread = threading.Thread(target=publish_forever, daemon=True)
    THREADS.append(thread)
    thread.start()
    await appsync_server.wait_published("default/stray-ws")


@pytest.mark.asyncio
async def test_publishes_held_by_a_handler(appsync_server, appsync_client):
    await probe(appsync_server, appsync_client)
    client = sync.connect(appsync_server.realtime_endpoint, authorizer=auth(appsync_server))
    KEEP.append(client)
    endpoint, key = appsync_server.http_endpoint, appsync_server.api_key
    with HELD:
        before = held[0]

    def publish_held(publish, *args):
        try:
            publish(*args)
        except (urllib.error.URLError, OSError, appsync_events.AppSyncEventsError):
            pass  # the reset ends it

    for args in ((http_publish, endpoint, key, "slow/y"), (client.publish, "slow/x", {"n": 1})):
        thread = threading.Thread(target=publish_held, args=args, daemon=True)
        THREADS.append(thread)
        thread.start()
    assert await asyncio.to_thread(wait_held, before + 2)
    # the test ends with both publishes held by the handler


@pytest.mark.asyncio
async def test_many_frames(appsync_server, appsync_client):
    await probe(appsync_server, appsync_client)
    sub = await appsync_client.subscribe("default/many")
    for n in range(50):
        await appsync_client.publish("default/many", *({"n": n, "i": i} for i in range(5)))
        for _ in range(5):
            await sub.next()


@pytest.mark.asyncio
async def test_strays_are_refused_here(appsync_server, appsync_client):
    """Whatever ran before, nothing of it arrives during this test."""
    with REFUSED:
        seen = refusals[0]
    if HTTP_STRAYS:
        # a stray publisher from an earlier test is still trying: wait for its next try
        with REFUSED:
            assert REFUSED.wait_for(lambda: refusals[0] > seen, timeout=10)
    await probe(appsync_server, appsync_client)
    r = appsync_server.recorder
    assert [c.id for c in r.connections] == ["c1"]
    assert {p.channel for p in r.published} == {"/default/probe"}
'''

INI = """
    ignore:unclosed:ResourceWarning
    ignore:Exception ignored in. <(function _Sel|socket):pytest.PytestUnraisableExceptionWarning
appsync_server_scope = session
"""
"""The shared scope; the leftovers include clients abandoned on purpose with their event
loop, whose sockets Python reports as unclosed whenever it collects them (in a later test:
continuation lines of the ``filterwarnings`` option that ``run`` writes just before)."""


def _suite(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(SHUFFLE)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_shared_leftovers_never_reach_the_next_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """In random orders, every test finds a server that looks new, and strays are refused."""
    _suite(pytester)
    log = pytester.path / "servers.log"
    monkeypatch.setenv("APPSYNC_SHUFFLE_SEED", str(seed))
    monkeypatch.setenv("APPSYNC_SERVERS_LOG", str(log))
    # In a subprocess: the clients it abandons on purpose must not be collected (and
    # reported as unclosed sockets) in this session's later tests.
    # Without Hypothesis's plugin: it imports Hypothesis (rewritten, so parsed with ``ast``)
    # at the end of the run, while this suite's stray threads may log errors, and on
    # Python 3.11 formatting their tracebacks parses with ``ast`` too; ``ast`` in two
    # threads at once can fail with "SystemError: AST constructor recursion depth mismatch".
    result = run(pytester, LEFTOVERS, "-p", "no:hypothesispytest", ini=INI, subprocess=True)
    result.assert_outcomes(passed=7)
    assert len(set(log.read_text().split("\n")[:-1])) == 1  # one server for the session


def test_shared_one_server_per_xdist_worker(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under -n 2 each worker starts one emulator and shares it; isolation holds."""
    pytest.importorskip("xdist")
    _suite(pytester)
    log = pytester.path / "servers.log"
    monkeypatch.setenv("APPSYNC_SHUFFLE_SEED", "4")
    monkeypatch.setenv("APPSYNC_SERVERS_LOG", str(log))
    source = LEFTOVERS + textwrap.dedent(
        """
        @pytest.mark.parametrize("n", range(6))
        @pytest.mark.asyncio
        async def test_more(appsync_server, appsync_client, n):
            await probe(appsync_server, appsync_client)
        """
    )
    result = run(pytester, source, "-n", "2", ini=INI, subprocess=True)
    result.assert_outcomes(passed=13)
    servers: dict[str, set[str]] = {}
    for line in Path(log).read_text().splitlines():
        pid, server = line.split()
        servers.setdefault(pid, set()).add(server)
    assert len(servers) == 2, servers
    assert all(len(ids) == 1 for ids in servers.values()), servers
    assert os.getpid() not in {int(pid) for pid in servers}
