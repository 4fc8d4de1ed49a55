"""One namespace's APPSYNC_JS handlers: load once, then run ``onPublish``/``onSubscribe``.

Outcomes follow "Process real-time events with AWS AppSync event handlers" and "Writing
event handlers" (AWS AppSync Events developer guide):

* no ``onPublish`` exported: every event is forwarded; no ``onSubscribe``: accepted;
* ``util.unauthorized()`` -> :class:`~appsync_emulator.handler_contract.Deny`;
* ``util.error(message, errorType, data, errorInfo)`` ->
  :class:`~appsync_emulator.handler_contract.Reject`;
* any other throw, a timeout, running out of memory, or a return value that breaks the
  rules -> :class:`~appsync_emulator.handler_contract.Crash` (AWS answers with its generic
  processing error; the emulator logs the JS stack).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final, Literal

from appsync_events import JSONValue

from ..handler_contract import (
    Accept,
    Broadcast,
    Crash,
    CrashKind,
    Deny,
    OutgoingEvent,
    PublishOutcome,
    Reject,
    SubscribeOutcome,
    interpret_publish_result,
)
from .engine import EngineFailure, EngineTimeout, JsLimits, JsRuntime, LoadFailure
from .transform import CodeError, JsCodeError, compile_module

__all__ = ["JsHandlers"]

log = logging.getLogger("appsync_emulator.handlers.js")

_LEVELS: Final = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
Context = Mapping[str, JSONValue]
_GRACE: Final = 0.5
"""Seconds past the time limit for the engine's own timeout to come back (ping, rebuild)."""


def _crash(kind: CrashKind, detail: str) -> Crash:
    return Crash(kind=kind, detail=detail)


