"""Helpers behind the pytest plugin, usable without pytest too.

* :func:`build_config` turns ``@pytest.mark.appsync(...)`` keywords (plain strings and lists
  allowed) into an :class:`~appsync_emulator.config.EmulatorConfig`;
  :func:`parse_server_options` splits them from the server options (``tls``, ``host``,
  ``faults``, ``client``).
* :class:`ServerPool` and :class:`ClientPool` start emulators and clients and close them in
  LIFO order; the plugin's factories are thin wrappers around them.
* :func:`check_loop_scopes` is the loop-identity guard: it explains a mismatch between the
  test's event loop and the fixture's instead of letting the test stall.
* :func:`api_key_authorizer`, :func:`iam_authorizer`, :func:`cognito_authorizer`,
  :func:`oidc_authorizer` and :func:`lambda_authorizer` return a ready client authorizer for
  each auth mode of a running emulator; :class:`Authorizers` bundles them per server.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

from ._plugin_options import INI_OPTIONS
from .config import (
    ApiKeyConfig,
    AuthType,
    CognitoConfig,
    ConfigError,
    EmulatorConfig,
    IamCredentials,
    LambdaAuthorizerConfig,
    Limits,
    NamespaceConfig,
    OidcConfig,
)

if TYPE_CHECKING:
    import ssl

    from appsync_events import Client
    from appsync_events.authorizer import Authorizer

    from . import EmulatorThread
    from .issuer import LocalIssuer

__all__ = [
    "ANYIO_UNSUPPORTED",
    "INI_OPTIONS",
    "MAX_SHARED_SERVERS",
    "SERVER_OPTION_NAMES",
    "Authorizers",
    "ClientPool",
    "LoopScopeError",
    "ServerLike",
    "ServerOptions",
    "ServerPool",
    "Settings",
    "SharedServers",
    "api_key_authorizer",
    "build_config",
    "check_loop_scopes",
    "check_request_loop",
    "cognito_authorizer",
    "iam_authorizer",
    "lambda_authorizer",
    "merge_markers",
    "oidc_authorizer",
    "parse_server_options",
    "settings_from_ini",
]

SERVER_OPTION_NAMES: Final = frozenset({"tls", "host", "faults"})
"""Options that configure the server process rather than :class:`EmulatorConfig`."""

_CONFIG_FIELDS: Final = frozenset(f.name for f in dataclasses.fields(EmulatorConfig))
_LIMIT_FIELDS: Final = frozenset(f.name for f in dataclasses.fields(Limits))
_MODE_FIELDS: Final = frozenset(
    {
        "auth_providers",
        "connection_auth_modes",
        "default_publish_auth_modes",
        "default_subscribe_auth_modes",
    }
)


# --- configuration -------------------------------------------------------------------------


def _modes(value: Any, where: str) -> tuple[AuthType, ...]:
    items = [value] if isinstance(value, str) else list(value)
    try:
        return tuple(AuthType(str(m)) for m in items)
    except ValueError:
        raise ConfigError(
            f"{where}: unknown auth mode in {value!r} (one of {', '.join(AuthType)})"
        ) from None


def _namespace(value: Any, where: str) -> NamespaceConfig:
    if isinstance(value, NamespaceConfig):
        return value
    if isinstance(value, str):
        return NamespaceConfig(name=value)
    raise ConfigError(f"{where}: expected a name or a NamespaceConfig, got {value!r}")


def _api_key(value: Any, where: str) -> ApiKeyConfig:
    if isinstance(value, ApiKeyConfig):
        return value
    if isinstance(value, str):
        return ApiKeyConfig(key=value)
    raise ConfigError(f"{where}: expected a string or an ApiKeyConfig, got {value!r}")


def _coerce(name: str, value: Any) -> Any:
    """Accept the shorthands documented in :func:`build_config` for field ``name``."""
    if name == "namespaces":
        items = [value] if isinstance(value, str | NamespaceConfig) else list(value)
        return tuple(_namespace(v, f"namespaces[{i}]") for i, v in enumerate(items))
    if name in _MODE_FIELDS:
        return _modes(value, name)
    if name == "api_keys":
        items = [value] if isinstance(value, str | ApiKeyConfig) else list(value)
        return tuple(_api_key(v, f"api_keys[{i}]") for i, v in enumerate(items))
    if name == "iam_credentials" and isinstance(value, IamCredentials):
        return (value,)
    if name == "cognito" and (value is True or isinstance(value, Mapping)):
        return CognitoConfig(**({} if value is True else value))
    if name == "oidc" and (value is True or isinstance(value, Mapping)):
        return OidcConfig(**({} if value is True else value))
    if name == "lambda_authorizer" and isinstance(value, Mapping):
        return LambdaAuthorizerConfig(**value)
    if name == "lambda_authorizer" and (callable(value) or isinstance(value, str)):
        return LambdaAuthorizerConfig(authorizer=value)
    if isinstance(value, list):
        return tuple(value)
    return value


def build_config(base: EmulatorConfig | None = None, /, **options: Any) -> EmulatorConfig:
    """Return ``base`` (default: zero configuration) with ``options`` applied.

    Keys are :class:`EmulatorConfig` fields, with shorthands:

    * ``namespaces=["default", "chat"]`` (names or :class:`NamespaceConfig`);
    * auth-mode fields as strings: ``connection_auth_modes="AWS_IAM"``;
    * ``auth_modes=["API_KEY", "AWS_IAM"]`` sets ``auth_providers`` and every default mode
      list (connection, publish, subscribe) at once;
    * ``api_keys=["da2-..."]``, ``iam_credentials=IamCredentials(...)``;
    * ``cognito=True`` / ``oidc=True`` (or a mapping of their fields) for the local issuer;
    * ``lambda_authorizer=callable`` (or ``"module:function"``, or a mapping of
      :class:`LambdaAuthorizerConfig` fields);
    * any :class:`Limits` field directly (``max_events_per_publish=2``) or
      ``limits={"send_queue_frames": 10}``.

    Raises:
        ConfigError: naming the unknown key or the invalid value.
    """
    config = base if base is not None else EmulatorConfig()
    changes: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    for key, value in options.items():
        if key == "auth_modes":
            modes = _modes(value, "auth_modes")
            changes.update(dict.fromkeys(_MODE_FIELDS, modes))
        elif key == "limits":
            if isinstance(value, Limits):
                changes["limits"] = value
            elif isinstance(value, Mapping):
                limits.update(value)
            else:
                raise ConfigError(f"limits: expected a Limits or a mapping, got {value!r}")
        elif key in _LIMIT_FIELDS:
            limits[key] = value
        elif key in _CONFIG_FIELDS:
            changes[key] = _coerce(key, value)
        else:
            known = sorted(_CONFIG_FIELDS | _LIMIT_FIELDS | {"auth_modes"})
            raise ConfigError(f"unknown emulator option {key!r} (one of {', '.join(known)})")
    if limits:
        unknown = sorted(set(limits) - _LIMIT_FIELDS)
        if unknown:
            raise ConfigError(
                f"limits: unknown limit {unknown[0]!r} (one of {', '.join(sorted(_LIMIT_FIELDS))})"
            )
        changes["limits"] = dataclasses.replace(changes.get("limits", config.limits), **limits)
    if not changes:
        return config
    try:
        return config.replace(**changes)
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ServerOptions:
    """What one emulator needs: its config plus how to host it and faults to start with."""

    config: EmulatorConfig
    host: str = "127.0.0.1"
    tls: bool = False
    faults: tuple[Any, ...] = ()


def parse_server_options(
    base: EmulatorConfig,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    *,
    host: str = "127.0.0.1",
    tls: bool = False,
) -> ServerOptions:
    """Parse ``appsync(...)`` marker (or factory) arguments on top of ``base``.

    An optional single positional argument is a whole :class:`EmulatorConfig` replacing
    ``base``; ``config=`` does the same.  ``tls``, ``host`` and ``faults`` configure the
    server; every other keyword goes to :func:`build_config`.

    Raises:
        ConfigError: a bad positional argument, option or value.
    """
    opts = dict(kwargs or {})
    if len(args) > 1 or (args and not isinstance(args[0], EmulatorConfig)):
        raise ConfigError(
            f"expected at most one positional EmulatorConfig, got {tuple(args)!r}; "
            "pass other settings as keywords"
        )
    given = opts.pop("config", None)
    config = args[0] if args else given if given is not None else base
    if not isinstance(config, EmulatorConfig):
        raise ConfigError(f"config: expected an EmulatorConfig, got {config!r}")
    faults = opts.pop("faults", ())
    return ServerOptions(
        host=str(opts.pop("host", host)),
        tls=bool(opts.pop("tls", tls)),
        faults=tuple([faults] if not isinstance(faults, Iterable) else faults),
        config=build_config(config, **opts),
    )


def merge_markers(markers: Iterable[Any]) -> dict[str, Any]:
    """Merge ``appsync`` marks given closest first (``node.iter_markers("appsync")``).

    Keywords of module, class and function marks combine, the closest winning; a
    positional :class:`EmulatorConfig` counts as ``config=``.

    Raises:
        ConfigError: a mark with positional arguments other than one config.
    """
    merged: dict[str, Any] = {}
    for mark in reversed(list(markers)):
        if mark.args:
            if len(mark.args) > 1 or not isinstance(mark.args[0], EmulatorConfig):
                raise ConfigError(
                    f"appsync mark: expected at most one positional EmulatorConfig, got "
                    f"{tuple(mark.args)!r}; pass other settings as keywords"
                )
            merged["config"] = mark.args[0]
        merged.update(mark.kwargs)
    return merged


# --- ini options ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Defaults read from the ini file: the base config, hosting, client options."""

    config: EmulatorConfig
    host: str = "127.0.0.1"
    tls: bool = False
    client_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def _number(getini: Callable[[str], Any], name: str, kind: type[float] | type[int]) -> Any:
    raw = str(getini(name) or "").strip()
    if not raw:
        return None
    try:
        return kind(raw)
    except ValueError:
        raise ConfigError(f"ini option {name}: expected a {kind.__name__}, got {raw!r}") from None


