"""Deprecated private name of :mod:`appsync_events.endpoints`, kept until every import moves."""

from __future__ import annotations

from .endpoints import *  # noqa: F403
from .endpoints import __all__ as __all__
