"""Typed configuration of the emulator, and its loader from TOML/JSON files.

Zero configuration works: one API key, one namespace ``default``, AWS's timings.  The
auth part mirrors the AWS ``EventConfig``/``ChannelNamespace`` API (the same field names
and meaning), so users can paste their real settings; see
:meth:`EmulatorConfig.from_mapping`.
"""

from __future__ import annotations

import enum
import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from appsync_events.protocol import limits as _limits
from appsync_events.protocol.channels import validate_namespace

from .appsync_js.engine import JsLimits
from .direct_lambda import InvokeType

__all__ = [
    "resolve_callable",
    "ApiKeyConfig",
    "AuthType",
    "CognitoConfig",
    "ConfigError",
    "DataSourceConfig",
    "EmulatorConfig",
    "HandlerBehavior",
    "HandlerConfig",
    "HandlerConfigs",
    "InvokeType",
    "JsLimits",
    "IamCredentials",
    "LambdaAuthorizerConfig",
    "Limits",
    "NamespaceConfig",
    "OidcConfig",
    "DEFAULT_API_KEY",
    "DEFAULT_ACCESS_KEY_ID",
    "DEFAULT_SECRET_ACCESS_KEY",
]

DEFAULT_API_KEY = "da2-emulatorlocaldevkey0000000"
DEFAULT_ACCESS_KEY_ID = "AKIAEMULATORLOCAL000"
DEFAULT_SECRET_ACCESS_KEY = "emulator/local/secret/access/key/0000000"


class ConfigError(ValueError):
    """The configuration is invalid; the message names the key and the problem."""


class AuthType(enum.StrEnum):
    """AppSync auth modes, spelled as in the AWS API."""

    API_KEY = "API_KEY"
    AWS_IAM = "AWS_IAM"
    AMAZON_COGNITO_USER_POOLS = "AMAZON_COGNITO_USER_POOLS"
    OPENID_CONNECT = "OPENID_CONNECT"
    AWS_LAMBDA = "AWS_LAMBDA"


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiKeyConfig:
    """An API key, optionally expiring (an expired key fails like an unknown one)."""

    key: str
    expires: datetime | None = None
    description: str = ""

    def valid_at(self, now: datetime) -> bool:
        return self.expires is None or now < self.expires


