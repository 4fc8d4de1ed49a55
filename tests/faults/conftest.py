"""Fast timings for the fault tests, set by overriding the plugin's config fixtures.

Every server here sends ``ka`` every 50 ms and advertises ``connectionTimeoutMs`` 300 ms,
and clients give up on a handshake or an operation after 300 ms, so that each fault shows
up in well under a second (scaled by ``APPSYNC_TESTS_TIMEOUT_FACTOR``).
"""

from __future__ import annotations

from typing import Any

import pytest

from appsync_emulator import EmulatorConfig


@pytest.fixture
def appsync_server_config(ms: float) -> EmulatorConfig:
    """ka every 50 ms, connectionTimeoutMs 300 ms."""
    return EmulatorConfig(keepalive_interval=50 * ms, connection_timeout_ms=round(300 * ms * 1000))


@pytest.fixture
def appsync_client_options(ms: float) -> dict[str, Any]:
    """Handshake and operation timeouts of 300 ms, quick close."""
    return {
        "handshake_timeout": 300 * ms,
        "operation_timeout": 300 * ms,
        "close_timeout": 300 * ms,
    }
