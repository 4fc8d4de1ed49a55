"""Unit tests of appsync_emulator.testing: config shorthands, ini settings, loop guard, pools."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from appsync_emulator import testing
from appsync_emulator.config import (
    ApiKeyConfig,
    AuthType,
    CognitoConfig,
    ConfigError,
    EmulatorConfig,
    IamCredentials,
    Limits,
    NamespaceConfig,
)


def test_build_config_without_options_returns_base() -> None:
    """No options give back the base config unchanged."""
    base = EmulatorConfig(region="eu-west-1")
    assert testing.build_config(base) is base
    assert testing.build_config() == EmulatorConfig()


def test_build_config_namespaces_shorthand() -> None:
    """Names, a single name and NamespaceConfig objects all become namespace tuples."""
    chat = NamespaceConfig(name="chat", publish_auth_modes=(AuthType.API_KEY,))
    config = testing.build_config(namespaces=["default", chat])
    assert config.namespaces == (NamespaceConfig(name="default"), chat)
    assert testing.build_config(namespaces="solo").namespaces == (NamespaceConfig(name="solo"),)


def test_build_config_auth_modes_sets_every_mode_list() -> None:
    """auth_modes sets the providers and the connection, publish and subscribe defaults."""
    config = testing.build_config(auth_modes=["API_KEY", "AWS_IAM"])
    both = (AuthType.API_KEY, AuthType.AWS_IAM)
    assert config.auth_providers == both
    assert config.connection_auth_modes == both
    assert config.default_publish_auth_modes == both
    assert config.default_subscribe_auth_modes == both


def test_build_config_single_mode_string() -> None:
    """A mode field accepts one string."""
    config = testing.build_config(
        auth_providers=["API_KEY", "AWS_IAM"], connection_auth_modes="AWS_IAM"
    )
    assert config.connection_auth_modes == (AuthType.AWS_IAM,)


def test_build_config_unknown_mode_names_choices() -> None:
    """An unknown auth mode is a ConfigError listing the valid ones."""
    with pytest.raises(ConfigError, match=r"auth_modes: unknown auth mode .*API_KEY"):
        testing.build_config(auth_modes=["API_KEY", "KERBEROS"])


def test_build_config_credentials_shorthands() -> None:
    """Strings become ApiKeyConfig, a single IamCredentials a tuple, cognito=True a default pool."""
    creds = IamCredentials(access_key_id="AKIDEXAMPLE", secret_access_key="s")
    config = testing.build_config(
        api_keys=["da2-a", ApiKeyConfig(key="da2-b")], iam_credentials=creds, cognito=True
    )
    assert [k.key for k in config.api_keys] == ["da2-a", "da2-b"]
    assert config.iam_credentials == (creds,)
    assert config.cognito == CognitoConfig()
    assert testing.build_config(api_keys="da2-x").api_key == "da2-x"


def test_build_config_bad_namespace_and_key_values() -> None:
    """Values of the wrong type are ConfigErrors naming the position."""
    with pytest.raises(ConfigError, match=r"namespaces\[1\]"):
        testing.build_config(namespaces=["default", 3])
    with pytest.raises(ConfigError, match=r"api_keys\[0\]"):
        testing.build_config(api_keys=[None])


def test_build_config_timeouts_and_lists() -> None:
    """Plain fields pass through; lists for tuple fields become tuples."""
    config = testing.build_config(connection_timeout_ms=300, keepalive_interval=0.05)
    assert (config.connection_timeout_ms, config.keepalive_interval) == (300, 0.05)


def test_build_config_limits_directly_and_as_mapping() -> None:
    """Limits fields work at the top level, as a mapping, or as a Limits object."""
    config = testing.build_config(max_events_per_publish=2, limits={"send_queue_frames": 7})
    assert config.limits.max_events_per_publish == 2
    assert config.limits.send_queue_frames == 7
    assert testing.build_config(limits=Limits(max_connections=3)).limits.max_connections == 3


def test_build_config_unknown_limit() -> None:
    """An unknown key in limits= is named."""
    with pytest.raises(ConfigError, match="limits: unknown limit 'max_fun'"):
        testing.build_config(limits={"max_fun": 1})
    with pytest.raises(ConfigError, match="expected a Limits or a mapping"):
        testing.build_config(limits=5)


def test_build_config_unknown_option_lists_known() -> None:
    """A typo is a ConfigError that lists the valid options."""
    with pytest.raises(ConfigError, match=r"option .keepalive. \(one of .*keepalive_interval"):
        testing.build_config(keepalive=1)


def test_build_config_invalid_value_is_config_error() -> None:
    """Validation of EmulatorConfig surfaces as ConfigError."""
    with pytest.raises(ConfigError, match="keepalive_interval must be positive"):
        testing.build_config(keepalive_interval=0)


def test_parse_server_options_splits_server_keys() -> None:
    """tls, host and faults configure the server; the rest the config."""
    fault = object()
    opts = testing.parse_server_options(
        EmulatorConfig(), (), {"tls": True, "host": "::1", "faults": [fault], "region": "x-1"}
    )
    assert (opts.tls, opts.host, opts.faults) == (True, "::1", (fault,))
    assert opts.config.region == "x-1"


def test_parse_server_options_single_fault_and_defaults() -> None:
    """A single fault needs no list; host and tls default to the pool's."""
    fault = object()
    opts = testing.parse_server_options(EmulatorConfig(), (), {"faults": fault}, host="h", tls=True)
    assert (opts.faults, opts.host, opts.tls) == ((fault,), "h", True)


