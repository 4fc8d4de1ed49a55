"""Plain data the pytest plugin registers at start-up: ini options and the marker line.

Standard library only, so that loading the plugin (which happens in every pytest session
of a project that installs ``appsync-events``) imports neither the emulator nor the client.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["INI_OPTIONS", "MARKER", "SERVER_SCOPES"]

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
