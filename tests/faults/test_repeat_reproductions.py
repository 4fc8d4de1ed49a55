"""Every documented reproduction passes 100 runs out of 100.

The documented reproductions are the test files that the "Reproduce failures in tests"
guides include (``literalinclude`` in ``docs/how-to/reproduce/*.rst``), the first-test
tutorial's fault example, and the README's fault example.  Each of their test functions
runs :data:`RUNS` times (``APPSYNC_REPEAT_RUNS`` changes it), every run with a fresh
emulator and fresh clients built the way the plugin's fixtures build them (the same
:mod:`appsync_emulator.testing` helpers, the same marker options).

Runs go one at a time for the first :data:`SEQUENTIAL_BUDGET` seconds (all 100 of a quick
reproduction), on an idle loop that reads every frame as it arrives: that is when a test
that reads while a burst arrives keeps up with it, and a reproduction racing its fault
fails.  The rest overlap, :data:`CONCURRENCY` at a time, so that the reproductions that
wait for a timeout (heartbeat, handshake, operation) take seconds instead of minutes, and
on a busy loop: a reproduction that depends on timing fails there.

Run it harder by hand, for example
``APPSYNC_REPEAT_RUNS=1000 pytest -n 2 tests/faults/test_repeat_reproductions.py``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import os
import re
import traceback
import types
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from appsync_emulator.testing import (
    Authorizers,
    ClientPool,
    ServerPool,
    Settings,
    api_key_authorizer,
    merge_markers,
)

ROOT = Path(__file__).resolve().parents[2]
RUNS = int(os.environ.get("APPSYNC_REPEAT_RUNS", "100"))
"""Runs of each reproduction."""
CONCURRENCY = int(os.environ.get("APPSYNC_REPEAT_CONCURRENCY", "10"))
"""Runs of one reproduction under way at once."""
SEQUENTIAL_BUDGET = float(os.environ.get("APPSYNC_REPEAT_SEQUENTIAL_SECONDS", "3"))
"""Seconds of runs made one at a time (an idle loop reads frames as they trickle in,
which is when a read races a burst) before the rest overlap."""
RUN_TIMEOUT = 60.0
"""Seconds one run may take (they take well under one)."""

TestFunction = Callable[..., Any]


# --- finding the documented reproductions ------------------------------------------------


def _documented_files() -> list[Path]:
    """The example files the reproduce guides include, then the tutorial's fault example."""
    files: list[Path] = []
    for page in sorted((ROOT / "docs" / "how-to" / "reproduce").glob("*.rst")):
        text = page.read_text(encoding="utf-8")
        for match in re.finditer(r"^\.\. literalinclude:: (\S+\.py)$", text, re.M):
            path = (page.parent / match[1]).resolve()
            if path not in files:
                files.append(path)
    files.append(ROOT / "docs" / "tutorials" / "first_test_fault_example.py")
    return files


def _readme_fault_blocks() -> list[str]:
    """The README's pytest examples that inject a fault."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```$", text, re.M | re.S)
    return [code for code in blocks if "appsync_emulator.faults" in code and "def test_" in code]


def _load_file(path: Path) -> types.ModuleType:
    name = f"repeat_{path.parent.name}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _load_code(code: str, name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    exec(compile(code, name, "exec"), module.__dict__)
    return module


def _reproductions() -> list[Any]:
    modules = [
        (path.relative_to(ROOT).as_posix(), _load_file(path)) for path in _documented_files()
    ]
    for number, code in enumerate(_readme_fault_blocks(), 1):
        modules.append((f"README.md#{number}", _load_code(code, f"readme_fault_{number}")))
    params = []
    for where, module in modules:
        for name, func in vars(module).items():
            if name.startswith("test_") and inspect.isfunction(func):
                params.append(pytest.param(module, func, id=f"{where}::{name}"))
    return params


REPRODUCTIONS = _reproductions()


def test_reproductions_are_found() -> None:
    """The guides' examples are found: every reproduce page's and the README's."""
    ids = {param.id for param in REPRODUCTIONS}
    assert "tests/examples/test_inbox_full_example.py::test_inbox_full" in ids
    assert "README.md#1::test_slow_consumer" in ids
    assert len(ids) >= 20


# --- one run, with the fixtures a test function asks for ----------------------------------


def _options(module: types.ModuleType, func: TestFunction) -> dict[str, Any]:
    """The merged ``appsync`` marks of ``func`` (closest first) and its module."""
    module_marks = getattr(module, "pytestmark", [])
    if not isinstance(module_marks, list):
        module_marks = [module_marks]
    marks = [*getattr(func, "pytestmark", []), *module_marks]
    return merge_markers(m for m in marks if m.name == "appsync")


async def _run_once(settings: Settings, module: types.ModuleType, func: TestFunction) -> None:
    options = _options(module, func)
    client_options = {**settings.client_options, **options.pop("client", {})}
    servers = ServerPool(settings.config, host=settings.host, tls=settings.tls)
    clients = ClientPool(client_options)
    started: list[Any] = []

    async def server() -> Any:
        if not started:
            started.append(await asyncio.to_thread(servers.start, **options))
        return started[0]

    try:
        kwargs: dict[str, Any] = {}
        for name in inspect.signature(func).parameters:
            match name:
                case "appsync_server":
                    kwargs[name] = await server()
                case "appsync_authorizer":
                    kwargs[name] = api_key_authorizer(await server())
                case "appsync_auth":
                    kwargs[name] = Authorizers(await server())
                case "appsync_client":
                    kwargs[name] = await clients.connect(await server())
                case "appsync_client_factory":
                    kwargs[name] = clients.connect
                case "appsync_server_factory":
                    kwargs[name] = servers.start
                case _:
                    raise AssertionError(f"{func.__name__} asks for {name}: not supported here")
        if inspect.iscoroutinefunction(func):
            async with asyncio.timeout(RUN_TIMEOUT):
                await func(**kwargs)
        else:
            await asyncio.to_thread(func, **kwargs)  # sync tests use the blocking waits
    finally:
        try:
            await clients.aclose()
        finally:
            await asyncio.to_thread(servers.close)  # re-raises server-side errors


async def _run_many(run: Callable[[], Awaitable[None]]) -> tuple[int, list[BaseException]]:
    """Run ``run`` :data:`RUNS` times: one at a time while that stays within
    :data:`SEQUENTIAL_BUDGET`, then :data:`CONCURRENCY` at a time.

    Returns how many ran one at a time, and the failures.
    """
    failures: list[BaseException] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SEQUENTIAL_BUDGET
    sequential = 0
    while sequential < RUNS and loop.time() < deadline:
        sequential += 1
        try:
            await run()
        except Exception as exc:
            failures.append(exc)
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one() -> None:
        async with gate:
            await run()

    rest = [one() for _ in range(RUNS - sequential)]
    results = await asyncio.gather(*rest, return_exceptions=True)
    failures += [r for r in results if isinstance(r, BaseException)]
    return sequential, failures


@pytest.mark.parametrize(("module", "func"), REPRODUCTIONS)
@pytest.mark.asyncio
async def test_reproduction_passes_every_run(
    appsync_settings: Settings, module: types.ModuleType, func: TestFunction
) -> None:
    """One documented reproduction passes all of its runs."""
    sequential, failures = await _run_many(lambda: _run_once(appsync_settings, module, func))
    if failures:
        first = "".join(traceback.format_exception(failures[0]))
        pytest.fail(
            f"{len(failures)} of {RUNS} runs failed ({sequential} ran one at a time, the "
            f"others {CONCURRENCY} at a time); the first:\n{first}"
        )
