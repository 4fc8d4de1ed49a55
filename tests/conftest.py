"""Suite-wide setup: Hypothesis profiles and the MS time unit.

The plugin, pytester and the markers are loaded by the repository's top-level
``conftest.py``.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

TIMEOUT_FACTOR = float(os.environ.get("APPSYNC_TESTS_TIMEOUT_FACTOR", "1"))
"""Scales every test delay and timeout (raise it on slow CI machines)."""

MS = 0.001 * TIMEOUT_FACTOR
"""One millisecond of test time: write ``300 * MS``, never a bare ``0.3``."""

# No deadline and no "too slow" health check: both time the test on the machine it runs
# on, and a loaded machine (two test workers beside other jobs) fails them with nothing
# wrong in the code.
_UNTIMED: dict[str, Any] = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("default", **_UNTIMED)
settings.register_profile("ci", max_examples=500, print_blob=True, **_UNTIMED)
settings.register_profile("fast", max_examples=20, **_UNTIMED)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(scope="session")
def ms() -> float:
    """The :data:`MS` unit as a fixture, for test modules that cannot import conftest."""
    return MS
