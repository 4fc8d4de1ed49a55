"""pytest fixtures for AppSync Events: a local emulator per test and connected clients.

With the ``appsync_server_scope`` ini option set to ``module`` or ``session``, the
emulators are shared by the tests of that scope (one per distinct configuration) and
reset between tests; see :class:`appsync_emulator.testing.SharedServers`.

Loaded automatically through the ``appsync`` ``pytest11`` entry point (``-p appsync``).
The logic lives in :mod:`appsync_emulator.testing`; this module only wires fixtures.  It
imports nothing but pytest at load time (it is loaded in every session of every project that
installs the package): the emulator and the client are imported when a fixture first runs.

The fixtures need the emulator's dependencies, installed with the ``emulator`` extra
(``pip install 'appsync-events[emulator]'``).  Without them the plugin still loads, and only
a test that uses one of its fixtures fails, with a message saying what to install.

``appsync_server`` is synchronous and backed by a background-thread emulator, so it works in
sync and async tests, in strict and auto asyncio modes and under freezegun.  The async
fixtures (``appsync_client``, ``appsync_client_factory``) follow pytest-asyncio's
``asyncio_default_fixture_loop_scope``, which must equal the test loop scope.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, TypeVar, cast

import pytest

from ._plugin_options import (
    EMULATOR_ONLY_MARKER,
    INI_OPTIONS,
    MARKER,
    SERVER_SCOPES,
    TARGET_ENV,
    TARGET_HELP,
)

if TYPE_CHECKING:
    from appsync_events import Client
    from appsync_events.authorizer import Authorizer

    from . import EmulatorConfig, EmulatorThread, testing
    from .remote import RemoteTarget


_F = TypeVar("_F", bound=Callable[..., Any])
_Scope = Literal["function", "module", "session"]

EMULATOR_EXTRA: Final = "pip install 'appsync-events[emulator]'"
"""What to run when the emulator's dependencies are missing."""

_EMULATOR_DEPENDENCIES: Final = ("jwt", "cryptography", "trustme")
"""Top-level modules the ``emulator`` extra installs."""


def _require_emulator() -> None:
    """Import the emulator's dependencies, or fail the test with one line naming the extra.

    Every fixture of the plugin reads the settings first (``_settings``), which calls this.
    """
    for name in _EMULATOR_DEPENDENCIES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if (exc.name or "").partition(".")[0] != name:
                raise  # a broken install of the dependency itself: show it as it is
            missing = name
            break
    else:
        return
    # Outside the except block, so that the report is this one line, with no chained error.
    pytest.fail(
        f"the appsync fixtures need the emulator, and its dependency {missing!r} is not "
        f"installed: {EMULATOR_EXTRA}",
        pytrace=False,
    )


def _async_fixture(func: _F) -> _F:
    """``pytest_asyncio.fixture`` (no loop_scope), or a fixture explaining it is missing."""
    try:
        import pytest_asyncio
    except ImportError:  # pragma: no cover - exercised only without pytest-asyncio

        def missing() -> None:
            raise RuntimeError(f"{func.__name__} needs pytest-asyncio: pip install pytest-asyncio")

        return cast(_F, pytest.fixture(name=func.__name__)(missing))
    return cast(_F, pytest_asyncio.fixture(func))


__all__ = ["EMULATOR_EXTRA", "ClientFactory", "ServerFactory"]


class ServerFactory(Protocol):
    """``appsync_server_factory(config=None, /, **marker_style_options) -> EmulatorThread``."""

    def __call__(self, *args: Any, **options: Any) -> EmulatorThread: ...


class ClientFactory(Protocol):
    """``await appsync_client_factory(server, authorizer=None, **connect_options)``."""

    async def __call__(
        self, server: testing.ServerLike, /, *, authorizer: Authorizer | None = None, **options: Any
    ) -> Client: ...


