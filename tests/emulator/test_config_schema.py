"""The configuration file schema: every mistake is one line naming the user's key, status 2.

Each case the first-hour review saw has a test here; a Hypothesis test then mutates a valid
file (wrong types, unknown keys, bad auth modes) and checks the same promise for all of them.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from appsync_emulator import cli
from appsync_emulator.config import AuthType, ConfigError, EmulatorConfig
from appsync_emulator.config_schema import (
    ConfigFile,
    config_from_mapping,
    load_config_file,
    resolve_references,
)
from appsync_emulator.testing import build_config

MODES = "API_KEY, AWS_IAM, AMAZON_COGNITO_USER_POOLS, OPENID_CONNECT, AWS_LAMBDA"


def check(tmp_path: Path, text: str, name: str = "emu.toml") -> tuple[int, str, str]:
    """``appsync-emulator check-config`` in-process: (status, stdout, stderr)."""
    path = tmp_path / name
    path.write_text(text)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main(["check-config", str(path)])
    return status, out.getvalue(), err.getvalue()


def refused(tmp_path: Path, text: str, name: str = "emu.toml") -> str:
    """The one line a refused file gets (status 2, nothing else printed)."""
    status, out, err = check(tmp_path, text, name)
    assert status == 2, (out, err)
    assert out == ""
    assert err.endswith("\n")
    assert err.count("\n") == 1, err
    return err.rstrip("\n")


# --- the cases seen --------------------------------------------------------------------------

SEEN = [
    # (file text, the exact line)
    (
        'apiKeys = "da2-x"',
        'emu.toml: apiKeys: expected a list, got a string (write ["..."] for a list of one)',
    ),
    (
        'namespaces = "chat"',
        "emu.toml: namespaces: expected a list, got 'chat' (write [\"chat\"] for a list of one)",
    ),
    ('regoin = "eu-west-1"', "emu.toml: unknown key 'regoin' (did you mean 'region'?)"),
    (
        '[limits]\nmax_events_per_publish = "five"',
        "emu.toml: limits.max_events_per_publish: expected an integer, got 'five'",
    ),
    ("apiKeys = 5", "emu.toml: apiKeys: expected a list, got an integer"),
    (
        '[eventConfig]\nauthProviders = [{ authType = "AMAZON_COGNITO_USER_POOLS", cognitoConfig = "pool" }]',  # noqa: E501
        "emu.toml: eventConfig.authProviders[0].cognitoConfig: expected a table, got 'pool'",
    ),
    (
        '[eventConfig]\nauthProviders = [{ authType = "AWS_LAMBDA", lambdaAuthorizerConfig = { authorizerUri = "m:f", authorizerResultTtlInSeconds = "sixty" } }]',  # noqa: E501
        "emu.toml: eventConfig.authProviders[0].lambdaAuthorizerConfig.authorizerResultTtlInSeconds: expected an integer, got 'sixty'",  # noqa: E501
    ),
    (
        '[eventConfig]\nconnectionAuthModes = [{ authType = "APIKEY" }]',
        f"emu.toml: eventConfig.connectionAuthModes[0].authType: 'APIKEY' is not one of {MODES}",
    ),
    (
        '[eventConfig]\nconnectionAuthModes = ["APIKEY"]',
        f"emu.toml: eventConfig.connectionAuthModes[0]: 'APIKEY' is not one of {MODES}",
    ),
    (
        '[eventConfig]\nauthProviders = [{ authType = "API_KEY" }]\ndefaultPublishAuthModes = ["API_KEY", "AWS_IAM"]',  # noqa: E501
        'emu.toml: eventConfig.defaultPublishAuthModes[1]: AWS_IAM is not in eventConfig.authProviders (add { authType = "AWS_IAM" } there)',  # noqa: E501
    ),
    (
        '[[namespaces]]\nname = "chat"\npublishAuthModes = ["AWS_LAMBDA"]',
        'emu.toml: namespaces[0].publishAuthModes[0]: AWS_LAMBDA needs eventConfig.authProviders with { authType = "AWS_LAMBDA", lambdaAuthorizerConfig = { authorizerUri = "module:function" } }',  # noqa: E501
    ),
    (
        '[eventConfig]\nauthProviders = [{ authType = "AWS_LAMBDA" }]',
        'emu.toml: eventConfig.authProviders[0]: AWS_LAMBDA needs lambdaAuthorizerConfig = { authorizerUri = "module:function" }',  # noqa: E501
    ),
    (
        '[eventConfig]\nauthProviders = [{ authType = "API_KEY", cognitoConfig = {} }]',
        "emu.toml: eventConfig.authProviders[0].cognitoConfig: belongs to AMAZON_COGNITO_USER_POOLS, not API_KEY",  # noqa: E501
    ),
    (
        '[eventConfig]\nconnectonAuthModes = ["API_KEY"]',
        "emu.toml: eventConfig: unknown key 'connectonAuthModes' (did you mean 'connectionAuthModes'?)",  # noqa: E501
    ),
    (
        '[[namespaces]]\nnme = "chat"',
        "emu.toml: namespaces[0]: unknown key 'nme' (did you mean 'name'?) (and 1 more)",
    ),
    ('namespaces = ["bad_name"]', "emu.toml: namespaces[0].name: "),
    ('namespaces = ["chat", "chat"]', "emu.toml: namespaces[1].name: 'chat' is defined twice"),
    ("namespaces = []", "emu.toml: namespaces: at least one namespace is required"),
    (
        '[[namespaces]]\nname = "chat"\nonPublish = "no_colon"',
        "emu.toml: namespaces[0].onPublish: expected 'module:function', got 'no_colon'",
    ),
    ("keepAliveIntervalSeconds = 0", "emu.toml: keepAliveIntervalSeconds: must be > 0, got 0"),
    ("strictAwsEscaping = 1", "emu.toml: strictAwsEscaping: expected true or false, got 1"),
    ("connectionTimeoutMs = 1.5", "emu.toml: connectionTimeoutMs: expected an integer, got 1.5"),
    (
        'apiKeys = [{ key = "da2-a", expires = "soon" }]',
        "emu.toml: apiKeys[0].expires: 'soon' is not an ISO 8601 time",
    ),
    (
        'apiKeys = [{ description = "no key" }]',
        "emu.toml: apiKeys[0]: give the key as 'key' (or 'id'), once",
    ),
    (
        '[[iamCredentials]]\naccessKeyId = "AKIA"',
        "emu.toml: iamCredentials[0]: missing key 'secretAccessKey'",
    ),
    (
        '[eventConfig]\nauthProviders = [{ authType = "AWS_LAMBDA", lambdaAuthorizerConfig = { authorizerUri = "m:f", identityValidationExpression = "(" } }]',  # noqa: E501
        "emu.toml: eventConfig.authProviders[0].lambdaAuthorizerConfig.identityValidationExpression: '(' is not a regular expression: missing ), unterminated subpattern at position 0",  # noqa: E501
    ),
    ("region = [", "emu.toml: invalid TOML: "),
]


@pytest.mark.parametrize(("text", "line"), SEEN, ids=[t.split("\n")[-1][:40] for t, _ in SEEN])
def test_each_mistake_seen_is_one_line_and_status_2(tmp_path: Path, text: str, line: str) -> None:
    """The one line, naming the user's key (never a Python field name), and status 2."""
    got = refused(tmp_path, text)
    assert got.startswith(line) if line.endswith(": ") else got == line
    assert "connection_auth_modes" not in got
    assert "auth_providers" not in got


