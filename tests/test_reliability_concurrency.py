"""Exactly once under concurrency and Slack's retries, over real HTTP against the running app.

Twenty simultaneous signed Approve clicks from two approvers buy once; a click, a form or a slash
command that Slack delivers again (``X-Slack-Retry-Num``, the same body re-signed with a fresh
timestamp) does its work once.
"""

from __future__ import annotations

import asyncio
import json

from bot.slack import ids
from tests.reliability_harness import refusals, retry_headers
from tests.slack_harness import (  # noqa: F401  (fixtures)
    APPROVAL_CHANNEL,
    APPROVER,
    APPROVER2,
    FORM,
    JSON,
    REQUESTER,
    app_home_opened,
    block_actions,
    card_text,
    has_buttons,
    offers_in,
    slack_bot,
    slash_command,
    text_value,
    view_submission,
)
from tests.test_slack_flow import request_offer

PURCHASE = r"/availablePhoneNumbers/:purchase$"
CLICKS_PER_APPROVER = 10


async def test_twenty_simultaneous_approve_clicks_buy_once(slack_bot):
    bot, slack = slack_bot, slack_bot.slack
    request, ts = await request_offer(bot)
    clicks = [
        bot.click(ids.ACTION_APPROVE, str(request.id), user=user, channel=APPROVAL_CHANNEL, message_ts=ts)
        for _ in range(CLICKS_PER_APPROVER)
        for user in (APPROVER, APPROVER2)
    ]
    answers = await asyncio.gather(*clicks)
    assert [r.status_code for r, _ in answers] == [200] * len(clicks)
    done = await bot.state_of(request.id, {"fulfilled"})
    assert bot.sandbox.acs.count("POST", PURCHASE) == 1
    kinds = [e.kind for e in done.events]
    assert kinds.count("approved") == 1 and kinds.count("fulfilled") == 1 and kinds.count("submitted") == 1
    # Every click but the winner's is told, only to the clicker, that the request had moved on.
    urls = [url for _, url in answers]
    told = await slack.wait_for(
        lambda: (posts := [p for u in urls for p in slack.response_posts(u)]) and len(posts) >= len(clicks) - 1 and posts,
        timeout=15,
        what="an answer to every losing click",
    )
    assert len(told) == len(clicks) - 1
    assert all(p["response_type"] == "ephemeral" and p["replace_original"] is False for p in told)
    assert all("already" in p["text"] or "changed meanwhile" in p["text"] for p in told), [p["text"] for p in told]
    assert len(refusals(bot.store)) == len(clicks) - 1
    # The card ends bought, once, with no buttons left.
    await slack.wait_for(lambda: "Purchased" in card_text(slack, ts), what="the purchased card")
    assert not has_buttons(slack.messages[(APPROVAL_CHANNEL, ts)]["blocks"])
    await slack.wait_for(lambda: [d for d in slack.dms(REQUESTER) if ":tada:" in d.params.get("text", "")], what="the done DM")
    await bot.settled()
    assert len([d for d in slack.dms(REQUESTER) if ":tada:" in d.params.get("text", "")]) == 1


async def test_a_retried_approve_click_buys_once(slack_bot):
    """Slack re-sends the same click (same body, fresh signature) up to three times."""
    bot, slack = slack_bot, slack_bot.slack
    request, ts = await request_offer(bot)
    url = slack.response_url("act")
    body = block_actions(ids.ACTION_APPROVE, str(request.id), user=APPROVER, channel=APPROVAL_CHANNEL, message_ts=ts, response_url=url)
    first = bot.post(body)
    retries = [bot.post(body, headers=retry_headers(bot.signer, body, FORM, n)) for n in (1, 2, 3)]
    answers = await asyncio.gather(first, *retries)
    assert [a.status_code for a in answers] == [200] * 4
    done = await bot.state_of(request.id, {"fulfilled"})
    assert bot.sandbox.acs.count("POST", PURCHASE) == 1
    assert [e.kind for e in done.events].count("approved") == 1
    await bot.settled()
    # The retries were recognised as the same delivery: nobody was told "already approved" by their own click.
    assert slack.response_posts(url) == []
    assert refusals(bot.store) == []