def test_parse_server_options_positional_config() -> None:
    """A positional EmulatorConfig (or config=) replaces the base; keywords apply on top."""
    given = EmulatorConfig(region="ap-south-1")
    opts = testing.parse_server_options(EmulatorConfig(), (given,), {"keepalive_interval": 1.0})
    assert opts.config == given.replace(keepalive_interval=1.0)
    assert testing.parse_server_options(EmulatorConfig(), (), {"config": given}).config == given


def test_parse_server_options_rejects_bad_positionals() -> None:
    """Anything but one EmulatorConfig positionally is refused with a hint."""
    with pytest.raises(ConfigError, match="at most one positional EmulatorConfig"):
        testing.parse_server_options(EmulatorConfig(), ("default",))
    with pytest.raises(ConfigError, match="config: expected an EmulatorConfig"):
        testing.parse_server_options(EmulatorConfig(), (), {"config": {"region": "x"}})


def _ini(values: dict[str, Any]) -> Any:
    defaults = {name: default for name, _, default, _ in testing.INI_OPTIONS}
    return lambda name: {**defaults, **values}[name]


def test_settings_from_ini_defaults(tmp_path: Path) -> None:
    """Unset ini options give the zero configuration on 127.0.0.1 without TLS."""
    s = testing.settings_from_ini(_ini({}), tmp_path)
    assert s == testing.Settings(config=EmulatorConfig())


def test_settings_from_ini_values(tmp_path: Path) -> None:
    """Every ini option lands in the config, hosting or client defaults."""
    (tmp_path / "emu.toml").write_text('region = "eu-north-1"\n')
    s = testing.settings_from_ini(
        _ini(
            {
                "appsync_host": "localhost",
                "appsync_tls": True,
                "appsync_config": "emu.toml",
                "appsync_namespaces": ["default", "chat"],
                "appsync_keepalive_interval": "0.05",
                "appsync_connection_timeout_ms": "300",
                "appsync_handshake_timeout": "2",
                "appsync_operation_timeout": "1.5",
            }
        ),
        tmp_path,
    )
    assert (s.host, s.tls) == ("localhost", True)
    assert s.config.region == "eu-north-1"
    assert [n.name for n in s.config.namespaces] == ["default", "chat"]
    assert (s.config.keepalive_interval, s.config.connection_timeout_ms) == (0.05, 300)
    assert s.client_options == {"handshake_timeout": 2.0, "operation_timeout": 1.5}
    assert testing.settings_from_ini(_ini({"appsync_region": "sa-east-1"}), tmp_path).config.region


