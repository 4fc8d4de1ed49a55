"""The three ways to host the emulator (in-loop, background thread, TLS) and their API."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import threading
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from freezegun import freeze_time
from websockets.sync.client import connect as sync_connect

from appsync_emulator import EmulatorServer, EmulatorThread, NamespaceConfig
from appsync_emulator.faults import AckTimeoutOverride, CloseConnection
from appsync_emulator.handlers import HandlerContext
from appsync_events.protocol.subprotocol import PROTOCOL_EVENTS, encode_auth_subprotocol
from tests.conftest import MS

from .conftest import api_auth, fast_config, open_raw


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
            server.recorder.wait_connected(1, timeout=2)
            server.close_connection(server.connections[-1].id, 4003, "sync")
            with pytest.raises(Exception, match="4003"):
                _drain(ws)
        server.recorder.wait_for(
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
        record = await server.recorder.wait_subscribed_async("default/t")
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
            conn = server.recorder.wait_connected(1, timeout=2)[-1].id

            def kas(count: int) -> object:
                def predicate(r: object) -> object:
                    sent = server.recorder.sent_to(conn)
                    return True if sum(f.frame_type == "ka" for f in sent) >= count else None

                return predicate

            server.recorder.wait_for(kas(1), timeout=2)
            with freeze_time("2030-01-01", real_asyncio=True):
                server.recorder.wait_for(kas(4), timeout=2)


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
    assert loop.time() - started < 500 * MS * 2
    for raw in raws:
        assert (await raw.closed())[0] == 1001