def settings_from_ini(getini: Callable[[str], Any], rootpath: Path) -> Settings:
    """Build :class:`Settings` from the ``appsync_*`` ini options (see :data:`INI_OPTIONS`)."""
    path = str(getini("appsync_config") or "").strip()
    base = EmulatorConfig.from_file(rootpath / path) if path else EmulatorConfig()
    options: dict[str, Any] = {}
    if region := str(getini("appsync_region") or "").strip():
        options["region"] = region
    if names := list(getini("appsync_namespaces") or []):
        options["namespaces"] = names
    for name, field, kind in (
        ("appsync_keepalive_interval", "keepalive_interval", float),
        ("appsync_connection_timeout_ms", "connection_timeout_ms", int),
    ):
        if (value := _number(getini, name, kind)) is not None:
            options[field] = value
    client: dict[str, Any] = {}
    for name in ("appsync_handshake_timeout", "appsync_operation_timeout"):
        if (value := _number(getini, name, float)) is not None:
            client[name.removeprefix("appsync_")] = value
    return Settings(
        config=build_config(base, **options),
        host=str(getini("appsync_host") or "127.0.0.1"),
        tls=bool(getini("appsync_tls")),
        client_options=client,
    )


# --- event-loop guard ----------------------------------------------------------------------


class LoopScopeError(RuntimeError):
    """An async fixture and the test that uses it would run on different event loops."""


