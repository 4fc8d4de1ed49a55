"""The handler keys of the configuration file: AWS's ChannelNamespace names, one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from appsync_emulator.config import (
    ConfigError,
    DataSourceConfig,
    EmulatorConfig,
    HandlerBehavior,
    HandlerConfig,
    HandlerConfigs,
    InvokeType,
    NamespaceConfig,
)
from appsync_emulator.config_schema import config_from_mapping, load_config_file

CODE = "export const onPublish = (ctx) => ctx.events\n"
LAMBDA = {"name": "fn", "lambdaConfig": {"lambdaFunctionArn": "json:dumps"}}


def _direct(op: str = "onPublish", **integration: Any) -> dict[str, Any]:
    return {op: {"behavior": "DIRECT", "integration": {"dataSourceName": "fn", **integration}}}


def test_the_aws_shape_builds_the_config() -> None:
    config = config_from_mapping(
        {
            "dataSources": [LAMBDA],
            "namespaces": [
                {
                    "name": "chat",
                    "codeHandlers": CODE,
                    "handlerConfigs": {
                        "onPublish": {"behavior": "CODE"},
                        **_direct("onSubscribe", lambdaConfig={"invokeType": "EVENT"}),
                    },
                }
            ],
            "jsRuntime": {"invokeTimeoutSeconds": 0.5, "memoryLimitMiB": 32, "engines": 3},
        }
    )
    (ns,) = config.namespaces
    assert ns.code_handlers == CODE
    assert ns.handler_configs == HandlerConfigs(
        on_publish=HandlerConfig(behavior=HandlerBehavior.CODE),
        on_subscribe=HandlerConfig(
            behavior=HandlerBehavior.DIRECT, data_source_name="fn", invoke_type=InvokeType.EVENT
        ),
    )
    assert config.data_sources == (DataSourceConfig(name="fn", function="json:dumps"),)
    assert config.js_limits.memory_limit == 32 << 20
    assert config.js_limits.engines == 3


def test_a_relative_code_file_is_read_from_the_config_files_folder(tmp_path: Path) -> None:
    (tmp_path / "js").mkdir()
    (tmp_path / "js" / "chat.js").write_text(CODE)
    path = tmp_path / "emu.toml"
    path.write_text('[[namespaces]]\nname = "chat"\ncodeHandlersFile = "js/chat.js"\n')
    (ns,) = load_config_file(path).namespaces
    assert ns.code_handlers_file == str(tmp_path / "js" / "chat.js")


@pytest.mark.parametrize(
    ("data", "line"),
    [
        (
            {"namespaces": [{"name": "a", "codeHandlersFile": "missing.js"}]},
            "namespaces[0].codeHandlersFile: no such file",
        ),
        (
            {"namespaces": [{"name": "a", "codeHandlers": CODE, "codeHandlersFile": "x.js"}]},
            "namespaces[0].codeHandlersFile: give codeHandlers or codeHandlersFile, not both",
        ),
        (
            {"namespaces": [{"name": "a", "handlerConfigs": {"onPublish": {"behavior": "RUN"}}}]},
            "namespaces[0].handlerConfigs.onPublish.behavior: 'RUN' is not one of CODE, DIRECT",
        ),
        (
            {"namespaces": [{"name": "a", "handlerConfigs": {"onPublish": {"behavior": "CODE"}}}]},
            "namespaces[0].handlerConfigs.onPublish.behavior: CODE needs codeHandlers",
        ),
        (
            {
                "namespaces": [
                    {"name": "a", "handlerConfigs": {"onPublish": {"behavior": "DIRECT"}}}
                ]
            },
            "namespaces[0].handlerConfigs.onPublish: DIRECT needs integration",
        ),
        (
            {"namespaces": [{"name": "a", "handlerConfigs": _direct()}]},
            "namespaces[0].handlerConfigs.onPublish.integration.dataSourceName: no data source "
            "'fn' in dataSources (defined: none)",
        ),
        (
            {
                "dataSources": [LAMBDA],
                "namespaces": [
                    {"name": "a", "handlerConfigs": _direct(lambdaConfig={"invokeType": "SYNC"})}
                ],
            },
            "namespaces[0].handlerConfigs.onPublish.integration.lambdaConfig.invokeType: 'SYNC' "
            "is not one of REQUEST_RESPONSE, EVENT",
        ),
        (
            {"namespaces": [{"name": "a", "onPublish": "m:f", "codeHandlers": CODE}]},
            "namespaces[0].onPublish: a Python handler and codeHandlers both handle",
        ),
        (
            {
                "dataSources": [LAMBDA],
                "namespaces": [{"name": "a", "onPublish": "m:f", "handlerConfigs": _direct()}],
            },
            "namespaces[0].onPublish: handlerConfigs.onPublish is also set; keep one",
        ),
        (
            {"dataSources": [LAMBDA, LAMBDA]},
            "dataSources[1].name: 'fn' is defined twice",
        ),
        (
            {"dataSources": [{**LAMBDA, "type": "AMAZON_DYNAMODB"}]},
            "dataSources[0].type: expected AWS_LAMBDA, got 'AMAZON_DYNAMODB'",
        ),
        (
            {"dataSources": [{"name": "fn", "lambdaConfig": {"lambdaFunctionArn": "nocolon"}}]},
            "dataSources[0].lambdaConfig.lambdaFunctionArn: expected 'module:function'",
        ),
        ({"jsRuntime": {"engines": 0}}, "jsRuntime.engines: must be > 0, got 0"),
    ],
)
def test_mistakes_name_the_users_key(data: dict[str, Any], line: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_mapping(data, source="emu.json")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"emu.json: {line}"), message


def test_python_users_get_the_same_checks() -> None:
    direct = HandlerConfigs(
        on_publish=HandlerConfig(behavior=HandlerBehavior.DIRECT, data_source_name="nope")
    )
    with pytest.raises(ConfigError, match="no data source 'nope'"):
        EmulatorConfig(namespaces=(NamespaceConfig(name="a", handler_configs=direct),))
    with pytest.raises(ConfigError, match="DIRECT needs a data_source_name"):
        NamespaceConfig(
            name="a",
            handler_configs=HandlerConfigs(
                on_publish=HandlerConfig(behavior=HandlerBehavior.DIRECT)
            ),
        )
    with pytest.raises(ConfigError, match="CODE needs code_handlers"):
        NamespaceConfig(name="a", handler_configs=HandlerConfigs(on_subscribe=HandlerConfig()))
    with pytest.raises(ConfigError, match="defined twice"):
        EmulatorConfig(
            data_sources=(
                DataSourceConfig(name="f", function=print),
                DataSourceConfig(name="f", function=print),
            )
        )


def test_start_up_checks_name_the_key() -> None:
    """``resolve_references`` (run by the command line) imports Lambdas and checks code."""
    from appsync_emulator.config_schema import resolve_references

    bad_lambda = config_from_mapping(
        {"dataSources": [{"name": "f", "lambdaConfig": {"lambdaFunctionArn": "no_such_mod:f"}}]}
    )
    with pytest.raises(ConfigError) as info:
        resolve_references(bad_lambda, source="emu.toml")
    assert str(info.value).startswith(
        "emu.toml: dataSources[0].lambdaConfig.lambdaFunctionArn: Lambda function 'no_such_mod:f'"
    )
    pytest.importorskip("tree_sitter_javascript")
    bad_code = config_from_mapping(
        {"namespaces": [{"name": "a", "codeHandlers": "export function onPublish(ctx) {\n"}]}
    )
    with pytest.raises(ConfigError) as info:
        resolve_references(bad_code, source="emu.toml")
    assert str(info.value).startswith("emu.toml: namespaces[0].codeHandlers: a.codeHandlers.js:")
