"""What Twilio and Telnyx requests look like in Slack: the card says a Twilio number is not reserved and,
when it was sold meanwhile, which number the bot bought instead; a Telnyx card shows its hold's end and
is redrawn as the bot extends the hold while the request waits."""

from __future__ import annotations

from bot.sandbox.telnyx import HOLD_MINUTES
from bot.services import HOLD_EXTEND_MARGIN
from bot.slack import ids
from bot.slack.render.kit import slack_date
from tests.slack_harness import APPROVAL_CHANNEL, APPROVER, REQUESTER, card_text, slack_bot  # noqa: F401  (fixture)
from tests.test_slack_flow import request_offer


async def test_twilio_card_says_not_reserved_and_which_number_changed(slack_bot):  # noqa: F811
    bot, slack = slack_bot, slack_bot.slack
    request, ts = await request_offer(bot, provider="Twilio", text="search US local 212 via twilio")
    assert "not reserved" in card_text(slack, ts)
    bot.sandbox.twilio.take(request.numbers[0])  # sold to someone else before the approval
    await bot.click(ids.ACTION_APPROVE, str(request.id), user=APPROVER, channel=APPROVAL_CHANNEL, message_ts=ts)
    done = await bot.state_of(request.id, {"fulfilled", "failed", "pending"})
    assert done.state.value == "fulfilled" and done.numbers != request.numbers
    card = await slack.wait_for(lambda: "Purchased" in card_text(slack, ts) and card_text(slack, ts), what="the purchased card")
    assert done.numbers[0][-4:] in card
    said = await slack.wait_for(
        lambda: [d.params.get("text", "") for d in slack.dms(REQUESTER) if "bought by someone else" in d.params.get("text", "")],
        what="the DM saying which number changed",
    )
    assert request.numbers[0][-4:] in said[0] and done.numbers[0][-4:] in said[0]


async def test_telnyx_card_shows_the_hold_and_its_extension(slack_bot):  # noqa: F811
    bot, slack = slack_bot, slack_bot.slack
    request, ts = await request_offer(bot, provider="Telnyx", text="search US local 415 x2 via telnyx")
    first = slack_date(request.hold_expires_at)
    assert first in card_text(slack, ts)
    await slack.wait_for(lambda: slack.dms(REQUESTER), what="the created DM")
    dms_before = len(slack.dms(REQUESTER))
    bot.clock.advance(HOLD_MINUTES * 60 - HOLD_EXTEND_MARGIN + 30)
    waited = await bot.state_of(request.id, {"pending"})
    extended = await slack.wait_for(
        lambda: (r := bot.store.get_request(request.id)) and r.hold_expires_at > request.hold_expires_at and r,
        what="the hold extended",
    )
    later = slack_date(extended.hold_expires_at)
    assert later != first and waited.state.value == "pending"
    await slack.wait_for(lambda: later in card_text(slack, ts), what="the card showing the new end")
    assert len(slack.dms(REQUESTER)) == dms_before  # an extension redraws the card; it is not news to DM
