"""The three ways to host the emulator (in-loop, background thread, TLS) and their API."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import ssl
import threading
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from freezegun import freeze_time
from websockets.sync.client import connect as sync_connect

from appsync_emulator import (
    EmulatorHost,
    EmulatorServer,
    EmulatorThread,
    NamespaceConfig,
    Recorder,
    RecorderAssertionError,
)
from appsync_emulator.faults import AckTimeoutOverride, CloseConnection
from appsync_emulator.handlers import HandlerContext
from appsync_events.protocol.subprotocol import PROTOCOL_EVENTS, encode_auth_subprotocol
from tests.conftest import MS

from .conftest import WAIT, api_auth, fast_config, open_raw


@pytest.mark.asyncio
async def test_server_binds_a_free_loopback_port_and_reports_endpoints() -> None:
    """port=0 picks a free port; endpoints, region and key are reported."""
    async with EmulatorServer(fast_config()) as server:
        assert server.port > 0
        assert server.http_endpoint == f"http://127.0.0.1:{server.port}/event"
        assert server.realtime_endpoint == f"ws://127.0.0.1:{server.port}/event/realtime"
        assert server.region == "us-east-1"
        assert server.api_key == server.config.api_keys[0].key
        assert server.ca_cert_path is None
        assert server.running
        assert repr(server).endswith("/event/realtime>")
    assert not server.running


@pytest.mark.asyncio
async def test_server_lifecycle_misuse() -> None:
    """No port before start; start twice fails; stop is idempotent; no TLS context."""
    server = EmulatorServer()
    with pytest.raises(RuntimeError):
        _ = server.port
    with pytest.raises(RuntimeError, match="tls=True"):
        server.client_ssl_context()
    await server.start()
    with pytest.raises(RuntimeError, match="once"):
        await server.start()
    await server.stop()
    await server.stop()
    with pytest.raises(RuntimeError, match="once"):
        await server.start()


@pytest.mark.asyncio
async def test_bind_failure_raises_oserror() -> None:
    """A port already in use raises OSError from start()."""
    async with EmulatorServer() as first:
        second = EmulatorServer(port=first.port)
        with pytest.raises(OSError):
            await second.start()


@pytest.mark.asyncio
async def test_close_connection_by_id(server: EmulatorServer) -> None:
    """close_connection(id, code, reason) closes that socket; unknown ids raise KeyError."""
    raw = await open_raw(server)
    await raw.init()
    server.close_connection(server.connections[-1].id, 4000, "test over")
    assert await raw.closed() == (4000, "test over")
    with pytest.raises(KeyError, match="no open connection"):
        server.close_connection("c999")


def _boom(ctx: HandlerContext) -> None:
    raise LookupError("first")


@pytest.mark.asyncio
async def test_check_reraises_server_side_errors_once() -> None:
    """check() raises the first collected exception with the others as notes, then clears."""
    config = fast_config(
        namespaces=(NamespaceConfig(name="default"), NamespaceConfig(name="b", on_publish=_boom))
    )
    async with EmulatorServer(config) as server:
        raw = await open_raw(server)
        for i in range(2):
            await raw.publish("b/x", ['"e"'], f"p{i}")
            await raw.expect("publish_error", id=f"p{i}")
        with pytest.raises(Exception, match="first") as info:
            server.check()
        assert any("also raised" in note for note in info.value.__notes__)
        server.check()
        await raw.ws.close()


def _drain(ws: Any) -> None:
    while True:
        ws.recv(timeout=2)


def test_thread_server_from_a_sync_test() -> None:
    """EmulatorThread serves a sync websockets client; control calls work from this thread."""
    with EmulatorThread(fast_config()) as server:
        assert server.running
        auth = api_auth(server)
        with sync_connect(
            server.realtime_endpoint,
            subprotocols=[PROTOCOL_EVENTS, encode_auth_subprotocol(auth)],  # type: ignore[list-item]
            open_timeout=5,
            proxy=None,
        ) as ws:
            with server.inject(AckTimeoutOverride(777)):
                ws.send(json.dumps({"type": "connection_init"}))
                assert json.loads(ws.recv(timeout=2)) == {
                    "type": "connection_ack",
                    "connectionTimeoutMs": 777,
                }
            server.recorder.wait_connected_sync(1, timeout=2)
            server.close_connection(server.connections[-1].id, 4003, "sync")
            with pytest.raises(Exception, match="4003"):
                _drain(ws)
        server.recorder.wait_for_sync(
            lambda r: r.connections[-1] if not r.connections[-1].open else None, timeout=2
        )
        server.check()
        server.reset()
        assert server.connections == []
    assert not server.running
    server.stop()  # idempotent


@pytest.mark.asyncio
async def test_thread_server_from_an_async_test_on_another_loop() -> None:
    """EmulatorThread runs its own loop; an async test drives it and awaits its recorder."""
    with EmulatorThread(fast_config()) as server:
        assert server.port > 0
        raw = await open_raw(server)
        await raw.init()
        await raw.subscribe("default/t")
        record = await server.recorder.wait_subscribed("default/t")
        assert record.connection_id == server.connections[-1].id
        server.inject(CloseConnection(4004), connection=record.connection_id)
        assert (await raw.closed())[0] == 4004
        server.clear_faults()
        server.check()


def test_thread_start_failure_is_raised() -> None:
    """A bind failure in the thread is re-raised by start()."""
    with EmulatorThread() as first:
        second = EmulatorThread(port=first.port)
        with pytest.raises(OSError):
            second.start()
        second.stop()


def test_thread_keeps_time_under_freezegun() -> None:
    """A test freezing the clock does not stop the thread's ka timer (RealClockLoop)."""
    with EmulatorThread(fast_config()) as server:
        auth = api_auth(server)
        with sync_connect(
            server.realtime_endpoint,
            subprotocols=[PROTOCOL_EVENTS, encode_auth_subprotocol(auth)],  # type: ignore[list-item]
            open_timeout=5,
            proxy=None,
        ) as ws:
            ws.send(json.dumps({"type": "connection_init"}))
            conn = server.recorder.wait_connected_sync(1, timeout=2)[-1].id

            def kas(count: int) -> object:
                def predicate(r: object) -> object:
                    sent = server.recorder.sent_to(conn)
                    return True if sum(f.frame_type == "ka" for f in sent) >= count else None

                return predicate

            server.recorder.wait_for_sync(kas(1), timeout=2)
            with freeze_time("2030-01-01", real_asyncio=True):
                server.recorder.wait_for_sync(kas(4), timeout=2)


