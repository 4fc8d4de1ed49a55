"""The pytest plugin is loaded in every pytest session: importing it must stay cheap."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = (
    "aiohttp",
    "botocore",
    "websockets",
    "jwt",
    "cryptography",
    "trustme",
    "pydantic",
    "appsync_emulator.hosting",
    "appsync_emulator.server",
    "appsync_events.client",
)


def test_plugin_import_loads_no_heavy_module() -> None:
    """Importing the plugin and both packages pulls in no network or crypto library."""
    code = (
        "import json, sys\n"
        "import appsync_emulator.pytest_plugin, appsync_events, appsync_emulator\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(out.stdout) == []


def test_lazy_names_resolve_on_first_use() -> None:
    """A lazily exported name still resolves to the real object."""
    import appsync_emulator
    import appsync_events

    assert appsync_events.connect.__module__ == "appsync_events.client"
    assert appsync_emulator.EmulatorThread.__module__ == "appsync_emulator.hosting"


def test_client_import_loads_no_emulator_dependency() -> None:
    """The whole client runs without the emulator extra: none of its packages is imported."""
    extra = ("jwt", "cryptography", "trustme", "pydantic", "appsync_emulator")
    code = (
        "import json, sys\n"
        "import appsync_events.client, appsync_events.http, appsync_events.authorizer.iam\n"
        f"print(json.dumps([m for m in {extra!r} if m in sys.modules]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(out.stdout) == []
