"""``python -m appsync_events``: the ``appsync-events`` command line (see :mod:`.cli`)."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
