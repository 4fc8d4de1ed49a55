"""The handler runtimes of one emulator: APPSYNC_JS code and direct Lambda data sources.

Theory of operation
-------------------

An emulator owns one :class:`HandlerRuntime`.  :meth:`HandlerRuntime.start` runs when the
server starts (before it listens):

* one :class:`~appsync_emulator.appsync_js.JsRuntime` (a pool of V8 engines with the
  configured :class:`~appsync_emulator.appsync_js.JsLimits`) is created if any namespace has
  APPSYNC_JS code, and every namespace's code is compiled into it.  Code given as a string
  (``codeHandlers``) is loaded once; code given as a file (``codeHandlersFile``) is a
  :class:`~appsync_emulator.appsync_js.ReloadingJsHandlers`: every invocation stats the
  file, and a changed file is compiled again and used from the next call (code that no
  longer compiles is logged and the previous version keeps running);
* one :class:`~appsync_emulator.direct_lambda.DirectLambda` per (data source, invoke type)
  that a ``DIRECT`` handler names; its ``EVENT`` invocations run in its own task group.

A syntax error, a forbidden feature, a module that throws while loading or a Lambda
function that cannot be imported makes :meth:`start` raise :class:`HandlerLoadError` (a
:class:`~appsync_emulator.config.ConfigError` with one line naming the namespace, the file
and the line), after closing whatever it had started.  :meth:`aclose` waits for ``EVENT``
invocations (each bounded by the Lambda timeout) and closes the engines (each running call
is bounded by the JS time limit).

:meth:`runners` tells the operation layer what handles a namespace's publish and
subscribe: a runner with ``on_publish(ctx)``/``on_subscribe(ctx)`` answering the typed
outcomes of :mod:`~appsync_emulator.handler_contract`, or ``None`` (a Python callable, or
no handler).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from appsync_events import JSONValue

from .config import ConfigError, EmulatorConfig, HandlerBehavior, HandlerConfigs, NamespaceConfig
from .direct_lambda import DirectLambda, InvokeType
from .handler_contract import PublishOutcome, SubscribeOutcome

if TYPE_CHECKING:
    from .appsync_js import JsHandlers, JsRuntime, ReloadingJsHandlers

__all__ = [
    "HandlerLoadError",
    "HandlerRuntime",
    "NamespaceRunners",
    "Runner",
    "check_code",
    "code_error_line",
]

log = logging.getLogger("appsync_emulator.handlers")


class HandlerLoadError(ConfigError):
    """A namespace's handler code or Lambda function cannot be loaded at start-up.

    The message is one line: ``namespace 'chat': chat.js:3:7: SyntaxError: ... [syntax]``.
    """


class Runner(Protocol):
    """What runs a namespace's handler (APPSYNC_JS code or a direct Lambda)."""

    async def on_publish(self, ctx: Mapping[str, JSONValue]) -> PublishOutcome: ...

    async def on_subscribe(self, ctx: Mapping[str, JSONValue]) -> SubscribeOutcome: ...


@dataclass(frozen=True, slots=True)
class NamespaceRunners:
    """What handles one namespace's operations (``None``: a Python callable, or nothing)."""

    on_publish: Runner | None
    on_subscribe: Runner | None


_NONE = NamespaceRunners(None, None)


def _code_label(ns: NamespaceConfig) -> str:
    return f"{ns.name}.codeHandlers.js"


