"""Who may do what, and requests Slack did not sign: refused, audited, answered only to the clicker, nothing changed."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from bot.slack import ids
from tests.slack_harness import (  # noqa: F401  (fixtures)
    APPROVAL_CHANNEL,
    APPROVER,
    APPROVER2,
    FORM,
    OUTSIDER,
    REQUESTER,
    SlackSigner,
    card_text,
    has_buttons,
    slack_bot,
    slack_bot_factory,
    slash_command,
    text_value,
)
from tests.test_slack_flow import request_offer


def refusals(bot, user):
    return [e for e in bot.store.iter_events(bot.clock.now().replace(year=2000)) if e.kind == "refused" and e.actor == user]


@pytest.mark.parametrize(
    "how",
    ["forged", "unsigned", "stale", "wrong-secret", "tampered"],
)
async def test_requests_slack_did_not_sign_get_401_and_do_nothing(slack_bot, how):
    bot = slack_bot
    body = slash_command("mine", user=REQUESTER, response_url=bot.slack.response_url())
    now = int(time.time())
    headers = bot.signer.headers(body, FORM, timestamp=now)
    if how == "forged":
        headers["X-Slack-Signature"] = "v0=" + "0" * 64
    elif how == "unsigned":
        headers = {"Content-Type": FORM}
    elif how == "stale":
        headers = bot.signer.headers(body, FORM, timestamp=now - 6 * 60)  # correctly signed, 6 minutes old
    elif how == "wrong-secret":
        headers = SlackSigner("not-the-signing-secret").headers(body, FORM, timestamp=now)
    elif how == "tampered":
        body = body.replace(b"mine", b"pending")
    response = await bot.post(body, headers=headers)
    assert response.status_code == 401
    await bot.settled()
    assert bot.slack.response_posts() == []
    assert [c.method for c in bot.slack.calls if c.method not in ("auth.test", "bots.info")] == []


async def test_a_correctly_signed_request_is_accepted(slack_bot):
    response, url = await slack_bot.command("mine")
    assert response.status_code == 200
    assert await slack_bot.response_to(url)


async def test_non_approver_click_changes_nothing_is_audited_and_explained(slack_bot):
    bot, slack = slack_bot, slack_bot.slack
    request, ts = await request_offer(bot)
    updates_before = len(slack.of("chat.update"))
    response, url = await bot.click(ids.ACTION_APPROVE, str(request.id), user=OUTSIDER, channel=APPROVAL_CHANNEL, message_ts=ts)
    assert response.status_code == 200
    answer = (await bot.response_to(url))[0]
    assert answer["response_type"] == "ephemeral" and answer["replace_original"] is False
    assert "Only approvers can approve" in answer["text"]
    assert (await bot.service.get(request.id)).state.value == "pending"
    assert [e.data.get("action") for e in refusals(bot, OUTSIDER)] == ["approve"]
    assert len(slack.of("chat.update")) == updates_before
    assert has_buttons(slack.messages[(APPROVAL_CHANNEL, ts)]["blocks"])

    # Deny: refused at the click, before a reason is asked for.
    response, url = await bot.click(ids.ACTION_DENY, str(request.id), user=OUTSIDER, channel=APPROVAL_CHANNEL, message_ts=ts)
    assert "Only approvers can deny" in (await bot.response_to(url))[0]["text"]
    assert not [c for c in slack.of("views.open") if c.view()["callback_id"] == ids.VIEW_DENY]
    assert [e.data.get("action") for e in refusals(bot, OUTSIDER)] == ["approve", "deny"]
    assert (await bot.service.get(request.id)).state.value == "pending"


async def test_self_approval_is_refused(slack_bot):
    bot = slack_bot
    request, ts = await request_offer(bot, user=APPROVER)
    response, url = await bot.click(ids.ACTION_APPROVE, str(request.id), user=APPROVER, channel=APPROVAL_CHANNEL, message_ts=ts)
    assert "cannot approve your own request" in (await bot.response_to(url))[0]["text"]
    assert (await bot.service.get(request.id)).state.value == "pending"
    assert refusals(bot, APPROVER)


async def test_self_approval_allowed_by_setting(slack_bot_factory):
    bot = await slack_bot_factory(NUMBERS_ALLOW_SELF_APPROVAL=True)
    request, ts = await request_offer(bot, user=APPROVER)
    await bot.click(ids.ACTION_APPROVE, str(request.id), user=APPROVER, channel=APPROVAL_CHANNEL, message_ts=ts)
    await bot.state_of(request.id, {"fulfilled"})


@pytest.mark.parametrize(
    "value, words",
    [("999999", "There is no request #999999"), ("abc", "does not name a request"), ("1; DROP TABLE", "does not name a request")],
)
async def test_buttons_naming_no_request_are_refused_in_words(slack_bot, value, words):
    bot = slack_bot
    for action in (ids.ACTION_APPROVE, ids.ACTION_DENY):
        _, url = await bot.click(action, value, user=APPROVER, channel=APPROVAL_CHANNEL)
        answer = (await bot.response_to(url))[0]
        assert words in answer["text"]
    assert {e.data.get("action") for e in refusals(bot, APPROVER)} == {"approve", "deny"}


async def test_request_button_with_unknown_offer(slack_bot):
    _, url = await slack_bot.click(ids.ACTION_REQUEST, "onosuch1", user=REQUESTER, where="ephemeral")
    assert "There is no offer `onosuch1`" in (await slack_bot.response_to(url))[0]["text"]
    assert slack_bot.slack.of("views.open") == []


async def test_two_approvers_clicking_at_once_buy_once(slack_bot):
    bot, slack = slack_bot, slack_bot.slack
    request, ts = await request_offer(bot)
    (r1, url1), (r2, url2) = await asyncio.gather(
        bot.click(ids.ACTION_APPROVE, str(request.id), user=APPROVER, channel=APPROVAL_CHANNEL, message_ts=ts),
        bot.click(ids.ACTION_APPROVE, str(request.id), user=APPROVER2, channel=APPROVAL_CHANNEL, message_ts=ts),
    )
    assert r1.status_code == r2.status_code == 200
    await bot.state_of(request.id, {"fulfilled"})
    assert bot.sandbox.acs.count("POST", r"/availablePhoneNumbers/:purchase$") == 1
    # The loser is told the request had moved on; the winner's answer is the card.
    losers = await slack.wait_for(lambda: slack.response_posts(url1) + slack.response_posts(url2))
    assert len(losers) == 1 and "already" in losers[0]["text"]


async def test_hostile_justification_stays_inert_on_the_card(slack_bot):
    bot, slack = slack_bot, slack_bot.slack
    hostile = "Hi <!channel> & <@U0BOSS> see <https://evil.example|your bank> " + "x" * 3100
    request, ts = await request_offer(bot, justification=hostile[:3000])
    posted = slack.messages[(APPROVAL_CHANNEL, ts)]
    dumped = json.dumps(posted["blocks"])
    assert "<!channel>" not in dumped and "<@U0BOSS>" not in dumped and "<https://evil" not in dumped
    assert "&lt;!channel&gt; &amp; &lt;@U0BOSS&gt;" in dumped
    assert all(len(b["text"]["text"]) <= 3000 for b in posted["blocks"] if b.get("type") == "section" and b.get("text"))
    assert (await bot.service.get(request.id)).justification == hostile[:3000]  # stored as typed; escaped only when shown
    # Over 3000 characters is refused at the form, with the field marked.
    view = slack.of("views.open")[-1].view()
    too_long = await bot.submit(ids.VIEW_REQUEST, {ids.INPUT_JUSTIFICATION: text_value("y" * 3001)}, user=REQUESTER, private_metadata=view["private_metadata"])
    assert ids.INPUT_JUSTIFICATION in too_long.json()["errors"]
    assert card_text(slack, ts)