@dataclass(frozen=True, slots=True, kw_only=True)
class IamCredentials:
    """Credentials the IAM verifier accepts; ``session_token`` makes them temporary."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None = None
    account_id: str = "123456789012"
    user_arn: str | None = None
    username: str | None = None
    allowed_actions: tuple[str, ...] = ("appsync:*",)
    """A stand-in for the caller's IAM policy: the actions allowed, ``*`` wildcards
    (``appsync:EventConnect``, ``appsync:EventSubscribe``, ``appsync:EventPublish``)."""
    allowed_resources: tuple[str, ...] = ("*",)
    """ARNs allowed, ``*`` wildcards: ``arn:aws:appsync:<region>:<account>:apis/<apiId>``
    (connect) and ``…/channelNamespace/<namespace>`` (subscribe, publish)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CognitoConfig:
    """``cognitoConfig``: tokens of this user pool (or of the local issuer when ``None``)."""

    user_pool_id: str = "local_emulator"
    aws_region: str | None = None
    app_id_client_regex: str | None = None
    jwks_file: str | None = None
    """Trust this JWKS file instead of the emulator's local issuer."""
    issuer: str | None = None
    """Expected ``iss``; defaults to the local issuer's URL."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OidcConfig:
    """``openIDConnectConfig``: ``iat_ttl``/``auth_ttl`` in milliseconds as in AWS."""

    issuer: str | None = None
    client_id: str | None = None
    iat_ttl: int | None = None
    auth_ttl: int | None = None
    jwks_file: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LambdaAuthorizerConfig:
    """``lambdaAuthorizerConfig``: the authorizer is a Python callable or ``"module:function"``."""

    authorizer: str | Callable[..., Any]
    result_ttl_seconds: int = 0
    identity_validation_expression: str | None = None


HandlerRef = str | Callable[..., Any]


class HandlerBehavior(enum.StrEnum):
    """``HandlerConfig.behavior`` (AWS AppSync API Reference, "HandlerConfig")."""

    CODE = "CODE"
    """Run the namespace's APPSYNC_JS ``codeHandlers``."""
    DIRECT = "DIRECT"
    """Invoke a Lambda data source directly (no handler code)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HandlerConfig:
    """How one operation is handled: ``handlerConfigs.onPublish`` or ``.onSubscribe``.

    AWS's ``HandlerConfig`` with its ``Integration`` flattened: ``data_source_name`` is
    ``integration.dataSourceName`` and ``invoke_type`` is
    ``integration.lambdaConfig.invokeType``.
    """

    behavior: HandlerBehavior = HandlerBehavior.CODE
    data_source_name: str | None = None
    """The Lambda data source a ``DIRECT`` handler invokes (a name in
    :attr:`EmulatorConfig.data_sources`)."""
    invoke_type: InvokeType = InvokeType.REQUEST_RESPONSE
    """``REQUEST_RESPONSE`` (the answer decides) or ``EVENT`` (fire and forget)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HandlerConfigs:
    """``ChannelNamespace.handlerConfigs``."""

    on_publish: HandlerConfig | None = None
    on_subscribe: HandlerConfig | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DataSourceConfig:
    """A Lambda data source (``CreateDataSource`` with ``type = AWS_LAMBDA``).

    LOCAL EXTENSION: the "function" is a local Python Lambda handler, ``handler(event,
    context)``: a callable, or ``"package.module:function"`` (in a file, the
    ``lambdaConfig.lambdaFunctionArn`` key holds it).
    """

    name: str
    function: str | Callable[..., Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class NamespaceConfig:
    """A channel namespace; ``None`` auth modes mean the API defaults apply.

    A namespace runs at most one kind of handler per operation: a Python callable
    (``on_publish``/``on_subscribe``, a local extension), its APPSYNC_JS code
    (``code_handlers`` or ``code_handlers_file``), or a ``DIRECT`` Lambda data source
    (``handler_configs``).
    """

    name: str
    publish_auth_modes: tuple[AuthType, ...] | None = None
    subscribe_auth_modes: tuple[AuthType, ...] | None = None
    on_publish: HandlerRef | None = None
    on_subscribe: HandlerRef | None = None
    code_handlers: str | None = None
    """APPSYNC_JS source (``ChannelNamespace.codeHandlers``), compiled at start-up."""
    code_handlers_file: str | Path | None = None
    """LOCAL EXTENSION: a file holding the APPSYNC_JS source, compiled at start-up and
    reloaded when it changes."""
    handler_configs: HandlerConfigs | None = None
    """``ChannelNamespace.handlerConfigs``: ``CODE`` or ``DIRECT`` per operation."""

    def __post_init__(self) -> None:
        where = f"namespace {self.name!r}"
        if self.code_handlers is not None and self.code_handlers_file is not None:
            raise ConfigError(f"{where}: give code_handlers or code_handlers_file, not both")
        if self.code_handlers is not None and not self.code_handlers:
            raise ConfigError(f"{where}: code_handlers is empty")
        has_code = self.code_handlers is not None or self.code_handlers_file is not None
        configs = self.handler_configs or HandlerConfigs()
        for op, python, handler in (
            ("publish", self.on_publish, configs.on_publish),
            ("subscribe", self.on_subscribe, configs.on_subscribe),
        ):
            what = f"{where}: handler_configs.on_{op}"
            if handler is None:
                if python is not None and has_code:
                    raise ConfigError(
                        f"{where}: on_{op} (a Python handler) and APPSYNC_JS code both "
                        f"handle {op}; keep one (or set handler_configs.on_{op})"
                    )
                continue
            if python is not None:
                raise ConfigError(f"{what}: on_{op} (a Python handler) is also set; keep one")
            if handler.behavior is HandlerBehavior.DIRECT and handler.data_source_name is None:
                raise ConfigError(f"{what}: DIRECT needs a data_source_name")
            if handler.behavior is HandlerBehavior.CODE:
                if handler.data_source_name is not None:
                    raise ConfigError(
                        f"{what}: a CODE handler with a data source (request/response "
                        "functions) is not emulated; use DIRECT"
                    )
                if not has_code:
                    raise ConfigError(f"{what}: CODE needs code_handlers or code_handlers_file")

    @property
    def has_code(self) -> bool:
        """Whether the namespace has APPSYNC_JS code."""
        return self.code_handlers is not None or self.code_handlers_file is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """The service quotas and sizes AWS enforces, each configurable (defaults are AWS's)."""

    max_events_per_publish: int = _limits.MAX_EVENTS_PER_PUBLISH
    max_event_bytes: int = _limits.MAX_EVENT_BYTES
    max_request_bytes: int = _limits.MAX_REQUEST_BYTES
    max_subscriptions_per_connection: int = _limits.MAX_SUBSCRIPTIONS_PER_CONNECTION
    max_publish_per_second: int | None = None
    """``None`` disables the 25/s publish rate limit (off by default for tests)."""
    max_connections: int = 10_000
    send_queue_frames: int = 10_000
    """Frames queued for one slow client before it is closed with 1008."""
    init_timeout: float = 300.0
    """Seconds an upgraded socket may stay silent before its first frame."""
    header_timeout: float = 10.0
    """Seconds a request's headers (an upgrade's included) may take to arrive, counted from
    the connection's opening or the request's first byte; slower peers are disconnected
    (0 disables)."""
    body_timeout: float = 10.0
    """Seconds a ``POST /event`` body may take to arrive once its headers are read (408;
    0 disables)."""
    max_sockets: int = 11_000
    """Open sockets of any kind (idle, HTTP, WebSocket) before new ones are answered 429
    and closed; lowered to fit the process's descriptor limit."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "max_publish_per_second" and value is None:
                continue
            kind = float if f.name in _SECONDS_LIMITS else int
            zero_ok = f.name in _ZERO_DISABLES
            _check_number(f"limits.{f.name}", value, kind, zero_ok=zero_ok)


_SECONDS_LIMITS: Final = frozenset({"init_timeout", "header_timeout", "body_timeout"})
"""The :class:`Limits` fields in seconds (a float; the others are counts)."""
_ZERO_DISABLES: Final = frozenset({"header_timeout", "body_timeout"})
"""The :class:`Limits` fields where 0 turns the check off."""


def _check_number(
    name: str, value: Any, kind: type[int] | type[float], *, zero_ok: bool = False
) -> None:
    """Refuse what is not a positive ``kind`` (``bool`` is not a number; an int is a float);
    with ``zero_ok``, 0 is accepted too."""
    ok = isinstance(value, int | float) if kind is float else isinstance(value, int)
    if not ok or isinstance(value, bool):
        what = "an integer" if kind is int else "a number"
        raise ConfigError(f"{name}: expected {what}, got {value!r}")
    if value < 0 or (value == 0 and not zero_ok):
        least = "0 or more" if zero_ok else "positive"
        raise ConfigError(f"{name} must be {least}, got {value!r}")


def _default_api_keys() -> tuple[ApiKeyConfig, ...]:
    return (ApiKeyConfig(key=DEFAULT_API_KEY, description="default emulator key"),)


def _default_iam() -> tuple[IamCredentials, ...]:
    return (
        IamCredentials(
            access_key_id=DEFAULT_ACCESS_KEY_ID, secret_access_key=DEFAULT_SECRET_ACCESS_KEY
        ),
    )


_API_KEY_ONLY = (AuthType.API_KEY,)


@dataclass(frozen=True, slots=True, kw_only=True)
class EmulatorConfig:
    """Everything the emulator can be told.  Defaults are AWS's timings and quotas."""

    region: str = "us-east-1"
    api_id: str = "emulatorapi0000000000000000"
    account_id: str = "123456789012"
    api_keys: tuple[ApiKeyConfig, ...] = field(default_factory=_default_api_keys)
    iam_credentials: tuple[IamCredentials, ...] = field(default_factory=_default_iam)
    cognito: CognitoConfig | None = None
    oidc: OidcConfig | None = None
    lambda_authorizer: LambdaAuthorizerConfig | None = None
    auth_providers: tuple[AuthType, ...] = _API_KEY_ONLY
    connection_auth_modes: tuple[AuthType, ...] = _API_KEY_ONLY
    default_publish_auth_modes: tuple[AuthType, ...] = _API_KEY_ONLY
    default_subscribe_auth_modes: tuple[AuthType, ...] = _API_KEY_ONLY
    namespaces: tuple[NamespaceConfig, ...] = (NamespaceConfig(name="default"),)
    connection_timeout_ms: int = _limits.DEFAULT_CONNECTION_TIMEOUT_MS
    keepalive_interval: float = _limits.DEFAULT_KEEPALIVE_INTERVAL
    max_connection_lifetime: float = _limits.DEFAULT_MAX_CONNECTION_LIFETIME
    limits: Limits = field(default_factory=Limits)
    clock_offset: float = 0.0
    """Seconds added to the wall clock for auth checks (SigV4 date, JWT exp) to test skew."""
    strict_aws_escaping: bool = False
    """Verify WS IAM bodies only in the HTML-escaped form, as AWS is believed to.

    Reproduces the service's signature failure on ``<`` and ``>``
    (docs: protocol.rst, "What the verifier checks").
    """
    custom_domains: tuple[str, ...] = ()
    """Extra ``host`` values (``hostname[:port]``) an IAM signature may name, besides the
    emulator's HTTP host as the client reached it: AppSync custom domain names, and the AWS
    host name (``<id>.appsync-api.<region>.amazonaws.com``) when reached through a DNS
    override (an AWS name is never accepted unless listed)."""
    failed_event_code: str = "EventProcessingError"
    """``code`` of a ``failed`` entry produced by a handler's ``error``."""
    record_limit: int = 10_000
    """Entries kept by the recorder (oldest dropped first)."""
    token_key_file: str | None = None
    """PEM file holding the local token issuer's RSA key (created when missing); ``None``
    means a fresh in-memory key per server (see :mod:`appsync_emulator.issuer`)."""
    handler_timeout: float = 10.0
    """Seconds an async ``on_publish``/``on_subscribe`` handler, a direct Lambda data source
    or a Lambda authorizer may run before it counts as failed (a blocking sync callable
    cannot be interrupted)."""
    data_sources: tuple[DataSourceConfig, ...] = ()
    """Lambda data sources that ``DIRECT`` namespace handlers invoke."""
    js_limits: JsLimits = field(default_factory=JsLimits)
    """Time and memory limits of APPSYNC_JS handler invocations, and the engine count."""

    def __post_init__(self) -> None:
        if not self.namespaces:
            raise ConfigError("namespaces: at least one namespace is required")
        seen: set[str] = set()
        for ns in self.namespaces:
            try:
                validate_namespace(ns.name)
            except ValueError as exc:
                raise ConfigError(f"namespaces: {exc}") from None
            if ns.name in seen:
                raise ConfigError(f"namespaces: {ns.name!r} is defined twice")
            seen.add(ns.name)
        _check_number("connection_timeout_ms", self.connection_timeout_ms, int)
        _check_number("keepalive_interval", self.keepalive_interval, float)
        _check_number("max_connection_lifetime", self.max_connection_lifetime, float)
        _check_number("handler_timeout", self.handler_timeout, float)
        _check_number("record_limit", self.record_limit, int)
        if not isinstance(self.limits, Limits):
            raise ConfigError(f"limits: expected a Limits, got {self.limits!r}")
        self._check_data_sources()
        for name in (
            "connection_auth_modes",
            "default_publish_auth_modes",
            "default_subscribe_auth_modes",
        ):
            for mode in getattr(self, name):
                if mode not in self.auth_providers:
                    raise ConfigError(f"{name}: {mode} is not among auth_providers")

    def _check_data_sources(self) -> None:
        names: set[str] = set()
        for source in self.data_sources:
            if source.name in names:
                raise ConfigError(f"data_sources: {source.name!r} is defined twice")
            names.add(source.name)
        for ns in self.namespaces:
            configs = ns.handler_configs or HandlerConfigs()
            for op, handler in (
                ("publish", configs.on_publish),
                ("subscribe", configs.on_subscribe),
            ):
                if handler is not None and handler.data_source_name is not None:
                    if handler.data_source_name not in names:
                        known = ", ".join(sorted(names)) or "none"
                        raise ConfigError(
                            f"namespace {ns.name!r}: handler_configs.on_{op}: no data source "
                            f"{handler.data_source_name!r} (defined: {known})"
                        )

    def data_source(self, name: str) -> DataSourceConfig:
        """The data source called ``name``.

        Raises:
            KeyError: there is none.
        """
        for source in self.data_sources:
            if source.name == name:
                return source
        raise KeyError(name)

    @property
    def api_key(self) -> str | None:
        """The first API key (the one banners and fixtures show)."""
        return self.api_keys[0].key if self.api_keys else None

    def namespace(self, name: str) -> NamespaceConfig | None:
        for ns in self.namespaces:
            if ns.name == name:
                return ns
        return None

    def publish_modes(self, namespace: NamespaceConfig) -> tuple[AuthType, ...]:
        """The namespace override, else the API default (an override replaces, not merges)."""
        if namespace.publish_auth_modes is not None:
            return namespace.publish_auth_modes
        return self.default_publish_auth_modes

    def subscribe_modes(self, namespace: NamespaceConfig) -> tuple[AuthType, ...]:
        if namespace.subscribe_auth_modes is not None:
            return namespace.subscribe_auth_modes
        return self.default_subscribe_auth_modes

    def replace(self, **changes: Any) -> EmulatorConfig:
        """Return a copy with ``changes`` applied (validated again)."""
        return replace(self, **changes)

    # --- loading ----------------------------------------------------------------------

    @classmethod
    def from_file(cls, path: str | Path) -> EmulatorConfig:
        """Load a ``.toml`` or ``.json`` file (see :meth:`from_mapping` for the keys).

        Raises:
            ConfigError: one line starting with the file name and naming the key: an
                unreadable file, an unsupported suffix, bad syntax, or an invalid setting.
        """
        from .config_schema import load_config_file

        return load_config_file(path)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> EmulatorConfig:
        """Build a config from plain data (a parsed TOML/JSON file).

        The keys are AWS's (``EventConfig``/``ChannelNamespace``), all optional; the schema
        is :class:`appsync_emulator.config_schema.ConfigFile` and
        ``appsync-emulator example-config`` writes a file using every key.  Unknown keys,
        wrong types and modes naming a provider that is not configured are refused.

        Raises:
            ConfigError: one line naming the first mistake at the key the user wrote.
        """
        from .config_schema import config_from_mapping

        return config_from_mapping(dict(data) if isinstance(data, Mapping) else data)


def namespaces(names: Sequence[str]) -> tuple[NamespaceConfig, ...]:
    """Shorthand: ``namespaces(["default", "chat"])``."""
    return tuple(NamespaceConfig(name=n) for n in names)


# --- references to user code ("package.module:function") --------------------------------

_resolved: dict[str, Callable[..., Any]] = {}


def resolve_callable(
    ref: str | Callable[..., Any], *, what: str = "callable"
) -> Callable[..., Any]:
    """Return the callable named by ``ref`` (a callable, or ``"package.module:attr"``).

    Raises:
        ConfigError: the module cannot be imported or has no such callable.
    """
    if callable(ref):
        return ref
    if ref in _resolved:
        return _resolved[ref]
    module_name, sep, attr = str(ref).partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"{what} {ref!r}: expected 'package.module:function'")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigError(f"{what} {ref!r}: cannot import {module_name!r}: {exc}") from exc
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ConfigError(f"{what} {ref!r}: {module_name!r} has no {attr!r}") from None
    if not callable(target):
        raise ConfigError(f"{what} {ref!r}: {attr!r} is not callable")
    _resolved[ref] = target
    return target  # type: ignore[no-any-return]