def test_settings_from_ini_bad_number(tmp_path: Path) -> None:
    """A non-numeric timeout names the ini option."""
    with pytest.raises(ConfigError, match="appsync_connection_timeout_ms: expected a int"):
        testing.settings_from_ini(_ini({"appsync_connection_timeout_ms": "5m"}), tmp_path)


_OK: dict[str, Any] = {
    "fixture": "appsync_client",
    "test": "t.py::test_x",
    "test_is_async": True,
    "asyncio_mode": "strict",
    "has_asyncio_marker": True,
    "marker_loop_scope": None,
    "default_test_loop_scope": "function",
    "default_fixture_loop_scope": "function",
}


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"default_test_loop_scope": "session", "default_fixture_loop_scope": "session"},
        {"marker_loop_scope": "module", "default_fixture_loop_scope": "module"},
        {"default_fixture_loop_scope": None},
        {"default_fixture_loop_scope": "fixture-scope"},
        {"asyncio_mode": "auto", "has_asyncio_marker": False},
    ],
)
def test_check_loop_scopes_accepts_matching_scopes(changes: dict[str, Any]) -> None:
    """Equal test and fixture loop scopes pass (None and fixture-scope mean function)."""
    testing.check_loop_scopes(**{**_OK, **changes})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"default_fixture_loop_scope": "session"}, "'session'-scoped event loop but"),
        ({"marker_loop_scope": "session"}, "Set asyncio_default_fixture_loop_scope = session"),
        ({"default_test_loop_scope": "module"}, "runs on the 'module'-scoped loop"),
        ({"test_is_async": False}, "is not a coroutine function"),
        ({"has_asyncio_marker": False}, "has no @pytest.mark.asyncio"),
    ],
)
def test_check_loop_scopes_explains_mismatch(changes: dict[str, Any], message: str) -> None:
    """A mismatch raises LoopScopeError saying what to change."""
    with pytest.raises(testing.LoopScopeError, match=message):
        testing.check_loop_scopes(**{**_OK, **changes})


class _FakeClient:
    def __init__(self, log: list[str], name: str) -> None:
        self.log, self.name = log, name

    async def close(self) -> None:
        self.log.append(self.name)


class _FakeServer:
    http_endpoint = "http://127.0.0.1:1/event"
    realtime_endpoint = "ws://127.0.0.1:1/event/realtime"
    region = "us-east-1"
    api_key = "da2-fake"
    config = EmulatorConfig()


@pytest.mark.asyncio
async def test_client_pool_closes_lifo_and_passes_options(monkeypatch: pytest.MonkeyPatch) -> None:
    """Clients are connected with defaults merged with call options and closed newest first."""
    import appsync_events

    log: list[str] = []
    calls: list[tuple[str, dict[str, Any]]] = []

    async def fake_connect(endpoint: str, **kw: Any) -> _FakeClient:
        calls.append((endpoint, kw))
        return _FakeClient(log, f"c{len(calls)}")

    monkeypatch.setattr(appsync_events, "connect", fake_connect, raising=False)
    pool = testing.ClientPool({"operation_timeout": 1.0})
    await pool.connect(_FakeServer())
    await pool.connect(_FakeServer(), authorizer="custom", operation_timeout=2.0)  # type: ignore[arg-type]
    await pool.aclose()
    assert log == ["c2", "c1"]
    assert calls[0][0] == _FakeServer.realtime_endpoint
    assert calls[0][1]["operation_timeout"] == 1.0
    assert calls[1][1]["authorizer"] == "custom"
    assert calls[1][1]["operation_timeout"] == 2.0


