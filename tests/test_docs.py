"""The documentation: it builds without warnings, and every example in it runs.

The site is built with ``sphinx-build -W --keep-going`` (warnings are errors) into a
temporary folder; the example files the pages include (``docs/**/*_example.py``, the
``*_config.toml`` files) are run against the emulator; and the map from old section
citations to documentation sections covers every citation left in the code.

replace-citations: skip (the citations below are test data, not references)
"""

from __future__ import annotations

import importlib.util
import json
import os
import runpy
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
BUILD_TIMEOUT = 120.0
"""Seconds a Sphinx build may take (about 8 on a laptop)."""

needs_sphinx = pytest.mark.skipif(
    importlib.util.find_spec("sphinx") is None,
    reason="sphinx is not installed (pip install -e '.[docs]')",
)


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "replace_citations", DOCS / "replace_citations.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


replace_citations = _load_script()


def _sphinx(builder: str, out: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "APPSYNC_DOCS_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            builder,
            "-d",
            str(out / "doctrees"),
            str(DOCS),
            str(out / builder),
        ],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        env=env,
        check=False,
    )


# --- the build -------------------------------------------------------------------------------


@needs_sphinx
def test_docs_build_without_warnings(tmp_path: Path) -> None:
    """The HTML build passes with warnings as errors, then its doctests pass.

    The doctest build re-uses the HTML build's parsed pages, so it costs about a second.
    """
    result = _sphinx("html", tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "html" / "topics" / "protocol.html").is_file()
    assert (tmp_path / "html" / "reference" / "client.html").is_file()
    result = _sphinx("doctest", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 failures in tests" in (tmp_path / "doctest" / "output.txt").read_text()


# --- examples --------------------------------------------------------------------------------

TEST_EXAMPLES = {
    "tutorials": ("tutorials/first_test_example.py", "tutorials/first_test_fault_example.py"),
    "how-to": (
        "how-to/api_key_example.py",
        "how-to/iam_example.py",
        "how-to/cognito_example.py",
        "how-to/oidc_example.py",
        "how-to/lambda_example.py",
        "how-to/lambda_authorizer_example.py",
        "how-to/tls_example.py",
        "how-to/handlers_example.py",
        "how-to/appsync_js_example.py",
        "how-to/chat_handlers.js",
        "how-to/powertools_example.py",
        "how-to/powertools_lambda_example.py",
    ),
    "reference": ("reference/shared_server_example.py",),
    "reproduce": (
        "how-to/reproduce/connection_refused_example.py",
        "how-to/reproduce/connection_closed_example.py",
        "how-to/reproduce/operation_timeout_example.py",
        "how-to/reproduce/publish_refused_example.py",
        "how-to/reproduce/broadcast_error_example.py",
        "how-to/reproduce/protocol_error_example.py",
    ),
    "record-replay": ("how-to/record_replay_example.py",),
}
"""Example test files by page group (with the modules they import); one pytest process runs all."""

SCRIPT_EXAMPLES = (
    "how-to/client_subscribe_example.py",
    "how-to/client_publish_example.py",
    "how-to/client_authorizers_example.py",
    "how-to/client_errors_example.py",
    "how-to/client_reconnect_example.py",
    "how-to/client_overflow_example.py",
    "how-to/emulator_example.py",
    "how-to/sync_example.py",
)
"""Scripts run against an emulator (``APPSYNC_HTTP_ENDPOINT`` and ``APPSYNC_API_KEY`` name it)."""

OTHER_EXAMPLES = ("tutorials/pubsub_example.py", "how-to/tls_client_example.py")
"""Scripts with a test of their own below."""


def test_docs_every_example_is_run() -> None:
    """Each ``*_example.py`` under docs/ is run by a test in this module."""
    run = {name for files in TEST_EXAMPLES.values() for name in files if name.endswith(".py")}
    run |= {*SCRIPT_EXAMPLES, *OTHER_EXAMPLES}
    found = {path.relative_to(DOCS).as_posix() for path in DOCS.rglob("*_example.py")}
    assert found == run


def test_docs_python_examples_are_run() -> None:
    """No page shows Python code that no test runs.

    Python examples are files included with ``literalinclude`` (run by the tests of this
    module) or ``testcode``/``doctest`` blocks (run by the doctest build); a plain
    ``code-block:: python`` would not run.
    """
    pages = [page for page in DOCS.rglob("*.rst") if "_build" not in page.parts]
    offenders = [
        f"{page.relative_to(DOCS)}:{number}"
        for page in pages
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
        if line.strip() in {".. code-block:: python", ".. code-block:: python3", ".. code:: python"}
    ]
    assert offenders == []


def test_docs_example_tests_pass(pytester: pytest.Pytester) -> None:
    """The example test files pass as a user would run them, with the installed plugin.

    One pytest process runs them all (a process costs seconds); its report names the
    file of any failure.
    """
    files = [name for group in TEST_EXAMPLES.values() for name in group]
    for name in files:
        shutil.copy(DOCS / name, pytester.path / Path(name).name)
    pytester.makeini(
        "[pytest]\n"
        "asyncio_mode = strict\n"
        "asyncio_default_fixture_loop_scope = function\n"
        "filterwarnings = error\n"
    )
    tests = [Path(name).name for name in files if "def test_" in (DOCS / name).read_text()]
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *tests)
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) >= len(tests), result.stdout.str()
    assert "failed" not in outcomes, result.stdout.str()
    assert "errors" not in outcomes, result.stdout.str()