@pytest.mark.asyncio
async def test_tls_serves_wss_and_https_with_the_local_ca(
    http: aiohttp.ClientSession,
) -> None:
    """tls=True: wss:// and https:// on one port, trusted through ca_cert_path."""
    async with EmulatorServer(fast_config(), tls=True) as server:
        assert server.http_endpoint.startswith("https://127.0.0.1:")
        assert server.realtime_endpoint.startswith("wss://127.0.0.1:")
        ca_path = server.ca_cert_path
        assert ca_path is not None
        assert (await asyncio.to_thread(Path(ca_path).read_text)).startswith("-----BEGIN")
        trusted = ssl.create_default_context(cafile=ca_path)
        raw = await open_raw(server, ssl=trusted)
        await raw.init()
        await raw.subscribe("default/tls")
        async with http.post(
            server.http_endpoint,
            json={"channel": "default/tls", "events": ['"secure"']},
            headers={"x-api-key": server.api_key or ""},
            ssl=server.client_ssl_context(),
        ) as response:
            assert response.status == 200
        assert await raw.recv() == {"type": "data", "id": "s1", "event": '"secure"'}
        await raw.ws.close()
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            async with http.post(server.http_endpoint, data=b"{}"):
                pass
    assert not await asyncio.to_thread(os.path.exists, ca_path)


