"""``EmulatorHost.reset()``: what the shared servers of the plugin rely on between tests."""

from __future__ import annotations

import asyncio
import base64
import errno
import http.client
import json
import os
import socket
import threading

import pytest

import appsync_events
from appsync_emulator import EmulatorServer, EmulatorThread
from appsync_emulator.faults import DropKeepAlives, NeverAck
from appsync_emulator.hosting import _SPARE_PORTS, _Listener
from appsync_events import authorizer
from appsync_events.protocol.subprotocol import PROTOCOL_EVENTS, encode_auth_subprotocol


def _auth(server: EmulatorThread | EmulatorServer) -> authorizer.ApiKey:
    assert server.api_key is not None
    return authorizer.ApiKey(api_key=server.api_key, endpoint=server.http_endpoint)


def _post(conn: http.client.HTTPConnection, api_key: str) -> int:
    body = json.dumps({"channel": "default/x", "events": [json.dumps({"n": 1})]})
    headers = {"content-type": "application/json", "x-api-key": api_key}
    conn.request("POST", "/event", body, headers)
    response = conn.getresponse()
    response.read()
    return response.status


@pytest.mark.asyncio
async def test_reset_closes_connections_and_forgets_everything() -> None:
    """Open connections get 1001 "reset"; records, faults, errors go; ids restart at c1."""
    with EmulatorThread() as server:
        client = await appsync_events.connect(server.realtime_endpoint, authorizer=_auth(server))
        sub = await client.subscribe("default/x")
        await client.publish("default/x", {"n": 1})
        await sub.next()
        server.inject(DropKeepAlives())
        server.emulator.record_exception(ValueError("from the previous test"))
        await server.areset()
        with pytest.raises(appsync_events.ConnectionClosedError, match="1001"):
            await client.publish("default/x", {"n": 2})
        await client.close()
        recorder = server.recorder
        seen = (recorder.connections, recorder.subscriptions, recorder.published)
        assert seen == ([], [], [])
        assert (recorder.received, recorder.sent) == ([], [])
        assert (len(server.emulator.plan), server.emulator.connections) == (0, {})
        assert len(server.emulator.broker) == 0
        server.check()  # the collected exception is gone
        again = await appsync_events.connect(server.realtime_endpoint, authorizer=_auth(server))
        assert [c.id for c in await server.wait_connected(1)] == ["c1"]
        await again.close()


def test_reset_new_port_refuses_the_old_address() -> None:
    """With new_port, the old listener and its kept-alive HTTP connections are closed."""
    with EmulatorThread() as server:
        assert server.api_key is not None
        old = server.port
        kept = http.client.HTTPConnection("127.0.0.1", old, timeout=5)
        assert _post(kept, server.api_key) == 200
        server.reset(new_port=True)
        assert server.port != old
        assert server.recorder.published == []
        with pytest.raises(OSError):
            _post(kept, server.api_key)
        refused = http.client.HTTPConnection("127.0.0.1", old, timeout=5)
        with pytest.raises(ConnectionRefusedError):
            _post(refused, server.api_key)
        refused.close()
        fresh = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        assert _post(fresh, server.api_key) == 200
        fresh.close()
        kept.close()
        assert len(server.recorder.published) == 1


@pytest.mark.asyncio
async def test_reset_of_an_in_loop_server() -> None:
    """On the server's own loop, areset() waits; reset() aborts and cannot take a new port."""
    async with EmulatorServer() as server:
        client = await appsync_events.connect(server.realtime_endpoint, authorizer=_auth(server))
        server.inject(NeverAck())
        await server.areset(new_port=True)
        assert (server.connections, len(server.emulator.plan)) == ([], 0)
        with pytest.raises(appsync_events.ConnectionClosedError):
            await client.publish("default/x", {"n": 1})
        await client.close()
        with pytest.raises(RuntimeError, match=r"await server.areset\(\)"):
            server.reset(new_port=True)
        server.reset()  # nothing to wait for: fine on the loop


def test_reset_of_a_stopped_server_clears_the_records() -> None:
    """Before start and after stop there is no loop: reset clears what was recorded."""
    server = EmulatorThread()
    server.reset()
    with server:
        assert server.api_key is not None
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        assert _post(conn, server.api_key) == 200
        conn.close()
    assert len(server.recorder.published) == 1
    server.reset()
    assert server.recorder.published == []