@pytest.mark.asyncio
async def test_client_pool_closes_all_even_if_one_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """A failing close() does not leave the older clients open; it is re-raised after."""
    import appsync_events

    log: list[str] = []

    class Failing(_FakeClient):
        async def close(self) -> None:
            raise RuntimeError("close failed")

    clients = iter([_FakeClient(log, "old"), Failing(log, "new")])

    async def fake_connect(endpoint: str, **kw: Any) -> _FakeClient:
        return next(clients)

    monkeypatch.setattr(appsync_events, "connect", fake_connect, raising=False)
    pool = testing.ClientPool()
    await pool.connect(_FakeServer())
    await pool.connect(_FakeServer())
    with pytest.raises(RuntimeError, match="close failed"):
        await pool.aclose()
    assert log == ["old"]


def test_client_pool_refuses_clients_of_another_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """A client connected on another loop is reported, not awaited forever."""
    import appsync_events

    log: list[str] = []

    async def fake_connect(endpoint: str, **kw: Any) -> _FakeClient:
        return _FakeClient(log, "c")

    monkeypatch.setattr(appsync_events, "connect", fake_connect, raising=False)
    pool = testing.ClientPool()
    asyncio.run(pool.connect(_FakeServer()))
    with pytest.raises(testing.LoopScopeError, match="connected on another event loop"):
        asyncio.run(pool.aclose())
    assert log == []


def test_server_pool_stops_lifo_after_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """Servers are checked then stopped newest first; a check failure still stops them all."""
    import appsync_emulator

    log: list[str] = []

    class FakeThread:
        count = 0

        def __init__(self, config: EmulatorConfig, *, host: str, tls: bool) -> None:
            FakeThread.count += 1
            self.name, self.config, self.host, self.tls = f"s{self.count}", config, host, tls
            self.faults: list[object] = []

        def __enter__(self) -> FakeThread:
            return self

        def __exit__(self, *exc: object) -> None:
            log.append(f"stop {self.name}")

        def check(self) -> None:
            log.append(f"check {self.name}")
            if self.name == "s2":
                raise AssertionError("handler failed")

        def inject(self, fault: object) -> None:
            self.faults.append(fault)

    monkeypatch.setattr(appsync_emulator, "EmulatorThread", FakeThread, raising=False)
    pool = testing.ServerPool(EmulatorConfig(), host="h")
    s1: Any = pool.start(region="r-1")
    s2: Any = pool.start(tls=True, faults=["f"])
    assert (s1.config.region, s1.host, s1.tls) == ("r-1", "h", False)
    assert (s2.tls, s2.faults) == (True, ["f"])
    with pytest.raises(AssertionError, match="handler failed"):
        pool.close()
    assert log == ["check s2", "stop s2", "check s1", "stop s1"]


def test_authorizers_need_credentials() -> None:
    """Helpers explain a server without API keys or IAM credentials."""
    server: Any = _FakeServer()
    server.api_key = None
    with pytest.raises(ConfigError, match="no API key"):
        testing.api_key_authorizer(server)
    server.config = EmulatorConfig(iam_credentials=())
    with pytest.raises(ConfigError, match="no IAM credentials"):
        testing.iam_authorizer(server)


@pytest.mark.asyncio
async def test_authorizers_build_headers_for_the_server() -> None:
    """API key, IAM and Lambda helpers sign for the server's host."""
    from appsync_events.authorizer import AuthorizeRequest, Operation

    helpers = testing.Authorizers(_FakeServer())
    request = AuthorizeRequest(operation=Operation.CONNECT)
    key = (await helpers.api_key().authorize(request)).authorization
    assert key["x-api-key"] == "da2-fake"
    assert key["host"] == "127.0.0.1:1"
    iam = {k.lower(): v for k, v in (await helpers.iam().authorize(request)).authorization.items()}
    assert iam["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIAEMULATORLOCAL000/")
    token = (await helpers.lambda_token("let-me-in").authorize(request)).authorization
    assert token["Authorization"] == "let-me-in"