def test_a_yaml_file_says_toml_and_json_are_supported(tmp_path: Path) -> None:
    assert refused(tmp_path, "region: eu-west-1\n", "emu.yaml") == (
        "emu.yaml: unsupported file type '.yaml': TOML (.toml) and JSON (.json) are supported"
    )


def test_json_mistakes_name_the_key_too(tmp_path: Path) -> None:
    text = json.dumps({"eventConfig": {"connectionAuthModes": [{"authType": "APIKEY"}]}})
    assert refused(tmp_path, text, "emu.json").startswith(
        "emu.json: eventConfig.connectionAuthModes[0].authType: 'APIKEY' is not one of"
    )
    assert refused(tmp_path, "{nope", "emu.json").startswith("emu.json: invalid JSON: ")
    assert refused(tmp_path, "[1]", "emu.json") == (
        "emu.json: the top level must be a table/object"
    )


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main(["check-config", str(tmp_path / "nope.toml")])
    assert status == 2
    assert err.getvalue().count("\n") == 1
    assert "nope.toml: cannot read config file: No such file or directory" in err.getvalue()


def test_credentials_are_never_repeated_in_a_message(tmp_path: Path) -> None:
    """A wrong-typed secret is described by its kind, not echoed."""
    line = refused(
        tmp_path, '[[iamCredentials]]\naccessKeyId = "AKIA"\nsecretAccessKey = ["s3cr3t"]'
    )
    assert line == "emu.toml: iamCredentials[0].secretAccessKey: expected a string, got a list"
    assert "s3cr3t" not in refused(tmp_path, 'apiKeys = "s3cr3t"')


