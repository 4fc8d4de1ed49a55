"""Run a namespace's APPSYNC_JS handlers (``codeHandlers``) as written, in embedded V8.

::

    from appsync_emulator.appsync_js import JsHandlers
    from appsync_emulator.handler_contract import Broadcast, build_context

    handlers = JsHandlers.load(source, filename="chat.js")  # syntax errors raise here
    ctx = build_context(operation="PUBLISH", channel="/chat/room1",
                        events=[("id-1", {"text": "hi"})])
    outcome = await handlers.on_publish(ctx)
    if isinstance(outcome, Broadcast): ...
    handlers.close()

The engine (``mini-racer``) and the parser (``tree-sitter-javascript``) are imported on
first use: without them this package still imports, and loading a handler raises an
``ImportError`` naming ``pip install 'appsync-events[js]'``.

Modules: :mod:`.transform` (ES module to script, restriction checks, :data:`RESTRICTIONS`),
``prelude.js`` (``util``, ``runtime``, ``console``), :mod:`.engine` (the V8 pool and its
limits), :mod:`.runner` (:class:`JsHandlers`), :mod:`.reload` (a file reloaded when
it changes).
"""

from __future__ import annotations

from ._deps import INSTALL_HINT as INSTALL_HINT
from .engine import JsLimits as JsLimits, JsRuntime as JsRuntime
from .reload import ReloadingJsHandlers as ReloadingJsHandlers
from .runner import JsHandlers as JsHandlers
from .transform import (
    MAX_CODE_CHARS as MAX_CODE_CHARS,
    RESTRICTIONS as RESTRICTIONS,
    CodeError as CodeError,
    JsCodeError as JsCodeError,
    Restriction as Restriction,
    check_source as check_source,
    compile_module as compile_module,
)

__all__ = [
    "INSTALL_HINT",
    "MAX_CODE_CHARS",
    "RESTRICTIONS",
    "CodeError",
    "JsCodeError",
    "JsHandlers",
    "JsLimits",
    "JsRuntime",
    "ReloadingJsHandlers",
    "Restriction",
    "check_source",
    "compile_module",
]