def test_merge_markers_closest_wins() -> None:
    """Marks come closest first; the farther ones fill in missing keywords."""
    config = EmulatorConfig(region="x-1")
    marks = [
        pytest.mark.appsync(region="fn").mark,
        pytest.mark.appsync(config, tls=True).mark,
        pytest.mark.appsync(region="mod", host="::1").mark,
    ]
    merged = testing.merge_markers(marks)
    assert merged == {"region": "fn", "config": config, "tls": True, "host": "::1"}


def test_merge_markers_rejects_bad_positionals() -> None:
    """Positional arguments other than one EmulatorConfig are refused."""
    with pytest.raises(ConfigError, match="at most one positional EmulatorConfig"):
        testing.merge_markers([pytest.mark.appsync("default", "chat").mark])


def test_parse_server_options_config_keyword_with_positional() -> None:
    """A positional config wins over config= and config= is never passed on as a field."""
    a, b = EmulatorConfig(region="a-1"), EmulatorConfig(region="b-1")
    assert testing.parse_server_options(EmulatorConfig(), (a,), {"config": b}).config == a


def test_build_config_lambda_and_issuer_shorthands() -> None:
    """lambda_authorizer takes a callable, a path or a mapping; cognito/oidc a mapping."""
    from appsync_emulator.config import LambdaAuthorizerConfig, OidcConfig

    def allow(request: object) -> dict[str, bool]:
        return {"isAuthorized": True}

    assert testing.build_config(lambda_authorizer=allow).lambda_authorizer == (
        LambdaAuthorizerConfig(authorizer=allow)
    )
    assert testing.build_config(lambda_authorizer="m:f").lambda_authorizer == (
        LambdaAuthorizerConfig(authorizer="m:f")
    )
    config = testing.build_config(
        lambda_authorizer={"authorizer": allow, "result_ttl_seconds": 5},
        cognito={"user_pool_id": "pool"},
        oidc={"client_id": "abc"},
    )
    assert config.lambda_authorizer is not None
    assert config.lambda_authorizer.result_ttl_seconds == 5
    assert config.cognito == CognitoConfig(user_pool_id="pool")
    assert config.oidc == OidcConfig(client_id="abc")


def test_build_config_lists_become_tuples() -> None:
    """A list for a tuple field (not covered by a shorthand) becomes a tuple."""
    creds = IamCredentials(access_key_id="AKIDEXAMPLE", secret_access_key="s")
    assert testing.build_config(iam_credentials=[creds]).iam_credentials == (creds,)


@pytest.mark.asyncio
async def test_token_authorizers_mint_with_the_server_issuer() -> None:
    """cognito() and oidc() mint with the server's issuer; oidc uses its issuer and audience."""
    import jwt

    from appsync_emulator.issuer import LocalIssuer
    from appsync_events.authorizer import AuthorizeRequest, Operation

    server: Any = _FakeServer()
    server.issuer = LocalIssuer()
    request = AuthorizeRequest(operation=Operation.CONNECT)

    async def claims(authz: Any) -> dict[str, Any]:
        token = (await authz.authorize(request)).authorization["Authorization"]
        return dict(jwt.decode(token, options={"verify_signature": False}))

    cognito = await claims(testing.cognito_authorizer(server, sub="alice", groups=["a"]))
    assert (cognito["sub"], cognito["iss"], cognito["cognito:groups"]) == (
        "alice",
        server.issuer.issuer,
        ["a"],
    )
    oidc = await claims(testing.oidc_authorizer(server, sub="bob"))
    assert (oidc["iss"], oidc["aud"]) == (server.issuer.oidc_issuer, server.issuer.client_id)
    server.config = testing.build_config(oidc={"client_id": "my-app"})
    assert (await claims(testing.Authorizers(server).oidc()))["aud"] == "my-app"
