"""Local emulator of AWS AppSync Events.

::

    from appsync_emulator import EmulatorConfig, EmulatorServer, EmulatorThread

    async with EmulatorServer() as server:          # on the running event loop
        ...  # server.realtime_endpoint, server.http_endpoint, server.api_key

    with EmulatorThread(EmulatorConfig(namespaces=namespaces(["default", "chat"]))) as server:
        ...  # background thread: usable from sync code and any event loop

Faults live in :mod:`appsync_emulator.faults`, the recorder in
:mod:`appsync_emulator.recorder`; the command line is ``appsync-emulator --help``.
"""

from __future__ import annotations

from . import faults as faults
from .config import (
    DEFAULT_API_KEY as DEFAULT_API_KEY,
    ApiKey as ApiKey,
    AuthType as AuthType,
    ConfigError as ConfigError,
    EmulatorConfig as EmulatorConfig,
    IamCredentials as IamCredentials,
    Limits as Limits,
    NamespaceConfig as NamespaceConfig,
    namespaces as namespaces,
)
from .handlers import HandlerError as HandlerError, Unauthorized as Unauthorized
from .hosting import (
    EmulatorServer as EmulatorServer,
    EmulatorThread as EmulatorThread,
    FaultHandle as FaultHandle,
)
from .recorder import (
    ConnectionInfo as ConnectionInfo,
    Recorder as Recorder,
    RecorderAssertionError as RecorderAssertionError,
)

__all__ = [
    "DEFAULT_API_KEY",
    "ApiKey",
    "AuthType",
    "ConfigError",
    "ConnectionInfo",
    "EmulatorConfig",
    "EmulatorServer",
    "EmulatorThread",
    "FaultHandle",
    "HandlerError",
    "IamCredentials",
    "Limits",
    "NamespaceConfig",
    "Recorder",
    "RecorderAssertionError",
    "Unauthorized",
    "faults",
    "namespaces",
]

__version__ = "0.1.0"
