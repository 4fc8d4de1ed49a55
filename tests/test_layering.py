"""The dependency rules, checked by parsing every import with ``ast``.

* ``appsync_events.protocol`` (the sans-I/O core) imports only an explicit allow-list of the
  standard library, ``appsync_events.errors`` / ``appsync_events._types`` /
  ``appsync_events.protocol``, and ``orjson`` (an optional pure JSON parser, used when
  installed).  No I/O, clock, thread or event loop can slip in: ``asyncio``,
  ``socket``, ``ssl``, ``threading``, ``time``, ``datetime``, ``os``... are refused.
* ``appsync_events`` never imports ``appsync_emulator``, and of third-party packages only
  its own dependencies (aiohttp, botocore) and the optional pydantic and orjson: a plain
  ``pip install appsync-events`` has no emulator extra.
* ``appsync_emulator`` imports only public modules of ``appsync_events`` (no ``_name``
  module), so the client's private modules can change freely.

Imports under ``if TYPE_CHECKING:`` and inside functions count too: the rule is about
what the code depends on, not what happens to run at import time.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CLIENT_PACKAGE = ROOT / "src" / "appsync_events"
PROTOCOL_PACKAGE = CLIENT_PACKAGE / "protocol"
EMULATOR_PACKAGE = ROOT / "emulator" / "appsync_emulator"
SOURCE_ROOTS = ("src", "emulator")

PROTOCOL_ALLOWED = (
    "appsync_events.errors",
    "appsync_events._types",
    "appsync_events.protocol",
    "orjson",  # optional: parses JSON text, nothing else (the codec falls back to json)
)
"""Non-stdlib modules the sans-I/O core may import (prefixes)."""

CLIENT_THIRD_PARTY = ("aiohttp", "botocore", "pydantic", "orjson")
"""Third-party packages the client may import: its dependencies, the pydantic extra, and
orjson when installed."""

PROTOCOL_STDLIB = frozenset(
    {
        "__future__",
        "abc",
        "base64",
        "binascii",
        "codecs",
        "collections",
        "dataclasses",
        "enum",
        "functools",
        "itertools",
        "json",
        "logging",
        "math",
        "operator",
        "re",
        "string",
        "types",
        "typing",
        "unicodedata",
        "uuid",
    }
)
"""Standard-library packages the sans-I/O core may import: pure computation only.

Deliberately absent: anything that does I/O, keeps time, or schedules (``asyncio``,
``socket``, ``ssl``, ``select``, ``threading``, ``concurrent``, ``time``, ``datetime``,
``os``, ``io``, ``random``, ``subprocess``...).  Add a module here only after checking it
is pure.
"""


def module_name(path: Path) -> str:
    """The dotted name of a module file under ``src/`` or ``emulator/``."""
    root = next(ROOT / r for r in SOURCE_ROOTS if (ROOT / r) in path.parents)
    parts = path.relative_to(root).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line, absolute dotted name)`` for every import in ``path``.

    ``from m import a`` yields ``m.a`` (``a`` may be a submodule, as in ``from .. import
    errors``); relative imports are resolved against the module's own package.
    """
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(p for p in (*parts, node.module) if p)
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def is_allowed_stdlib(module: str) -> bool:
    """Whether ``module`` is in an allowed standard-library package."""
    return module.split(".")[0] in PROTOCOL_STDLIB


def within(module: str, prefixes: tuple[str, ...]) -> bool:
    """Whether ``module`` is one of ``prefixes`` or inside one of them."""
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def protocol_violations(path: Path) -> list[str]:
    """Imports of ``path`` that break the sans-I/O core's dependency rule."""
    return [
        f"{path.relative_to(ROOT)}:{line}: imports {module}"
        for line, module in imported_modules(path)
        if not is_allowed_stdlib(module) and not within(module, PROTOCOL_ALLOWED)
    ]


def emulator_violations(path: Path) -> list[str]:
    """Imports of ``path`` that reach into the emulator."""
    return [
        f"{path.relative_to(ROOT)}:{line}: imports {module}"
        for line, module in imported_modules(path)
        if within(module, ("appsync_emulator",))
    ]


def third_party_violations(path: Path) -> list[str]:
    """Imports of a client module outside the stdlib, the client and its dependencies."""
    return [
        f"{path.relative_to(ROOT)}:{line}: imports {module}"
        for line, module in imported_modules(path)
        if module.split(".")[0] not in sys.stdlib_module_names
        and not within(module, ("appsync_events", "appsync_emulator", *CLIENT_THIRD_PARTY))
    ]


def private_client_imports(path: Path) -> list[str]:
    """Imports of ``path`` that reach a private module of ``appsync_events``."""
    return [
        f"{path.relative_to(ROOT)}:{line}: imports {module}"
        for line, module in imported_modules(path)
        if within(module, ("appsync_events",))
        and any(part.startswith("_") and part != "__future__" for part in module.split(".")[1:])
    ]


PROTOCOL_FILES = sorted(PROTOCOL_PACKAGE.rglob("*.py"))
CLIENT_FILES = sorted(CLIENT_PACKAGE.rglob("*.py"))
EMULATOR_FILES = sorted(EMULATOR_PACKAGE.rglob("*.py"))