# --- snippets that must work alone (no default the user did not write may break them) ----


@pytest.mark.parametrize(
    ("text", "providers", "connection"),
    [
        ("", ("API_KEY",), ("API_KEY",)),
        (
            '[eventConfig]\nauthProviders = [{ authType = "AWS_IAM" }]',
            ("AWS_IAM",),
            ("AWS_IAM",),
        ),
        (
            '[eventConfig]\nauthProviders = [{ authType = "AWS_LAMBDA", lambdaAuthorizerConfig '
            '= { authorizerUri = "my_auth:authorize", identityValidationExpression = "^tok-" } }]',
            ("AWS_LAMBDA",),
            ("AWS_LAMBDA",),
        ),
        (
            '[eventConfig]\nconnectionAuthModes = [{ authType = "AMAZON_COGNITO_USER_POOLS" }]',
            ("AMAZON_COGNITO_USER_POOLS",),
            ("AMAZON_COGNITO_USER_POOLS",),
        ),
        (
            '[[namespaces]]\nname = "chat"\npublishAuthModes = ["AWS_IAM"]',
            ("AWS_IAM",),
            ("AWS_IAM",),
        ),
    ],
)
def test_snippets_load_alone(
    tmp_path: Path, text: str, providers: tuple[str, ...], connection: tuple[str, ...]
) -> None:
    """Unwritten mode lists follow the providers; unwritten providers follow the mode lists."""
    path = tmp_path / "emu.toml"
    path.write_text(text)
    config = load_config_file(path)
    assert config.auth_providers == providers
    assert config.connection_auth_modes == connection
    assert config.default_publish_auth_modes == providers
    assert config.default_subscribe_auth_modes == providers


def test_every_key_the_old_loader_accepted_still_loads() -> None:
    """Strings and tables for keys and namespaces, the ``id`` alias, modes as strings."""
    config = EmulatorConfig.from_mapping(
        {
            "apiKeys": ["da2-a", {"id": "da2-b", "expires": 2_000_000_000}],
            "namespaces": ["default", {"name": "chat", "publishAuthModes": ["API_KEY"]}],
            "eventConfig": {"connectionAuthModes": [{"authType": "API_KEY"}, "AWS_IAM"]},
            "keepAliveIntervalSeconds": 30,
            "limits": {"max_events_per_publish": 3},
        }
    )
    assert [k.key for k in config.api_keys] == ["da2-a", "da2-b"]
    assert config.api_keys[1].expires is not None
    assert config.auth_providers == (AuthType.API_KEY, AuthType.AWS_IAM)
    assert config.keepalive_interval == 30.0
    assert config.limits.max_events_per_publish == 3


def test_from_mapping_raises_config_error_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"^limits\.max_events_per_publish: expected an"):
        EmulatorConfig.from_mapping({"limits": {"max_events_per_publish": "five"}})
    with pytest.raises(ConfigError, match=r"^unknown key 'regoin'"):
        config_from_mapping({"regoin": "x"})


