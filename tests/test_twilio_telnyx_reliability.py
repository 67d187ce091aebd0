"""Twilio and Telnyx keep the guarantees the other providers keep, tested the same way.

* Twenty simultaneous signed Approve clicks from two approvers buy once (the running app, over HTTP).
* ``numbers-bot serve`` killed with SIGKILL after the buy is sent and before its answer is stored:
  the restarted process asks the provider (Twilio: the number listed with our FriendlyName;
  Telnyx: the order listed by customer_reference) and never buys a second time.
"""

from __future__ import annotations

import asyncio

import pytest

from bot.slack import ids
from tests.reliability_harness import until
from tests.slack_harness import APPROVAL_CHANNEL, APPROVER, APPROVER2, slack_bot  # noqa: F401  (fixture)
from tests.test_reliability_crash import ANSWER_DELAY, kinds, purchased_card, world  # noqa: F401  (fixture)
from tests.test_slack_flow import request_offer

SPEND = {
    "twilio": ("Twilio", "search US local 415 via twilio", r"/IncomingPhoneNumbers\.json$"),
    "telnyx": ("Telnyx", "search US local 415 x2 via telnyx", r"/v2/number_orders$"),
}
LOOKUP = {
    "twilio": r"/IncomingPhoneNumbers\.json$",  # GET …?PhoneNumber=+E164
    "telnyx": r"/v2/number_orders$",  # GET …?filter[customer_reference]=…
}


@pytest.mark.parametrize("provider", ["twilio", "telnyx"])
async def test_twenty_simultaneous_approve_clicks_buy_once(slack_bot, provider):  # noqa: F811
    bot = slack_bot
    name, text, path = SPEND[provider]
    request, ts = await request_offer(bot, provider=name, text=text)
    clicks = [
        bot.click(ids.ACTION_APPROVE, str(request.id), user=user, channel=APPROVAL_CHANNEL, message_ts=ts)
        for _ in range(10)
        for user in (APPROVER, APPROVER2)
    ]
    answers = await asyncio.gather(*clicks)
    assert [r.status_code for r, _ in answers] == [200] * len(clicks)
    done = await bot.state_of(request.id, {"fulfilled"})
    app = bot.sandbox.apps[provider]
    assert app.count("POST", path) == 1
    assert sorted(app.owned_numbers()) == sorted(done.numbers)
    assert [e.kind for e in done.events].count("submitted") == 1


@pytest.mark.slow
@pytest.mark.parametrize("provider", ["twilio", "telnyx"])
async def test_killed_after_the_buy_is_sent_asks_instead_of_buying_again(world, provider):  # noqa: F811
    bot = await world().start()
    name, text, path = SPEND[provider]
    request, ts = await request_offer(bot, provider=name, text=text)
    await world.sandbox.fault(provider, kind="delay", method="POST", path=path, seconds=ANSWER_DELAY, times=1)
    await bot.click(ids.ACTION_APPROVE, str(request.id), user=APPROVER, channel=APPROVAL_CHANNEL, message_ts=ts)
    await until(lambda: bot.store.get_operation(request.id) and bot.store.get_operation(request.id).last_status == "submitting",
                10, "the buy being sent")
    for _ in range(200):
        if await world.sandbox.count(provider, "POST", path) == 1:
            break
        await asyncio.sleep(0.05)
    bot.kill()
    assert bot.store.get_operation(request.id).last_status == "submitting"  # died not knowing the outcome
    await asyncio.sleep(ANSWER_DELAY + 0.2)  # the provider carries the buy out, answering nobody
    looked = await world.sandbox.count(provider, "GET", LOOKUP[provider])

    await bot.start()
    done = await bot.state_of(request.id, {"fulfilled", "failed", "needs_attention", "provider_pending"})
    assert done.state.value == "fulfilled", done.outcome
    assert await world.sandbox.count(provider, "POST", path) == 1
    assert await world.sandbox.count(provider, "GET", LOOKUP[provider]) > looked
    assert "recovered" in kinds(bot, request.id)
    await purchased_card(world.slack, ts)


# --- malformed answers, on the card and in the DM (as tests/test_reliability_faults.py does for the others) ---


@pytest.mark.parametrize("provider", ["twilio", "telnyx"])
async def test_malformed_answer_to_the_buy_is_asked_about_then_bought_once(slack_bot, provider):  # noqa: F811
    from tests.test_reliability_faults import dm_about, outcome

    bot, slack = slack_bot, slack_bot.slack
    name, text, path = SPEND[provider]
    request, ts = await request_offer(bot, provider=name, text=text)
    app = bot.sandbox.apps[provider]
    app.faults.add("malformed", method="POST", path=path, times=1)  # a 200 whose body is not the provider's
    done, _ = await outcome(bot, request, ts, "Purchased")
    assert done.state.value == "fulfilled", done.outcome
    # The unreadable answer was not taken as a purchase: the provider was asked, then the buy sent again, once.
    assert app.count("POST", path) == 2 and "recovered" not in [e.kind for e in done.events]
    assert sorted(app.owned_numbers()) == sorted(done.numbers)
    assert await slack.wait_for(lambda: dm_about(slack, ":tada:"), what="the DM")


async def test_malformed_answers_to_telnyx_order_polls_are_read_again(slack_bot):  # noqa: F811
    from tests.test_reliability_faults import dm_about, outcome

    bot, slack = slack_bot, slack_bot.slack
    name, text, path = SPEND["telnyx"]
    request, ts = await request_offer(bot, provider=name, text=text)
    bot.sandbox.telnyx.faults.add("malformed", method="GET", path=r"/v2/number_orders/[^/]+$", times=3)
    done, _ = await outcome(bot, request, ts, "Purchased")
    assert done.state.value == "fulfilled" and bot.sandbox.telnyx.count("POST", path) == 1
    assert await slack.wait_for(lambda: dm_about(slack, ":tada:"), what="the DM")