def test_layering_finds_the_sources() -> None:
    """The checks below really look at the packages' files."""
    names = {p.name for p in PROTOCOL_FILES}
    assert {"__init__.py", "codec.py", "channels.py", "messages.py"} <= names
    assert CLIENT_PACKAGE / "errors.py" in CLIENT_FILES
    assert EMULATOR_PACKAGE / "__init__.py" in EMULATOR_FILES


@pytest.mark.parametrize("path", PROTOCOL_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_protocol_imports_only_stdlib_and_core(path: Path) -> None:
    """A protocol module imports only allowed stdlib modules, errors, _types and protocol."""
    assert protocol_violations(path) == []


@pytest.mark.parametrize("path", CLIENT_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_client_never_imports_emulator(path: Path) -> None:
    """No module of appsync_events imports appsync_emulator."""
    assert emulator_violations(path) == []


@pytest.mark.parametrize("path", CLIENT_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_client_imports_only_its_dependencies(path: Path) -> None:
    """The client needs no package of the emulator extra (jwt, cryptography, trustme)."""
    assert third_party_violations(path) == []


def test_third_party_checker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The checker flags the emulator extra's packages and accepts the client's own."""
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    source = "import json\nimport jwt\nfrom botocore.auth import SigV4Auth\nimport trustme\n"
    path = _write(tmp_path, "appsync_events/fake.py", source)
    assert [v.rsplit(" imports ", 1)[1] for v in third_party_violations(path)] == [
        "jwt",
        "trustme",
    ]


@pytest.mark.parametrize("path", EMULATOR_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_emulator_imports_only_public_client_modules(path: Path) -> None:
    """The emulator uses the client through its public modules only."""
    assert private_client_imports(path) == []


# --- the checker itself ---------------------------------------------------------------------


def _write(tmp_path: Path, relative: str, source: str) -> Path:
    # Build a fake src/ tree under tmp_path, and point the checker at it.
    path = tmp_path / "src" / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("source", "bad"),
    [
        ("import json, re\nfrom collections.abc import Mapping\n", []),
        ("import asyncio\n", ["asyncio"]),
        ("import socket, ssl\n", ["socket", "ssl"]),
        ("from time import monotonic\n", ["time.monotonic"]),
        ("import threading\nfrom datetime import datetime\n", ["threading", "datetime.datetime"]),
        ("import os.path\n", ["os.path"]),
        ("from __future__ import annotations\n", []),
        ("from ..errors import ErrorDetail\n", []),
        ("from .. import errors\n", []),
        ("from .._types import JSONValue\n", []),
        ("from . import codec\n", []),
        ("from .codec import encode\n", []),
        ("import appsync_events.protocol.codec\n", []),
        ("import websockets\n", ["websockets"]),
        ("from aiohttp import web\n", ["aiohttp.web"]),
        ("from .. import client\n", ["appsync_events.client"]),
        ("from ..authorizer import IAM\n", ["appsync_events.authorizer.IAM"]),
        ("from ...appsync_emulator import x\n", ["appsync_emulator.x"]),
        ("import appsync_emulator.broker\n", ["appsync_emulator.broker"]),
        ("if TYPE_CHECKING:\n    import botocore\n", ["botocore"]),
        ("def f():\n    from appsync_events import connect\n", ["appsync_events.connect"]),
    ],
)
def test_protocol_checker_detects_forbidden_imports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, bad: list[str]
) -> None:
    """The checker flags exactly the forbidden imports of a protocol module."""
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    path = _write(tmp_path, "appsync_events/protocol/fake.py", source)
    found = [v.rsplit(" imports ", 1)[1] for v in protocol_violations(path)]
    assert found == bad


def test_emulator_checker_detects_emulator_imports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checker flags imports of appsync_emulator, absolute or relative."""
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    source = "import appsync_emulator\nfrom appsync_emulator.config import X\nimport aiohttp\n"
    path = _write(tmp_path, "appsync_events/client.py", source)
    assert [v.rsplit(" imports ", 1)[1] for v in emulator_violations(path)] == [
        "appsync_emulator",
        "appsync_emulator.config.X",
    ]


@pytest.mark.parametrize(
    ("source", "bad"),
    [
        ("from appsync_events.errors import ErrorDetail\n", []),
        ("from appsync_events import authorizer\n", []),
        ("import appsync_events.protocol.codec\n", []),
        ("from appsync_events.endpoints import signing_host\n", []),
        ("from __future__ import annotations\n", []),
        ("from appsync_events._lazy import lazy_exports\n", ["appsync_events._lazy.lazy_exports"]),
        ("import appsync_events._endpoints\n", ["appsync_events._endpoints"]),
        ("from appsync_events import _types\n", ["appsync_events._types"]),
        ("from appsync_events.protocol._x import y\n", ["appsync_events.protocol._x.y"]),
        ("from .config import _private\n", []),
    ],
)
def test_private_import_checker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, bad: list[str]
) -> None:
    """The checker flags exactly the emulator's imports of private client modules."""
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    path = tmp_path / "emulator" / "appsync_emulator" / "fake.py"
    path.parent.mkdir(parents=True)
    path.write_text(source, encoding="utf-8")
    found = [v.rsplit(" imports ", 1)[1] for v in private_client_imports(path)]
    assert found == bad