def test_reset_drops_a_peer_that_never_answers() -> None:
    """A connection whose client is gone (its loop closed, its socket not) is dropped."""
    with EmulatorThread() as server:
        assert server.api_key is not None
        auth = encode_auth_subprotocol({"x-api-key": server.api_key, "host": "127.0.0.1"})
        key = base64.b64encode(os.urandom(16)).decode()
        upgrade = (
            f"GET /event/realtime HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Protocol: {PROTOCOL_EVENTS}, {auth}\r\n\r\n"
        )
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as peer:
            peer.sendall(upgrade.encode())
            assert peer.recv(4096).startswith(b"HTTP/1.1 101")
            server.wait_connected_sync(1)
            # The peer never answers the close frame: the reset drops it after its close
            # window (a reset that waited for it would raise TimeoutError).
            server.reset()
            assert server.connections == []
            assert not server.emulator.connections


def test_reset_moves_only_a_port_someone_read() -> None:
    """``new_port`` moves the server only when its port (or an endpoint) was read since the
    last move: nobody else can know an address nobody read, and the reset stays cheap."""
    with EmulatorThread() as server:
        first = server.port
        server.reset(new_port=True)
        second = server.http_endpoint  # moved; reading an endpoint hands the port out again
        assert str(first) not in second
        server.reset(new_port=True)
        third = server._state.port  # read without handing it out
        assert f":{third}/" not in second
        server.reset(new_port=True)
        assert server._state.port == third  # nobody read it: no move
        assert server.port == third


def test_reset_new_port_of_an_idle_server_does_not_wait_for_its_loop() -> None:
    """With nothing to stop, ``reset(new_port=True)`` moves the port without the server's
    loop (held here): the new port accepts at once and is served when the loop runs, and
    a request through the old address is refused (503) or its connection refused."""
    with EmulatorThread() as server:
        assert server.api_key is not None
        assert server.port  # shown: the reset moves it
        server.reset(new_port=True)  # on the loop; spare ports are ready after it
        old = server.port
        entered, gate = threading.Event(), threading.Event()
        server._state.loop.call_soon_threadsafe(lambda: (entered.set(), gate.wait(10)))  # type: ignore[union-attr]
        assert entered.wait(10)
        try:
            server.reset(new_port=True)  # the loop is held: this must not wait for it
            new = server.port
            assert new != old
            assert server.recorder.published == []
            fresh = socket.create_connection(("127.0.0.1", new), timeout=5)  # in the backlog
            fresh.close()
        finally:
            gate.set()
        conn = http.client.HTTPConnection("127.0.0.1", new, timeout=5)
        assert _post(conn, server.api_key) == 200
        conn.close()
        stale = http.client.HTTPConnection("127.0.0.1", old, timeout=5)
        try:
            assert _post(stale, server.api_key) == 503
        except ConnectionRefusedError:
            pass  # the loop has closed the old listener already
        stale.close()
        assert [p.channel for p in server.recorder.published] == ["/default/x"]


def test_reset_new_port_waits_for_a_request_in_flight() -> None:
    """A request being handled when the port moves is not left to the next test: the reset
    waits for it on the loop (the no-wait move is only for a server with nothing open)."""
    with EmulatorThread() as server:
        assert server.api_key is not None
        kept = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        assert _post(kept, server.api_key) == 200  # a keep-alive connection stays open
        server.reset(new_port=True)
        assert server.recorder.published == []
        with pytest.raises(OSError):
            _post(kept, server.api_key)  # closed by the reset, before it returned
        kept.close()


