"""A provider that fails is said to have failed — in Slack and in the terminal — never shown as "no numbers
found"; the CLI exits non-zero when every provider it asked failed. And the sandbox says it is one."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bot.domain.errors import NotFound, ProviderAuthError, ProviderError, ProviderUnavailable
from bot.sandbox.acs import SANDBOX_ACS_ACCESS_KEY
from bot.sandbox.plivo import SANDBOX_PLIVO_AUTH_ID
from bot.services import search_failure
from bot.slack.render.kit import as_text
from tests.conftest import clean_env
from tests.slack_harness import APPROVAL_CHANNEL, REQUESTER, card_text, slack_bot  # noqa: F401  (fixture)
from tests.test_sandbox_server import served_sandbox  # noqa: F401  (fixture)
from tests.test_slack_flow import request_offer

PLIVO_AUTH = "Plivo: authentication failed (check PLIVO_AUTH_TOKEN)"


@pytest.mark.parametrize(
    "provider, error, line",
    [
        ("plivo", ProviderAuthError("plivo", "Authentication failed", status=401), PLIVO_AUTH),
        ("acs", ProviderAuthError("acs", "Denied", status=401), "ACS: authentication failed (check ACS_CONNECTION_STRING)"),
        ("webex", ProviderAuthError("webex", "expired", status=401), "Webex: authentication failed (check WEBEX_ACCESS_TOKEN)"),
        ("acs", ProviderUnavailable("acs", "connection refused"), "ACS: unavailable — connection refused"),
        ("plivo", ProviderError("plivo", "invalid pattern", status=400), "Plivo: refused the search (400) — invalid pattern"),
        ("webex", NotFound("no such location"), "Webex: no such location"),
        ("acs", RuntimeError("boom"), "ACS: the search failed unexpectedly (RuntimeError)"),
    ],
)
def test_each_kind_of_failure_reads_as_a_failure(provider, error, line):
    assert search_failure(provider, error) == line


async def search_answer(bot, text):
    response, url = await bot.command(text)
    assert response.status_code == 200
    posts = await bot.slack.wait_for(lambda: [p for p in bot.slack.response_posts(url) if "offer" in p["text"] or "failed" in p["text"]], what="the search answer")
    return posts[-1]


async def test_slack_shows_a_provider_that_failed_apart_from_nothing_found(slack_bot):
    bot = slack_bot
    bot.sandbox.plivo.faults.add("status", status=401, times=-1, body={"api_id": "x", "error": "Authentication failed"})
    only_plivo = await search_answer(bot, "search US local 415 via plivo")
    text = as_text(only_plivo["blocks"])
    assert "No provider could be searched" in text and PLIVO_AUTH in text
    assert "Nothing found" not in text
    assert "failed" in only_plivo["text"] and PLIVO_AUTH in only_plivo["text"]
    # ACS answers, Plivo fails: the offers, and Plivo's failure beside them.
    both = await search_answer(bot, "search US tollfree 833")
    text = as_text(both["blocks"])
    assert PLIVO_AUTH in text and "No provider could be searched" not in text
    assert "Request" in json.dumps(both["blocks"])


async def test_sandbox_offers_cards_and_dms_say_nothing_is_bought(slack_bot):
    bot, slack = slack_bot, slack_bot.slack
    request, ts = await request_offer(bot)
    searched = [p for p in slack.response_posts() if "offer" in p["text"]][-1]
    assert "Sandbox — nothing is bought" in as_text(searched["blocks"])
    assert "Sandbox — nothing is bought" in card_text(slack, ts, APPROVAL_CHANNEL)
    dms = await slack.wait_for(lambda: slack.dms(REQUESTER), what="the requester's DM")
    assert all("Sandbox — nothing is bought" in dm.text() for dm in dms)


def cli(tmp_path, base, *args, **env_overrides):
    env = clean_env()
    env.update(NUMBERS_DB=str(tmp_path / "n.db"), NUMBERS_APPROVERS="UAPPROVER1", USER="UREQUESTER", PLIVO_API_URL=base)
    env.update(env_overrides)
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)


def test_cli_says_a_wrong_plivo_token_and_exits_non_zero(served_sandbox, tmp_path):  # noqa: F811
    base = served_sandbox
    wrong = {"PLIVO_AUTH_ID": SANDBOX_PLIVO_AUTH_ID, "PLIVO_AUTH_TOKEN": "not-the-token-0123456789"}
    proc = cli(tmp_path, base, "search", "US", "local", "415", **wrong)
    assert proc.returncode == 1, proc.stderr
    assert PLIVO_AUTH in proc.stdout and "No numbers found" not in proc.stdout
    as_json = cli(tmp_path, base, "search", "US", "local", "415", "--json", **wrong)
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout) == {"offers": [], "providers": [{"provider": "plivo", "ok": False, "offers": 0, "error": PLIVO_AUTH}]}
    # One provider fails, another answers: the offers, Plivo's line, and success.
    acs = {"ACS_CONNECTION_STRING": f"endpoint={base}/;accesskey={SANDBOX_ACS_ACCESS_KEY}"}
    mixed = cli(tmp_path, base, "search", "US", "tollfree", **wrong, **acs)
    assert mixed.returncode == 0, mixed.stderr
    assert PLIVO_AUTH in mixed.stdout and " acs " in mixed.stdout
    # Nothing failed and nothing was found: that, and only that, is "no numbers found".
    empty = cli(tmp_path, base, "search", "US", "local", "907", "x10", "via", "acs", **acs)
    assert empty.returncode == 0 and "No numbers found" in empty.stdout and "failed" not in empty.stdout
