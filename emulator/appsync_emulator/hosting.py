"""Running the emulator: in the caller's event loop, or in a background thread.

``async with EmulatorServer(config) as server:`` serves on the running loop; ``with
EmulatorThread(config) as server:`` starts a thread with its own :class:`RealClockLoop`
and works from sync tests, from async tests on any loop, and under freezegun.  Both bind
one listener (``127.0.0.1`` and a free port by default) serving ``POST /event`` and
``GET /event/realtime``, optionally with TLS from a local CA.

Every control and inspection method is thread-safe: called from another thread, it runs
on the server's loop and waits (with a timeout) for the result.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import ssl
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self, TypeVar

from aiohttp import web

from ._clock import RealClockLoop
from ._logging import LOG_SERVER
from .config import EmulatorConfig
from .faults import Fault, Target
from .issuer import LocalIssuer
from .recorder import ConnectionInfo, Recorder
from .server import Emulator
from .tls import LocalCA

__all__ = ["EmulatorServer", "EmulatorThread", "FaultHandle"]

T = TypeVar("T")

CONTROL_TIMEOUT = 10.0
"""Seconds a cross-thread control call may take."""


class FaultHandle:
    """An installed fault.  A context manager that removes it on exit; also ``remove()``.

    Without ``with`` the fault stays until removed, ``clear_faults()`` or ``reset()``.
    """

    def __init__(self, remove: Callable[[], None], fault: Fault) -> None:
        self._remove = remove
        self.fault = fault
        self._removed = False

    def remove(self) -> None:
        """Uninstall the fault (idempotent)."""
        if not self._removed:
            self._removed = True
            self._remove()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.remove()

    def __repr__(self) -> str:
        state = "removed" if self._removed else "installed"
        return f"<FaultHandle {self.fault!r} {state}>"


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


class EmulatorServer:
    """The emulator on the running event loop.

    Args:
        config: the configuration; defaults work (one API key, namespace ``default``).
        host: the address to bind; ``127.0.0.1`` by default (``0.0.0.0`` exposes it).
        port: the port; ``0`` picks a free one (read it back from :attr:`port`).
        tls: serve ``https``/``wss`` with a certificate from a local CA
            (:attr:`ca_cert_path`, :meth:`client_ssl_context`).
        shutdown_timeout: seconds in-flight HTTP requests get at shutdown.
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: bool = False,
        shutdown_timeout: float = 2.0,
    ) -> None:
        self._config = config if config is not None else EmulatorConfig()
        self.host = host
        self._requested_port = port
        self.tls = tls
        self.shutdown_timeout = shutdown_timeout
        self._emulator = Emulator(self._config)
        self._runner: web.AppRunner | None = None
        self._ca: LocalCA | None = None
        self._port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread_id: int | None = None
        self._stopped = False

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> Self:
        """Bind and start serving.

        Raises:
            RuntimeError: already started (a server is not reusable after ``stop``).
            OSError: the address cannot be bound.
        """
        if self._runner is not None or self._stopped:
            raise RuntimeError("an EmulatorServer can only be started once")
        self._loop = asyncio.get_running_loop()
        self._thread_id = threading.get_ident()
        ssl_context: ssl.SSLContext | None = None
        if self.tls:
            self._ca = LocalCA([self.host])
            ssl_context = self._ca.server_context()
        runner = web.AppRunner(
            self._emulator.build_app(),
            handle_signals=False,
            shutdown_timeout=self.shutdown_timeout,
            access_log=None,
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self._requested_port, ssl_context=ssl_context)
            await site.start()
        except BaseException:
            await runner.cleanup()
            if self._ca is not None:
                self._ca.cleanup()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])
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
        if runner is not None:
            await runner.cleanup()
            LOG_SERVER.info("stopped")
        if self._ca is not None:
            self._ca.cleanup()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def running(self) -> bool:
        return self._runner is not None

    # --- addresses ------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port.

        Raises:
            RuntimeError: the server is not started.
        """
        if self._port is None:
            raise RuntimeError("the emulator is not started")
        return self._port

    @property
    def _base(self) -> str:
        return f"{_url_host(self.host)}:{self.port}"

    @property
    def http_endpoint(self) -> str:
        """``http://127.0.0.1:PORT/event`` (``https://`` with TLS)."""
        return f"{'https' if self.tls else 'http'}://{self._base}/event"

    @property
    def realtime_endpoint(self) -> str:
        """``ws://127.0.0.1:PORT/event/realtime`` (``wss://`` with TLS)."""
        return f"{'wss' if self.tls else 'ws'}://{self._base}/event/realtime"

    @property
    def region(self) -> str:
        return self._config.region

    @property
    def api_key(self) -> str | None:
        """The first configured API key."""
        return self._config.api_key

    @property
    def config(self) -> EmulatorConfig:
        return self._config

    @property
    def ca_cert_path(self) -> str | None:
        """The local CA certificate (PEM) to trust, with ``tls=True``; else ``None``."""
        return str(self._ca.ca_cert_path) if self._ca is not None else None

    def client_ssl_context(self) -> ssl.SSLContext:
        """An ``ssl.SSLContext`` that trusts the local CA.

        Raises:
            RuntimeError: the server was not started with ``tls=True``.
        """
        if self._ca is None:
            raise RuntimeError("client_ssl_context() needs a server started with tls=True")
        return self._ca.client_context()

    # --- inspection and control (thread-safe) -----------------------------------------------

    @property
    def recorder(self) -> Recorder:
        return self._emulator.recorder

    @property
    def issuer(self) -> LocalIssuer:
        """The local token issuer: ``server.issuer.mint(sub="alice", groups=["admins"])``."""
        return self._emulator.issuer

    @property
    def emulator(self) -> Emulator:
        """The application state (advanced use; its methods run on the server's loop)."""
        return self._emulator

    @property
    def connections(self) -> list[ConnectionInfo]:
        """Open connections and those closed since the last reset, oldest first."""
        return self._emulator.recorder.connections

    def _call(self, func: Callable[..., T], *args: Any) -> T:
        """Run ``func`` on the server's loop thread and return its result."""
        loop = self._loop
        if (
            loop is None
            or threading.get_ident() == self._thread_id
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

    def inject(self, fault: Fault, *, connection: Target = None) -> FaultHandle:
        """Install ``fault`` for every connection, one id, or a predicate.

        One-shot faults act at once on the matching open connections.  The handle removes
        the fault when used as a context manager, or on ``remove()``.
        """
        key = self._call(self._emulator.add_fault, fault, connection)
        return FaultHandle(lambda: self._call(self._emulator.remove_fault, key), fault)

    def clear_faults(self) -> None:
        """Remove every installed fault."""
        self._call(self._emulator.clear_faults)

    def close_connection(self, id: str, code: int = 1000, reason: str = "") -> None:
        """Close connection ``id`` with ``code`` after its queued frames.

        Raises:
            KeyError: no open connection has that id.
        """
        self._call(self._emulator.close_connection, id, code, reason)

    def check(self) -> None:
        """Re-raise the first server-side exception collected since the last check."""
        self._emulator.check()

    def reset(self) -> None:
        """Clear the recorder, the faults and the collected exceptions."""
        self._call(self._emulator.clear_faults)
        self._emulator.recorder.clear()
        self._emulator.clear_errors()

    def __repr__(self) -> str:
        where = self.realtime_endpoint if self._port is not None else "not started"
        return f"<EmulatorServer {where}>"


class EmulatorThread:
    """The emulator in a background thread with its own :class:`RealClockLoop`.

    Same arguments and API as :class:`EmulatorServer`, plus ``start_timeout`` and
    ``stop_timeout``.  ``start()``/``stop()`` (or ``with``) block until done.
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
    ) -> None:
        self.server = EmulatorServer(
            config, host=host, port=port, tls=tls, shutdown_timeout=shutdown_timeout
        )
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

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

    # --- the EmulatorServer API -------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and self.server.running

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def http_endpoint(self) -> str:
        return self.server.http_endpoint

    @property
    def realtime_endpoint(self) -> str:
        return self.server.realtime_endpoint

    @property
    def region(self) -> str:
        return self.server.region

    @property
    def api_key(self) -> str | None:
        return self.server.api_key

    @property
    def config(self) -> EmulatorConfig:
        return self.server.config

    @property
    def ca_cert_path(self) -> str | None:
        return self.server.ca_cert_path

    def client_ssl_context(self) -> ssl.SSLContext:
        return self.server.client_ssl_context()

    @property
    def recorder(self) -> Recorder:
        return self.server.recorder

    @property
    def issuer(self) -> LocalIssuer:
        """The local token issuer (``mint`` is thread-safe)."""
        return self.server.issuer

    @property
    def connections(self) -> list[ConnectionInfo]:
        return self.server.connections

    def inject(self, fault: Fault, *, connection: Target = None) -> FaultHandle:
        return self.server.inject(fault, connection=connection)

    def clear_faults(self) -> None:
        self.server.clear_faults()

    def close_connection(self, id: str, code: int = 1000, reason: str = "") -> None:
        self.server.close_connection(id, code, reason)

    def check(self) -> None:
        self.server.check()

    def reset(self) -> None:
        self.server.reset()

    def __repr__(self) -> str:
        where = self.server.realtime_endpoint if self.server.running else "not started"
        return f"<EmulatorThread {where}>"