@pytest.mark.asyncio
async def test_control_calls_from_another_thread_run_on_the_server_loop(
    server: EmulatorServer,
) -> None:
    """inject() from a foreign thread on an in-loop server waits for the loop and works."""
    raw = await open_raw(server)
    await raw.init()
    done = threading.Event()
    errors: list[BaseException] = []

    def from_thread() -> None:
        try:
            server.inject(CloseConnection(4005, "from thread"))
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=from_thread)
    thread.start()
    assert await raw.closed() == (4005, "from thread")
    await asyncio.to_thread(thread.join, 2)
    assert done.is_set()
    assert not errors


@pytest.mark.asyncio
async def test_shutdown_with_many_sockets_is_fast() -> None:
    """Stopping with 20 live sockets takes well under a second (1001 in on_shutdown)."""
    server = await EmulatorServer(fast_config()).start()
    raws = [await open_raw(server) for _ in range(20)]
    loop = asyncio.get_running_loop()
    started = loop.time()
    await server.stop()
    assert loop.time() - started < WAIT  # a hang guard; speed is benchmarked
    for raw in raws:
        assert (await raw.closed())[0] == 1001


# --- the shared surface: one API, the same behaviour on both hosts ---------------------------


@pytest_asyncio.fixture(params=["EmulatorServer", "EmulatorThread"])
async def host(request: pytest.FixtureRequest) -> AsyncIterator[EmulatorHost]:
    """The emulator in the test's loop, then in a background thread."""
    if request.param == "EmulatorServer":
        async with EmulatorServer(fast_config()) as server:
            yield server
            server.check()
    else:
        with EmulatorThread(fast_config()) as thread:
            yield thread
            thread.check()


def test_the_shared_surface_is_defined_once() -> None:
    """Neither host re-declares a member of EmulatorHost (the thread refines ``running``)."""
    shared = {name for name in vars(EmulatorHost) if not name.startswith("__")}
    assert shared & set(vars(EmulatorServer)) == set()
    assert shared & set(vars(EmulatorThread)) == {"running"}
    for name in ("assert_published", "wait_published", "wait_published_sync", "inject"):
        assert name in shared


@pytest.mark.asyncio
async def test_host_is_not_created_directly_and_repr_follows_the_lifecycle() -> None:
    """EmulatorHost() explains what to create; repr says not started, the URL, or stopped."""
    with pytest.raises(TypeError, match="EmulatorServer and EmulatorThread"):
        EmulatorHost()
    server = EmulatorServer(fast_config())
    assert repr(server) == "<EmulatorServer not started>"
    async with server:
        assert repr(server) == f"<EmulatorServer {server.realtime_endpoint}>"
    assert repr(server) == "<EmulatorServer stopped>"
    thread = EmulatorThread(fast_config())
    assert repr(thread) == "<EmulatorThread not started>"
    with thread:
        assert repr(thread) == f"<EmulatorThread {thread.realtime_endpoint}>"
    assert repr(thread) == "<EmulatorThread stopped>"


WAITS_AND_ASSERTIONS = [
    "assert_published",
    "assert_subscribed",
    "assert_no_errors",
    "wait_for",
    "wait_for_sync",
    "wait_connected",
    "wait_connected_sync",
    "wait_subscribed",
    "wait_subscribed_sync",
    "wait_published",
    "wait_published_sync",
]


@pytest.mark.parametrize("name", WAITS_AND_ASSERTIONS)
def test_host_waits_and_assertions_mirror_the_recorder(name: str) -> None:
    """server.X takes the arguments of server.recorder.X and is async exactly when it is."""
    on_host, on_recorder = getattr(EmulatorHost, name), getattr(Recorder, name)
    assert inspect.signature(on_host) == inspect.signature(on_recorder)
    assert inspect.iscoroutinefunction(on_host) == inspect.iscoroutinefunction(on_recorder)


