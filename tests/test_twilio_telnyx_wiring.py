"""Twilio and Telnyx wired in: each enabled by its settings, a wrong value names the variable, secrets stay
secret, ``doctor`` checks each with a harmless call, ``via twilio|telnyx`` in the grammar and the search
form, and a search without ``via`` asking them with the others."""

from __future__ import annotations

import pytest

from bot.bootstrap import build_providers
from bot.domain.errors import ConfigError
from tests.test_doctor import doctor
from tests.test_sandbox_server import free_port

SID = "AC" + "0123456789abcdef" * 2


def test_each_provider_is_enabled_by_its_own_credentials(settings_env):
    assert set(build_providers(settings_env(TWILIO_ACCOUNT_SID=SID, TWILIO_AUTH_TOKEN="tok"))[0]) == {"twilio"}
    assert set(build_providers(settings_env(TELNYX_API_KEY="KEY0123"))[0]) == {"telnyx"}
    only_sid = settings_env(TWILIO_ACCOUNT_SID=SID)
    assert not only_sid.has_provider_credentials  # a SID without its token enables nothing


def test_urls_and_optional_ids_reach_the_clients(settings_env):
    settings = settings_env(
        TWILIO_ACCOUNT_SID=SID, TWILIO_AUTH_TOKEN="tok", TWILIO_API_URL="http://127.0.0.1:9/",
        TWILIO_ADDRESS_SID="AD" + "1" * 32, TWILIO_BUNDLE_SID="BU" + "2" * 32,
        TELNYX_API_KEY="KEY0123", TELNYX_API_URL="http://127.0.0.1:9", TELNYX_CONNECTION_ID="1293384261075731499",
        TELNYX_MESSAGING_PROFILE_ID="4001767e-ce0f-4cae-9d5f-0d5e636e7809",
    )
    providers, _ = build_providers(settings)
    twilio, telnyx = providers["twilio"], providers["telnyx"]
    assert twilio.api_url == "http://127.0.0.1:9" and twilio.pricing_url == "http://127.0.0.1:9"
    assert twilio.address_sid == "AD" + "1" * 32 and twilio.bundle_sid == "BU" + "2" * 32
    assert telnyx.api_url == "http://127.0.0.1:9" and telnyx.connection_id == "1293384261075731499"
    assert telnyx.messaging_profile_id == "4001767e-ce0f-4cae-9d5f-0d5e636e7809"


def test_default_twilio_prices_come_from_its_pricing_host(settings_env):
    providers, _ = build_providers(settings_env(TWILIO_ACCOUNT_SID=SID, TWILIO_AUTH_TOKEN="tok"))
    assert providers["twilio"].pricing_url == "https://pricing.twilio.com"


@pytest.mark.parametrize(
    "env,says",
    [
        ({"TWILIO_ACCOUNT_SID": "SK123"}, "TWILIO_ACCOUNT_SID: a Twilio Account SID"),
        ({"TWILIO_BUNDLE_SID": "BU 1;drop"}, "TWILIO_BUNDLE_SID"),
        ({"TELNYX_CONNECTION_ID": "x" * 65}, "TELNYX_CONNECTION_ID"),
    ],
)
def test_a_wrong_value_names_the_variable(settings_env, env, says):
    with pytest.raises(ConfigError) as info:
        settings_env(**env)
    assert says in str(info.value)


def test_tokens_are_secrets(settings_env):
    settings = settings_env(TWILIO_ACCOUNT_SID=SID, TWILIO_AUTH_TOKEN="twilio-secret-123", TELNYX_API_KEY="KEYtelnyx-secret")
    assert {"twilio-secret-123", "KEYtelnyx-secret"} <= set(settings.secrets())
    assert "twilio-secret-123" not in repr(settings) and "KEYtelnyx-secret" not in repr(settings)


def test_doctor_checks_both_and_says_what_failed_without_the_secret(tmp_path):
    closed = f"http://127.0.0.1:{free_port()}"
    proc = doctor(
        tmp_path,
        TWILIO_ACCOUNT_SID=SID, TWILIO_AUTH_TOKEN="twilio-secret-123", TWILIO_API_URL=closed,
        TELNYX_API_KEY="KEYtelnyx-secret", TELNYX_API_URL=closed,
    )
    out = proc.stdout + proc.stderr
    assert "FAILED  twilio:" in out and "FAILED  telnyx:" in out and "could not be reached" in out
    assert "twilio-secret-123" not in out and "KEYtelnyx-secret" not in out
    sandbox = doctor(tmp_path, NUMBERS_SANDBOX="1")
    assert "ok      twilio (sandbox):" in sandbox.stdout and "ok      telnyx (sandbox):" in sandbox.stdout


@pytest.mark.parametrize("name", ["twilio", "telnyx"])
def test_via_names_them_in_the_grammar(name):
    from bot.domain.commands import parse

    command = parse(f"search US local 415 x2 via {name.upper()}")
    assert command.query.provider == name and command.query.quantity == 2


def test_the_search_form_offers_them(settings_env):
    import json

    from bot.slack import blocks

    view = blocks.search_modal(["acs", "plivo", "webex", "twilio", "telnyx"], settings_env())
    shown = json.dumps(view.to_dict())
    assert '"Twilio"' in shown and '"Telnyx"' in shown and '"twilio"' in shown and '"telnyx"' in shown


async def test_a_search_without_via_asks_them_too_and_says_their_failures_apart(bot):
    from bot.providers.base import SearchQuery
    from tests.conftest import REQUESTER

    bot.sandbox.telnyx.faults.add("status", path=r"/v2/available_phone_numbers$", status=401, times=1,
                                  body={"errors": [{"code": "10009", "title": "Authentication failed"}]})
    result = await bot.svc.search(REQUESTER, SearchQuery("US", "local", "415"))
    assert set(result.providers) == {"acs", "plivo", "twilio", "telnyx"}
    assert {o.provider for o in result.offers} == {"acs", "plivo", "twilio"}
    (problem,) = result.problems
    assert problem == "Telnyx: authentication failed (check TELNYX_API_KEY)"
    national = await bot.svc.search(REQUESTER, SearchQuery("GB", "national"))
    assert "twilio" not in national.providers and "telnyx" in national.providers


async def test_hold_hooks_do_nothing_for_providers_without_them(bot):
    from bot.providers.base import abandon_hold, extend_hold, extends_holds

    for name in ("acs", "plivo", "webex", "twilio"):
        provider = bot.c.providers[name]
        assert not extends_holds(provider)
        assert await extend_hold(provider, {"search_id": "x"}) is None
        assert await abandon_hold(provider, {"search_id": "x"}) is None
    assert extends_holds(bot.c.providers["telnyx"])
    assert await abandon_hold(bot.c.providers["telnyx"], {}) is None  # no reservation, nothing to say
