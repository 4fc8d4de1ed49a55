"""The README: every Python example in it runs, and every file it links to exists.

Each fenced ```` ```python ```` block is run as it stands:

- a block that defines ``test_*`` functions is a pytest file, run with the installed plugin;
- any other block is a script, run in a fresh interpreter against an emulator started by
  this module; ``APPSYNC_HTTP_ENDPOINT`` and ``APPSYNC_API_KEY`` name that emulator, so
  the "against AWS" client example runs unchanged.

A block that cannot run here (it would need AWS itself) is preceded by the line
``<!-- not run: REASON -->``; keep that to the one "first client against AWS" example, if
any (``MAX_NOT_RUN``).

replace-citations: skip (the citations below are test data, not references)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
TEXT = README.read_text(encoding="utf-8")
BLOCK = re.compile(
    r"^(?:<!-- not run: (?P<reason>[^>]*) -->\n)?```python\n(?P<code>.*?)^```$", re.M | re.S
)
MAX_NOT_RUN = 1
SCRIPT_TIMEOUT = 60.0
"""Seconds one script example may take (each takes about a second)."""


def _blocks() -> list[tuple[str, str | None]]:
    return [(match["code"], match["reason"]) for match in BLOCK.finditer(TEXT)]


def _line_of(code: str) -> int:
    return TEXT[: TEXT.index(code)].count("\n") + 1


def _params(kind: str) -> list[object]:
    params: list[object] = []
    for code, reason in _blocks():
        is_test = re.search(r"^(async )?def test_", code, re.M) is not None
        if is_test != (kind == "test"):
            continue
        marks = [pytest.mark.skip(reason=f"not run: {reason}")] if reason else []
        params.append(pytest.param(code, id=f"README.md:{_line_of(code)}", marks=marks))
    return params


def test_readme_has_examples() -> None:
    """The README has its snippets, and at most one is marked as not run."""
    blocks = _blocks()
    assert len(blocks) >= 3
    assert sum(reason is not None for _, reason in blocks) <= MAX_NOT_RUN


@pytest.fixture(scope="module")
def emulator() -> Iterator[dict[str, str]]:
    from appsync_emulator import EmulatorThread

    with EmulatorThread() as server:
        yield {
            "APPSYNC_HTTP_ENDPOINT": server.http_endpoint,
            "APPSYNC_API_KEY": server.api_key,
        }


@pytest.mark.parametrize("code", _params("script"))
def test_readme_script_runs(tmp_path: Path, emulator: dict[str, str], code: str) -> None:
    """A script example runs to the end and prints what it received."""
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    env = {**os.environ, **emulator, "PYTHONWARNINGS": "error"}
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "received" in result.stdout


@pytest.mark.parametrize("code", _params("test"))
def test_readme_test_example_passes(pytester: pytest.Pytester, code: str) -> None:
    """A pytest example passes as a user would run it, with the installed plugin."""
    pytester.makepyfile(test_readme_example=code)
    pytester.makeini(
        "[pytest]\n"
        "asyncio_mode = strict\n"
        "asyncio_default_fixture_loop_scope = function\n"
        "filterwarnings = error\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) > 0, result.stdout.str()
    assert "failed" not in outcomes, result.stdout.str()
    assert "errors" not in outcomes, result.stdout.str()


def test_readme_links_exist() -> None:
    """Every relative link in the README names a file of the repository."""
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", TEXT)
    local = [target for target in targets if "://" not in target]
    assert local
    missing = [target for target in local if not (ROOT / target).exists()]
    assert missing == []


def test_readme_cites_no_missing_document() -> None:
    """The README names no document the repository does not contain."""
    assert "PROTOCOL.md" not in TEXT
    assert "§" not in TEXT
    paths = re.findall(r"\b[\w.-]+(?:/[\w.-]+)+\.(?:md|rst|py|toml|txt)\b", TEXT)
    assert [path for path in paths if not (ROOT / path).exists()] == []


def test_readme_commands_exist() -> None:
    """The README's install line and its two set-up commands are there and real."""
    assert "pip install appsync-events" in TEXT
    assert "pip install 'appsync-events[emulator]'" in TEXT
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in ("demo", "test"):
        assert f"make {target}" in TEXT
        assert re.search(rf"^(?:\w+ )*{target}(?: \w+)*:", makefile, re.M), target


def test_readme_is_short() -> None:
    """The README stays an overview (about 150 lines); details live in docs/."""
    assert len(TEXT.splitlines()) <= 200
