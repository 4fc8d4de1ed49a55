"""A pool of V8 engines (mini-racer) that run handler modules under time and memory limits.

Design, from measurements of embedded engines (mini-racer 0.14, V8 14):

* One ``MiniRacer`` per engine, each holding **every** loaded module (each module lives in
  its own function scope, so namespaces cannot see each other).  A pool of ``engines``
  engines runs that many invocations at once; one handler stuck in a loop never blocks
  the others.
* Each invocation runs on a bounded worker pool (``engines`` threads, created without an
  event loop: a ``MiniRacer`` built on a thread with a running loop binds to that loop).
  The caller awaits it from asyncio and never blocks its loop.
* Time: mini-racer's ``timeout_sec`` (V8 ``TerminateExecution``, wall clock).  After a
  timeout the engine is pinged; one that does not answer (a single huge builtin call such
  as ``new Array(1e8).fill(0)`` is not interruptible) is abandoned and replaced.
* Memory: ``set_hard_memory_limit``.  It is checked after the fact and leaves the isolate
  unusable, so after any out-of-memory the engine is thrown away and rebuilt (about 10 ms).
  Without the limit, V8's fatal OOM kills the whole process.
* JSON text crosses the boundary both ways (object proxies cost a thread hop per access).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import importlib.resources
import itertools
import json
import logging
import threading
from dataclasses import dataclass
from typing import Final, Protocol

from ._deps import require_mini_racer

__all__ = ["EngineFailure", "EngineTimeout", "JsLimits", "JsRuntime", "LoadFailure"]

log = logging.getLogger("appsync_emulator.handlers.js")

_PING_TIMEOUT: Final = 0.1
_MAX_ABANDONED: Final = 4


@dataclass(frozen=True, slots=True, kw_only=True)
class JsLimits:
    """Per-invocation limits of APPSYNC_JS handlers."""

    invoke_timeout: float = 1.0
    """Wall-clock seconds one ``onPublish``/``onSubscribe`` call may run."""
    memory_limit: int = 64 << 20
    """Bytes of V8 heap per engine (checked by V8 after the fact: a call may overshoot)."""
    engines: int = 2
    """Engines in the pool: how many invocations run at once."""
    queue_timeout: float = 2.0
    """Extra seconds a call may wait for a free engine before it is reported unavailable."""

    def __post_init__(self) -> None:
        if self.invoke_timeout <= 0 or self.queue_timeout < 0:
            raise ValueError("invoke_timeout must be > 0 and queue_timeout >= 0")
        if self.memory_limit < 1 << 20:
            raise ValueError("memory_limit must be at least 1 MiB")
        if self.engines < 1:
            raise ValueError("engines must be at least 1")


class EngineFailure(Exception):
    """An invocation produced no reply (out of memory, engine lost)."""

    def __init__(self, message: str, *, memory: bool = False) -> None:
        super().__init__(message)
        self.memory = memory


class EngineTimeout(EngineFailure):
    """The invocation ran past ``invoke_timeout``."""


class LoadFailure(Exception):
    """V8 refused a module at load time.

    Attributes:
        line: the 1-based line V8 reported, if any.
        detail: V8's message (``SyntaxError: ...``, or the error the module threw).
    """

    def __init__(self, detail: str, line: int | None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.line = line

    def __reduce__(self) -> tuple[type[LoadFailure], tuple[str, int | None], dict[str, object]]:
        return type(self), (self.detail, self.line), self.__dict__


def _prelude() -> str:
    return (
        importlib.resources.files(__package__ or "appsync_emulator.appsync_js")
        .joinpath("prelude.js")
        .read_text(encoding="utf-8")
    )


def _load_failure(exc: Exception) -> LoadFailure:
    # mini-racer formats errors as "<file>:<line>: <Error>: <message>\n<source>\n^...".
    first = str(exc).split("\n", 1)[0]
    where, _, message = first.partition(": ")
    line_text = where.rpartition(":")[2]
    line = int(line_text) if line_text.isdigit() else None
    return LoadFailure(message or first, line)


class _Racer(Protocol):
    """The part of ``py_mini_racer.MiniRacer`` the pool uses (typed without importing it)."""

    def eval(self, code: str, *, timeout_sec: float | None = None) -> object: ...

    def set_hard_memory_limit(self, limit: int) -> None: ...

    def was_hard_memory_limit_reached(self) -> bool: ...

    def close(self) -> None: ...


def _drop_late_callbacks(racer: object) -> None:
    """Let V8 call back into a closed engine without an "Exception ignored" report.

    A ``MiniRacer`` made on a thread without an event loop runs its own loop thread and
    hands V8's callbacks to it.  Closing the engine stops and closes that loop *before* it
    frees the V8 context, so the result of an evaluation cut short (a timeout, an
    out-of-memory) can still arrive and fail on the closed loop, inside a ctypes callback,
    where nothing can catch it.  Nobody awaits such a result: drop it.  When mini-racer's
    internals differ from the version this was written for (0.14), nothing is changed.
    """
    context = getattr(racer, "_ctx", None)
    handle = getattr(context, "handle_callback_from_v8", None)
    loop = getattr(context, "event_loop", None)
    if handle is None or not isinstance(loop, asyncio.AbstractEventLoop):
        return

    def handle_unless_closed(callback_id: int, raw_handle: object) -> None:
        if loop.is_closed():
            return
        try:
            handle(callback_id, raw_handle)
        except RuntimeError:
            if not loop.is_closed():  # closed between the check and the call
                raise

    # The context is a frozen dataclass; its callback is looked up on each call.
    object.__setattr__(context, "handle_callback_from_v8", handle_unless_closed)


class _Engine:
    """One ``MiniRacer`` with the prelude and some modules.  Only worker threads use it."""

    def __init__(self, limits: JsLimits, prelude: str) -> None:
        self.racer: _Racer = require_mini_racer().MiniRacer()
        _drop_late_callbacks(self.racer)
        self.racer.set_hard_memory_limit(limits.memory_limit)
        self.racer.eval(prelude)
        self.loaded: dict[str, str] = {}

    def sync(self, modules: dict[str, str]) -> None:
        """Load the modules this engine lacks, drop the ones unloaded since."""
        for module_id in [m for m in self.loaded if m not in modules]:
            self.racer.eval(f"__appsync.unload({json.dumps(module_id)})")
            del self.loaded[module_id]
        for module_id, script in modules.items():
            if self.loaded.get(module_id) != script:
                self.racer.eval(f"__appsync.load({json.dumps(module_id)}, {script})")
                self.loaded[module_id] = script

    def responsive(self) -> bool:
        mr = require_mini_racer()
        try:
            return self.racer.eval("0", timeout_sec=_PING_TIMEOUT) == 0
        except mr.JSEvalException:
            return False


class JsRuntime:
    """The engines that run APPSYNC_JS modules; share one per emulator.

    Thread-safe.  :meth:`load` is synchronous (it runs at start-up and reports errors
    at once); :meth:`invoke_nowait` hands a call to the worker pool.
    """

    def __init__(self, limits: JsLimits | None = None) -> None:
        self.limits = limits or JsLimits()
        self._prelude = _prelude()
        self._modules: dict[str, str] = {}
        self._lock = threading.Lock()
        self._idle: collections.deque[_Engine] = collections.deque()
        self._abandoned = 0
        self._ids = itertools.count(1)
        self._closed = False
        self._executor = concurrent.futures.ThreadPoolExecutor(
            self.limits.engines, thread_name_prefix="appsync-js"
        )

    # --- engines (worker threads only) ------------------------------------------------

    def _checkout(self) -> _Engine:
        with self._lock:
            engine = self._idle.popleft() if self._idle else None
            modules = dict(self._modules)
        mr = require_mini_racer()
        try:
            if engine is None:  # at most `engines` workers, so at most `engines` engines
                engine = _Engine(self.limits, self._prelude)
            engine.sync(modules)
        except mr.JSEvalException as exc:
            if engine is not None:
                self._abandon(engine)
            raise EngineFailure(f"the engine could not be prepared: {exc}") from exc
        return engine

    def _checkin(self, engine: _Engine) -> None:
        with self._lock:
            if not self._closed:
                self._idle.append(engine)
                return
        engine.racer.close()

    def _abandon(self, engine: _Engine) -> None:
        # close() waits for V8 to stop, and a runaway builtin may keep it busy for
        # seconds: close on a daemon thread, and count the engines still closing.
        with self._lock:
            self._abandoned += 1

        def close() -> None:
            try:
                engine.racer.close()
            finally:
                with self._lock:
                    self._abandoned -= 1

        threading.Thread(target=close, name="appsync-js-close", daemon=True).start()

    def _run(self, module_id: str, name: str, ctx_json: str, now_ms: int) -> str:
        mr = require_mini_racer()
        engine = self._checkout()
        code = (
            f"__appsync.invoke({json.dumps(module_id)}, {json.dumps(name)}, "
            f"{json.dumps(ctx_json)}, {now_ms})"
        )
        try:
            reply = engine.racer.eval(code, timeout_sec=self.limits.invoke_timeout)
        except mr.JSTimeoutException:
            if engine.responsive() and not engine.racer.was_hard_memory_limit_reached():
                self._checkin(engine)
            else:
                self._abandon(engine)
            raise EngineTimeout(
                f"{name} ran longer than {self.limits.invoke_timeout:g} s"
            ) from None
        except mr.JSEvalException as exc:
            # Out of memory arrives as JSOOMException or as a bare JSEvalException('null');
            # either way the isolate is spoilt.
            self._abandon(engine)
            if isinstance(exc, mr.JSOOMException) or engine.racer.was_hard_memory_limit_reached():
                raise EngineFailure(
                    f"{name} exceeded the memory limit of {self.limits.memory_limit} bytes",
                    memory=True,
                ) from None
            raise EngineFailure(f"{name}: the engine failed: {exc}") from exc
        self._checkin(engine)
        if not isinstance(reply, str):
            raise EngineFailure(f"{name}: the engine returned {type(reply).__name__}")
        return reply

    def _load(self, module_id: str, script: str) -> None:
        mr = require_mini_racer()
        engine = self._checkout()  # loads every module but the new one
        try:
            engine.sync({**engine.loaded, module_id: script})
        except mr.JSEvalException as exc:
            self._abandon(engine)  # it may hold half of the module
            raise _load_failure(exc) from exc
        self._checkin(engine)

    # --- public -------------------------------------------------------------------------

    def load(self, script: str, *, label: str) -> str:
        """Evaluate a module factory in an engine and register it with the pool.

        Blocks the calling thread for the compilation (a few ms; the first engine of
        the process takes about 50 ms more to start).

        Returns:
            The module id to pass to :meth:`invoke_nowait`.

        Raises:
            LoadFailure: V8 refused the script (syntax error, or the module threw).
            EngineFailure: no engine could be started or prepared.
            ImportError: mini-racer is not installed.
            RuntimeError: the runtime is closed.
        """
        require_mini_racer()
        module_id = f"{label}#{next(self._ids)}"
        with self._lock:
            if self._closed:
                raise RuntimeError("the APPSYNC_JS runtime is closed")
        self._executor.submit(self._load, module_id, script).result()
        with self._lock:
            self._modules[module_id] = script
        return module_id

    def unload(self, module_id: str) -> None:
        """Forget a module; engines drop it before their next call."""
        with self._lock:
            self._modules.pop(module_id, None)

    def invoke_nowait(
        self, module_id: str, name: str, ctx_json: str, now_ms: int
    ) -> concurrent.futures.Future[str]:
        """Queue one call of ``name`` in module ``module_id``.

        Returns:
            A future of the JSON reply of ``__appsync.invoke``; it raises
            :class:`EngineTimeout` or :class:`EngineFailure`.

        Raises:
            RuntimeError: the runtime is closed.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("the APPSYNC_JS runtime is closed")
            if self._abandoned >= _MAX_ABANDONED:
                future: concurrent.futures.Future[str] = concurrent.futures.Future()
                future.set_exception(EngineFailure("too many runaway handlers"))
                return future
        return self._executor.submit(self._run, module_id, name, ctx_json, now_ms)

    def close(self) -> None:
        """Stop the workers and close the engines.  Idempotent.

        Waits for running invocations (each bounded by ``invoke_timeout``).
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._executor.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            idle, self._idle = list(self._idle), collections.deque()
        for engine in idle:
            engine.racer.close()

    async def aclose(self) -> None:
        """:meth:`close` from asyncio, in a worker thread so the loop keeps running.

        Bounded by ``invoke_timeout`` (running invocations finish first).  Cancelling
        the await does not stop the close, which completes in its thread.
        """
        await asyncio.to_thread(self.close)

    def __enter__(self) -> JsRuntime:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