class HandlerRuntime:
    """Loads and runs the APPSYNC_JS code and direct Lambdas of an emulator's namespaces.

    Args:
        config: the emulator's configuration (namespaces, data sources, JS limits,
            ``handler_timeout`` for Lambdas).
    """

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.js: JsRuntime | None = None
        """The engine pool (``None`` until started, or when no namespace has code)."""
        self._code: dict[str, JsHandlers | ReloadingJsHandlers] = {}
        self._lambdas: dict[tuple[str, InvokeType], DirectLambda] = {}
        self._runners: dict[str, NamespaceRunners] = {}
        self._started = False

    @property
    def needed(self) -> bool:
        """Whether any namespace has APPSYNC_JS code or a ``DIRECT`` handler."""
        return any(ns.has_code or ns.handler_configs is not None for ns in self.config.namespaces)

    def runners(self, namespace: str) -> NamespaceRunners:
        """What handles ``namespace`` (nothing before :meth:`start`)."""
        return self._runners.get(namespace, _NONE)

    async def start(self) -> None:
        """Compile every namespace's code and import every Lambda function.

        Raises:
            HandlerLoadError: one line naming the namespace and the problem (file and
                line for code); everything started so far is closed again.

        The compilation runs in a worker thread (a few ms per namespace, about 50 ms for
        the first engine).  Cancelling the await closes what was started.
        """
        if self._started or not self.needed:
            self._started = True
            return
        self._started = True
        try:
            for ns in self.config.namespaces:
                self._runners[ns.name] = await self._load(ns)
        except BaseException:
            await self.aclose()
            raise

    async def _load(self, ns: NamespaceConfig) -> NamespaceRunners:
        configs = ns.handler_configs or HandlerConfigs()
        code = await self._load_code(ns) if ns.has_code else None
        runners: list[Runner | None] = []
        for handler in (configs.on_publish, configs.on_subscribe):
            if handler is not None and handler.behavior is HandlerBehavior.DIRECT:
                runners.append(
                    await self._lambda(ns, handler.data_source_name, handler.invoke_type)
                )
            else:
                runners.append(code)
        return NamespaceRunners(runners[0], runners[1])

    async def _load_code(self, ns: NamespaceConfig) -> JsHandlers | ReloadingJsHandlers:
        from .appsync_js import JsCodeError, JsHandlers, JsRuntime, ReloadingJsHandlers

        where = f"namespace {ns.name!r}"
        try:
            if self.js is None:
                self.js = JsRuntime(self.config.js_limits)
            runtime = self.js
            if ns.code_handlers_file is not None:
                path = Path(ns.code_handlers_file)
                handlers: JsHandlers | ReloadingJsHandlers = await asyncio.to_thread(
                    ReloadingJsHandlers, path, runtime=runtime
                )
            else:
                source = ns.code_handlers or ""
                handlers = await asyncio.to_thread(
                    JsHandlers.load, source, filename=_code_label(ns), runtime=runtime
                )
        except JsCodeError as exc:
            raise HandlerLoadError(f"{where}: {code_error_line(exc)}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise HandlerLoadError(f"{where}: cannot read {ns.code_handlers_file}: {exc}") from None
        except ImportError as exc:
            raise HandlerLoadError(f"{where}: {exc}") from None
        self._code[ns.name] = handlers
        log.info("namespace %r: APPSYNC_JS handlers loaded", ns.name)
        return handlers

    async def _lambda(
        self, ns: NamespaceConfig, name: str | None, invoke_type: InvokeType
    ) -> DirectLambda:
        assert name is not None  # NamespaceConfig checks DIRECT has a data source
        key = (name, invoke_type)
        existing = self._lambdas.get(key)
        if existing is not None:
            return existing
        source = self.config.data_source(name)
        try:
            function = DirectLambda(
                source.function,
                invoke_type=invoke_type,
                timeout=self.config.handler_timeout,
                function_name=name,
            )
        except ValueError as exc:
            raise HandlerLoadError(f"namespace {ns.name!r}: data source {name!r}: {exc}") from None
        await function.__aenter__()
        self._lambdas[key] = function
        return function

    async def aclose(self) -> None:
        """Wait for ``EVENT`` Lambda invocations, then close the JS engines.  Idempotent.

        Bounded by the Lambda timeout and the JS time limit.  Cancellation: cancelling it
        cancels in-flight ``EVENT`` invocations; the engines are closed anyway.
        """
        lambdas, self._lambdas = list(self._lambdas.values()), {}
        code, self._code = list(self._code.values()), {}
        js, self.js = self.js, None
        self._runners = {}
        try:
            for function in lambdas:
                await function.aclose()
        finally:
            for handlers in code:
                handlers.close()
            if js is not None:
                await js.aclose()


# --- checking code without an engine (check-config) ----------------------------------------


def check_code(config: EmulatorConfig, *, source: str | None = None) -> None:
    """Parse every namespace's APPSYNC_JS code and enforce the runtime's restrictions.

    The engine compiles the code again when the server starts; this check runs without
    one (``check-config``) and names the user's key.

    Raises:
        ConfigError: one line: the key, then ``file:line:column: problem [rule]`` for the
            first problem (and how many more there are), or how to install the engine.
    """
    from .appsync_js import JsCodeError, compile_module

    prefix = f"{source}: " if source else ""
    for i, ns in enumerate(config.namespaces):
        if not ns.has_code:
            continue
        key = "codeHandlersFile" if ns.code_handlers_file is not None else "codeHandlers"
        where = f"{prefix}namespaces[{i}].{key}"
        try:
            if ns.code_handlers_file is not None:
                filename = str(ns.code_handlers_file)
                code = Path(ns.code_handlers_file).read_text(encoding="utf-8")
            else:
                filename, code = f"{ns.name}.codeHandlers.js", ns.code_handlers or ""
            compile_module(code, filename)
        except JsCodeError as exc:
            raise ConfigError(f"{where}: {code_error_line(exc)}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{where}: cannot read the file: {exc}") from None
        except ImportError as exc:
            raise ConfigError(f"{where}: {exc}") from None


def code_error_line(exc: Any) -> str:
    """One line for a :class:`~appsync_emulator.appsync_js.JsCodeError`: its first problem."""
    errors = exc.errors
    line = errors[0].format(exc.filename) if errors else str(exc)
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return " ".join(line.split()) + more