@pytest.mark.asyncio
async def test_shared_surface_reports_addresses(host: EmulatorHost) -> None:
    """Addresses, config and state read the same on both hosts."""
    assert isinstance(host, EmulatorHost)
    assert host.running
    assert (host.host, host.tls) == ("127.0.0.1", False)
    assert host.http_endpoint == f"http://127.0.0.1:{host.port}/event"
    assert host.realtime_endpoint == f"ws://127.0.0.1:{host.port}/event/realtime"
    assert (host.region, host.api_key) == ("us-east-1", host.config.api_keys[0].key)
    assert host.ca_cert_path is None
    assert host.connections == []
    assert host.emulator.recorder is host.recorder
    assert repr(host) == f"<{type(host).__name__} {host.realtime_endpoint}>"
    with pytest.raises(RuntimeError, match="tls=True"):
        host.client_ssl_context()


@pytest.mark.asyncio
async def test_shared_surface_waits_assertions_and_controls(host: EmulatorHost) -> None:
    """Awaited waits, assertions, faults and close_connection from the host object."""
    raw = await open_raw(host)
    await raw.init()
    (connection,) = await host.wait_connected(1)
    await raw.subscribe("default/*")
    assert (await host.wait_subscribed("default/*")).connection_id == connection.id
    assert host.assert_subscribed("/default/*").id == "s1"
    await raw.publish("default/t", ['{"n":1}'])
    await raw.expect("publish_success")
    records = await host.wait_published("default/t", count=1)
    assert records == host.assert_published("default/t", count=1, events=[{"n": 1}])
    host.assert_no_errors()
    seen = await host.wait_for(lambda r: len(r.received) if len(r.received) >= 3 else None)
    assert seen >= 3
    with host.inject(CloseConnection(4004), connection=connection.id):
        assert (await raw.closed())[0] == 4004
    closed = await host.wait_for(lambda r: r.connections[-1].close_code)
    assert closed == 4004
    host.reset()
    assert host.connections == []
    assert host.recorder.published == []


@pytest.mark.asyncio
async def test_shared_surface_failures_name_what_was_expected(host: EmulatorHost) -> None:
    """Failed assertions and timed-out waits on the host list the near misses."""
    raw = await open_raw(host)
    await raw.init()
    await raw.publish("default/actual", ['"a"'])
    await raw.expect("publish_success")
    await raw.publish("nowhere/x", ['"b"'], "p2")
    await raw.expect("publish_error", id="p2")
    with pytest.raises(RecorderAssertionError, match="publishes to other channels: /default/act"):
        host.assert_published("default/expected")
    with pytest.raises(RecorderAssertionError, match="no active subscription to /default/x"):
        host.assert_subscribed("default/x")
    with pytest.raises(RecorderAssertionError, match="1 error answer"):
        host.assert_no_errors()
    with pytest.raises(RecorderAssertionError, match=r"wait_published\('default/expected', c"):
        await host.wait_published("default/expected", timeout=20 * MS)
    with pytest.raises(RecorderAssertionError, match=r"wait_connected\(2\) timed out"):
        await host.wait_connected(2, timeout=20 * MS)
    await raw.ws.close()
    host.reset()


@pytest.mark.asyncio
async def test_in_loop_server_refuses_blocking_waits(server: EmulatorServer) -> None:
    """A _sync wait on the server's own loop would stall it: it raises, naming the await."""
    with pytest.raises(RuntimeError, match=r"await wait_published\('default/x', count=1\)"):
        server.wait_published_sync("default/x")
    with pytest.raises(RuntimeError, match=r"await wait_connected\(1\)"):
        server.wait_connected_sync()


