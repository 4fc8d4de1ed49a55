"""Public names: every ``__all__`` is duplicate-free and every name in it resolves.

Covers the three packages' ``__all__`` explicitly and every other module of both import
packages (``__main__`` excepted: importing it would run the CLI).
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

import pytest

import appsync_emulator
import appsync_events
import appsync_events.protocol

PACKAGES = [appsync_events, appsync_events.protocol, appsync_emulator]


def all_modules() -> list[str]:
    """Dotted names of every module in both import packages, except ``__main__``."""
    names = []
    for package in (appsync_events, appsync_emulator):
        names.append(package.__name__)
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if info.name.rpartition(".")[2] != "__main__":
                names.append(info.name)
    return sorted(names)


def check_all(module: ModuleType) -> None:
    """Assert ``module.__all__`` is a duplicate-free list of names that all resolve."""
    exported = module.__all__
    assert isinstance(exported, list | tuple)
    assert all(isinstance(name, str) for name in exported)
    duplicates = sorted({name for name in exported if exported.count(name) > 1})
    assert duplicates == [], f"duplicates in {module.__name__}.__all__"
    missing = [name for name in exported if not hasattr(module, name)]
    assert missing == [], f"{module.__name__}.__all__ names missing attributes"


@pytest.mark.parametrize("package", PACKAGES, ids=lambda m: m.__name__)
def test_package_all_is_consistent(package: ModuleType) -> None:
    """A package's __all__ has no duplicates and every name resolves."""
    assert hasattr(package, "__all__")
    check_all(package)


@pytest.mark.parametrize("name", all_modules())
def test_module_all_is_consistent(name: str) -> None:
    """Every module defining public classes or functions declares a consistent __all__."""
    module = importlib.import_module(name)
    if hasattr(module, "__all__"):
        check_all(module)
        return
    defined = [
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_")
        and callable(value)
        and getattr(value, "__module__", None) == name
    ]
    assert defined == [], f"{name} defines public names {defined} but no __all__"


def test_top_level_reexports_errors() -> None:
    """``appsync_events`` re-exports the whole exception tree and the subprotocol name."""
    from appsync_events import errors

    assert set(errors.__all__) <= set(appsync_events.__all__)
    for name in errors.__all__:
        assert getattr(appsync_events, name) is getattr(errors, name)
    assert appsync_events.PROTOCOL_EVENTS == "aws-appsync-event-ws"


def test_protocol_package_reexports_submodule_objects() -> None:
    """Names in ``appsync_events.protocol.__all__`` are the submodules' own objects."""
    for name in appsync_events.protocol.__all__:
        value = getattr(appsync_events.protocol, name)
        home = getattr(value, "__module__", None)
        if home is not None and home.startswith("appsync_events.protocol."):
            assert getattr(importlib.import_module(home), name) is value


def test_version_comes_from_the_distribution() -> None:
    """``appsync_events.__version__`` is the installed distribution's version."""
    from importlib.metadata import version

    assert appsync_events.__version__ == version("appsync-events")
    assert "__version__" in dir(appsync_events)


def test_new_public_names() -> None:
    """Names added by the architecture pass are exported where users look for them."""
    from appsync_events import authorizer, endpoints
    from appsync_events.authorizer import base

    for name in (
        "ConnectionLostError",
        "PublishUnauthorizedError",
        "SubscribeUnauthorizedError",
        "UnsubscribeUnauthorizedError",
        "unauthorized_error",
    ):
        assert name in appsync_events.__all__
        assert getattr(appsync_events, name) is getattr(appsync_events.errors, name)
    assert "request_host" in base.__all__
    assert {"signing_host", "http_host_from_realtime"} <= set(endpoints.__all__)
    assert authorizer.AuthorizeRequest is base.AuthorizeRequest


def test_lazy_names_fail_clearly() -> None:
    """An unknown attribute of either package is an AttributeError naming it."""
    with pytest.raises(AttributeError, match="'appsync_events' has no attribute 'nope'"):
        _ = appsync_events.nope  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match="'appsync_emulator' has no attribute 'nope'"):
        _ = appsync_emulator.nope  # type: ignore[attr-defined]
    assert {"connect", "Client", "errors"} <= set(dir(appsync_events))
    assert {"EmulatorThread", "faults"} <= set(dir(appsync_emulator))
