"""Public names of the emulator configuration."""

from __future__ import annotations

import pytest

import appsync_emulator
from appsync_emulator import config
from appsync_events import authorizer


def test_api_key_config_is_not_a_second_api_key() -> None:
    """The emulator's key entry is ApiKeyConfig; authorizer.ApiKey is the only ApiKey."""
    assert appsync_emulator.ApiKeyConfig is config.ApiKeyConfig
    assert "ApiKey" not in appsync_emulator.__all__
    assert "ApiKey" not in config.__all__
    with pytest.raises(AttributeError):
        _ = appsync_emulator.ApiKey  # type: ignore[attr-defined]
    assert authorizer.ApiKey is not config.ApiKeyConfig


def test_api_key_config_from_strings_and_files() -> None:
    """A plain string in ``api_keys`` becomes an ApiKeyConfig."""
    loaded = config.EmulatorConfig.from_mapping({"apiKeys": ["da2-a", {"key": "da2-b"}]})
    assert loaded.api_keys == (
        config.ApiKeyConfig(key="da2-a"),
        config.ApiKeyConfig(key="da2-b"),
    )
