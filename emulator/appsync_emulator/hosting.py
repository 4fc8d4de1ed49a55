"""Running the emulator: in the caller's event loop, or in a background thread.

``async with EmulatorServer(config) as server:`` serves on the running loop; ``with
EmulatorThread(config) as server:`` starts a thread with its own :class:`RealClockLoop`
and works from sync tests, from async tests on any loop, and under freezegun.  Both bind
one listener (``127.0.0.1`` and a free port by default) serving ``POST /event`` and
``GET /event/realtime``, optionally with TLS from a local CA.

Both hosts share one API, defined once in :class:`EmulatorHost`: addresses, faults,
connections, the recorder and its assertions and waits (``server.assert_published(...)``,
``await server.wait_published(...)``, ``server.wait_published_sync(...)``).  Every control
and inspection method is thread-safe: called from another thread, it runs on the server's
loop and waits (with a timeout) for the result.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import errno
import functools
import ipaddress
import itertools
import socket
import ssl
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Protocol, Self, TypeVar, TypeVarTuple

from aiohttp import web

from appsync_events.protocol.channels import parse_subscribe_channel

from ._clock import RealClockLoop
from ._logging import LOG_SERVER
from ._runner import EmulatorRunner
from .config import EmulatorConfig
from .fault_handles import FaultHandle as FaultHandle, FaultNotDoneError as FaultNotDoneError
from .faults import Fault, SubscriptionRef, Target, subscription_id_of
from .issuer import LocalIssuer
from .recorder import ConnectionInfo, PublishRecord, Recorder, SubscriptionRecord
from .recorder_checks import RecorderAssertionError
from .server import Emulator
from .tls import LocalCA
from .ws_connection import WebSocketConnection

__all__ = [
    "RESET_CLOSE_CODE",
    "RESET_CLOSE_TIMEOUT",
    "RESET_TIMEOUT",
    "ConnectionRef",
    "EmulatorHost",
    "EmulatorServer",
    "EmulatorThread",
    "FaultHandle",
    "FaultNotDoneError",
    "HasLocalAddress",
]

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

CONTROL_TIMEOUT = 10.0
"""Seconds a cross-thread control call may take."""

RESET_TIMEOUT = 10.0
"""Seconds :meth:`EmulatorHost.reset` waits for connections and publishes to finish."""

RESET_CLOSE_TIMEOUT = 0.1
"""Seconds a peer gets to answer the close frame of a reset before it is dropped (a
client whose test has ended, and whose event loop with it, never answers)."""

RESET_CLOSE_CODE = 1001
RESET_CLOSE_REASON = "reset"
"""How a reset closes the connections still open: as a server that goes away."""


class HasLocalAddress(Protocol):
    """A client, as the server can recognise it: by the address of its end of the socket
    (:attr:`appsync_events.Client.local_address`)."""

    @property
    def local_address(self) -> tuple[str, int] | None: ...


ConnectionRef = Target | ConnectionInfo | HasLocalAddress
"""A connection as a test knows it: every connection (``None``), its id (``"c2"``), its
:class:`~appsync_emulator.recorder.ConnectionInfo`, the client connected over it, or a
predicate over ``ConnectionInfo``."""


def _ended(sub_id: str) -> Callable[[Recorder], SubscriptionRecord | None]:
    """Recorder predicate: the latest record of ``sub_id``, once it has ended."""

    def ended(recorder: Recorder) -> SubscriptionRecord | None:
        found = [s for s in recorder.subscriptions if s.id == sub_id]
        return found[-1] if found and not found[-1].active else None

    return ended


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    try:
        if ipaddress.ip_address(host).version == 6:
            return f"[{host}]"
    except ValueError:
        pass
    return host


@dataclass(slots=True, eq=False)
class _HostState:
    """What both hosts reach: the application and where (and on which loop) it serves.

    :class:`EmulatorServer` fills it in as it starts; an :class:`EmulatorThread` shares
    the one of the server it runs.
    """

    config: EmulatorConfig
    emulator: Emulator
    host: str
    tls: bool
    port: int | None = None
    port_shown: bool = False
    """Whether :attr:`EmulatorHost.port` was read since the server last moved to a new
    port (``reset(new_port=True)``): only then can a client know the address."""
    ca: LocalCA | None = None
    loop: asyncio.AbstractEventLoop | None = None
    thread_id: int | None = None
    listening: bool = False
    server: EmulatorServer | None = None
    """The in-loop server (an :class:`EmulatorThread` runs one)."""


class EmulatorHost:
    """The API shared by :class:`EmulatorServer` and :class:`EmulatorThread`.

    Not instantiated directly; annotate with it to accept either host.  Control methods
    (``inject``, ``clear_faults``, ``close_connection``, ``reset``) run on the server's loop,
    whichever thread calls them.  Assertions and waits go to :attr:`recorder`: awaitable
    ``wait_*`` work on any event loop, and their ``wait_*_sync`` twins block the calling
    thread (for sync tests; refused on a thread that runs an event loop, such as an
    in-loop :class:`EmulatorServer`'s).
    """

    _state: _HostState

    def __init__(self) -> None:
        raise TypeError(
            "EmulatorHost is the API EmulatorServer and EmulatorThread share; "
            "create one of those instead"
        )

    # --- state --------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the server is listening."""
        return self._state.listening

    @property
    def host(self) -> str:
        """The bound address as given (``127.0.0.1`` by default)."""
        return self._state.host

    @property
    def tls(self) -> bool:
        """Whether the server serves ``https``/``wss``."""
        return self._state.tls

    # --- addresses ------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port.

        Raises:
            RuntimeError: the server is not started.
        """
        if self._state.port is None:
            raise RuntimeError("the emulator is not started")
        self._state.port_shown = True  # every endpoint property reads it here
        return self._state.port

    @property
    def _base(self) -> str:
        return f"{_url_host(self._state.host)}:{self.port}"

    @property
    def http_endpoint(self) -> str:
        """``http://127.0.0.1:PORT/event`` (``https://`` with TLS)."""
        return f"{'https' if self._state.tls else 'http'}://{self._base}/event"

    @property
    def realtime_endpoint(self) -> str:
        """``ws://127.0.0.1:PORT/event/realtime`` (``wss://`` with TLS)."""
        return f"{'wss' if self._state.tls else 'ws'}://{self._base}/event/realtime"

    @property
    def console_url(self) -> str | None:
        """``http://127.0.0.1:PORT/console`` (``https://`` with TLS); ``None`` when off."""
        if not self._state.emulator.console.enabled:
            return None
        return f"{'https' if self._state.tls else 'http'}://{self._base}/console"

    @property
    def region(self) -> str:
        """The configured AWS region (what IAM signatures must name)."""
        return self._state.config.region

    @property
    def api_key(self) -> str | None:
        """The first configured API key."""
        return self._state.config.api_key

    @property
    def config(self) -> EmulatorConfig:
        """The configuration the server runs with."""
        return self._state.config

    @property
    def ca_cert_path(self) -> str | None:
        """The local CA certificate (PEM) to trust, with ``tls=True``; else ``None``."""
        ca = self._state.ca
        return str(ca.ca_cert_path) if ca is not None else None

    def client_ssl_context(self) -> ssl.SSLContext:
        """An ``ssl.SSLContext`` that trusts the local CA.

        Raises:
            RuntimeError: the server was not started with ``tls=True``.
        """
        if self._state.ca is None:
            raise RuntimeError("client_ssl_context() needs a server started with tls=True")
        return self._state.ca.client_context()

    # --- inspection and control (thread-safe) -----------------------------------------------

    @property
    def recorder(self) -> Recorder:
        """What the server saw and sent; the assertions and waits below read it."""
        return self._state.emulator.recorder

    @property
    def issuer(self) -> LocalIssuer:
        """The local token issuer: ``server.issuer.mint(sub="alice", groups=["admins"])``.

        ``mint`` is thread-safe.
        """
        return self._state.emulator.issuer

    @property
    def emulator(self) -> Emulator:
        """The application state (advanced use; its methods run on the server's loop)."""
        return self._state.emulator

    @property
    def _emulator(self) -> Emulator:
        # The private name tests used before ``emulator`` was public on both hosts.
        return self._state.emulator

    @property
    def connections(self) -> list[ConnectionInfo]:
        """Open connections and those closed since the last reset, oldest first."""
        return self._state.emulator.recorder.connections

    def _call(self, func: Callable[[*Ts], T], *args: *Ts) -> T:
        """Run ``func(*args)`` on the server's loop thread and return its result.

        Called on that thread, or when no loop runs (not started, stopped), it runs here.

        Raises:
            TimeoutError: the loop did not run it within :data:`CONTROL_TIMEOUT`.
        """
        state = self._state
        loop = state.loop
        if (
            loop is None
            or threading.get_ident() == state.thread_id
            or loop.is_closed()
            or not loop.is_running()
        ):
            return func(*args)
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(func(*args))
            except BaseException as exc:
                future.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return future.result(CONTROL_TIMEOUT)

    def inject(self, fault: Fault, *, connection: ConnectionRef = None) -> FaultHandle:
        """Install ``fault`` for every connection, one connection, or a predicate.

        One-shot faults act at once on the matching open connections.  The handle removes
        the fault when used as a context manager, or on ``remove()``, and waits until the
        fault has acted: ``await handle.wait_done()`` (``wait_done_sync()`` in sync tests).

        Args:
            fault: the fault value (:mod:`appsync_emulator.faults`).
            connection: ``None`` (every connection), a connection id, its
                :class:`~appsync_emulator.recorder.ConnectionInfo`, the client connected
                over it (see :meth:`connection_of`), or a predicate over ``ConnectionInfo``.

        Raises:
            LookupError: ``connection`` is a client the server has no open connection from.
            TypeError: ``fault`` is not a fault, or ``connection`` none of the above.
        """
        emulator = self._state.emulator
        target = self._target(connection)
        handle = FaultHandle(fault)
        key = self._call(emulator.add_fault, fault, target, handle._listener)
        handle._bind(lambda: self._call(emulator.remove_fault, key))
        return handle

    def _target(self, connection: ConnectionRef) -> Target:
        if isinstance(connection, ConnectionInfo):
            return connection.id
        if connection is None or isinstance(connection, str) or callable(connection):
            return connection
        if hasattr(connection, "local_address"):
            return self.connection_of(connection).id
        raise TypeError(
            "connection must be None, a connection id, a ConnectionInfo, a client or a "
            f"predicate, not {connection!r}"
        )

    def clear_faults(self) -> None:
        """Remove every installed fault."""
        self._call(self._state.emulator.clear_faults)

    def close_connection(self, connection_id: str, code: int = 1000, reason: str = "") -> None:
        """Close connection ``connection_id`` with ``code`` after its queued frames.

        Raises:
            KeyError: no open connection has that id.
        """
        self._call(self._state.emulator.close_connection, connection_id, code, reason)

    # --- finding what a test knows: a client's connection, a subscription ------------------

    def connection_of(self, client: HasLocalAddress | tuple[str, int]) -> ConnectionInfo:
        """The open connection ``client`` (or the client socket address) is connected over.

        The server knows a client by the address of the client's end of the socket, which
        the client shows as :attr:`appsync_events.Client.local_address`.  Never waits: a
        connected client's connection is open on the server from before its
        ``connection_ack``.

        Raises:
            LookupError: no open connection comes from that address (listing the open ones).
        """
        if isinstance(client, tuple):
            address: tuple[str, int] | None = client
        else:
            address = client.local_address
        if address is None:
            raise LookupError(f"{client!r} has no local address: it is not connected")
        found = self._call(self._connection_from, (str(address[0]), int(address[1])))
        if isinstance(found, str):
            raise LookupError(found)
        return found

    def _connection_from(self, address: tuple[str, int]) -> ConnectionInfo | str:
        # On the server's loop: the open connections and their peers.
        seen = []
        for conn in list(self._state.emulator.connections.values()):
            peer = conn.transport.get_extra_info("peername") if conn.transport else None
            if peer is not None and (str(peer[0]), int(peer[1])) == address:
                return self.recorder.connection(conn.id) or conn.info
            where = f"{peer[0]}:{peer[1]}" if peer is not None else "?"
            seen.append(f"{conn.id} from {where}")
        return (
            f"no open connection from {address[0]}:{address[1]} (open: "
            + (", ".join(seen) or "none")
            + ")"
        )

    def subscription(self, channel: str, *, connection: ConnectionRef = None) -> SubscriptionRecord:
        """The active subscription to ``channel`` (the pattern as subscribed; ``/`` optional).

        Never waits: after ``await client.subscribe(...)`` returns, the server has recorded
        the subscription already.  To wait for one that other code makes, use
        :meth:`wait_subscribed`.

        Args:
            channel: the channel or pattern, as subscribed (``"default/*"``).
            connection: only on this connection (an id, a ``ConnectionInfo``, a client),
                when several connections subscribe to the same channel.

        Raises:
            LookupError: no active subscription to ``channel``, or several (listing them).
        """
        pattern = parse_subscribe_channel(channel).path
        conn_id = self._conn_id(connection)
        subs = self.recorder.active_subscriptions
        found = [s for s in subs if s.pattern == pattern and conn_id in (None, s.connection_id)]
        if len(found) == 1:
            return found[0]
        where = f" on {conn_id}" if conn_id is not None else ""
        listing = ", ".join(f"{s.pattern} ({s.connection_id} {s.id})" for s in subs) or "none"
        if not found:
            raise LookupError(f"no active subscription to {pattern}{where} (active: {listing})")
        raise LookupError(
            f"{len(found)} active subscriptions to {pattern}{where}: name the connection "
            f"(active: {listing})"
        )

    def _conn_id(self, connection: ConnectionRef) -> str | None:
        target = self._target(connection)
        if target is not None and not isinstance(target, str):
            raise TypeError("connection must be an id, a ConnectionInfo or a client here")
        return target

    def subscription_of(self, subscription: SubscriptionRef) -> SubscriptionRecord:
        """The server's record of ``subscription`` (the client's ``Subscription``, or an id).

        The latest record with that id, active or ended (``record.active``).  Never waits.

        Raises:
            LookupError: the server never recorded a subscription with that id.
        """
        sub_id = subscription_id_of(subscription)
        found = [s for s in self.recorder.subscriptions if s.id == sub_id]
        if not found:
            raise LookupError(f"no subscription {sub_id!r} was recorded")
        return found[-1]

    async def wait_unsubscribed(
        self,
        subscription: SubscriptionRef,
        timeout: float = 5.0,  # noqa: ASYNC109 - the recorder waits' signature
    ) -> SubscriptionRecord:
        """Wait until ``subscription`` has ended on the server; return its record.

        It ends when the client unsubscribes it (a client does so by itself for a
        subscription whose inbox overflowed) or its connection closes.

        Raises:
            RecorderAssertionError: after ``timeout`` seconds, saying whether the
                subscription is still active or was never recorded.

        Cancel-safe; works on any event loop.
        """
        sub_id = subscription_id_of(subscription)
        return await self.recorder._wait(
            _ended(sub_id), timeout, f"wait_unsubscribed({sub_id!r})", self._still(sub_id)
        )

    def wait_unsubscribed_sync(
        self, subscription: SubscriptionRef, timeout: float = 5.0
    ) -> SubscriptionRecord:
        """Blocking :meth:`wait_unsubscribed`, for sync tests."""
        sub_id = subscription_id_of(subscription)
        return self.recorder._wait_sync(
            _ended(sub_id), timeout, f"wait_unsubscribed({sub_id!r})", self._still(sub_id)
        )

    def _still(self, sub_id: str) -> Callable[[], str]:
        def describe() -> str:
            if any(s.id == sub_id for s in self.recorder.subscriptions):
                return f"subscription {sub_id} is still active"
            return f"no subscription {sub_id} was ever recorded"

        return describe

    def check(self) -> None:
        """Re-raise the first server-side exception collected since the last check."""
        self._state.emulator.check()

    def reset(self, timeout: float = RESET_TIMEOUT, *, new_port: bool = False) -> None:
        """Return the server to the state of a fresh one.

        In order: remove every fault; cancel the HTTP publishes in flight; close every
        WebSocket connection (``1001``; a peer that does not answer the close within
        :data:`RESET_CLOSE_TIMEOUT` is dropped) and wait until each has finished, its
        handler tasks included; then clear the recorder and the collected exceptions, and
        restart the connection ids at ``c1``.  Blocks until done, whichever thread calls it.
        A server with nothing to stop (no connection, request or fault) resets in a few
        microseconds, without a round trip to its loop, even on a new port (see below).

        Args:
            timeout: seconds to wait for connections and publishes to finish.
            new_port: also listen on a new free port, close the old listener and every
                remaining HTTP connection, so that a client still using the old address
                (a stray thread, a reconnecting client) is refused instead of reaching
                the reset server (a request that still arrives through a connection the
                old listener accepted is answered ``503``).  The endpoints change
                accordingly.  Skipped when nothing read the port (or an endpoint) since
                the last move: no client can know the address, so there is nothing to
                refuse, and the reset stays a few microseconds.  A server with nothing
                open (no socket, request or fault) moves to one of the spare listeners
                it keeps ready (:data:`_SPARE_PORTS`, on ports nobody was shown) without
                waiting for its loop: the old port is retired at once (a request through
                it is answered ``503``) and its listener is closed by the next reset that
                goes to the loop, which also prepares new spares.

        On the server's own loop (an in-loop :class:`EmulatorServer`) nothing can be
        awaited: connections are aborted, one that has not finished yet may still be
        recorded as it closes, and ``new_port`` is refused.  ``await server.areset()``
        waits there.

        Raises:
            TimeoutError: connections or publishes were still running after ``timeout``
                seconds (everything else was reset).
            RuntimeError: ``new_port`` on the server's own loop.
        """
        state = self._state
        loop = state.loop
        if loop is None or loop.is_closed() or not loop.is_running():
            _reset_now(state.emulator)
            return
        on_loop = threading.get_ident() == state.thread_id
        if on_loop and new_port:
            raise RuntimeError("reset(new_port=True) waits: await server.areset() here")
        new_port = new_port and state.port_shown
        if not new_port and _idle(state.emulator):
            _clear_state(state.emulator)  # thread-safe: nothing runs that the loop must stop
            return
        if on_loop:
            _reset_now(state.emulator, abort=True)
            return
        if new_port and state.server is not None and state.server._try_move_nowait():
            return
        future = asyncio.run_coroutine_threadsafe(self._reset(timeout, new_port), loop)
        try:
            future.result(timeout + CONTROL_TIMEOUT)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"the emulator did not reset within {timeout} s") from None

    async def areset(
        self,
        timeout: float = RESET_TIMEOUT,  # noqa: ASYNC109 - reset()'s signature
        *,
        new_port: bool = False,
    ) -> None:
        """Awaitable :meth:`reset`, from any event loop (the server's own included).

        Raises:
            TimeoutError: connections or publishes were still running after ``timeout``.

        Cancelling it leaves the reset running to its end on the server's loop.
        """
        state = self._state
        loop = state.loop
        if loop is None or loop.is_closed() or not loop.is_running():
            _reset_now(state.emulator)
            return
        new_port = new_port and state.port_shown
        if not new_port and _idle(state.emulator):
            _clear_state(state.emulator)
            return
        if loop is asyncio.get_running_loop():
            await asyncio.shield(asyncio.ensure_future(self._reset(timeout, new_port)))
            return
        if new_port and state.server is not None and state.server._try_move_nowait():
            return
        future = asyncio.run_coroutine_threadsafe(self._reset(timeout, new_port), loop)
        await asyncio.shield(asyncio.wrap_future(future))

    async def _reset(self, timeout: float, new_port: bool) -> None:  # noqa: ASYNC109
        server = self._state.server
        if new_port and server is not None:
            # Nothing new can come in after these two: the old listener is closed, the
            # HTTP connections it accepted are closed, and nobody knows the new port yet.
            await server._new_port()
            server._drop_http_connections()
        await _reset(self._state.emulator, timeout)

    # --- assertions (the recorder's, from the server object) ----------------------------

    def assert_published(
        self, channel: str, count: int | None = None, events: Sequence[object] | None = None
    ) -> list[PublishRecord]:
        """Assert that ``channel`` received publishes; see :meth:`Recorder.assert_published`.

        Raises:
            RecorderAssertionError: listing what was published instead.
        """
        return self.recorder.assert_published(channel, count, events)

    def assert_subscribed(self, channel: str) -> SubscriptionRecord:
        """Assert an active subscription to exactly this pattern.

        Raises:
            RecorderAssertionError: listing the subscriptions that do exist.
        """
        return self.recorder.assert_subscribed(channel)

    def assert_no_errors(self) -> None:
        """Assert that the server answered nothing with an error.

        Raises:
            RecorderAssertionError: listing every error answer.
        """
        self.recorder.assert_no_errors()

    # --- waits (the recorder's; awaitable, with blocking ``_sync`` twins) ----------------

    async def wait_for(
        self,
        predicate: Callable[[Recorder], T | None],
        timeout: float = 5.0,  # noqa: ASYNC109 - the recorder's signature
        describe: Callable[[], str] | None = None,
    ) -> T:
        """Wait until ``predicate(recorder)`` is not ``None``; see :meth:`Recorder.wait_for`.

        Raises:
            RecorderAssertionError: after ``timeout`` seconds, naming the wait.

        Cancel-safe; works on any event loop.
        """
        return await self.recorder.wait_for(predicate, timeout, describe)

    def wait_for_sync(
        self,
        predicate: Callable[[Recorder], T | None],
        timeout: float = 5.0,
        describe: Callable[[], str] | None = None,
    ) -> T:
        """Blocking :meth:`wait_for`, for sync tests."""
        return self.recorder.wait_for_sync(predicate, timeout, describe)

    async def wait_connected(
        self,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - the recorder's signature
    ) -> list[ConnectionInfo]:
        """Wait until ``count`` connections have opened (since the last reset).

        Raises:
            RecorderAssertionError: after ``timeout`` seconds, listing the connections.

        Cancel-safe; works on any event loop.
        """
        return await self.recorder.wait_connected(count, timeout)

    def wait_connected_sync(self, count: int = 1, timeout: float = 5.0) -> list[ConnectionInfo]:
        """Blocking :meth:`wait_connected`, for sync tests."""
        return self.recorder.wait_connected_sync(count, timeout)

    async def wait_subscribed(
        self,
        channel: str,
        timeout: float = 5.0,  # noqa: ASYNC109 - the recorder's signature
    ) -> SubscriptionRecord:
        """Wait until an active subscription to exactly ``channel`` (a pattern) exists.

        Raises:
            RecorderAssertionError: after ``timeout`` seconds, listing the subscriptions.

        Cancel-safe; works on any event loop.
        """
        return await self.recorder.wait_subscribed(channel, timeout)

    def wait_subscribed_sync(self, channel: str, timeout: float = 5.0) -> SubscriptionRecord:
        """Blocking :meth:`wait_subscribed`, for sync tests."""
        return self.recorder.wait_subscribed_sync(channel, timeout)

    async def wait_published(
        self,
        channel: str,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - the recorder's signature
    ) -> list[PublishRecord]:
        """Wait until at least ``count`` events were accepted on ``channel``.

        Raises:
            RecorderAssertionError: after ``timeout`` seconds, listing what was published.

        Cancel-safe; works on any event loop.
        """
        return await self.recorder.wait_published(channel, count, timeout)

    def wait_published_sync(
        self, channel: str, count: int = 1, timeout: float = 5.0
    ) -> list[PublishRecord]:
        """Blocking :meth:`wait_published`, for sync tests."""
        return self.recorder.wait_published_sync(channel, count, timeout)

    def __repr__(self) -> str:
        if self.running:
            where = self.realtime_endpoint
        else:
            where = "not started" if self._state.port is None else "stopped"
        return f"<{type(self).__name__} {where}>"


