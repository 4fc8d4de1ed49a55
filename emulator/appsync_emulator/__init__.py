"""Local emulator of AWS AppSync Events.

::

    from appsync_emulator import EmulatorConfig, EmulatorServer, EmulatorThread

    async with EmulatorServer() as server:          # on the running event loop
        ...  # server.realtime_endpoint, server.http_endpoint, server.api_key

    with EmulatorThread(EmulatorConfig(namespaces=namespaces(["default", "chat"]))) as server:
        ...  # background thread: usable from sync code and any event loop

Faults live in :mod:`appsync_emulator.faults`, the recorder in
:mod:`appsync_emulator.recorder`; the command line is ``appsync-emulator --help``.

The names below are imported on first use (PEP 562), so ``import appsync_emulator`` (and the
pytest plugin, which every pytest session loads) stays cheap until the emulator is needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from . import faults as faults
    from .config import (
        DEFAULT_API_KEY as DEFAULT_API_KEY,
        ApiKeyConfig as ApiKeyConfig,
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
        EmulatorHost as EmulatorHost,
        EmulatorServer as EmulatorServer,
        EmulatorThread as EmulatorThread,
        FaultHandle as FaultHandle,
        FaultNotDoneError as FaultNotDoneError,
    )
    from .recorder import (
        ConnectionInfo as ConnectionInfo,
        Recorder as Recorder,
        RecorderAssertionError as RecorderAssertionError,
    )

__all__ = [
    "DEFAULT_API_KEY",
    "ApiKeyConfig",
    "AuthType",
    "ConfigError",
    "ConnectionInfo",
    "EmulatorConfig",
    "EmulatorHost",
    "EmulatorServer",
    "EmulatorThread",
    "FaultHandle",
    "FaultNotDoneError",
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

_LAZY: Final[dict[str, str]] = {
    # public name -> submodule defining it (``faults`` is the submodule itself)
    "DEFAULT_API_KEY": "config",
    "ApiKeyConfig": "config",
    "AuthType": "config",
    "ConfigError": "config",
    "EmulatorConfig": "config",
    "IamCredentials": "config",
    "Limits": "config",
    "NamespaceConfig": "config",
    "namespaces": "config",
    "HandlerError": "handlers",
    "Unauthorized": "handlers",
    "EmulatorHost": "hosting",
    "EmulatorServer": "hosting",
    "EmulatorThread": "hosting",
    "FaultHandle": "hosting",
    "FaultNotDoneError": "hosting",
    "ConnectionInfo": "recorder",
    "Recorder": "recorder",
    "RecorderAssertionError": "recorder",
    "faults": "faults",
}


def _load(name: str) -> object:
    """Import the submodule that defines ``name`` on first use (PEP 562), then cache it."""
    home = _LAZY.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{home}")
    globals()[name] = value = module if home == name else getattr(module, name)
    return value


if not TYPE_CHECKING:  # hidden from type checkers, which see the imports above instead
    __getattr__ = _load

    def __dir__() -> list[str]:
        return sorted({*globals(), *__all__})
