"""The schema of the emulator's configuration file (TOML or JSON), in AWS's key names.

:func:`load_config_file` and :func:`config_from_mapping` turn a file (or its parsed data) into
an :class:`~appsync_emulator.config.EmulatorConfig`, or raise
:class:`~appsync_emulator.config.ConfigError` with ONE line naming the key the user wrote::

    emu.toml: eventConfig.connectionAuthModes[0].authType: 'APIKEY' is not one of API_KEY, ...
    emu.toml: unknown key 'regoin' (did you mean 'region'?)

Validation has two phases.  Pydantic checks shapes and types (strictly: ``"five"`` is not
an integer, ``"da2-x"`` is not a list of keys, unknown keys are refused).  Plain Python then
checks what spans several keys (a mode list naming a provider that is not configured,
duplicate namespaces), each at the key the user wrote.

The auth part mirrors the AWS ``EventConfig``/``ChannelNamespace`` API, so real settings
paste in.  AWS requires the three mode lists of ``EventConfig``; here each is optional:

* ``authProviders`` left out: the modes the mode lists name (``API_KEY`` when none does);
* a mode list left out: every provider in ``authProviders``.

So a snippet with only ``authProviders``, or only ``connectionAuthModes``, means what it says
and never fails because of a default the user did not write.
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from appsync_events.protocol.channels import validate_namespace

from .config import (
    ApiKeyConfig,
    AuthType,
    CognitoConfig,
    ConfigError,
    DataSourceConfig,
    EmulatorConfig,
    HandlerBehavior,
    HandlerConfig,
    HandlerConfigs,
    IamCredentials,
    InvokeType,
    JsLimits,
    LambdaAuthorizerConfig,
    Limits,
    NamespaceConfig,
    OidcConfig,
    resolve_callable,
)
from .handler_runtime import check_code

__all__ = [
    "SUPPORTED_SUFFIXES",
    "ConfigFile",
    "config_from_mapping",
    "load_config_file",
    "resolve_references",
]

SUPPORTED_SUFFIXES: Final = (".toml", ".json")

_MODES: Final = ", ".join(AuthType)
_SECRET_KEYS: Final = frozenset({"apiKeys", "secretAccessKey", "sessionToken", "accessKeyId"})
"""Keys whose values an error message never repeats (they are credentials)."""


def _short(value: Any) -> str:
    """``repr`` of a value the user wrote, cut to one short line (tables summarised)."""
    if isinstance(value, dict):
        return "a table"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --- before-validators: the shorthands the file accepts ------------------------------------


def _table_or(name: str, what: str) -> Callable[[Any], Any]:
    """A string ``s`` means ``{name: s}``; anything but a string or a table is an error."""

    def convert(value: Any) -> Any:
        if isinstance(value, str):
            return {name: value}
        if isinstance(value, dict):
            return value
        raise PydanticCustomError(
            "shape", "expected " + what + ", got {got}", {"got": _short(value)}
        )

    return convert


def _mode_item(value: Any) -> Any:
    if isinstance(value, str):
        if value not in AuthType.__members__:
            raise PydanticCustomError(
                "auth_mode", "{got} is not one of " + _MODES, {"got": _short(value)}
            )
        return {"authType": value}
    if isinstance(value, dict):
        return value
    raise PydanticCustomError(
        "shape", "expected an auth mode ({ authType = ... }), got {got}", {"got": _short(value)}
    )


def _time(value: Any) -> Any:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise PydanticCustomError(
                "time", "{got} is not an ISO 8601 time", {"got": _short(value)}
            ) from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise PydanticCustomError(
        "time", "expected an ISO 8601 time or epoch seconds, got {got}", {"got": _short(value)}
    )


def _regex(value: Any) -> Any:
    if isinstance(value, str):
        try:
            re.compile(value)
        except re.error as exc:
            raise PydanticCustomError(
                "regex", "{got} is not a regular expression: " + str(exc), {"got": _short(value)}
            ) from None
    return value


def _reference(value: Any) -> Any:
    if isinstance(value, str):
        module, sep, attr = value.partition(":")
        if not (sep and module.strip() and attr.strip()):
            raise PydanticCustomError(
                "reference", "expected 'module:function', got {got}", {"got": _short(value)}
            )
    return value


# --- the models (field names are the user's keys) ------------------------------------------

_Positive = Annotated[int, Field(gt=0)]
_PositiveFloat = Annotated[float, Field(gt=0)]
_Seconds = Annotated[float, Field(ge=0)]
"""A timeout where 0 disables the check."""
_Regex = Annotated[str, BeforeValidator(_regex)]
_Reference = Annotated[str, BeforeValidator(_reference)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class _AuthMode(_Model):
    authType: Annotated[AuthType, Field(strict=False)]


_ModeList = list[Annotated[_AuthMode, BeforeValidator(_mode_item)]]


class _ApiKey(_Model):
    key: str | None = None
    id: str | None = None
    expires: Annotated[datetime | None, BeforeValidator(_time)] = None
    description: str = ""


class _Iam(_Model):
    accessKeyId: str
    secretAccessKey: str
    sessionToken: str | None = None
    accountId: str = "123456789012"
    userArn: str | None = None
    username: str | None = None
    allowedActions: list[str] = ["appsync:*"]
    allowedResources: list[str] = ["*"]


class _Cognito(_Model):
    userPoolId: str = "local_emulator"
    awsRegion: str | None = None
    appIdClientRegex: _Regex | None = None
    jwksFile: str | None = None
    issuer: str | None = None


class _Oidc(_Model):
    issuer: str | None = None
    clientId: str | None = None
    iatTTL: Annotated[int, Field(ge=0)] | None = None
    authTTL: Annotated[int, Field(ge=0)] | None = None
    jwksFile: str | None = None


class _Lambda(_Model):
    authorizerUri: _Reference
    authorizerResultTtlInSeconds: Annotated[int, Field(ge=0, le=3600)] = 0
    identityValidationExpression: _Regex | None = None


class _Provider(_Model):
    authType: Annotated[AuthType, Field(strict=False)]
    cognitoConfig: _Cognito | None = None
    openIDConnectConfig: _Oidc | None = None
    lambdaAuthorizerConfig: _Lambda | None = None


class _EventConfig(_Model):
    authProviders: list[_Provider] | None = None
    connectionAuthModes: _ModeList | None = None
    defaultPublishAuthModes: _ModeList | None = None
    defaultSubscribeAuthModes: _ModeList | None = None


class _InvokeConfig(_Model):
    invokeType: Annotated[InvokeType, Field(strict=False)] = InvokeType.REQUEST_RESPONSE


class _Integration(_Model):
    dataSourceName: str
    lambdaConfig: _InvokeConfig | None = None


class _HandlerConfig(_Model):
    behavior: Annotated[HandlerBehavior, Field(strict=False)]
    integration: _Integration | None = None


class _HandlerConfigs(_Model):
    onPublish: _HandlerConfig | None = None
    onSubscribe: _HandlerConfig | None = None


class _Namespace(_Model):
    name: str
    publishAuthModes: _ModeList | None = None
    subscribeAuthModes: _ModeList | None = None
    onPublish: _Reference | None = None
    onSubscribe: _Reference | None = None
    codeHandlers: Annotated[str, Field(min_length=1)] | None = None
    codeHandlersFile: Annotated[str, Field(min_length=1)] | None = None
    handlerConfigs: _HandlerConfigs | None = None


class _DataSourceLambda(_Model):
    lambdaFunctionArn: _Reference


class _DataSource(_Model):
    name: Annotated[str, Field(min_length=1)]
    type: Literal["AWS_LAMBDA"] = "AWS_LAMBDA"
    description: str = ""
    lambdaConfig: _DataSourceLambda


class _JsRuntime(_Model):
    invokeTimeoutSeconds: _PositiveFloat | None = None
    memoryLimitMiB: _Positive | None = None
    engines: _Positive | None = None


class _Limits(_Model):
    max_events_per_publish: _Positive | None = None
    max_event_bytes: _Positive | None = None
    max_request_bytes: _Positive | None = None
    max_subscriptions_per_connection: _Positive | None = None
    max_publish_per_second: _Positive | None = None
    max_connections: _Positive | None = None
    send_queue_frames: _Positive | None = None
    init_timeout: _PositiveFloat | None = None
    header_timeout: _Seconds | None = None
    body_timeout: _Seconds | None = None
    max_sockets: _Positive | None = None


class ConfigFile(_Model):
    """The whole file.  Every key is optional; see ``appsync-emulator example-config``."""

    region: str | None = None
    apiId: str | None = None
    accountId: str | None = None
    apiKeys: (
        list[Annotated[_ApiKey, BeforeValidator(_table_or("key", "a key or a table"))]] | None
    ) = None
    iamCredentials: list[_Iam] | None = None
    namespaces: (
        list[Annotated[_Namespace, BeforeValidator(_table_or("name", "a name or a table"))]] | None
    ) = None
    eventConfig: _EventConfig | None = None
    connectionTimeoutMs: _Positive | None = None
    keepAliveIntervalSeconds: _PositiveFloat | None = None
    maxConnectionLifetimeSeconds: _PositiveFloat | None = None
    limits: _Limits | None = None
    clockOffsetSeconds: float | None = None
    strictAwsEscaping: bool | None = None
    customDomains: list[str] | None = None
    failedEventCode: str | None = None
    recordLimit: _Positive | None = None
    handlerTimeoutSeconds: _PositiveFloat | None = None
    tokenKeyFile: str | None = None
    dataSources: list[_DataSource] | None = None
    jsRuntime: _JsRuntime | None = None


# --- error lines ---------------------------------------------------------------------------

_Loc = tuple[str | int, ...]

_EXPECTED: Final = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
}


_KINDS: Final = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    list: "a list",
    dict: "a table",
}


class _Problem(Exception):
    """One mistake at ``loc`` (the user's keys), found after the types are known good."""

    def __init__(self, loc: _Loc, message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


def _where(loc: _Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _show(value: Any, loc: _Loc) -> str:
    """``repr`` of a value the user wrote, unless it sits under a credential key."""
    if any(part in _SECRET_KEYS for part in loc):
        return _KINDS.get(type(value), "a " + type(value).__name__)
    return _short(value)


def _model_at(loc: _Loc) -> type[BaseModel] | None:
    """The model class of the table at ``loc`` (for "did you mean")."""
    model: Any = ConfigFile
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(model, "model_fields", None)
        if fields is None or part not in fields:
            return None
        model = _inner_model(fields[part].annotation)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _inner_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or getattr(annotation, "__metadata__", ()):
        found = _inner_model(arg)
        if found is not None:
            return found
    origin = getattr(annotation, "__origin__", None)
    return _inner_model(origin) if origin is not None and origin is not annotation else None


def _unknown_key(loc: _Loc) -> str:
    *parent, key = loc
    model = _model_at(tuple(parent))
    known = list(model.model_fields) if model is not None else []
    close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    if not close and known:
        hint = f" (known keys: {', '.join(known)})" if len(known) <= 8 else ""
    prefix = f"{_where(tuple(parent))}: " if parent else ""
    return f"{prefix}unknown key {key!r}{hint}"


def _line(error: Mapping[str, Any]) -> str:
    loc: _Loc = tuple(error["loc"])
    kind = error["type"]
    value = error.get("input")
    if kind == "extra_forbidden":
        return _unknown_key(loc)
    where = _where(loc)
    if kind == "missing":
        *parent, key = loc
        return f"{_where(tuple(parent)) or 'the file'}: missing key {key!r}"
    if kind in _EXPECTED:
        line = f"{where}: expected {_EXPECTED[kind]}, got {_show(value, loc)}"
        if kind == "list_type" and isinstance(value, str):
            shown = '"..."' if _show(value, loc) == "a string" else json.dumps(value)
            line += f" (write [{shown}] for a list of one)"
        return line
    if kind == "literal_error":
        return f"{where}: expected {_choices(error)}, got {_show(value, loc)}"
    if kind == "enum":
        choices = _MODES if loc[-1] == "authType" else _choices(error)
        if not isinstance(value, str):
            return f"{where}: expected one of {choices}, got {_show(value, loc)}"
        return f"{where}: {_show(value, loc)} is not one of {choices}"
    if kind in ("greater_than", "greater_than_equal", "less_than_equal"):
        ctx = {
            k: int(v) if isinstance(v, float) and v.is_integer() else v
            for k, v in error.get("ctx", {}).items()
        }
        bound = {"greater_than": "> {gt}", "greater_than_equal": ">= {ge}"}.get(kind, "<= {le}")
        return f"{where}: must be {bound.format(**ctx)}, got {_show(value, loc)}"
    return f"{where}: {error['msg']}"


def _choices(error: Mapping[str, Any]) -> str:
    """``CODE, DIRECT`` from pydantic's ``"'CODE' or 'DIRECT'"``."""
    expected = str(error.get("ctx", {}).get("expected", ""))
    return ", ".join(re.findall(r"'([^']*)'", expected)) or expected


def _first_line(exc: ValidationError) -> str:
    # An unknown key first: it is usually a typo that also explains a missing one.
    errors = sorted(exc.errors(include_url=False), key=lambda e: e["type"] != "extra_forbidden")
    line = _line(errors[0])
    if len(errors) > 1:
        line += f" (and {len(errors) - 1} more)"
    return line


# --- building the EmulatorConfig -----------------------------------------------------------


def _modes(items: Sequence[_AuthMode]) -> tuple[AuthType, ...]:
    return tuple(item.authType for item in items)


class _Builder:
    """Phase two: what spans several keys, each mistake at the key the user wrote."""

    def __init__(self, data: ConfigFile, base_dir: Path | None = None) -> None:
        self.data = data
        self.base_dir = base_dir
        self.kw: dict[str, Any] = {}

    def build(self) -> EmulatorConfig:
        d = self.data
        for key, attr in (
            ("region", "region"),
            ("apiId", "api_id"),
            ("accountId", "account_id"),
            ("connectionTimeoutMs", "connection_timeout_ms"),
            ("keepAliveIntervalSeconds", "keepalive_interval"),
            ("maxConnectionLifetimeSeconds", "max_connection_lifetime"),
            ("clockOffsetSeconds", "clock_offset"),
            ("strictAwsEscaping", "strict_aws_escaping"),
            ("failedEventCode", "failed_event_code"),
            ("recordLimit", "record_limit"),
            ("handlerTimeoutSeconds", "handler_timeout"),
            ("tokenKeyFile", "token_key_file"),
        ):
            value = getattr(d, key)
            if value is not None:
                self.kw[attr] = value
        if d.customDomains is not None:
            self.kw["custom_domains"] = tuple(d.customDomains)
        if d.apiKeys is not None:
            self.kw["api_keys"] = tuple(self._api_key(i, k) for i, k in enumerate(d.apiKeys))
        if d.iamCredentials is not None:
            self.kw["iam_credentials"] = tuple(_iam(c) for c in d.iamCredentials)
        if d.limits is not None:
            given = {k: v for k, v in d.limits.model_dump().items() if v is not None}
            self.kw["limits"] = Limits(**given)
        self._data_sources()
        self._js_runtime()
        self._namespaces()
        self._auth()
        return EmulatorConfig(**self.kw)

    def _api_key(self, i: int, entry: _ApiKey) -> ApiKeyConfig:
        if (entry.key is None) == (entry.id is None):
            raise _Problem(("apiKeys", i), "give the key as 'key' (or 'id'), once")
        key = entry.key if entry.key is not None else entry.id
        assert key is not None
        return ApiKeyConfig(key=key, expires=entry.expires, description=entry.description)

    def _namespaces(self) -> None:
        if self.data.namespaces is None:
            return
        if not self.data.namespaces:
            raise _Problem(("namespaces",), "at least one namespace is required")
        seen: set[str] = set()
        out = []
        for i, ns in enumerate(self.data.namespaces):
            try:
                validate_namespace(ns.name)
            except ValueError as exc:
                raise _Problem(("namespaces", i, "name"), str(exc)) from None
            if ns.name in seen:
                raise _Problem(("namespaces", i, "name"), f"{ns.name!r} is defined twice")
            seen.add(ns.name)
            out.append(
                NamespaceConfig(
                    name=ns.name,
                    publish_auth_modes=None
                    if ns.publishAuthModes is None
                    else _modes(ns.publishAuthModes),
                    subscribe_auth_modes=None
                    if ns.subscribeAuthModes is None
                    else _modes(ns.subscribeAuthModes),
                    on_publish=ns.onPublish,
                    on_subscribe=ns.onSubscribe,
                    **self._handlers(i, ns),
                )
            )
        self.kw["namespaces"] = tuple(out)

    def _data_sources(self) -> None:
        if self.data.dataSources is None:
            return
        seen: set[str] = set()
        for i, source in enumerate(self.data.dataSources):
            if source.name in seen:
                raise _Problem(("dataSources", i, "name"), f"{source.name!r} is defined twice")
            seen.add(source.name)
        self.kw["data_sources"] = tuple(
            DataSourceConfig(name=s.name, function=s.lambdaConfig.lambdaFunctionArn)
            for s in self.data.dataSources
        )

    def _js_runtime(self) -> None:
        js = self.data.jsRuntime
        if js is None:
            return
        given: dict[str, Any] = {}
        if js.invokeTimeoutSeconds is not None:
            given["invoke_timeout"] = js.invokeTimeoutSeconds
        if js.memoryLimitMiB is not None:
            given["memory_limit"] = js.memoryLimitMiB << 20
        if js.engines is not None:
            given["engines"] = js.engines
        self.kw["js_limits"] = JsLimits(**given)

    def _code_file(self, i: int, value: str) -> str:
        # LOCAL EXTENSION: a relative path is relative to the config file's folder (the
        # current folder for a mapping without a file).
        path = Path(value).expanduser()
        if not path.is_absolute():
            path = (self.base_dir or Path.cwd()) / path
        if not path.is_file():
            raise _Problem(("namespaces", i, "codeHandlersFile"), f"no such file: {str(path)!r}")
        return str(path)

    def _handlers(self, i: int, ns: _Namespace) -> dict[str, Any]:
        """The handler keys of namespace ``i``, checked at the user's keys."""
        loc: _Loc = ("namespaces", i)
        if ns.codeHandlers is not None and ns.codeHandlersFile is not None:
            raise _Problem(
                (*loc, "codeHandlersFile"), "give codeHandlers or codeHandlersFile, not both"
            )
        code_file = None if ns.codeHandlersFile is None else self._code_file(i, ns.codeHandlersFile)
        has_code = ns.codeHandlers is not None or code_file is not None
        configs = ns.handlerConfigs or _HandlerConfigs()
        built: dict[str, HandlerConfig | None] = {}
        for key, python in (("onPublish", ns.onPublish), ("onSubscribe", ns.onSubscribe)):
            handler: _HandlerConfig | None = getattr(configs, key)
            here: _Loc = (*loc, "handlerConfigs", key)
            if handler is None:
                if python is not None and has_code:
                    raise _Problem(
                        (*loc, key),
                        "a Python handler and codeHandlers both handle this operation; keep "
                        f"one (or set handlerConfigs.{key} to say which)",
                    )
                built[key] = None
                continue
            if python is not None:
                raise _Problem((*loc, key), f"handlerConfigs.{key} is also set; keep one")
            built[key] = self._handler_config(here, handler, has_code)
        if ns.handlerConfigs is None and not has_code:
            return {}
        return {
            "code_handlers": ns.codeHandlers,
            "code_handlers_file": code_file,
            "handler_configs": HandlerConfigs(
                on_publish=built["onPublish"], on_subscribe=built["onSubscribe"]
            ),
        }

    def _handler_config(self, loc: _Loc, handler: _HandlerConfig, has_code: bool) -> HandlerConfig:
        integration = handler.integration
        if handler.behavior is HandlerBehavior.CODE:
            if integration is not None:
                raise _Problem(
                    (*loc, "integration"),
                    "a CODE handler with a data source (request/response functions) is not "
                    "emulated; use behavior = DIRECT",
                )
            if not has_code:
                raise _Problem((*loc, "behavior"), "CODE needs codeHandlers or codeHandlersFile")
            return HandlerConfig(behavior=HandlerBehavior.CODE)
        if integration is None:
            raise _Problem(loc, 'DIRECT needs integration = { dataSourceName = "..." }')
        known = [s.name for s in self.data.dataSources or ()]
        if integration.dataSourceName not in known:
            raise _Problem(
                (*loc, "integration", "dataSourceName"),
                f"no data source {integration.dataSourceName!r} in dataSources "
                f"(defined: {', '.join(known) or 'none'})",
            )
        invoke = integration.lambdaConfig or _InvokeConfig()
        return HandlerConfig(
            behavior=HandlerBehavior.DIRECT,
            data_source_name=integration.dataSourceName,
            invoke_type=invoke.invokeType,
        )

    def _mode_lists(self) -> list[tuple[_Loc, tuple[AuthType, ...]]]:
        """Every mode list the user wrote, with its location."""
        lists: list[tuple[_Loc, tuple[AuthType, ...]]] = []
        ec = self.data.eventConfig
        if ec is not None:
            for key in (
                "connectionAuthModes",
                "defaultPublishAuthModes",
                "defaultSubscribeAuthModes",
            ):
                items = getattr(ec, key)
                if items is not None:
                    lists.append((("eventConfig", key), _modes(items)))
        for i, ns in enumerate(self.data.namespaces or ()):
            for key in ("publishAuthModes", "subscribeAuthModes"):
                items = getattr(ns, key)
                if items is not None:
                    lists.append((("namespaces", i, key), _modes(items)))
        return lists

    def _auth(self) -> None:
        ec = self.data.eventConfig
        lists = self._mode_lists()
        written = ec.authProviders if ec is not None else None
        if written is not None:
            providers = self._providers(written)
            for loc, modes in lists:
                for j, mode in enumerate(modes):
                    if mode not in providers:
                        raise _Problem(
                            (*loc, j),
                            f"{mode} is not in eventConfig.authProviders "
                            f'(add {{ authType = "{mode}" }} there)',
                        )
        else:
            named = dict.fromkeys(m for _, modes in lists for m in modes)
            providers = tuple(named) or (AuthType.API_KEY,)
            for loc, modes in lists:
                if AuthType.AWS_LAMBDA in modes:
                    j = modes.index(AuthType.AWS_LAMBDA)
                    raise _Problem(
                        (*loc, j),
                        "AWS_LAMBDA needs eventConfig.authProviders with "
                        '{ authType = "AWS_LAMBDA", lambdaAuthorizerConfig = '
                        '{ authorizerUri = "module:function" } }',
                    )
        self.kw["auth_providers"] = providers
        given = {loc[1]: modes for loc, modes in lists if loc[0] == "eventConfig"}
        for key, attr in (
            ("connectionAuthModes", "connection_auth_modes"),
            ("defaultPublishAuthModes", "default_publish_auth_modes"),
            ("defaultSubscribeAuthModes", "default_subscribe_auth_modes"),
        ):
            self.kw[attr] = given.get(key, providers)

    def _providers(self, written: Sequence[_Provider]) -> tuple[AuthType, ...]:
        seen: list[AuthType] = []
        for i, p in enumerate(written):
            loc: _Loc = ("eventConfig", "authProviders", i)
            if p.authType in seen:
                raise _Problem((*loc, "authType"), f"{p.authType} is listed twice")
            seen.append(p.authType)
            for key, owner in (
                ("cognitoConfig", AuthType.AMAZON_COGNITO_USER_POOLS),
                ("openIDConnectConfig", AuthType.OPENID_CONNECT),
                ("lambdaAuthorizerConfig", AuthType.AWS_LAMBDA),
            ):
                if getattr(p, key) is not None and p.authType is not owner:
                    raise _Problem((*loc, key), f"belongs to {owner}, not {p.authType}")
            if p.cognitoConfig is not None:
                self.kw["cognito"] = _cognito(p.cognitoConfig)
            if p.openIDConnectConfig is not None:
                self.kw["oidc"] = _oidc(p.openIDConnectConfig)
            if p.authType is AuthType.AWS_LAMBDA:
                if p.lambdaAuthorizerConfig is None:
                    raise _Problem(
                        loc,
                        "AWS_LAMBDA needs lambdaAuthorizerConfig = "
                        '{ authorizerUri = "module:function" }',
                    )
                c = p.lambdaAuthorizerConfig
                self.kw["lambda_authorizer"] = LambdaAuthorizerConfig(
                    authorizer=c.authorizerUri,
                    result_ttl_seconds=c.authorizerResultTtlInSeconds,
                    identity_validation_expression=c.identityValidationExpression,
                )
        if not seen:
            raise _Problem(("eventConfig", "authProviders"), "at least one provider is required")
        return tuple(seen)


def _iam(c: _Iam) -> IamCredentials:
    return IamCredentials(
        access_key_id=c.accessKeyId,
        secret_access_key=c.secretAccessKey,
        session_token=c.sessionToken,
        account_id=c.accountId,
        user_arn=c.userArn,
        username=c.username,
        allowed_actions=tuple(c.allowedActions),
        allowed_resources=tuple(c.allowedResources),
    )


def _cognito(c: _Cognito) -> CognitoConfig:
    return CognitoConfig(
        user_pool_id=c.userPoolId,
        aws_region=c.awsRegion,
        app_id_client_regex=c.appIdClientRegex,
        jwks_file=c.jwksFile,
        issuer=c.issuer,
    )


def _oidc(c: _Oidc) -> OidcConfig:
    return OidcConfig(
        issuer=c.issuer,
        client_id=c.clientId,
        iat_ttl=c.iatTTL,
        auth_ttl=c.authTTL,
        jwks_file=c.jwksFile,
    )


# --- entry points --------------------------------------------------------------------------


def config_from_mapping(
    data: Any, *, source: str | None = None, base_dir: Path | None = None
) -> EmulatorConfig:
    """Validate parsed TOML/JSON data and build the config.

    Args:
        data: the parsed file (its top level must be a table/object).
        source: prefixed to the message (``"emu.toml: ..."``), usually the file name.
        base_dir: the folder a relative ``codeHandlersFile`` is read from (the config
            file's folder; by default the current folder).

    Raises:
        ConfigError: one line naming the first mistake at the key the user wrote.
    """
    prefix = f"{source}: " if source else ""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix}the top level must be a table/object")
    try:
        parsed = ConfigFile.model_validate(data)
        return _Builder(parsed, base_dir).build()
    except ValidationError as exc:
        raise ConfigError(prefix + _first_line(exc)) from None
    except _Problem as exc:
        raise ConfigError(f"{prefix}{_where(exc.loc)}: {exc.message}") from None
    except ConfigError as exc:  # a check of EmulatorConfig itself
        raise ConfigError(f"{prefix}{exc}") from None


def _parse(path: Path, raw: bytes) -> Any:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise ConfigError(
            f"{path.name}: unsupported file type {path.suffix or '(no suffix)'!r}: "
            "TOML (.toml) and JSON (.json) are supported"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path.name}: not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
    try:
        return tomllib.loads(text) if suffix == ".toml" else json.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path.name}: invalid TOML: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path.name}: invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None