ANYIO_UNSUPPORTED: Final = (
    "{fixture} is a pytest-asyncio fixture and {test} runs under anyio's pytest plugin, on "
    "another event loop.  Under anyio, use appsync_server (it works with any backend) and "
    "connect in the test: async with appsync_events.connect(appsync_server.realtime_endpoint, "
    "authorizer=appsync_authorizer) as client: ..."
)
"""Why the async fixtures refuse an anyio test (docs: pytest-plugin.rst, "anyio and trio")."""


def check_loop_scopes(
    *,
    fixture: str,
    test: str,
    test_is_async: bool,
    asyncio_mode: str,
    has_asyncio_marker: bool,
    marker_loop_scope: str | None,
    default_test_loop_scope: str | None,
    default_fixture_loop_scope: str | None,
    fixture_scope: str = "function",
) -> None:
    """Raise :class:`LoopScopeError` when ``fixture`` cannot work for ``test``.

    pytest-asyncio runs a test on the loop of its *test* loop scope (marker ``loop_scope``,
    else ``asyncio_default_test_loop_scope``) and an async fixture on the loop of its
    *fixture* loop scope (``asyncio_default_fixture_loop_scope``).  A client connected on one
    loop and used from another stalls until its operation timeout; this check turns that
    into an immediate error that says which setting to change.
    """
    if not test_is_async:
        raise LoopScopeError(
            f"{fixture} is an async fixture but {test} is not a coroutine function; "
            "use appsync_server (sync) or write an async test"
        )
    if asyncio_mode == "strict" and not has_asyncio_marker:
        raise LoopScopeError(
            f"{test} is async but has no @pytest.mark.asyncio and asyncio_mode is strict; "
            "mark the test (or set asyncio_mode = auto)"
        )
    test_scope = marker_loop_scope or default_test_loop_scope or "function"
    fixture_loop = default_fixture_loop_scope
    if not fixture_loop or fixture_loop == "fixture-scope":
        fixture_loop = fixture_scope
    if test_scope != fixture_loop:
        raise LoopScopeError(
            f"{fixture} runs on the {fixture_loop!r}-scoped event loop but {test} runs on the "
            f"{test_scope!r}-scoped loop, so the client would be used from a loop it was not "
            f"connected on.  Set asyncio_default_fixture_loop_scope = {test_scope} (it must "
            "equal the test loop scope), or use the same loop_scope in @pytest.mark.asyncio"
        )


