"""Plain data the pytest plugin registers at start-up: ini options and the marker line.

Standard library only, so that loading the plugin (which happens in every pytest session
of a project that installs ``appsync-events``) imports neither the emulator nor the client.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = [
    "EMULATOR_ONLY_MARKER",
    "INI_OPTIONS",
    "MARKER",
    "SERVER_SCOPES",
    "TARGET_ENV",
    "TARGET_HELP",
]

INI_OPTIONS: Final[tuple[tuple[str, str, Any, str], ...]] = (
    ("appsync_host", "string", "127.0.0.1", "interface the emulator fixtures listen on"),
    ("appsync_tls", "bool", False, "serve wss:// and https:// with a local CA"),
    ("appsync_config", "string", "", "TOML/JSON emulator config file (relative to rootdir)"),
    ("appsync_region", "string", "", "region the emulator claims (default us-east-1)"),
    ("appsync_namespaces", "args", [], "channel namespaces (default: default)"),
    ("appsync_keepalive_interval", "string", "", "seconds between ka frames (default 60)"),
    ("appsync_connection_timeout_ms", "string", "", "connectionTimeoutMs sent in the ack"),
    ("appsync_handshake_timeout", "string", "", "handshake_timeout of client fixtures"),
    ("appsync_operation_timeout", "string", "", "operation_timeout of client fixtures"),
    ("appsync_target", "string", "", "URL of a running AppSync Events endpoint to test against"),
    (
        "appsync_record",
        "string",
        "",
        "record each test's appsync_server traffic to this path ({test}: the test's id)",
    ),
    (
        "appsync_server_scope",
        "string",
        "function",
        "function (a new emulator per test), module or session (one emulator per scope, "
        "reset between tests)",
    ),
)
"""``(name, type, default, help)`` of the ini options the plugin registers."""

SERVER_SCOPES: Final = ("function", "module", "session")
"""The values of the ``appsync_server_scope`` ini option."""

MARKER: Final = (
    "appsync(config=None, *, tls=False, host=None, faults=(), client=None, **options): "
    "configure this test's appsync_server (EmulatorConfig fields and shorthands such as "
    "namespaces=['default', 'chat'], connection_timeout_ms=300, keepalive_interval=0.05) "
    "and appsync_client (client={...connect options}); module, class and function marks "
    "merge, the closest winning"
)
"""The ``markers`` ini line registering ``@pytest.mark.appsync``."""

# --- the remote target (--appsync-target) ---------------------------------------------------

TARGET_ENV: Final = "APPSYNC_TARGET"
"""Environment variable naming the target when ``--appsync-target`` is not given."""

TARGET_HELP: Final = (
    "run the appsync fixtures against this already running AppSync Events endpoint (its "
    "HTTP URL, https://....appsync-api.REGION.amazonaws.com/event or "
    "http://127.0.0.1:PORT/event) instead of starting emulators; 'emulator' starts them. "
    "Default: $APPSYNC_TARGET, else the ini option appsync_target. Auth: $APPSYNC_API_KEY, "
    "or APPSYNC_AUTH=iam for AWS credentials"
)
"""Help of the ``--appsync-target`` command-line option."""

EMULATOR_ONLY_MARKER: Final = (
    "appsync_emulator_only(reason=None): this test needs the emulator (faults, the "
    "recorder, its configuration); skipped when --appsync-target points at a running endpoint"
)
"""The ``markers`` ini line registering ``@pytest.mark.appsync_emulator_only``."""