def pytest_addoption(parser: pytest.Parser) -> None:
    for name, kind, default, help in INI_OPTIONS:
        parser.addini(name, help, type=kind, default=default)  # type: ignore[arg-type]
    _add_target_option(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER)
    config.addinivalue_line("markers", EMULATOR_ONLY_MARKER)
    _server_scope("appsync_server_scope", config)  # a bad value stops the run at once
    _CONFIGS.append(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    if config in _CONFIGS:
        _CONFIGS.remove(config)


_CONFIGS: Final[list[pytest.Config]] = []
"""The configured sessions, innermost last (``pytester`` runs one inside another)."""


def _config() -> pytest.Config:
    """The running session's config, for the fixtures that take no ``request``.

    A fixture that asks for ``request`` (or ``pytestconfig``, which does) costs every test
    that uses it several new fixture definitions of ``request``, which pytest builds (and
    inspects the signature of) at each request: most of the plugin's cost per test.
    """
    return _CONFIGS[-1]


_ITEM_KEY: Final = pytest.StashKey[pytest.Item]()


def _item() -> pytest.Item:
    """The test being run (see :func:`pytest_runtest_setup`): the function-scoped
    fixtures' ``request.node`` without ``request``."""
    return _config().stash[_ITEM_KEY]


# --- shared servers (``appsync_server_scope``) -------------------------------------------------


def _server_scope(fixture_name: str, config: pytest.Config) -> _Scope:
    """The scope of ``_appsync_shared_servers``: the ``appsync_server_scope`` ini option."""
    scope = str(config.getini("appsync_server_scope") or "function").strip()
    if scope not in SERVER_SCOPES:
        raise pytest.UsageError(
            f"appsync_server_scope: expected one of {', '.join(SERVER_SCOPES)}, got {scope!r}"
        )
    return cast(_Scope, scope)


@pytest.fixture(scope=_server_scope)
def _appsync_shared_servers() -> Iterator[testing.SharedServers | None]:
    """The servers shared by the tests of the ``appsync_server_scope`` (``None``: per test)."""
    if _server_scope("", _config()) == "function":
        yield None
        return
    _require_emulator()
    from .testing import SharedServers

    shared = SharedServers()
    try:
        yield shared
    finally:
        shared.close()


_SETTINGS_KEY: Final = pytest.StashKey["testing.Settings"]()


def _settings(config: pytest.Config) -> testing.Settings:
    """The parsed ``appsync_*`` ini options, read once per session."""
    settings = config.stash.get(_SETTINGS_KEY, None)
    if settings is None:
        _require_emulator()
        from .testing import settings_from_ini

        settings = config.stash[_SETTINGS_KEY] = settings_from_ini(config.getini, config.rootpath)
    return settings


@pytest.fixture(scope="session")
def appsync_settings() -> testing.Settings:
    """Defaults from the ``appsync_*`` ini options."""
    return _settings(_config())


@pytest.fixture(scope="session")
def appsync_server_config() -> EmulatorConfig:
    """Base config of every server in the test; override it to change the defaults.

    Session-scoped (the config is immutable); an override may have any scope.
    """
    return _settings(_config()).config


@pytest.fixture
def appsync_server_factory(appsync_server_config: EmulatorConfig) -> Iterator[ServerFactory]:
    """Start extra emulators (same options as the marker); all are checked and stopped, LIFO.

    With ``--appsync-target``: calling it skips the test (it starts emulators).
    """
    from .testing import ServerPool

    config = _config()
    settings = _settings(config)
    pool = ServerPool(appsync_server_config, host=settings.host, tls=settings.tls)
    try:
        yield _target_factory(config, pool.start)
    finally:
        pool.close()


@pytest.fixture
def appsync_server(
    appsync_server_config: EmulatorConfig,
    _appsync_shared_servers: testing.SharedServers | None,
) -> Iterator[EmulatorThread | RemoteTarget]:
    """This test's emulator, configured by ``@pytest.mark.appsync(...)``: a new one, or
    the shared one reset (``appsync_server_scope``).

    With ``--appsync-target``: the running endpoint, as a :class:`~.remote.RemoteTarget`.
    """
    from .testing import ServerPool, merge_markers

    item = _item()
    config = item.config
    if (target := _remote_server(item)) is not None:
        yield target
        return

    settings = _settings(config)
    options = merge_markers(item.iter_markers("appsync"))
    options.pop("client", None)
    pool = ServerPool(
        appsync_server_config, host=settings.host, tls=settings.tls, shared=_appsync_shared_servers
    )
    try:
        server = pool.server(**options)
        if pattern := config.getini("appsync_record"):
            _record(server, pattern, item)
        yield server
    finally:
        pool.close()  # the lease of a shared server is released here


def _record(server: EmulatorThread, pattern: str, item: pytest.Item) -> None:
    from .recording_file import record_test

    try:
        record_test(server, pattern, item.nodeid, item.config.rootpath)
    except (ValueError, OSError) as exc:
        pytest.fail(f"appsync_record: {exc}", pytrace=False)


@pytest.fixture
def appsync_auth(appsync_server: EmulatorThread) -> testing.Authorizers:
    """Authorizers for ``appsync_server``: ``.api_key()``, ``.iam()``, ``.cognito(sub=...)``."""
    from .remote import authorizers_for

    return authorizers_for(appsync_server)


@pytest.fixture
def appsync_authorizer(appsync_server: EmulatorThread) -> Authorizer:
    """The authorizer ``appsync_client`` connects with (API key); override to change it."""
    from .remote import default_authorizer

    return default_authorizer(appsync_server)


@pytest.fixture
def appsync_client_options(
    request: pytest.FixtureRequest, appsync_settings: testing.Settings
) -> dict[str, Any]:
    """``connect()`` keywords for client fixtures: ini defaults, then the marker's ``client``."""
    from .testing import merge_markers

    marker = merge_markers(request.node.iter_markers("appsync"))
    return {**appsync_settings.client_options, **marker.get("client", {})}


@_async_fixture
async def appsync_client_factory(
    request: pytest.FixtureRequest,
    appsync_client_options: dict[str, Any],
    appsync_server_factory: ServerFactory,  # servers outlive the clients
) -> AsyncIterator[ClientFactory]:
    """Connect more clients on the test's loop; all are closed at teardown, LIFO."""
    from .remote import default_authorizer
    from .testing import ClientPool, check_request_loop

    if "appsync_server" in request.fixturenames:
        request.getfixturevalue("appsync_server")  # set up first, so torn down after the clients
    name = "appsync_client" if "appsync_client" in request.fixturenames else request.fixturename
    check_request_loop(request, str(name))
    pool = ClientPool(appsync_client_options, authorizer_for=default_authorizer)
    try:
        yield pool.connect
    finally:
        await pool.aclose()


@_async_fixture
async def appsync_client(
    appsync_server: EmulatorThread,
    appsync_authorizer: Authorizer,
    appsync_client_factory: ClientFactory,
) -> Client:
    """A client connected to ``appsync_server`` on the test's event loop."""
    return await appsync_client_factory(appsync_server, authorizer=appsync_authorizer)


# --- the remote target: --appsync-target, APPSYNC_TARGET, ini appsync_target ---------------
# One suite, two targets: with a target set, appsync_server is the running endpoint (a
# RemoteTarget) instead of a fresh emulator.  Tests that need emulator-only powers are
# skipped with a reason starting "emulator-only": before set-up when marked
# appsync_emulator_only or when their appsync mark configures the server, and at the point
# of use when they read an emulator-only member of appsync_server (see remote.py).

_TARGET_KEY: Final = pytest.StashKey["RemoteTarget | None"]()


def _add_target_option(parser: pytest.Parser) -> None:
    group = parser.getgroup("appsync", "AppSync Events fixtures")
    group.addoption("--appsync-target", dest="appsync_target", metavar="URL", help=TARGET_HELP)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Resolve and check the target once, so a bad one is one line at start, not N failures."""
    config = session.config
    chosen = _target_setting(config)
    config.stash[_TARGET_KEY] = None
    if chosen is None:
        return
    from appsync_events.errors import AppSyncEventsError

    from .remote import RemoteTarget

    url, source = chosen
    try:
        target = RemoteTarget.from_environment(url, on_emulator_only=pytest.skip)
        target.check_credentials()
        target.probe()
    except (AppSyncEventsError, ConnectionError) as exc:
        raise pytest.UsageError(f"appsync target (from {source}): {exc}") from None
    config.stash[_TARGET_KEY] = target


def _target_setting(config: pytest.Config) -> tuple[str, str] | None:
    option, ini = config.getoption("appsync_target", None), config.getini("appsync_target")
    if option is None and not os.environ.get(TARGET_ENV) and not ini:
        return None  # the usual case: import nothing
    from .remote import resolve_target

    return resolve_target(option, os.environ, str(ini))


def _target(config: pytest.Config) -> RemoteTarget | None:
    return config.stash.get(_TARGET_KEY, None)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Note the test being run (for :func:`_item`), and skip
    ``@pytest.mark.appsync_emulator_only`` tests before set-up on a remote target."""
    item.config.stash[_ITEM_KEY] = item
    target = _target(item.config)
    mark = item.get_closest_marker("appsync_emulator_only")
    if target is not None and mark is not None:
        target.emulator_only_mark(item.name, mark)


def _remote_server(item: pytest.Item) -> RemoteTarget | None:
    """The target for ``appsync_server``; skips a test whose mark configures the server."""
    target = _target(item.config)
    if target is not None:
        target.check_server_marks(item.iter_markers("appsync"))
    return target


def _target_factory(config: pytest.Config, start: ServerFactory) -> ServerFactory:
    target = _target(config)
    if target is None:
        return start

    def skip(*args: Any, **options: Any) -> EmulatorThread:
        __tracebackhide__ = True
        target.emulator_only("appsync_server_factory (it starts emulators)")

    return skip
