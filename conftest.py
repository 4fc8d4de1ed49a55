"""pytest setup for this repository's own test runs (not shipped with the packages).

* Loads the appsync plugin by module name, and pytester.  ``pyproject.toml`` passes
  ``-p no:appsync`` so that the entry point does not load the plugin a second time; loading
  it here, after coverage has started, lets coverage see the plugin's import.
* Registers the project's markers (``--strict-markers`` refuses any other).
* Skips tests marked ``aws`` (they talk to a real AWS Event API) unless
  ``APPSYNC_EVENTS_AWS`` is set.
* Keeps pytest out of folders without a suite of their own: the docs' examples are run
  by ``tests/test_docs.py`` and the README's by ``tests/test_readme.py``; benchmarks run
  by hand.
"""

from __future__ import annotations

import os

import pytest

pytest_plugins = ["appsync_emulator.pytest_plugin", "pytester"]

collect_ignore = ["docs", "benchmarks", "build"]

MARKERS = {
    "interop": "drives a third-party client (Node, Amplify JS)",
    "aws": "talks to a real AWS Event API (skipped unless APPSYNC_EVENTS_AWS is set)",
}


def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("APPSYNC_EVENTS_AWS"):
        return
    skip = pytest.mark.skip(reason="talks to real AWS: set APPSYNC_EVENTS_AWS to run it")
    for item in items:
        if item.get_closest_marker("aws") is not None:
            item.add_marker(skip)
