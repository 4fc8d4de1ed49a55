"""``python -m appsync_emulator``: the same as the ``appsync-emulator`` command."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