def test_build_config_refuses_wrong_types_naming_the_key() -> None:
    """The Python API gives the same kind of ConfigError (with Python names)."""
    with pytest.raises(ConfigError, match=r"^limits\.max_events_per_publish: expected an integer"):
        build_config(max_events_per_publish="five")
    with pytest.raises(ConfigError, match=r"^limits\.send_queue_frames must be positive, got 0"):
        build_config(limits={"send_queue_frames": 0})
    with pytest.raises(ConfigError, match=r"^keepalive_interval: expected a number"):
        build_config(keepalive_interval="60")
    with pytest.raises(ConfigError, match=r"^connection_timeout_ms: expected an integer"):
        build_config(connection_timeout_ms=True)
    assert build_config(keepalive_interval=1).keepalive_interval == 1


def test_check_config_accepts_the_example_and_starts_nothing(tmp_path: Path) -> None:
    status, out, err = check(tmp_path, cli.EXAMPLE_CONFIG)
    assert (status, err) == (0, "")
    assert out.startswith("emu.toml: OK (namespaces: default, chat; auth providers: API_KEY")


def authorize(event: dict[str, Any]) -> dict[str, Any]:
    """An authorizer for the Python API tests."""
    return {"isAuthorized": True}


# --- references are imported when the config is checked -----------------------------------


@pytest.fixture
def in_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in ``tmp_path`` with an import path the test can dirty."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    return tmp_path


def test_references_are_imported_from_the_current_folder(in_folder: Path) -> None:
    (in_folder / "first_my_auth.py").write_text(
        "def authorize(event):\n    return {'isAuthorized': True}\n"
    )
    status, _out, err = check(
        in_folder,
        '[eventConfig]\nauthProviders = [{ authType = "AWS_LAMBDA", lambdaAuthorizerConfig = '
        '{ authorizerUri = "first_my_auth:authorize" } }]',
    )
    assert (status, err) == (0, ""), err


@pytest.mark.parametrize(
    ("text", "start"),
    [
        (
            '[[namespaces]]\nname = "default"\nonPublish = "first_no_such_module:on_publish"',
            "emu.toml: namespaces[0].onPublish: handler 'first_no_such_module:on_publish': "
            "cannot import 'first_no_such_module': No module named 'first_no_such_module'",
        ),
        (
            '[[namespaces]]\nname = "default"\n[[namespaces]]\nname = "chat"\n'
            'onSubscribe = "json:no_such_function"',
            "emu.toml: namespaces[1].onSubscribe: handler 'json:no_such_function': 'json' has "
            "no 'no_such_function'",
        ),
        (
            '[eventConfig]\nauthProviders = [{ authType = "API_KEY" }, { authType = "AWS_LAMBDA", '
            'lambdaAuthorizerConfig = { authorizerUri = "json:__name__" } }]',
            "emu.toml: eventConfig.authProviders[1].lambdaAuthorizerConfig.authorizerUri: "
            "Lambda authorizer 'json:__name__': '__name__' is not callable",
        ),
    ],
)
def test_a_bad_reference_fails_at_start_naming_key_and_reference(
    in_folder: Path, text: str, start: str
) -> None:
    assert refused(in_folder, text) == start


def test_a_module_that_fails_to_import_is_one_line(in_folder: Path) -> None:
    (in_folder / "first_broken.py").write_text("def f(:\n    pass\n")
    line = refused(in_folder, '[[namespaces]]\nname = "default"\nonPublish = "first_broken:f"')
    assert line.startswith(
        "emu.toml: namespaces[0].onPublish: handler 'first_broken:f': cannot import"
    )


def test_resolve_references_ignores_callables() -> None:
    resolve_references(build_config(lambda_authorizer=authorize, auth_modes=["AWS_LAMBDA"]))


# --- generated mistakes ---------------------------------------------------------------------

VALID: dict[str, Any] = tomllib.loads(cli.EXAMPLE_CONFIG)