def test_thread_waits_and_assertions_from_a_sync_test() -> None:
    """The _sync waits and the assertions work on an EmulatorThread from a sync test."""
    with EmulatorThread(fast_config()) as server:
        auth = api_auth(server)
        with sync_connect(
            server.realtime_endpoint,
            subprotocols=[PROTOCOL_EVENTS, encode_auth_subprotocol(auth)],  # type: ignore[list-item]
            open_timeout=5,
            proxy=None,
        ) as ws:
            ws.send(json.dumps({"type": "connection_init"}))
            (connection,) = server.wait_connected_sync(1, timeout=2)
            ws.send(
                json.dumps(
                    {"type": "subscribe", "id": "s1", "channel": "default/*", "authorization": auth}
                )
            )
            assert server.wait_subscribed_sync("default/*", timeout=2).connection_id == (
                connection.id
            )
            request = urllib.request.Request(
                server.http_endpoint,
                data=json.dumps({"channel": "default/sync", "events": ['"s"']}).encode(),
                headers={"x-api-key": server.api_key or "", "content-type": "application/json"},
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=5) as response:
                assert response.status == 200
            assert server.wait_published_sync("default/sync", timeout=2)[0].transport == "http"
            server.assert_published("default/sync", events=["s"])
            server.assert_subscribed("default/*")
            server.assert_no_errors()
            assert server.wait_for_sync(lambda r: r.published[-1].deliveries or None, 2) == 1
            with pytest.raises(RecorderAssertionError, match=r"wait_published\('default/n"):
                server.wait_published_sync("default/never", timeout=20 * MS)
        server.check()


def _awaiting(task: asyncio.Task[Any]) -> list[str]:
    """The qualified names of the coroutines ``task`` is suspended in, outermost first."""
    names = []
    awaited: Any = task.get_coro()
    while awaited is not None and hasattr(awaited, "cr_code"):
        names.append(awaited.cr_code.co_qualname)
        awaited = awaited.cr_await
    return names


def _handles_a_request(task: asyncio.Task[Any]) -> bool:
    names = _awaiting(task)
    return bool(names) and names[0] == "RequestHandler._handle_request"


@pytest.mark.asyncio
async def test_request_middlewares_keep_no_frame_while_a_websocket_lasts(
    server: EmulatorServer,
) -> None:
    """The retired-port check and the recording run around the application, from the
    runner: aiohttp then wraps no request in a coroutine of its own, and an open
    WebSocket's task is suspended in no middleware (each frame would live as long as
    the connection).  The request counts as in flight (what ``reset(new_port=True)``
    reads) until its task is done."""
    runner = server._runner
    assert runner is not None
    assert not runner.app.middlewares
    assert server._in_flight == 0
    before = asyncio.all_tasks()
    raw = await open_raw(server)
    await raw.init()
    (handling,) = [t for t in asyncio.all_tasks() - before if _handles_a_request(t)]
    names = _awaiting(handling)
    # aiohttp's request coroutine, then the application's and the endpoint's at once.
    assert names[:3] == ["RequestHandler._handle_request", "Application._handle", "handle_realtime"]
    assert server._in_flight == 1
    await raw.ws.close()
    await asyncio.wait([handling], timeout=WAIT)
    assert server._in_flight == 0  # its done callback ran before asyncio.wait's


@pytest.mark.asyncio
async def test_a_recording_wraps_the_upgrade_from_outside_the_application(
    server: EmulatorServer, tmp_path: Path
) -> None:
    """While a recording runs, the recording middleware is one coroutine around the
    request (it records a refused upgrade's answer); it still runs outside the
    application, and the in-flight count still ends with the request."""
    from appsync_emulator.recording_file import start_recording

    recording = start_recording(server, tmp_path / "traffic.jsonl")
    try:
        before = asyncio.all_tasks()
        raw = await open_raw(server)
        await raw.init()
        (handling,) = [t for t in asyncio.all_tasks() - before if _handles_a_request(t)]
        names = _awaiting(handling)
        # aiohttp's request coroutine, the recording's, then the application's.
        assert names[:3] == [
            "RequestHandler._handle_request",
            "recording_middleware.<locals>.recorded",
            "Application._handle",
        ], names
        await raw.ws.close()
        await asyncio.wait([handling], timeout=WAIT)
        assert server._in_flight == 0
    finally:
        recording.close()
