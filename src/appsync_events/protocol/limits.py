"""Service limits as named constants (docs: protocol.rst, "Timing and lifecycle", "Limits")."""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "DEFAULT_CONNECTION_TIMEOUT_MS",
    "DEFAULT_KEEPALIVE_INTERVAL",
    "DEFAULT_MAX_CONNECTION_LIFETIME",
    "ID_PATTERN",
    "MAX_CHANNEL_SEGMENTS",
    "MAX_EVENTS_PER_PUBLISH",
    "MAX_EVENT_BYTES",
    "MAX_ID_LENGTH",
    "MAX_REQUEST_BYTES",
    "MAX_SEGMENT_LENGTH",
    "MAX_SUBSCRIPTIONS_PER_CONNECTION",
    "MAX_PUBLISH_PER_SECOND",
    "is_valid_id",
]

MAX_EVENTS_PER_PUBLISH: Final = 5
"""Events in one publish, HTTP or WebSocket (not adjustable)."""
MAX_EVENT_BYTES: Final = 240 * 1024
"""Bytes of one event's UTF-8 JSON text (EMULATOR-CHOICE: KB = 1024 bytes,
docs: emulator-fidelity.rst, "Events and limits")."""
MAX_REQUEST_BYTES: Final = 1_200 * 1024
"""Bytes of one publish request or WebSocket frame (1.2 MB, docs: protocol.rst, "Limits")."""
MAX_SUBSCRIPTIONS_PER_CONNECTION: Final = 200
"""Subscriptions on one connection (adjustable in AWS)."""
MAX_PUBLISH_PER_SECOND: Final = 25
"""Publish requests per second per WebSocket connection."""
MAX_CHANNEL_SEGMENTS: Final = 5
MAX_SEGMENT_LENGTH: Final = 50
MAX_ID_LENGTH: Final = 128
ID_PATTERN: Final = re.compile(r"^[a-zA-Z0-9\-_+]{1,128}$")
"""Operation ids (docs: protocol.rst, "The envelope")."""

DEFAULT_CONNECTION_TIMEOUT_MS: Final = 300_000
"""``connectionTimeoutMs`` of AWS's ``connection_ack``."""
DEFAULT_KEEPALIVE_INTERVAL: Final = 60.0
"""Seconds between ``ka`` frames."""
DEFAULT_MAX_CONNECTION_LIFETIME: Final = 24 * 3600.0
"""Seconds a connection may live."""


def is_valid_id(value: object) -> bool:
    """Return whether ``value`` is a string matching :data:`ID_PATTERN`."""
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None
