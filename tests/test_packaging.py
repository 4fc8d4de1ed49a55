"""The source distribution: the whole test suite, the docs and the licence, nothing stray."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _tracked(prefix: str) -> set[str]:
    out = subprocess.run(
        ["git", "ls-files", prefix], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return {line for line in out.splitlines() if "node_modules" not in line}


@pytest.fixture(scope="module")
def sdist_names(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    if not (ROOT / ".git").exists():
        pytest.skip("needs the git checkout (the file list comes from git)")
    out = tmp_path_factory.mktemp("sdist")
    subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--no-isolation", "-o", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (archive,) = out.glob("*.tar.gz")
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    top = names[0].split("/")[0]
    return {name.removeprefix(f"{top}/") for name in names}


def test_sdist_ships_the_whole_test_suite(sdist_names: set[str]) -> None:
    """Every tracked test file (the Amplify driver's installed modules aside), not a few."""
    missing = _tracked("tests") - sdist_names
    assert not missing, sorted(missing)[:10]


def test_sdist_ships_docs_licence_and_changelog(sdist_names: set[str]) -> None:
    assert {"LICENSE", "README.md", "CHANGELOG.md", "conftest.py"} <= sdist_names
    assert not _tracked("docs") - sdist_names
    assert not any("node_modules" in name or "__pycache__" in name for name in sdist_names)
