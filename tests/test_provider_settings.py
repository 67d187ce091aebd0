"""ACS_API_VERSION and PLIVO_API: defaults, choices and one clear line for a bad value."""

from __future__ import annotations

import pytest

from bot.bootstrap import build_providers
from bot.config import load_settings
from bot.domain.errors import ConfigError
from bot.providers.plivo import PlivoProvider
from bot.providers.plivo_numbers import PlivoNumbersProvider


async def test_defaults_are_the_current_apis(settings_env):
    settings_env()  # clears the environment and moves to an empty directory
    s = load_settings()
    assert s.acs_api_version == "2025-06-01" and s.plivo_api == "numbers"
    providers, _ = build_providers(load_settings(NUMBERS_SANDBOX=True))
    try:
        assert providers["acs"].api_version == "2025-06-01"
        assert type(providers["plivo"]) is PlivoNumbersProvider
    finally:
        for p in providers.values():
            await p.aclose()


async def test_the_seed_apis_can_be_chosen(settings_env, monkeypatch):
    settings_env()
    monkeypatch.setenv("ACS_API_VERSION", "2021-03-07")
    monkeypatch.setenv("PLIVO_API", "groups")
    providers, _ = build_providers(load_settings(NUMBERS_SANDBOX=True))
    try:
        assert providers["acs"].api_version == "2021-03-07"
        assert type(providers["plivo"]) is PlivoProvider
    finally:
        for p in providers.values():
            await p.aclose()


def test_bad_values_name_the_variable(settings_env, monkeypatch):
    settings_env()
    monkeypatch.setenv("ACS_API_VERSION", "latest")
    monkeypatch.setenv("PLIVO_API", "both")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert sorted(p.split(":")[0] for p in info.value.problems) == ["ACS_API_VERSION", "PLIVO_API"]