class JsHandlers:
    """The compiled handler module of one namespace.

    Build it with :meth:`load` or :meth:`load_file`; close it with :meth:`close` (or use
    it as a context manager) when it owns its runtime.
    """

    def __init__(
        self,
        *,
        runtime: JsRuntime,
        module_id: str,
        filename: str,
        exports: tuple[str, ...],
        owns_runtime: bool,
        clock: Callable[[], float],
    ) -> None:
        self.runtime = runtime
        self.filename = filename
        """The file name used in errors, logs and stack traces."""
        self.exports = exports
        """The names the module exports (``onPublish``, ``onSubscribe``, ...)."""
        self._module_id = module_id
        self._owns_runtime = owns_runtime
        self._clock = clock

    # --- loading ------------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        source: str,
        *,
        filename: str = "handlers.js",
        runtime: JsRuntime | None = None,
        limits: JsLimits | None = None,
        clock: Callable[[], float] = time.time,
    ) -> JsHandlers:
        """Check, compile and load handler source code (``ChannelNamespace.codeHandlers``).

        Blocks for the compilation (a few ms, about 50 ms more for the first engine of
        the process); call it at start-up, or through ``asyncio.to_thread``.

        Args:
            source: the APPSYNC_JS module (ES module syntax, imports from
                ``@aws-appsync/utils``).
            filename: names the code in errors, logs and JS stack traces.
            runtime: the shared engine pool; by default a private one is created with
                ``limits`` and closed by :meth:`close`.
            limits: limits of the private runtime (ignored with ``runtime``).
            clock: wall-clock seconds, read for ``util.time.*`` at every invocation.

        Raises:
            JsCodeError: a syntax error, a forbidden feature, the size limit, or a module
                that throws while loading; every error carries its line.
            ImportError: the engine is not installed (the message says what to install).
        """
        script, exports = compile_module(source, filename)
        owns = runtime is None
        pool = runtime if runtime is not None else JsRuntime(limits)
        try:
            module_id = pool.load(script, label=filename)
        except LoadFailure as exc:
            if owns:
                pool.close()
            error = CodeError(
                error_type="PARSER_ERROR" if exc.detail.startswith("SyntaxError") else "LOAD_ERROR",
                value=exc.detail,
                line=exc.line or 1,
                column=1,
                rule="syntax" if exc.detail.startswith("SyntaxError") else None,
            )
            raise JsCodeError(filename, (error,)) from exc
        except BaseException:
            if owns:
                pool.close()
            raise
        return cls(
            runtime=pool,
            module_id=module_id,
            filename=filename,
            exports=exports,
            owns_runtime=owns,
            clock=clock,
        )

    @classmethod
    def load_file(
        cls,
        path: str | Path,
        *,
        runtime: JsRuntime | None = None,
        limits: JsLimits | None = None,
        clock: Callable[[], float] = time.time,
    ) -> JsHandlers:
        """:meth:`load` the contents of a UTF-8 file, named by its path in errors.

        Raises:
            JsCodeError: as :meth:`load`.
            OSError: the file cannot be read.
        """
        file = Path(path)
        return cls.load(
            file.read_text(encoding="utf-8"),
            filename=str(file),
            runtime=runtime,
            limits=limits,
            clock=clock,
        )

    def close(self) -> None:
        """Unload the module, and close the runtime if this object created it.

        Idempotent.  Blocks while running invocations finish (each bounded by the time
        limit).
        """
        self.runtime.unload(self._module_id)
        if self._owns_runtime:
            self.runtime.close()

    def __enter__(self) -> JsHandlers:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- running ------------------------------------------------------------------------

    async def on_publish(self, ctx: Context) -> PublishOutcome:
        """Run ``onPublish`` with ``ctx`` (from ``handler_contract.build_context``).

        Returns:
            :class:`Broadcast` (the events to fan out and the per-event failures),
            :class:`Deny`, :class:`Reject` or :class:`Crash`.  Never raises for anything
            the handler does.

        The call runs on the runtime's worker threads; it returns within the time limit
        plus the queue timeout
        (plus half a second).  Cancelling the await abandons the result (the JS call
        itself still runs to its time limit).
        """
        incoming = ctx.get("events")
        ids = [
            str(e.get("id"))
            for e in (incoming if isinstance(incoming, list) else [])
            if isinstance(e, dict)
        ]
        reply = await self._invoke("onPublish", ctx)
        match reply:
            case Crash():
                return reply
            case "missing":  # no onPublish: the default forwards every event
                return _forward_all(incoming)
            case ("ok", value):
                return interpret_publish_result(value, ids)
            case Deny() | Reject():
                return reply

    async def on_subscribe(self, ctx: Context) -> SubscribeOutcome:
        """Run ``onSubscribe`` with ``ctx``: accept, deny or reject the subscription.

        Returns:
            :class:`Accept` (also when no ``onSubscribe`` is exported: the handler's
            return value is ignored), :class:`Deny`, :class:`Reject` or :class:`Crash`.

        Same timing and cancellation behaviour as :meth:`on_publish`.
        """
        reply = await self._invoke("onSubscribe", ctx)
        match reply:
            case Crash() | Deny() | Reject():
                return reply
            case _:
                return Accept()

    async def _invoke(
        self, name: str, ctx: Context
    ) -> Crash | Deny | Reject | Literal["missing"] | tuple[Literal["ok"], JSONValue]:
        try:
            ctx_json = json.dumps(ctx, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as exc:
            return _crash(CrashKind.MALFORMED, f"the context is not JSON: {exc}")
        limits = self.runtime.limits
        try:
            future = self.runtime.invoke_nowait(
                self._module_id, name, ctx_json, int(self._clock() * 1000)
            )
        except RuntimeError as exc:
            return _crash(CrashKind.UNAVAILABLE, str(exc))
        try:
            async with asyncio.timeout(limits.invoke_timeout + limits.queue_timeout + _GRACE):
                raw = await asyncio.wrap_future(future)
        except TimeoutError:
            return _crash(CrashKind.UNAVAILABLE, f"{name}: no engine became free in time")
        except EngineTimeout as exc:
            return _crash(CrashKind.TIMEOUT, str(exc))
        except EngineFailure as exc:
            kind = CrashKind.MEMORY if exc.memory else CrashKind.UNAVAILABLE
            return _crash(kind, str(exc))
        except Exception as exc:  # a bug in the engine layer must not escape the server
            log.exception("%s %s: the engine failed", self.filename, name)
            return _crash(CrashKind.UNAVAILABLE, f"{name}: the engine failed: {exc!r}")
        return self._read_reply(name, ctx, json.loads(raw))

    def _read_reply(
        self, name: str, ctx: Context, reply: dict[str, JSONValue]
    ) -> Crash | Deny | Reject | Literal["missing"] | tuple[Literal["ok"], JSONValue]:
        self._log(name, ctx, reply)
        if reply.get("missing"):
            return "missing"
        if "ok" in reply:
            return ("ok", reply["ok"])
        raised = reply.get("raised")
        if isinstance(raised, dict):
            if raised.get("__appsyncSignal") == "unauthorized":
                return Deny()
            error_type = raised.get("errorType")
            return Reject(
                message=str(raised.get("message", "")),
                error_type=error_type if isinstance(error_type, str) else None,
                data=raised.get("data"),
                error_info=raised.get("errorInfo"),
            )
        if "malformed" in reply:
            return _crash(CrashKind.MALFORMED, str(reply["malformed"]))
        detail = str(reply.get("crashed", "no reply"))
        log.error("%s %s threw: %s", self.filename, name, detail)
        return _crash(CrashKind.EXCEPTION, detail)

    def _log(self, name: str, ctx: Context, reply: dict[str, JSONValue]) -> None:
        info = ctx.get("info")
        channel = ""
        namespace = ""
        if isinstance(info, dict):
            chan, ns = info.get("channel"), info.get("channelNamespace")
            channel = str(chan.get("path", "")) if isinstance(chan, dict) else ""
            namespace = str(ns.get("name", "")) if isinstance(ns, dict) else ""
        lines = reply.get("logs")
        for line in lines if isinstance(lines, list) else []:
            if isinstance(line, dict):
                level = _LEVELS.get(str(line.get("level")), logging.INFO)
                log.log(level, "[%s %s %s] %s", namespace, channel, name, line.get("text"))
        appended = reply.get("appended")
        for error in appended if isinstance(appended, list) else []:
            log.warning("[%s %s %s] util.appendError: %s", namespace, channel, name, error)


def _forward_all(incoming: JSONValue) -> Broadcast:
    events = []
    for index, event in enumerate(incoming if isinstance(incoming, list) else []):
        if isinstance(event, dict):
            events.append(
                OutgoingEvent(id=str(event.get("id")), index=index, payload=event.get("payload"))
            )
    return Broadcast(events=tuple(events))
