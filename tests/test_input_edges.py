"""Inputs checked at the edge: ASCII digits only, a server-side limit on every free-text field, no
quantity below 1, and numbers accepted in the national form the bot itself prints."""

from __future__ import annotations

import json

import phonenumbers
import pytest

from bot.domain.grammar import MAX_REASON, parse, parse_request_id
from bot.domain.errors import UsageError
from bot.domain.states import State
from bot.slack import ids
from tests.conftest import REQUESTER as CORE_REQUESTER  # noqa: F401
from tests.reliability_harness import snapshot
from tests.slack_harness import (  # noqa: F401  (fixture)
    APPROVAL_CHANNEL,
    APPROVER,
    REQUESTER,
    checkboxes_value,
    number_value,
    select_value,
    slack_bot,
    text_value,
)
from tests.test_cli import cli  # noqa: F401  (fixture)
from tests.test_lifecycle import obtain
from tests.test_slack_flow import request_offer

ARABIC_833 = "\u0668\u0663\u0663"  # ٨٣٣
FULLWIDTH_2 = "\uff12"


@pytest.mark.parametrize(
    "text",
    [f"search US tollfree {ARABIC_833}", f"search US local +{ARABIC_833}", f"search US tollfree x{FULLWIDTH_2}", f"show {ARABIC_833}", f"audit {ARABIC_833}", f"release +1{ARABIC_833}5550100"],
)
def test_non_ascii_digits_are_refused_in_commands(text):
    with pytest.raises(UsageError):
        parse(text)


def test_non_ascii_request_ids_are_refused():
    with pytest.raises(UsageError):
        parse_request_id("\u0663", "approve")


async def test_search_form_refuses_non_ascii_digits_before_any_provider_call(slack_bot):
    bot, slack = slack_bot, slack_bot.slack
    _, url = await bot.command("")
    view = (await slack.wait_for(lambda: slack.of("views.open")))[-1].view()
    form = {
        ids.INPUT_PROVIDER: select_value("acs"),
        ids.INPUT_COUNTRY: text_value("US"),
        ids.INPUT_TYPE: select_value("tollfree"),
        ids.INPUT_PREFIX: text_value(ARABIC_833),
        ids.INPUT_CAPABILITIES: checkboxes_value(),
        ids.INPUT_QUANTITY: number_value("\u0661"),
    }
    answer = (await bot.submit(ids.VIEW_SEARCH, form, user=REQUESTER, private_metadata=view["private_metadata"])).json()
    assert set(answer["errors"]) == {ids.INPUT_PREFIX, ids.INPUT_QUANTITY}
    assert bot.sandbox.acs.count("GET", ".*") + bot.sandbox.acs.count("POST", ".*") == 0


async def test_buttons_with_non_ascii_request_ids_name_no_request(slack_bot):
    bot = slack_bot
    request, ts = await request_offer(bot)
    _, url = await bot.click(ids.ACTION_APPROVE, chr(0x0660 + request.id), user=APPROVER, channel=APPROVAL_CHANNEL, message_ts=ts)
    assert "does not name a request" in (await bot.response_to(url))[0]["text"]
    assert (await bot.service.get(request.id)).state == State.PENDING


async def test_deny_reasons_over_the_limit_are_refused_in_the_form(slack_bot):
    bot = slack_bot
    request, ts = await request_offer(bot)
    before = snapshot(bot.store)
    meta = json.dumps({"request": request.id})
    answer = (await bot.submit(ids.VIEW_DENY, {ids.INPUT_REASON: text_value("n" * 200_000)}, user=APPROVER, private_metadata=meta)).json()
    assert answer["response_action"] == "errors" and f"At most {MAX_REASON} characters" in answer["errors"][ids.INPUT_REASON]
    assert snapshot(bot.store) == before
    assert (await bot.service.get(request.id)).state == State.PENDING


async def test_release_reasons_over_the_limit_are_refused_in_the_form(slack_bot):
    bot = slack_bot
    meta = json.dumps({"number": "+18005550100"})
    before = snapshot(bot.store)
    answer = (await bot.submit(ids.VIEW_RELEASE, {ids.INPUT_REASON: text_value("r" * (MAX_REASON + 1))}, user=REQUESTER, private_metadata=meta)).json()
    assert f"At most {MAX_REASON} characters" in answer["errors"][ids.INPUT_REASON]
    assert snapshot(bot.store) == before


async def test_release_accepts_the_national_form_the_bot_prints(bot):
    numbers = await obtain(bot, "acs")  # US toll-free 855…: read with a + in front, 855 is Cambodia
    number = numbers[0]
    national = phonenumbers.format_number(phonenumbers.parse(number), phonenumbers.PhoneNumberFormat.NATIONAL)
    assert national.startswith("(855)")
    command = parse(f"release {national}")
    release = await bot.svc.request_release(CORE_REQUESTER, command.number, "Campaign is over")
    assert release.numbers == [number]
    # International without the +, as before.
    assert (await bot.svc.held_e164(number.lstrip("+"))) == number


def test_cli_refuses_quantity_zero_and_oversized_reasons(cli):  # noqa: F811
    offers = json.loads(cli("search", "FR", "local", "via", "plivo", "--json").stdout)["offers"]
    zero = cli("request", offers[0]["id"], "--reason", "Paris", "--quantity", "0", ok=False)
    assert zero.returncode == 2 and "must be a whole number of at least 1" in zero.stderr
    negative = cli("request", offers[0]["id"], "--reason", "Paris", "--quantity", "-1", ok=False)
    assert negative.returncode == 2
    too_long = cli("deny", "1", "--reason", "d" * (MAX_REASON + 1), "--as", "UAPPROVER1", ok=False)
    assert too_long.returncode == 2 and f"at most {MAX_REASON}" in too_long.stderr
    assert json.loads(cli("mine", "--json").stdout) == []  # nothing was requested