def check_request_loop(request: Any, fixture: str) -> None:
    """Run :func:`check_loop_scopes` for the pytest ``request`` of ``fixture``'s test."""
    import inspect

    import pytest_asyncio

    item, config = request.node, request.config
    if item.get_closest_marker("anyio") is not None or "anyio_backend" in request.fixturenames:
        raise LoopScopeError(ANYIO_UNSUPPORTED.format(fixture=fixture, test=item.nodeid))
    marker = item.get_closest_marker("asyncio")
    mode = config.getoption("asyncio_mode", None) or config.getini("asyncio_mode")
    is_async = pytest_asyncio.is_async_test(item)
    scope = marker.kwargs.get("loop_scope") or marker.kwargs.get("scope") if marker else None
    check_loop_scopes(
        fixture=fixture,
        test=item.nodeid,
        test_is_async=is_async or inspect.iscoroutinefunction(getattr(item, "obj", None)),
        asyncio_mode=str(mode),
        has_asyncio_marker=is_async or marker is not None,
        marker_loop_scope=scope,
        default_test_loop_scope=config.getini("asyncio_default_test_loop_scope"),
        default_fixture_loop_scope=config.getini("asyncio_default_fixture_loop_scope"),
    )


# --- servers and clients ---------------------------------------------------------------------


class ServerLike(Protocol):
    """The part of :class:`~appsync_emulator.hosting.EmulatorHost` the helpers use.

    Both hosts satisfy it; so does any object with these members (a stand-in in a test).
    """

    @property
    def http_endpoint(self) -> str: ...
    @property
    def realtime_endpoint(self) -> str: ...
    @property
    def region(self) -> str: ...
    @property
    def api_key(self) -> str | None: ...
    @property
    def config(self) -> EmulatorConfig: ...
    @property
    def issuer(self) -> LocalIssuer: ...
    def client_ssl_context(self) -> ssl.SSLContext: ...


MAX_SHARED_SERVERS: Final = 4
"""Idle shared servers :class:`SharedServers` keeps (one per distinct configuration)."""

_Key = tuple[EmulatorConfig, str, bool]


class SharedServers:
    """Emulators shared by the tests of one scope, one per distinct configuration.

    A test leases the server that was started for its options (the config, the host,
    TLS), or one is started for it.  When the test ends, :meth:`release` re-raises the
    server-side errors collected during the test and resets the server on a new port (see
    :meth:`~appsync_emulator.hosting.EmulatorHost.reset`): the next test starts with no
    connection, subscription, fault, record or error left, and a client of the previous
    test that still holds the old address is refused.  A server that the test stopped,
    or that cannot be reset, is stopped and forgotten: the next test gets a new one.

    A server with nothing open (the usual case once a test's clients are closed) resets
    without a round trip to its thread, new port included; one with connections or
    requests still running is reset on its loop, and :meth:`release` waits for that.

    Args:
        max_servers: idle servers kept; beyond that the least recently used is stopped.
        new_port: reset on a new port (see above); ``False`` keeps the address.
    """

    def __init__(self, max_servers: int = MAX_SHARED_SERVERS, *, new_port: bool = True) -> None:
        self.max_servers = max_servers
        self.new_port = new_port
        self._idle: dict[_Key, EmulatorThread] = {}
        self.started = 0
        """How many servers were started (a figure for tests and benchmarks)."""

    def lease(self, opts: ServerOptions) -> EmulatorThread | None:
        """The server for ``opts``, reset, started if needed; ``None`` when ``opts``
        cannot be shared (a configuration with an unhashable value)."""
        from . import EmulatorThread

        key = (opts.config, opts.host, opts.tls)
        try:
            server = self._idle.pop(key, None)
        except TypeError:
            return None
        if server is not None:
            try:
                server.reset()  # a no-op unless something reached it since (a few µs)
                return server
            except Exception:
                _stop_quietly(server)
        server = EmulatorThread(opts.config, host=opts.host, tls=opts.tls).start()
        self.started += 1
        return server

    def release(self, server: EmulatorThread, opts: ServerOptions) -> None:
        """Check ``server`` for server-side errors, reset it, keep it for the next test.

        Raises:
            Exception: the first server-side exception of the test (the server is kept).
            TimeoutError: the server could not be reset (it is stopped).
        """
        try:
            server.check()
        finally:
            self._keep(server, (opts.config, opts.host, opts.tls))

    def _keep(self, server: EmulatorThread, key: _Key) -> None:
        if not server.running:
            _stop_quietly(server)
            return
        try:
            server.reset(new_port=self.new_port)
        except BaseException:
            _stop_quietly(server)
            raise
        self._idle[key] = server
        while len(self._idle) > self.max_servers:
            oldest = next(iter(self._idle))
            _stop_quietly(self._idle.pop(oldest))

    def close(self) -> None:
        """Stop every idle server."""
        while self._idle:
            _, server = self._idle.popitem()
            server.stop()


