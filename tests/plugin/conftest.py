"""Setup of the plugin tests: import the emulator and the client in the outer session.

``pytester.runpytest()`` runs in-process and then drops every module the inner session
imported.  The plugin imports the emulator only when a fixture runs, and the packages cache
lazily imported names, so an inner run must not be the first to import them: a later run
would mix classes from two imports of one module (``TypeError: not a fault: NeverAck()``).
A user's single session imports each module once, as this outer session does here.
"""

from __future__ import annotations

import appsync_emulator
import appsync_emulator.testing
import appsync_events

for _package in (appsync_events, appsync_emulator):
    for _name in _package.__all__:
        getattr(_package, _name)