def load_config_file(path: str | Path) -> EmulatorConfig:
    """Read, parse and validate a ``.toml`` or ``.json`` configuration file.

    Raises:
        ConfigError: one line starting with the file name: unreadable, unsupported suffix,
            bad syntax, or the first invalid setting at the key the user wrote.
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read config file: {exc.strerror or exc}") from None
    return config_from_mapping(_parse(p, raw), source=p.name, base_dir=p.resolve().parent)


def _references(config: EmulatorConfig) -> list[tuple[str, str, str]]:
    """``(user's key, what, reference)`` for every ``module:function`` string."""
    refs: list[tuple[str, str, str]] = []
    lam = config.lambda_authorizer
    if lam is not None and isinstance(lam.authorizer, str):
        where = "eventConfig.authProviders.lambdaAuthorizerConfig.authorizerUri"
        if AuthType.AWS_LAMBDA in config.auth_providers:
            index = config.auth_providers.index(AuthType.AWS_LAMBDA)
            where = f"eventConfig.authProviders[{index}].lambdaAuthorizerConfig.authorizerUri"
        refs.append((where, "Lambda authorizer", lam.authorizer))
    for i, ns in enumerate(config.namespaces):
        for key, ref in (("onPublish", ns.on_publish), ("onSubscribe", ns.on_subscribe)):
            if isinstance(ref, str):
                refs.append((f"namespaces[{i}].{key}", "handler", ref))
    for i, data_source in enumerate(config.data_sources):
        if isinstance(data_source.function, str):
            where = f"dataSources[{i}].lambdaConfig.lambdaFunctionArn"
            refs.append((where, "Lambda function", data_source.function))
    return refs


def resolve_references(config: EmulatorConfig, *, source: str | None = None) -> None:
    """Import every ``module:function`` the config names (handlers, Lambda authorizer,
    Lambda data sources), and check the APPSYNC_JS code (:func:`check_code`).

    Call it at start-up so that a bad reference fails then, not at first use (where it
    would be a 401 or a failed publish).  The imported callables are cached, so the server
    does not import them again.

    Raises:
        ConfigError: one line naming the user's key and the reference.
    """
    prefix = f"{source}: " if source else ""
    for where, what, ref in _references(config):
        try:
            resolve_callable(ref, what=what)
        except ConfigError as exc:
            reason = " ".join(str(exc).split())  # one line, whatever the import error said
            raise ConfigError(f"{prefix}{where}: {reason}") from None
    check_code(config, source=source)