def _stop_quietly(server: EmulatorThread) -> None:
    with contextlib.suppress(Exception):
        server.stop()


class ServerPool:
    """Starts :class:`EmulatorThread` servers; :meth:`close` checks and stops them, LIFO.

    With ``shared``, :meth:`server` leases the test's main server from it instead.
    """

    def __init__(
        self,
        base: EmulatorConfig,
        *,
        host: str = "127.0.0.1",
        tls: bool = False,
        shared: SharedServers | None = None,
    ):
        self.base = base
        self.host = host
        self.tls = tls
        self.shared = shared
        self._stack = contextlib.ExitStack()

    def start(self, *args: Any, **kwargs: Any) -> EmulatorThread:
        """Start a server from marker-style arguments (see :func:`parse_server_options`)."""
        opts = parse_server_options(self.base, args, kwargs, host=self.host, tls=self.tls)
        return self._start(opts)

    def server(self, *args: Any, **kwargs: Any) -> EmulatorThread:
        """The test's main server: leased from :attr:`shared` if set (and the options can
        be shared), else started like :meth:`start`."""
        opts = parse_server_options(self.base, args, kwargs, host=self.host, tls=self.tls)
        server = self.shared.lease(opts) if self.shared is not None else None
        if server is None:
            return self._start(opts)
        self._stack.callback(self.shared.release, server, opts)  # type: ignore[union-attr]
        for fault in opts.faults:
            server.inject(fault)
        return server

    def _start(self, opts: ServerOptions) -> EmulatorThread:
        from . import EmulatorThread

        server = EmulatorThread(opts.config, host=opts.host, tls=opts.tls)
        self._stack.enter_context(server)
        self._stack.callback(server.check)  # runs before the server stops (LIFO)
        for fault in opts.faults:
            server.inject(fault)
        return server

    def close(self) -> None:
        """Re-raise the first server-side error (after stopping every server)."""
        self._stack.close()


class ClientPool:
    """Connects clients on the running loop and closes them LIFO on the same loop.

    Args:
        defaults: :func:`appsync_events.connect` keywords of every client.
        authorizer_for: the authorizer a client of ``server`` gets when none is given
            (default: the server's API key; the plugin passes one that also knows remote
            targets).
    """

    def __init__(
        self,
        defaults: Mapping[str, Any] | None = None,
        *,
        authorizer_for: Callable[[ServerLike], Authorizer] | None = None,
    ) -> None:
        self.defaults = dict(defaults or {})
        self.authorizer_for = authorizer_for or api_key_authorizer
        self._clients: list[tuple[Client, asyncio.AbstractEventLoop]] = []

    async def connect(
        self, server: ServerLike, /, *, authorizer: Authorizer | None = None, **options: Any
    ) -> Client:
        """Return a client connected to ``server`` (its default authorizer unless ``authorizer``).

        ``options`` are :func:`appsync_events.connect` keywords over the pool's defaults;
        ``backpressure`` may be a mapping of :class:`~appsync_events.Backpressure` fields.
        """
        import appsync_events

        opts = {**self.defaults, **options}
        if isinstance(opts.get("backpressure"), Mapping):  # marker shorthand
            opts["backpressure"] = appsync_events.Backpressure(**opts["backpressure"])
        if "ssl" not in opts and server.http_endpoint.startswith("https:"):
            opts["ssl"] = server.client_ssl_context()
        client = await appsync_events.connect(
            server.realtime_endpoint,
            authorizer=authorizer if authorizer is not None else self.authorizer_for(server),
            **opts,
        )
        self._clients.append((client, asyncio.get_running_loop()))
        return client

    async def aclose(self) -> None:
        """Close every client, newest first, even if one ``close()`` fails (re-raised after).

        Raises:
            LoopScopeError: some clients were connected on another event loop.
        """
        loop = asyncio.get_running_loop()
        foreign = 0
        first: BaseException | None = None
        while self._clients:
            client, owner = self._clients.pop()
            if owner is not loop:
                foreign += 1
                continue
            try:
                await client.close()
            except Exception as exc:  # close the others all the same, then report it
                first = first or exc
        if first is not None:
            raise first
        if foreign:
            raise LoopScopeError(
                f"{foreign} client(s) were connected on another event loop and cannot be "
                "closed here; asyncio_default_fixture_loop_scope must equal the test loop scope"
            )


