"""Typed configuration of the emulator, and its loader from TOML/JSON files.

Zero configuration works: one API key, one namespace ``default``, AWS's timings.  The
auth part mirrors the AWS ``EventConfig``/``ChannelNamespace`` API (the same field names
and meaning), so users can paste their real settings; see
:meth:`EmulatorConfig.from_mapping`.
"""

from __future__ import annotations

import enum
import json
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from appsync_events.protocol import limits as _limits
from appsync_events.protocol.channels import validate_namespace

__all__ = [
    "ApiKeyConfig",
    "AuthType",
    "CognitoConfig",
    "ConfigError",
    "EmulatorConfig",
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


@dataclass(frozen=True, slots=True, kw_only=True)
class NamespaceConfig:
    """A channel namespace; ``None`` auth modes mean the API defaults apply."""

    name: str
    publish_auth_modes: tuple[AuthType, ...] | None = None
    subscribe_auth_modes: tuple[AuthType, ...] | None = None
    on_publish: HandlerRef | None = None
    on_subscribe: HandlerRef | None = None


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
    """Verify WS IAM bodies only in the HTML-escaped form (reproduces ISS-400)."""
    failed_event_code: str = "EventProcessingError"
    """``code`` of a ``failed`` entry produced by a handler's ``error``."""
    record_limit: int = 10_000
    """Entries kept by the recorder (oldest dropped first)."""
    token_key_file: str | None = None
    """PEM file holding the local token issuer's RSA key (created when missing); ``None``
    means a fresh in-memory key per server (see :mod:`appsync_emulator.issuer`)."""
    handler_timeout: float = 10.0
    """Seconds an async ``on_publish``/``on_subscribe`` handler or Lambda authorizer may run
    before it counts as failed (a blocking sync callable cannot be interrupted)."""

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
        if self.connection_timeout_ms <= 0:
            raise ConfigError("connection_timeout_ms must be positive")
        if self.keepalive_interval <= 0:
            raise ConfigError("keepalive_interval must be positive")
        for name in (
            "connection_auth_modes",
            "default_publish_auth_modes",
            "default_subscribe_auth_modes",
        ):
            for mode in getattr(self, name):
                if mode not in self.auth_providers:
                    raise ConfigError(f"{name}: {mode} is not among auth_providers")

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
            ConfigError: unreadable file, bad syntax, or an invalid setting.
        """
        p = Path(path)
        try:
            raw = p.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read config file {p}: {exc}") from None
        try:
            data = tomllib.loads(raw.decode()) if p.suffix == ".toml" else json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{p}: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: the top level must be a table/object")
        return cls.from_mapping(data)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> EmulatorConfig:
        """Build a config from plain data (a parsed TOML/JSON file).

        Keys (all optional): ``region``, ``apiId``, ``accountId``, ``apiKeys`` (strings or
        ``{key, expires, description}``), ``iamCredentials`` (``{accessKeyId,
        secretAccessKey, sessionToken?}``), ``namespaces`` (names or AWS
        ``ChannelNamespace`` objects: ``{name, publishAuthModes, subscribeAuthModes,
        onPublish, onSubscribe}``), ``eventConfig`` (AWS ``EventConfig``:
        ``authProviders``, ``connectionAuthModes``, ``defaultPublishAuthModes``,
        ``defaultSubscribeAuthModes``), ``connectionTimeoutMs``, ``keepAliveIntervalSeconds``,
        ``maxConnectionLifetimeSeconds``, ``limits`` (snake_case :class:`Limits` fields),
        ``clockOffsetSeconds``, ``strictAwsEscaping``.

        Raises:
            ConfigError: naming the offending key.
        """
        return _Loader(data).build()


def _modes(value: Any, where: str) -> tuple[AuthType, ...]:
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected a list of auth modes")
    out = []
    for item in value:
        name = item.get("authType") if isinstance(item, dict) else item
        try:
            out.append(AuthType(str(name)))
        except ValueError:
            raise ConfigError(
                f"{where}: unknown auth mode {name!r} (one of {', '.join(AuthType)})"
            ) from None
    return tuple(out)


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: expected a list of strings")
    return tuple(value)


def _parse_time(value: Any, where: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(f"{where}: {value!r} is not an ISO 8601 time") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise ConfigError(f"{where}: expected an ISO 8601 time or epoch seconds")


class _Loader:
    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data
        self.kw: dict[str, Any] = {}

    def build(self) -> EmulatorConfig:
        d = self.data
        simple = {
            "region": ("region", str),
            "apiId": ("api_id", str),
            "accountId": ("account_id", str),
            "connectionTimeoutMs": ("connection_timeout_ms", int),
            "keepAliveIntervalSeconds": ("keepalive_interval", float),
            "maxConnectionLifetimeSeconds": ("max_connection_lifetime", float),
            "clockOffsetSeconds": ("clock_offset", float),
            "strictAwsEscaping": ("strict_aws_escaping", bool),
            "failedEventCode": ("failed_event_code", str),
            "recordLimit": ("record_limit", int),
            "handlerTimeoutSeconds": ("handler_timeout", float),
            "tokenKeyFile": ("token_key_file", str),
        }
        for key, (attr, typ) in simple.items():
            if key in d:
                value = d[key]
                ok = isinstance(value, typ) or (typ is float and isinstance(value, int))
                if not ok or (typ is not bool and isinstance(value, bool)):
                    raise ConfigError(f"{key}: expected {typ.__name__}, got {value!r}")
                self.kw[attr] = typ(value)
        if "apiKeys" in d:
            self.kw["api_keys"] = tuple(self._api_key(i, v) for i, v in enumerate(d["apiKeys"]))
        if "iamCredentials" in d:
            self.kw["iam_credentials"] = tuple(
                self._iam(i, v) for i, v in enumerate(d["iamCredentials"])
            )
        if "namespaces" in d:
            self.kw["namespaces"] = tuple(
                self._namespace(i, v) for i, v in enumerate(d["namespaces"])
            )
        if "limits" in d:
            self._limits(d["limits"])
        if "eventConfig" in d:
            self._event_config(d["eventConfig"])
        try:
            return EmulatorConfig(**self.kw)
        except TypeError as exc:
            raise ConfigError(str(exc)) from None

    def _api_key(self, i: int, v: Any) -> ApiKeyConfig:
        if isinstance(v, str):
            return ApiKeyConfig(key=v)
        if not isinstance(v, dict) or not isinstance(v.get("key") or v.get("id"), str):
            raise ConfigError(f"apiKeys[{i}]: expected a string or {{key, expires}}")
        return ApiKeyConfig(
            key=v.get("key") or v["id"],
            expires=_parse_time(v.get("expires"), f"apiKeys[{i}].expires"),
            description=str(v.get("description", "")),
        )

    def _iam(self, i: int, v: Any) -> IamCredentials:
        if not isinstance(v, dict):
            raise ConfigError(f"iamCredentials[{i}]: expected an object")
        try:
            return IamCredentials(
                access_key_id=str(v["accessKeyId"]),
                secret_access_key=str(v["secretAccessKey"]),
                session_token=v.get("sessionToken"),
                account_id=str(v.get("accountId", "123456789012")),
                user_arn=v.get("userArn"),
                username=v.get("username"),
                allowed_actions=_strings(
                    v.get("allowedActions", ["appsync:*"]), f"iamCredentials[{i}].allowedActions"
                ),
                allowed_resources=_strings(
                    v.get("allowedResources", ["*"]), f"iamCredentials[{i}].allowedResources"
                ),
            )
        except KeyError as exc:
            raise ConfigError(f"iamCredentials[{i}]: missing {exc.args[0]!r}") from None

    def _namespace(self, i: int, v: Any) -> NamespaceConfig:
        if isinstance(v, str):
            return NamespaceConfig(name=v)
        if not isinstance(v, dict) or not isinstance(v.get("name"), str):
            raise ConfigError(f"namespaces[{i}]: expected a name or {{name, ...}}")
        where = f"namespaces[{i}]"
        pub = v.get("publishAuthModes")
        sub = v.get("subscribeAuthModes")
        return NamespaceConfig(
            name=v["name"],
            publish_auth_modes=None if pub is None else _modes(pub, f"{where}.publishAuthModes"),
            subscribe_auth_modes=None
            if sub is None
            else _modes(sub, f"{where}.subscribeAuthModes"),
            on_publish=v.get("onPublish"),
            on_subscribe=v.get("onSubscribe"),
        )

    def _limits(self, v: Any) -> None:
        if not isinstance(v, dict):
            raise ConfigError("limits: expected a table/object")
        names = set(Limits.__dataclass_fields__)
        for key in v:
            if key not in names:
                raise ConfigError(
                    f"limits.{key}: unknown limit (one of {', '.join(sorted(names))})"
                )
        self.kw["limits"] = Limits(**v)

    def _event_config(self, v: Any) -> None:
        if not isinstance(v, dict):
            raise ConfigError("eventConfig: expected an object")
        providers = v.get("authProviders")
        if providers is not None:
            self.kw["auth_providers"] = _modes(providers, "eventConfig.authProviders")
            for i, p in enumerate(providers):
                if isinstance(p, dict):
                    self._provider(i, p)
        for key, attr in (
            ("connectionAuthModes", "connection_auth_modes"),
            ("defaultPublishAuthModes", "default_publish_auth_modes"),
            ("defaultSubscribeAuthModes", "default_subscribe_auth_modes"),
        ):
            if key in v:
                self.kw[attr] = _modes(v[key], f"eventConfig.{key}")

    def _provider(self, i: int, p: Mapping[str, Any]) -> None:
        where = f"eventConfig.authProviders[{i}]"
        if "cognitoConfig" in p:
            c = p["cognitoConfig"]
            self.kw["cognito"] = CognitoConfig(
                user_pool_id=str(c.get("userPoolId", "local_emulator")),
                aws_region=c.get("awsRegion"),
                app_id_client_regex=c.get("appIdClientRegex"),
                jwks_file=c.get("jwksFile"),
                issuer=c.get("issuer"),
            )
        if "openIDConnectConfig" in p:
            c = p["openIDConnectConfig"]
            self.kw["oidc"] = OidcConfig(
                issuer=c.get("issuer"),
                client_id=c.get("clientId"),
                iat_ttl=c.get("iatTTL"),
                auth_ttl=c.get("authTTL"),
                jwks_file=c.get("jwksFile"),
            )
        if "lambdaAuthorizerConfig" in p:
            c = p["lambdaAuthorizerConfig"]
            if not isinstance(c.get("authorizerUri"), str):
                raise ConfigError(
                    f"{where}.lambdaAuthorizerConfig.authorizerUri: expected 'module:function'"
                )
            self.kw["lambda_authorizer"] = LambdaAuthorizerConfig(
                authorizer=c["authorizerUri"],
                result_ttl_seconds=int(c.get("authorizerResultTtlInSeconds", 0)),
                identity_validation_expression=c.get("identityValidationExpression"),
            )


def namespaces(names: Sequence[str]) -> tuple[NamespaceConfig, ...]:
    """Shorthand: ``namespaces(["default", "chat"])``."""
    return tuple(NamespaceConfig(name=n) for n in names)
