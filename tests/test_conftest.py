"""The repository's top-level conftest.py: markers registered, ``aws`` tests gated."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT_CONFTEST = Path(__file__).resolve().parent.parent / "conftest.py"

AWS_TEST = """
import pytest

@pytest.mark.aws
def test_against_aws():
    pass

@pytest.mark.interop
def test_interop():
    pass
"""


def test_aws_tests_are_skipped_without_the_variable(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("APPSYNC_EVENTS_AWS", raising=False)
    pytester.makeconftest(ROOT_CONFTEST.read_text())
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(AWS_TEST)
    result = pytester.runpytest("--strict-markers", "-p", "no:appsync", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*set APPSYNC_EVENTS_AWS to run it*"])


def test_aws_tests_run_with_the_variable(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APPSYNC_EVENTS_AWS", "1")
    pytester.makeconftest(ROOT_CONFTEST.read_text())
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(AWS_TEST)
    pytester.runpytest("--strict-markers", "-p", "no:appsync").assert_outcomes(passed=2)