# --- authorizers -----------------------------------------------------------------------------


def api_key_authorizer(server: ServerLike, key: str | None = None) -> Authorizer:
    """An API-key authorizer for ``server`` (its first key unless ``key``)."""
    from appsync_events import authorizer

    api_key = key if key is not None else server.api_key
    if api_key is None:
        raise ConfigError("the emulator has no API key configured (api_keys is empty)")
    return authorizer.ApiKey(api_key=api_key, endpoint=server.http_endpoint)


def iam_authorizer(server: ServerLike, credentials: IamCredentials | None = None) -> Authorizer:
    """A SigV4 authorizer signing with the emulator's (first) IAM credentials."""
    from botocore.credentials import Credentials

    from appsync_events import authorizer

    creds = credentials if credentials is not None else _first(server.config.iam_credentials)
    return authorizer.IAM(
        region=server.region,
        endpoint=server.http_endpoint,
        credentials=Credentials(creds.access_key_id, creds.secret_access_key, creds.session_token),
    )


def cognito_authorizer(server: ServerLike, *, sub: str = "user-1", **mint: Any) -> Authorizer:
    """A token authorizer with a Cognito ID token minted by the emulator's local issuer.

    ``mint`` goes to :meth:`~appsync_emulator.issuer.LocalIssuer.mint` (``groups``,
    ``claims``, ``expires_in``, ``token_use``, ...).
    """
    from appsync_events import authorizer

    token = server.issuer.mint(sub, **mint)
    return authorizer.Token(auth_token=token, endpoint=server.http_endpoint)


def oidc_authorizer(server: ServerLike, *, sub: str = "user-1", **mint: Any) -> Authorizer:
    """A token authorizer with an OIDC token (issuer and client id the config expects)."""
    from appsync_events import authorizer

    oidc = server.config.oidc
    mint.setdefault("issuer", server.issuer.oidc_issuer)
    if oidc is not None and oidc.client_id:
        mint.setdefault("audience", oidc.client_id)
    token = server.issuer.mint(sub, **mint)
    return authorizer.Token(auth_token=token, endpoint=server.http_endpoint)


def lambda_authorizer(server: ServerLike, token: str) -> Authorizer:
    """A token authorizer for AWS_LAMBDA mode (the configured Lambda callable sees ``token``)."""
    from appsync_events import authorizer

    return authorizer.Token(auth_token=token, endpoint=server.http_endpoint)


def _first(creds: Sequence[IamCredentials]) -> IamCredentials:
    if not creds:
        raise ConfigError("the emulator has no IAM credentials configured")
    return creds[0]


class Authorizers:
    """Ready authorizers for one server: ``appsync_auth.iam()``, ``.cognito(sub="u")``, ..."""

    def __init__(self, server: ServerLike) -> None:
        self.server = server

    def api_key(self, key: str | None = None) -> Authorizer:
        return api_key_authorizer(self.server, key)

    def iam(self, credentials: IamCredentials | None = None) -> Authorizer:
        return iam_authorizer(self.server, credentials)

    def cognito(self, *, sub: str = "user-1", **mint: Any) -> Authorizer:
        return cognito_authorizer(self.server, sub=sub, **mint)

    def oidc(self, *, sub: str = "user-1", **mint: Any) -> Authorizer:
        return oidc_authorizer(self.server, sub=sub, **mint)

    def lambda_token(self, token: str) -> Authorizer:
        return lambda_authorizer(self.server, token)