def test_docs_cite_only_documents_they_contain() -> None:
    """No page or example points to a document outside the repository."""
    sources = [*DOCS.rglob("*.rst"), *DOCS.rglob("*_example.py"), *DOCS.rglob("*_config.toml")]
    offenders = [
        f"{path.relative_to(DOCS)}: {word}"
        for path in sources
        if "_build" not in path.parts
        for word in ("PROTOCOL.md", "\u00a7", "../shared")
        if word in path.read_text(encoding="utf-8")
    ]
    assert offenders == []


@pytest.fixture(scope="module")
def emulator_env() -> Iterator[dict[str, str]]:
    from appsync_emulator import EmulatorThread

    with EmulatorThread() as server:
        yield {"APPSYNC_HTTP_ENDPOINT": server.http_endpoint, "APPSYNC_API_KEY": server.api_key}


def _run_script(
    path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], *args: str
) -> None:
    # In this process (a fresh interpreter per script would cost a second each): the
    # script runs as ``python path args`` would run it.
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(sys, "argv", [str(path), *args])
    runpy.run_path(str(path), run_name="__main__")


@pytest.mark.parametrize("script", SCRIPT_EXAMPLES)
def test_docs_script_example_runs(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    emulator_env: dict[str, str],
    script: str,
) -> None:
    """A script example runs to the end against the emulator."""
    _run_script(DOCS / script, monkeypatch, emulator_env)
    assert capsys.readouterr().out


def test_docs_tls_client_example_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The TLS guide's client trusts the CA named in the ready file and connects."""
    from appsync_emulator import EmulatorThread

    with EmulatorThread(tls=True) as server:
        ready = tmp_path / "ready.json"
        info = {
            "http_endpoint": server.http_endpoint,
            "api_key": server.api_key,
            "ca_cert": server.ca_cert_path,
        }
        ready.write_text(json.dumps(info), encoding="utf-8")
        _run_script(DOCS / "how-to" / "tls_client_example.py", monkeypatch, {}, str(ready))
    assert capsys.readouterr().out == "received {'n': 1}\n"


