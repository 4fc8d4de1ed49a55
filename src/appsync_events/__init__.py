"""asyncio client for AWS AppSync Events."""

from __future__ import annotations

from .errors import *  # noqa: F403
from .errors import __all__ as _errors_all
from .protocol.subprotocol import PROTOCOL_EVENTS as PROTOCOL_EVENTS

__all__ = ["PROTOCOL_EVENTS", *_errors_all]