async def test_a_retried_slash_command_searches_once(slack_bot):
    """A retried ``/numbers search`` runs the search once and posts the offers once."""
    bot, slack = slack_bot, slack_bot.slack
    url = slack.response_url("cmd")
    body = slash_command("search US tollfree 833 x2", user=REQUESTER, response_url=url)
    first = await bot.post(body)
    assert first.status_code == 200
    await bot.response_to(url)
    for n in (1, 2, 3):
        again = await bot.post(body, headers=retry_headers(bot.signer, body, FORM, n))
        assert again.status_code == 200
    await bot.settled()
    assert len(slack.response_posts(url)) == 1
    assert bot.sandbox.acs.count("POST", r"/countries/US/:search$") == 1
    searches = [e for e in bot.store.iter_events(bot.clock.now().replace(year=2000)) if e.kind == "searched"]
    assert len(searches) == 1


async def test_a_retry_of_a_delivery_this_process_never_saw_is_handled(slack_bot):
    """``connection_failed``: the first attempt never arrived, so the retry is the only delivery."""
    bot, slack = slack_bot, slack_bot.slack
    url = slack.response_url("cmd")
    body = slash_command("mine", user=REQUESTER, response_url=url)
    response = await bot.post(body, headers=retry_headers(bot.signer, body, FORM, 1, "connection_failed"))
    assert response.status_code == 200
    assert "You have no requests yet" in json.dumps(await bot.response_to(url))


async def test_a_retried_request_form_creates_one_request(slack_bot):
    bot, slack = slack_bot, slack_bot.slack
    response, url = await bot.command("search US tollfree 833 x2")
    offer_id = next(oid for name, oid, _ in offers_in((await bot.response_to(url))[-1]) if name == "ACS")
    await bot.click(ids.ACTION_REQUEST, offer_id, user=REQUESTER, where="ephemeral")
    view = (await slack.wait_for(lambda: slack.of("views.open")))[-1].view()
    body = view_submission(ids.VIEW_REQUEST, {ids.INPUT_JUSTIFICATION: text_value("IVR")}, user=REQUESTER, private_metadata=view["private_metadata"])
    answers = await asyncio.gather(bot.post(body), *[bot.post(body, headers=retry_headers(bot.signer, body, FORM, n)) for n in (1, 2)])
    assert [a.status_code for a in answers] == [200] * 3
    await slack.wait_for(lambda: slack.posted_to(APPROVAL_CHANNEL), what="the card")
    await bot.settled()
    assert len(bot.store.list_requests(requester=REQUESTER)) == 1
    assert len(slack.posted_to(APPROVAL_CHANNEL)) == 1


async def test_a_retried_home_event_is_answered_without_publishing_twice(slack_bot):
    bot, slack = slack_bot, slack_bot.slack
    body = app_home_opened(APPROVER)
    assert (await bot.post(body, JSON)).status_code == 200
    await slack.wait_for(lambda: slack.of("views.publish"), what="the Home tab")
    again = await bot.post(body, JSON, headers=retry_headers(bot.signer, body, JSON, 1))
    assert again.status_code == 200
    await bot.settled()
    assert len(slack.of("views.publish")) == 1


def test_seen_deliveries_forget_after_their_ttl_and_stay_bounded():
    from bot.slack.app import SeenDeliveries

    now = [0.0]
    seen = SeenDeliveries(ttl=600, size=3, monotonic=lambda: now[0])
    assert SeenDeliveries.key({"event_id": "Ev1", "trigger_id": "t"}) == "event:Ev1"
    assert SeenDeliveries.key({"trigger_id": "123.T.abc"}) == "trigger:123.T.abc"
    assert SeenDeliveries.key({"type": "block_actions"}) is None  # nothing to recognise it by: always handled
    assert seen.first_time("a") and not seen.first_time("a")
    now[0] = 601  # Slack's last retry comes minutes after the first delivery, not an hour
    assert seen.first_time("a")
    for key in "bcde":
        seen.first_time(key)
    assert len(seen._seen) <= 4