def test_docs_pubsub_script_runs_against_the_cli(tmp_path: Path) -> None:
    """The first tutorial's script works against ``appsync-emulator`` started as a user would."""
    ready = tmp_path / "ready.json"
    log = tmp_path / "emulator.log"
    with log.open("w") as stderr:
        server = subprocess.Popen(
            [sys.executable, "-m", "appsync_emulator", "--port", "0", "--ready-file", str(ready)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the emulator did not write its ready file"
            time.sleep(0.05)
        info = json.loads(ready.read_text(encoding="utf-8"))
        env = {
            **os.environ,
            "APPSYNC_HTTP_ENDPOINT": info["http_endpoint"],
            "APPSYNC_API_KEY": info["api_key"],
        }
        result = subprocess.run(
            [sys.executable, str(DOCS / "tutorials" / "pubsub_example.py")],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "published 2 events over the WebSocket",
        "received {'text': 'hello'}",
        "received {'text': 'world'}",
        "received {'text': 'over HTTP'}",
    ]


SHELL_EXAMPLES = ("how-to/cli_client_example.sh",)
"""Shell scripts, run by ``sh`` with ``appsync-events`` and ``appsync-emulator`` on ``PATH``."""


def test_docs_every_shell_example_is_run() -> None:
    """Each ``*_example.sh`` under docs/ is run by a test in this module."""
    found = {path.relative_to(DOCS).as_posix() for path in DOCS.rglob("*_example.sh")}
    assert found == set(SHELL_EXAMPLES)


def _commands(folder: Path) -> Path:
    """A folder of ``appsync-events`` and ``appsync-emulator`` commands for this interpreter.

    They run this interpreter, so the scripts use the code under test whether or not the
    package's console scripts are installed.
    """
    folder.mkdir()
    for command, module in (
        ("appsync-events", "appsync_events"),
        ("appsync-emulator", "appsync_emulator"),
    ):
        path = folder / command
        path.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m {module} "$@"\n')
        path.chmod(0o755)
    return folder


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")
@pytest.mark.parametrize("script", SHELL_EXAMPLES)
def test_docs_shell_example_runs(tmp_path: Path, script: str) -> None:
    """A shell example runs to the end in an empty folder, as a user would run it."""
    bin_dir = _commands(tmp_path / "bin")
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        ["sh", str(DOCS / script)],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    events = [json.loads(line)["event"] for line in result.stdout.splitlines()[-4:]]
    assert events == [{"text": "hi"}, "plain text", {"n": 1}, {"n": 2}]


@pytest.mark.parametrize(
    "config", sorted(path.name for path in (DOCS / "how-to").glob("*_config.toml"))
)
def test_docs_config_example_loads(monkeypatch: pytest.MonkeyPatch, config: str) -> None:
    """Each configuration file of the how-to guides is a valid emulator configuration."""
    from appsync_emulator import EmulatorConfig

    # The emulator is started in the folder that holds the guide's authorizer module.
    monkeypatch.chdir(DOCS / "how-to")
    monkeypatch.syspath_prepend(str(DOCS / "how-to"))
    loaded = EmulatorConfig.from_file(DOCS / "how-to" / config)
    assert loaded.auth_providers


# --- the section map -------------------------------------------------------------------------


def _labels(page: Path) -> set[str]:
    lines = page.read_text(encoding="utf-8").splitlines()
    return {line[4:-1] for line in lines if line.startswith(".. _") and line.endswith(":")}


def test_docs_section_map_points_to_existing_labels() -> None:
    """Every entry of docs/section-map.txt names a page and a label that exist."""
    mapping = replace_citations.load_map()
    assert mapping
    for key, target in mapping.items():
        page = ROOT / target.path
        assert page.is_file(), f"{key}: {target.path} does not exist"
        assert target.label in _labels(page), f"{key}: no label {target.label} in {page}"


def test_docs_section_map_covers_every_citation() -> None:
    """Every section citation left in the code has a map entry (or a parent section)."""
    mapping = replace_citations.load_map()
    roots = [ROOT / name for name in replace_citations.DEFAULT_PATHS]
    misses = []
    for path in replace_citations.iter_files([root for root in roots if root.exists()]):
        text = path.read_text(encoding="utf-8")
        if "§" in text and replace_citations.SKIP_MARK not in text:
            _, missing = replace_citations.rewrite_text(text, mapping)
            misses += [f"{path}:{line}: {key}" for line, key in missing]
    assert misses == []


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "# PROTOCOL.md §3.3.2: a ka follows the ack.",
            '# docs: protocol.rst, "Keep-alive": a ka follows the ack.',
        ),
        (
            "# EMULATOR-CHOICE §3.2.1: a second init is ignored.",
            '# EMULATOR-CHOICE, docs: emulator-fidelity.rst, "A second connection_init": a'
            " second init is ignored.",
        ),
        (
            '"""Limits (§4, §7.3)."""',
            '"""Limits (docs: protocol.rst, "Timing and lifecycle", "Limits")."""',
        ),
        (
            "# server side (PROTOCOL.md §2.3-§4)",
            '# server side (docs: protocol.rst, "Connection authorization" to'
            ' "Timing and lifecycle")',
        ),
        (
            "# not JSON (RFC 8259 §6)",
            "# not JSON (RFC 8259 §6)",
        ),
        (
            "# layering (STYLE §1)",
            '# layering (docs: design.rst, "One protocol core, two shells")',
        ),
    ],
)
def test_replace_citations_rewrite_line(line: str, expected: str) -> None:
    """Citations become documentation references; RFC sections stay as they are."""
    mapping = replace_citations.load_map()
    assert replace_citations.rewrite_line(line, mapping) == (expected, [])


def test_replace_citations_reports_unknown_keys() -> None:
    """A citation with no entry (and no parent entry) is left alone and reported."""
    assert replace_citations.rewrite_line("# see §42", {}) == ("# see §42", ["§42"])


def test_replace_citations_link_docstring() -> None:
    """The docs build shows citations, old and rewritten, as links (plain in literal blocks)."""
    mapping = replace_citations.load_map()
    lines = [
        "Keep-alive timing (PROTOCOL.md",
        '§3.3.2), see also docs: protocol.rst, "Limits".',
        "",
        "Tree::",
        "",
        "    Error   breaks a rule of §7.1",
        "",
        "After (PROTOCOL.md).",
    ]
    assert replace_citations.link_docstring(lines, mapping) == [
        "Keep-alive timing (",
        ":ref:`Keep-alive <protocol-keepalive>`), see also :ref:`Limits <protocol-limits>`.",
        "",
        "Tree::",
        "",
        '    Error   breaks a rule of docs: protocol.rst, "Channels and namespaces"',
        "",
        "After (:ref:`The AppSync Events wire protocol <protocol>`).",
    ]
