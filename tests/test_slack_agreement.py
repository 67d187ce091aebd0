"""In Slack: the ACS card for numbers that need the do-not-resell agreement, and its Approve confirm."""

from __future__ import annotations

from bot.slack import ids
from tests.slack_harness import APPROVAL_CHANNEL, APPROVER, card_text, slack_bot  # noqa: F401  (fixture)
from tests.test_slack_flow import request_offer

CONFIRM = "agrees, for the organisation, not to resell these numbers"


def approve_button(slack, ts):
    blocks = slack.messages[(APPROVAL_CHANNEL, ts)]["blocks"]
    return next(e for b in blocks if b["type"] == "actions" for e in b["elements"] if e["action_id"] == ids.ACTION_APPROVE)


async def test_the_card_says_the_agreement_is_needed_and_approve_asks_to_confirm_it(slack_bot):
    bot, slack = slack_bot, slack_bot.slack
    request, ts = await request_offer(bot)  # US toll-free 833 at ACS: the agreement is required
    assert "Do-not-resell agreement required" in card_text(slack, ts)
    confirm = approve_button(slack, ts)["confirm"]
    assert CONFIRM in confirm["text"]["text"] and confirm["confirm"]["text"] == "Approve and agree"

    await bot.click(ids.ACTION_APPROVE, str(request.id), user=APPROVER, channel=APPROVAL_CHANNEL, message_ts=ts)
    done = await bot.state_of(request.id, {"fulfilled"})
    submitted = next(e for e in (await bot.service.get(done.id)).events if e.kind == "submitted")
    assert submitted.data == {"agreed_to_not_resell": True, "agreed_by": [APPROVER]}


async def test_a_card_without_the_agreement_asks_no_agreement(slack_bot):
    bot, slack = slack_bot, slack_bot.slack
    request, ts = await request_offer(bot, text="search CA tollfree 877 x2")
    assert "Do-not-resell" not in card_text(slack, ts)
    confirm = approve_button(slack, ts)["confirm"]  # the spending is confirmed; no agreement is asked
    assert "resell" not in confirm["text"]["text"] and confirm["confirm"]["text"] == "Approve"