def _paths(node: Any, loc: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Every (location, value) in the parsed example, containers included."""
    yield loc, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*loc, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, (*loc, i))


def _where(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _set(data: Any, loc: tuple[Any, ...], value: Any) -> Any:
    copy = json.loads(json.dumps(data, default=str))
    target = copy
    for part in loc[:-1]:
        target = target[part]
    target[loc[-1]] = value
    return copy


def _wrong(value: Any) -> Any:
    """A value of a type no key accepts where ``value`` stands."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return 5
    return "five"  # numbers, booleans and lists never accept a string


def _all_fields() -> set[str]:
    fields: set[str] = set()
    stack: list[Any] = [ConfigFile]
    while stack:
        model = stack.pop()
        for name, info in model.model_fields.items():
            fields.add(name)
            stack.extend(_models(info.annotation))
    return fields


ALL_PATHS = [(loc, v) for loc, v in _paths(VALID) if loc]
TABLES = [loc for loc, v in _paths(VALID) if isinstance(v, dict)]
MODE_PATHS = [loc for loc, v in ALL_PATHS if loc[-1] == "authType"]


@st.composite
def mutations(draw: st.DrawFn) -> tuple[Any, str, str]:
    """(mutated data, the location the line must name, a word the line must contain)."""
    kind = draw(st.sampled_from(["type", "unknown", "mode"]))
    if kind == "type":
        loc, value = draw(st.sampled_from(ALL_PATHS))
        return _set(VALID, loc, _wrong(value)), _where(loc), "expected"
    if kind == "unknown":
        loc = draw(st.sampled_from(TABLES))
        key = draw(st.text(st.characters(codec="utf-8"), min_size=1, max_size=12))
        node: Any = VALID
        for part in loc:
            node = node[part]
        if key in node or key in ALL_FIELDS:
            key += "_unknown"
        data = _set(VALID, (*loc, key), 1) if loc else {**VALID, key: 1}
        return data, _where(loc), f"unknown key {key!r}"
    loc = draw(st.sampled_from(MODE_PATHS))
    bad = draw(st.text(min_size=0, max_size=12).filter(lambda s: s not in AuthType.__members__))
    return _set(VALID, loc, bad), _where(loc), "is not one of"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations())
def test_generated_mistakes_are_one_line_naming_the_key(case: tuple[Any, str, str]) -> None:
    """Mutate the example config: always status 2, one line, the key and the problem named."""
    data, where, words = case
    with pytest.raises(ConfigError) as info:
        config_from_mapping(data, source="emu.json")
    line = str(info.value)
    assert "\n" not in line
    assert line.startswith(f"emu.json: {where}" if where else "emu.json: ")
    assert words in line


def test_generated_mistakes_through_the_command(tmp_path: Path) -> None:
    """The same promise end to end for a few mutations: exit status 2, one stderr line."""
    for loc, value in ALL_PATHS[::7]:
        text = json.dumps(_set(VALID, loc, _wrong(value)), default=str)
        line = refused(tmp_path, text, "emu.json")
        assert line.startswith(f"emu.json: {_where(loc)}"), line


def test_the_schema_covers_every_example_key() -> None:
    """Each key of the example file is a schema field, and each schema field is in the example."""
    keys = {str(loc[-1]) for loc, _ in ALL_PATHS if isinstance(loc[-1], str)}
    fields = ALL_FIELDS
    assert keys <= fields
    # "id" is the old alias of apiKeys[].key; the others are in the example's comments.
    commented = {
        "jwksFile",
        "issuer",
        "tokenKeyFile",
        "sessionToken",
        "onPublish",
        "onSubscribe",
        "codeHandlersFile",
    }
    assert fields - keys <= {"id", *commented}
    assert all(f"# {key}" in cli.EXAMPLE_CONFIG for key in commented - {"jwksFile", "issuer"})


def _models(annotation: Any) -> list[Any]:
    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[Any] = []
    for arg in (*getattr(annotation, "__args__", ()), *getattr(annotation, "__metadata__", ())):
        found.extend(_models(arg))
    origin = getattr(annotation, "__origin__", None)
    if origin is not None and origin is not annotation:
        found.extend(_models(origin))
    return found


ALL_FIELDS = _all_fields()
