"""Lazy imports of the optional engine packages, with an error that says how to install them.

``mini-racer`` (V8) runs the handlers, ``tree-sitter`` and ``tree-sitter-javascript`` parse
them.  None is imported until a handler is loaded, so :mod:`appsync_emulator` imports (and
the emulator runs Python handlers) without them.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Final

__all__ = ["INSTALL_HINT", "require_mini_racer", "require_tree_sitter"]

INSTALL_HINT: Final = "pip install 'appsync-events[js]'"
"""How to get the APPSYNC_JS engine."""


def _missing(package: str, exc: ImportError) -> ImportError:
    error = ImportError(
        f"running APPSYNC_JS handlers needs {package}, which is not installed: {INSTALL_HINT}"
    )
    error.__cause__ = exc
    return error


def require_tree_sitter() -> tuple[ModuleType, ModuleType]:
    """Return the ``tree_sitter`` and ``tree_sitter_javascript`` modules.

    Raises:
        ImportError: one is missing; the message names :data:`INSTALL_HINT`.
    """
    # import_module keeps the packages out of static imports: the code type-checks and
    # imports without them.
    try:
        return (
            importlib.import_module("tree_sitter"),
            importlib.import_module("tree_sitter_javascript"),
        )
    except ImportError as exc:
        raise _missing("tree-sitter and tree-sitter-javascript", exc) from exc


def require_mini_racer() -> ModuleType:
    """Return the ``py_mini_racer`` module.

    Raises:
        ImportError: it is missing; the message names :data:`INSTALL_HINT`.
    """
    try:
        return importlib.import_module("py_mini_racer")
    except ImportError as exc:
        raise _missing("mini-racer", exc) from exc
