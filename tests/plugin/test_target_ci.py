"""``scripts/check_target_junit.py``: the gate CI puts on the example suite's remote-target run."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "check_target_junit.py"


@pytest.fixture(scope="module")
def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_target_junit", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def report(tmp_path: Path, *cases: str) -> Path:
    path = tmp_path / "junit.xml"
    case = '<testcase classname="tests.x" name="t{}">{}</testcase>'
    body = "".join(case.format(i, c) for i, c in enumerate(cases))
    path.write_text(f"<testsuites><testsuite>{body}</testsuite></testsuites>", encoding="utf-8")
    return path


SKIP = '<skipped type="pytest.skip" message="{}"/>'


def test_check_target_junit_accepts_emulator_only_skips(
    script: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Enough passes, no failure and only emulator-only skips pass; the skips are listed."""
    path = report(tmp_path, "", "", SKIP.format("emulator-only: appsync_server.inject needs it"))
    assert script.main([str(path), "--min-passed", "2"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "target: 2 passed, 0 failed, 1 skipped"
    assert "skipped tests.x::t2: emulator-only: appsync_server.inject needs it" in out


@pytest.mark.parametrize(
    ("cases", "problem"),
    [
        (("", '<failure message="boom"/>'), "failed: tests.x::t1"),
        (("",), "only 1 test(s) passed, at least 2 must"),
        (("", "", SKIP.format("no network")), "skipped but not emulator-only: tests.x::t2"),
    ],
)
def test_check_target_junit_refuses(
    script: ModuleType,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    cases: tuple[str, ...],
    problem: str,
) -> None:
    """A failure, too few passes, or a skip for another reason fails the gate, saying which."""
    assert script.main([str(report(tmp_path, *cases)), "--min-passed", "2"]) == 1
    assert f"target: {problem}" in capsys.readouterr().err