# --- reset ------------------------------------------------------------------------------------


_CLOSE: Final = {"Connection": "close"}


async def _retired_response() -> web.StreamResponse:
    """The answer to a request through a retired port (``EmulatorServer._refuse_retired_ports``)."""
    return web.Response(status=503, text="this address was retired by a reset", headers=_CLOSE)


_BACKLOG: Final = 128
"""The listen backlog of a new port (aiohttp's default for its sites)."""


@functools.lru_cache(maxsize=16)
def _ip_family(host: str) -> socket.AddressFamily | None:
    """The address family of ``host``, an IP address; ``None`` for a host name."""
    try:
        return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        return None


def _listening_socket(host: str) -> socket.socket | None:
    """A socket listening on a free port of ``host``, an IP address; ``None`` for a name.

    Binding here spares the name resolution that ``TCPSite`` runs in a worker thread, and
    a socket that listens already accepts connections (into its backlog) before the loop
    serves it.  Any thread may call this.
    """
    family = _ip_family(host)
    if family is None:
        return None
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:  # as asyncio's servers: IPv6 only
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, 0))
        sock.listen(_BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


_SPARE_PORTS: Final = 16
"""Spare listeners a server moved by ``reset(new_port=True)`` keeps ready: that many moves
of an idle server in a row need no round trip to the loop."""

_OUT_OF_RESOURCES: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class _Listener:
    """A listening socket served on the loop without an asyncio server, so that it starts
    and stops in a plain callback (an asyncio server takes a coroutine to start).

    Created on the loop; accepts as an asyncio server does, and hands each connection to
    :meth:`EmulatorServer._serve`.
    """

    __slots__ = ("_fd", "_loop", "_owner", "_retry", "_sock", "port")

    def __init__(
        self, sock: socket.socket, owner: EmulatorServer, loop: asyncio.AbstractEventLoop
    ) -> None:
        self._sock = sock
        self._fd = sock.fileno()
        self._owner = owner
        self._loop = loop
        self._retry: asyncio.TimerHandle | None = None
        self.port = int(sock.getsockname()[1])
        try:
            loop.add_reader(self._fd, self._accept)
        except BaseException:
            sock.close()
            raise

    def _accept(self) -> None:
        for _ in range(_BACKLOG):
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                # Out of descriptors: the socket stays readable, so stop watching it a
                # moment, as an asyncio server does.  Anything else: stop serving it.
                self._loop.remove_reader(self._fd)
                if exc.errno in _OUT_OF_RESOURCES:
                    LOG_SERVER.warning("accept on port %s: %s (retrying in 1 s)", self.port, exc)
                    self._retry = self._loop.call_later(1.0, self._resume)
                else:
                    LOG_SERVER.error("accept on port %s: %s (no longer served)", self.port, exc)
                return
            conn.setblocking(False)
            self._owner._serve(conn, self._loop)

    def _resume(self) -> None:
        self._retry = None
        if self._sock.fileno() != -1:
            self._loop.add_reader(self._fd, self._accept)

    def close(self) -> None:
        """Stop accepting and close the socket (connections it accepted stay open)."""
        if self._retry is not None:
            self._retry.cancel()
        if self._sock.fileno() != -1:
            self._loop.remove_reader(self._fd)
            self._sock.close()


def _site_on_free_port(
    runner: web.AppRunner, host: str, ssl_context: ssl.SSLContext | None
) -> web.BaseSite:
    """A site listening on a free port of ``host`` (see :func:`_listening_socket`)."""
    sock = _listening_socket(host)
    if sock is None:
        return web.TCPSite(runner, host, 0, ssl_context=ssl_context, backlog=_BACKLOG)
    return web.SockSite(runner, sock, ssl_context=ssl_context, backlog=_BACKLOG)


def _clear_state(emulator: Emulator) -> None:
    """Forget what the recorder saw and the collected exceptions; restart connection ids."""
    emulator.recorder.clear()
    emulator.clear_errors()
    if not emulator.connections and not emulator.upgrading:
        # No connection can still use an old id: the next one is c1, as on a fresh server.
        emulator._ids = itertools.count(1)


def _busy(emulator: Emulator) -> bool:
    """Whether HTTP publishes, connections or upgrades are still running."""
    return bool(emulator.http_tasks or emulator.connections or emulator.upgrading)


def _idle(emulator: Emulator) -> bool:
    """Whether a reset has nothing to stop: no connection, publish in flight or fault.

    Read from any thread: a snapshot, which the loop may change at once after; a reset
    only promises the state at its own moment.
    """
    return not (
        emulator.connections or emulator.upgrading or emulator.http_tasks or len(emulator.plan)
    )


def _reset_now(emulator: Emulator, *, abort: bool = False) -> None:
    """The part of a reset that needs no waiting (no loop runs, or we are on it)."""
    emulator.clear_faults()
    if abort:
        for task in list(emulator.http_tasks):
            task.cancel()
        for conn in list(emulator.connections.values()):
            conn.abort()
    _clear_state(emulator)


async def _close(conn: WebSocketConnection) -> None:
    try:
        async with asyncio.timeout(RESET_CLOSE_TIMEOUT):
            await conn.close_now(RESET_CLOSE_CODE, RESET_CLOSE_REASON)
    except TimeoutError:
        conn.abort()


def _changed_since(version: int, emulator: Emulator) -> Callable[[Recorder], bool | None]:
    """A wait predicate: the recorder changed, or no connection is left."""

    def changed(recorder: Recorder) -> bool | None:
        if recorder.version != version or not (emulator.connections or emulator.upgrading):
            return True
        return None

    return changed


async def _reset(emulator: Emulator, timeout: float) -> None:  # noqa: ASYNC109
    """Reset ``emulator`` on its loop (see :meth:`EmulatorHost.reset`).

    Faults go first, so that a stalled connection can be closed; a connection still being
    upgraded (its authorizer running) is closed as soon as it opens.  A connection has
    finished when the recorder records its close: its handler has returned by then and it
    has left ``emulator.connections`` in the same step.
    """
    emulator.clear_faults()
    recorder = emulator.recorder
    try:
        async with asyncio.timeout(timeout):
            closing: set[str] = set()
            cancelled: set[str] = set()
            while True:
                if not _busy(emulator):
                    await asyncio.sleep(0)  # a request already read may start a publish
                    if not _busy(emulator):
                        break
                publishes = list(emulator.http_tasks)
                for task in publishes:
                    task.cancel()
                if publishes:
                    await asyncio.wait(publishes)
                    continue  # a request read meanwhile may have started another
                fresh = [c for c in emulator.connections.values() if c.id not in closing]
                closing.update(c.id for c in fresh)
                if fresh:
                    await asyncio.gather(*(_close(c) for c in fresh))
                try:
                    await recorder.wait_for(
                        _changed_since(recorder.version, emulator), RESET_CLOSE_TIMEOUT
                    )
                except RecorderAssertionError:
                    # Closed, and still running: its reader is held by a handler or an
                    # authorizer that does not return.  Cancel the connection's task.
                    for conn in list(emulator.connections.values()):
                        if conn.id in closing and conn.id not in cancelled:
                            cancelled.add(conn.id)
                            conn.request.task.cancel()
    except (TimeoutError, RecorderAssertionError):
        left = ", ".join([*emulator.connections, *emulator.upgrading])
        raise TimeoutError(
            f"reset: after {timeout} s, connections still open ({left or 'none'}) or "
            f"{len(emulator.http_tasks)} HTTP publish(es) running"
        ) from None
    finally:
        _clear_state(emulator)


class EmulatorServer(EmulatorHost):
    """The emulator on the running event loop.

    Args:
        config: the configuration; defaults work (one API key, namespace ``default``).
        host: the address to bind; ``127.0.0.1`` by default (``0.0.0.0`` exposes it).
        port: the port; ``0`` picks a free one (read it back from :attr:`port`).
        tls: serve ``https``/``wss`` with a certificate from a local CA
            (:attr:`ca_cert_path`, :meth:`client_ssl_context`).
        shutdown_timeout: seconds in-flight HTTP requests get at shutdown.
        console: serve the web console at ``/console`` (:attr:`console_url`).
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: bool = False,
        shutdown_timeout: float = 2.0,
        console: bool = True,
    ) -> None:
        config = config if config is not None else EmulatorConfig()
        self._state = _HostState(config=config, emulator=Emulator(config), host=host, tls=tls)
        self._state.server = self
        self._state.emulator.console.enabled = console
        self._state.emulator.console.bind_host = host
        self._requested_port = port
        self.shutdown_timeout = shutdown_timeout
        """Seconds in-flight HTTP requests get at shutdown."""
        self._runner: web.AppRunner | None = None
        self._site: web.BaseSite | _Listener | None = None
        self._retired_ports: set[int] = set()
        """Ports closed by ``reset(new_port=True)``: requests still arriving through
        connections they accepted are refused."""
        self._ssl_context: ssl.SSLContext | None = None
        self._stopped = False
        self._in_flight = 0
        """Requests being handled (a WebSocket's lasts as long as the connection)."""
        self._listeners: asyncio.Lock | None = None
        """Held while the listener changes on the loop (and by ``stop``)."""
        self._spares: collections.deque[_Listener] = collections.deque()
        """Listeners already served on free ports nobody was shown, ready to become the
        server's port without a round trip to the loop (see :meth:`_try_move_nowait`)."""
        self._retired: list[web.BaseSite | _Listener] = []
        """Listeners retired by :meth:`_try_move_nowait`: the next :meth:`_new_port`
        closes them."""
        self._accepting: set[asyncio.Task[None]] = set()
        """Connections accepted by a :class:`_Listener`, being set up (TLS handshakes)."""

    async def _new_port(self) -> None:
        """Listen on a new free port, then close the old listener (its open connections
        stay: the reset closes them), and every retired one, and refuse what they had
        accepted; then prepare :data:`_SPARE_PORTS` spares (for an IP address)."""
        async with self._listener_lock():
            runner, old, loop = self._runner, self._site, self._state.loop
            if runner is None or loop is None:
                return
            site: web.BaseSite | _Listener | None = self._pop_spare()
            if site is None and (sock := _listening_socket(self._state.host)) is not None:
                site = _Listener(sock, self, loop)
            if site is None:  # a host name: let aiohttp resolve it
                site = _site_on_free_port(runner, self._state.host, self._ssl_context)
                await site.start()
            self._site = site
            retired, self._retired = self._retired, []
            for listener in (*retired, old):
                if listener is not None:
                    await self._stop_listener(listener)
            port = site.port if isinstance(site, _Listener) else int(runner.addresses[0][1])
            self._prepare_spares(loop)
            if self._state.port is not None:
                self._retired_ports.add(self._state.port)
            self._state.port = port
            self._state.port_shown = False
            self._retired_ports.discard(port)  # the system may give a port again

    def _listener_lock(self) -> asyncio.Lock:
        if self._listeners is None:
            self._listeners = asyncio.Lock()
        return self._listeners

    def _pop_spare(self) -> _Listener | None:
        try:
            return self._spares.popleft()
        except IndexError:
            return None

    async def _stop_listener(self, listener: web.BaseSite | _Listener) -> None:
        if isinstance(listener, _Listener):
            listener.close()
        else:
            await listener.stop()

    def _try_move_nowait(self) -> bool:
        """From another thread: move to a spare port without waiting for the loop, if
        nothing is open that a reset would close, cancel or remove.

        Returns ``False`` (at once) otherwise, or when no spare is ready: then the caller
        resets on the loop.  The old port is retired first: from then on a request
        through it is refused (see :meth:`_refuse_retired_ports`).  Then the endpoints
        name the spare's port, which the loop serves already, and the records are cleared.
        The old listener is closed by the next reset on the loop (when the spares have run
        out, or something was open), with what it accepted meanwhile.

        A request that starts as the port is retired either counts in ``_in_flight``
        before the second check here, or finds the port retired: the middleware counts
        it before it reads the retired ports, and this thread retires before it counts.
        """
        state = self._state
        loop, runner, old = state.loop, self._runner, self._site
        if runner is None or loop is None or old is None or not self._quiet(runner):
            return False
        spare = self._pop_spare()
        if spare is None:
            return False  # the reset on the loop prepares new spares
        if state.port is not None:
            self._retired_ports.add(state.port)
        if not self._quiet(runner):
            self._spares.appendleft(spare)
            return False  # a request started meanwhile: the reset on the loop waits for it
        self._site = spare
        self._retired.append(old)
        state.port = spare.port
        state.port_shown = False
        self._retired_ports.discard(spare.port)  # the system may give a port again
        _clear_state(state.emulator)  # thread-safe: nothing runs that the loop must stop
        return True

    def _quiet(self, runner: web.AppRunner) -> bool:
        """Whether no socket is open, no request handled and the emulator idle (a snapshot
        read from any thread)."""
        server = runner.server
        return not (self._in_flight or (server is not None and server.connections)) and _idle(
            self._state.emulator
        )

    def _prepare_spares(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            while len(self._spares) < _SPARE_PORTS:
                sock = _listening_socket(self._state.host)
                if sock is None:
                    return  # a host name: no spares (each move resolves it on the loop)
                self._spares.append(_Listener(sock, self, loop))
        except OSError as exc:  # out of descriptors, say: the moves wait for the loop
            LOG_SERVER.warning("could not prepare a spare port: %s", exc)

    def _serve(self, conn: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        """Hand a connection a :class:`_Listener` accepted to aiohttp's server protocol."""
        task = loop.create_task(self._connect(conn, loop))
        self._accepting.add(task)
        task.add_done_callback(self._accepting.discard)
        task.add_done_callback(lambda done: conn.close() if done.cancelled() else None)

    async def _connect(self, conn: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        # Cancelled before it started (the server stopped), it never runs: then the done
        # callback set by _serve closes the connection.
        runner = self._runner
        try:
            if runner is None or runner.server is None:
                raise ConnectionAbortedError("the emulator stopped")
            await loop.connect_accepted_socket(runner.server, conn, ssl=self._ssl_context)
        except BaseException as exc:
            conn.close()  # as an asyncio server does, a failed set-up only loses the peer
            if not isinstance(exc, Exception):
                raise

    def _refuse_retired_ports(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> Awaitable[web.StreamResponse]:
        """Refuse a request that came through a listener retired by ``reset(new_port=True)``.

        A connection its listener accepted before it closed can still carry a request
        whose handling starts after the reset (aiohttp reads it on its own schedule), and
        a listener retired by another thread accepts until the loop closes it: such a
        request must not reach the reset server.  The outermost request middleware (see
        :class:`~._runner.EmulatorRunner`), so that nothing of the emulator (the recording
        included) sees it; it also counts the requests being handled (``_in_flight``,
        read by :meth:`_try_move_nowait`) until the task aiohttp runs each request in is
        done.  Not a coroutine: it returns the handler's awaitable, so no frame of it
        lives as long as a WebSocket.
        """
        self._in_flight += 1  # before reading the retired ports (see _try_move_nowait)
        task = asyncio.current_task()
        if task is None:  # pragma: no cover - aiohttp handles every request in a task
            self._in_flight -= 1
            raise RuntimeError("a request handled outside a task")
        task.add_done_callback(self._request_done)
        if self._retired_ports:
            transport = request.transport
            local = transport.get_extra_info("sockname") if transport is not None else None
            if local is not None and local[1] in self._retired_ports:
                return _retired_response()
        return handler(request)

    def _request_done(self, task: asyncio.Task[object]) -> None:
        self._in_flight -= 1

    def _drop_http_connections(self, *, retired: bool = False) -> None:
        """Close the HTTP connections (idle keep-alive ones, those with a request being
        read, the console's event streams), so that none carries another request; with
        ``retired``, only those accepted through a retired port.

        WebSockets are left to the reset, which closes them with a close frame.  The
        ``_upgraded`` attribute of aiohttp's handler is one of those :mod:`._runner`
        already relies on.
        """
        runner = self._runner
        if runner is not None and runner.server is not None:
            for handler in runner.server.connections:
                if handler._upgraded:
                    continue
                if retired:
                    transport = handler.transport
                    local = transport.get_extra_info("sockname") if transport else None
                    if local is None or local[1] not in self._retired_ports:
                        continue
                handler.force_close()

    async def start(self) -> Self:
        """Bind and start serving.

        Raises:
            RuntimeError: already started (a server is not reusable after ``stop``).
            OSError: the address cannot be bound.
        """
        if self._runner is not None or self._stopped:
            raise RuntimeError("an EmulatorServer can only be started once")
        state = self._state
        state.loop = asyncio.get_running_loop()
        state.thread_id = threading.get_ident()
        ssl_context: ssl.SSLContext | None = None
        if state.tls:
            state.ca = LocalCA([state.host])
            ssl_context = state.ca.server_context()
        app = state.emulator.build_app()
        runner = EmulatorRunner(
            app,
            middlewares=[self._refuse_retired_ports, *state.emulator.middlewares()],
            header_timeout=state.config.limits.header_timeout,
            max_sockets=state.config.limits.max_sockets,
            handle_signals=False,
            shutdown_timeout=self.shutdown_timeout,
            access_log=None,
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, state.host, self._requested_port, ssl_context=ssl_context)
            await site.start()
        except BaseException:
            await runner.cleanup()
            if state.ca is not None:
                state.ca.cleanup()
            raise
        self._runner = runner
        self._site = site
        self._ssl_context = ssl_context
        state.port = int(runner.addresses[0][1])
        state.listening = True
        LOG_SERVER.info(
            "listening on %s (HTTP %s, real-time %s)",
            runner.addresses,
            self.http_endpoint,
            self.realtime_endpoint,
        )
        return self

    async def stop(self) -> None:
        """Close every connection with 1001 and stop listening.  Idempotent."""
        runner, self._runner = self._runner, None
        self._stopped = True
        self._state.listening = False
        if runner is not None:
            async with self._listener_lock():  # a listener change under way ends first
                listeners = [self._site, *self._spares, *self._retired]
                self._spares.clear()
                self._retired.clear()
                for listener in listeners:
                    if isinstance(listener, _Listener):
                        listener.close()
                for task in self._accepting:
                    task.cancel()
                await asyncio.gather(*self._accepting, return_exceptions=True)
                await runner.cleanup()  # stops the aiohttp sites, closes the connections
            LOG_SERVER.info("stopped")
        if self._state.ca is not None:
            self._state.ca.cleanup()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


class EmulatorThread(EmulatorHost):
    """The emulator in a background thread with its own :class:`RealClockLoop`.

    Same arguments and API as :class:`EmulatorServer` (both are :class:`EmulatorHost`),
    plus ``start_timeout`` and ``stop_timeout``.  ``start()``/``stop()`` (or ``with``)
    block until done.  From a sync test use the blocking waits
    (``server.wait_published_sync(...)``); from an async test on any loop, await them.
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: bool = False,
        shutdown_timeout: float = 2.0,
        start_timeout: float = 30.0,
        stop_timeout: float = 10.0,
        console: bool = True,
    ) -> None:
        self.server = EmulatorServer(
            config,
            host=host,
            port=port,
            tls=tls,
            shutdown_timeout=shutdown_timeout,
            console=console,
        )
        """The in-loop server the thread runs."""
        self._state = self.server._state
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def running(self) -> bool:
        """Whether the thread is alive and its server listening."""
        return self._thread is not None and self._thread.is_alive() and self._state.listening

    def start(self) -> Self:
        """Start the thread and wait until the server listens.

        Raises:
            RuntimeError: already started.
            TimeoutError: the server did not start within ``start_timeout``.
            OSError: the address cannot be bound (re-raised from the thread).
        """
        if self._thread is not None:
            raise RuntimeError("an EmulatorThread can only be started once")
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = RealClockLoop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                loop.run_until_complete(self.server.start())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                try:
                    loop.run_until_complete(self.server.stop())
                    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                    for task in pending:
                        task.cancel()
                    if pending:
                        loop.run_until_complete(asyncio.wait(pending, timeout=self.stop_timeout))
                    loop.run_until_complete(loop.shutdown_asyncgens())
                finally:
                    asyncio.set_event_loop(None)
                    loop.close()

        thread = threading.Thread(target=run, name="appsync-emulator", daemon=True)
        self._thread = thread
        thread.start()
        if not ready.wait(self.start_timeout):
            raise TimeoutError(f"the emulator did not start within {self.start_timeout} s")
        if failure:
            thread.join(self.stop_timeout)
            raise failure[0]
        return self

    def stop(self) -> None:
        """Stop the server (connections get 1001) and join the thread.  Idempotent."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None or not thread.is_alive():
            return
        try:
            if loop.is_running():
                future = asyncio.run_coroutine_threadsafe(self.server.stop(), loop)
                future.result(self.stop_timeout)
        finally:
            if not loop.is_closed():
                loop.call_soon_threadsafe(loop.stop)
            thread.join(self.stop_timeout)
        if thread.is_alive():
            raise TimeoutError(f"the emulator thread did not stop within {self.stop_timeout} s")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