def _listened_here(port: int) -> bool | None:
    """Whether a socket of this process listens on TCP ``port`` (``None``: no ``/proc`` to
    tell).  A port a server closed may be taken at once by another listener (another
    test worker's server, say): a connection it accepts is then not ours."""
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return None
    mine = set()
    for fd in fds:
        try:  # (listdir's own descriptor is gone)
            mine.add(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass
    try:
        rows = []
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with open(table) as lines:
                rows += [line.split() for line in list(lines)[1:]]
    except OSError:
        return None
    # Columns: sl, local address:port (hex), remote, state (0A: listening), ..., inode.
    return any(
        int(row[1].rpartition(":")[2], 16) == port
        and row[3] == "0A"
        and f"socket:[{row[9]}]" in mine
        for row in rows
    )


def _refused_or_503(port: int, api_key: str) -> bool:
    """Whether the server no longer serves on ``port``: it refuses with 503 until its
    listener closes, then the connection is refused (or another listener took the port)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        return _post(conn, api_key) == 503 or _listened_here(port) is False
    except ConnectionRefusedError:
        return True
    finally:
        conn.close()


def _closed(port: int) -> bool:
    """Whether no socket of this process listens on ``port`` any more (see
    :func:`_listened_here`)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return _listened_here(port) is False


def test_reset_moves_an_idle_server_through_spare_ports() -> None:
    """Moves in a row (more than the spares) each give a new port; every old one refuses
    (503 until the next reset on the loop closes it, then the connection itself)."""
    with EmulatorThread() as server:
        assert server.api_key is not None
        ports = []
        for _ in range(_SPARE_PORTS + 3):
            ports.append(server.port)
            server.reset(new_port=True)
        current = server.port
        assert len({*ports, current}) == len(ports) + 1
        assert all(_refused_or_503(port, server.api_key) for port in ports)
        kept = http.client.HTTPConnection("127.0.0.1", current, timeout=5)
        assert _post(kept, server.api_key) == 200
        assert len(server.recorder.published) == 1
        server.reset(new_port=True)  # a connection is open: on the loop, listeners closed
        kept.close()
        # The system may give a closed port to one of the new spare listeners.
        listening = {server.port, *(spare.port for spare in server.server._spares)}
        closed = [port for port in [*ports, current] if port not in listening]
        assert len(closed) >= len(ports) + 1 - len(listening)
        assert all(_closed(port) for port in closed)


def test_stop_closes_the_spare_ports() -> None:
    """Stopping a server closes its spare listeners too: no port of it accepts."""
    server = EmulatorThread().start()
    try:
        assert server.port  # shown: the reset moves it
        server.reset(new_port=True)
        spares = [listener.port for listener in server.server._spares]
        assert len(spares) == _SPARE_PORTS
    finally:
        server.stop()
    assert all(_closed(port) for port in spares)


class _FakeListeningSocket:
    """A listening socket whose ``accept`` fails as told (a socketpair end, made readable,
    stands in for its descriptor)."""

    def __init__(self, failures: list[OSError]) -> None:
        self.end, self.peer = socket.socketpair()
        self.peer.send(b"x")  # readable: the loop calls accept
        self.failures = failures
        self.accepts = 0
        self.accepted = asyncio.Event()

    def fileno(self) -> int:
        return self.end.fileno()

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", 1)

    def accept(self) -> tuple[socket.socket, object]:
        self.accepts += 1
        self.accepted.set()
        raise self.failures.pop(0) if self.failures else BlockingIOError()

    def close(self) -> None:
        self.end.close()
        self.peer.close()


@pytest.mark.asyncio
async def test_spare_listener_pauses_when_out_of_descriptors() -> None:
    """Out of descriptors, a listener stops watching its socket and retries later (as an
    asyncio server does); another accept error stops serving it; neither raises."""
    loop = asyncio.get_running_loop()
    fake = _FakeListeningSocket([OSError(errno.EMFILE, "too many open files")])
    listener = _Listener(fake, None, loop)  # type: ignore[arg-type]
    try:
        await asyncio.wait_for(fake.accepted.wait(), 5)
        assert listener._retry is not None  # paused, a retry scheduled
        assert not loop.remove_reader(fake.fileno())  # no longer watched
        fake.accepted.clear()
        listener._retry.cancel()
        listener._resume()  # the retry, without waiting for it
        await asyncio.wait_for(fake.accepted.wait(), 5)
        assert fake.accepts >= 2
        assert listener._retry is None
        fake.failures.append(OSError(errno.EINVAL, "invalid"))
        fake.accepted.clear()
        await asyncio.wait_for(fake.accepted.wait(), 5)
        assert listener._retry is None
        assert not loop.remove_reader(fake.fileno())
    finally:
        listener.close()
        fake.close()


@pytest.mark.asyncio
async def test_stop_closes_a_connection_accepted_just_before() -> None:
    """A connection a listener accepted just before the server stopped is closed, even
    when its set-up never started (no socket is left open)."""
    mine, peer = socket.socketpair()
    try:
        server = EmulatorServer()
        await server.start()
        server._serve(mine, asyncio.get_running_loop())  # as a listener's accept does
        await server.stop()  # cancels the set-up before it ran
        assert mine.fileno() == -1
        assert peer.recv(1) == b""  # the peer sees the end
    finally:
        mine.close()
        peer.close()
