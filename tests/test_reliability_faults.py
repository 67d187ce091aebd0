"""Faults tests/test_faults.py does not cover, each ending in words the user sees on the card and in the DM.

Provider side (the sandbox behind the real clients, driven through signed Slack requests): malformed
JSON answers to spending calls and to polls, an ACS purchase operation that ends ``failed``, a hold
that runs out between the approval and the purchase. Slack side: ``chat.update`` and
``chat.postMessage`` failing (``ok: false``, 500) or rate-limited (429 + Retry-After), and
``views.open`` answering ``expired_trigger_id`` wherever a form opens.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from bot.slack import ids
from tests.slack_harness import (  # noqa: F401  (fixtures)
    APPROVAL_CHANNEL,
    APPROVER,
    REQUESTER,
    card_text,
    has_buttons,
    offers_in,
    slack_bot,
    slack_bot_factory,
)
from tests.test_slack_flow import request_offer

SPEND = {
    "acs": ("POST", r"/availablePhoneNumbers/:purchase$"),
    "plivo": ("POST", r"/AvailableNumberGroup/\d+/$"),
    "webex": ("PUT", r"/v1/people/[^/]+$"),
}
POLL = ("GET", r"/phoneNumbers/operations/purchase_")
FINAL = {"fulfilled", "failed", "needs_attention", "provider_pending", "pending"}


async def requested(bot, provider: str):
    bot.service.notifier.retry_delays = (0.1, 0.3)  # the notifier's waits after Slack's transient errors, shortened
    if provider == "acs":
        return await request_offer(bot)
    if provider == "plivo":
        return await request_offer(bot, provider="Plivo", quantity=1, text="search US local 415 via plivo")
    return await request_offer(bot, provider="Webex Calling", text="assign")


async def outcome(bot, request, ts, done_words: str):
    """Approve on the card; wait for the final state, the card showing it, and the requester's DM about it."""
    slack = bot.slack
    await bot.click(ids.ACTION_APPROVE, str(request.id), user=APPROVER, channel=APPROVAL_CHANNEL, message_ts=ts)
    done = await bot.state_of(request.id, FINAL - {"pending"}, timeout=20)
    card = await slack.wait_for(lambda: done_words in card_text(slack, ts) and card_text(slack, ts), timeout=10, what=f"{done_words!r} on the card; request {done.state.value}: {done.outcome}")
    assert not has_buttons(slack.messages[(APPROVAL_CHANNEL, ts)]["blocks"])
    return done, card


def dm_about(slack, marker: str) -> list[str]:
    """DMs to the requester that Slack accepted (``ok``) and that contain ``marker``."""
    return [d.params.get("text", "") for d in slack.dms(REQUESTER) if d.answer.get("ok") and marker in d.params.get("text", "")]


# --- provider faults ---------------------------------------------------------------------------

SPEND_MALFORMED = {
    # provider: (state, card words, DM marker, spending calls that reach the provider)
    "acs": ("fulfilled", "Purchased", ":tada:", 2),
    "plivo": ("needs_attention", "Needs attention", ":warning:", 1),
    "webex": ("fulfilled", "Assigned", ":tada:", 2),
}


@pytest.mark.parametrize("provider", ["acs", "plivo", "webex"])
async def test_malformed_answer_to_the_spending_call(slack_bot, provider):
    bot, slack = slack_bot, slack_bot.slack
    request, ts = await requested(bot, provider)
    method, path = SPEND[provider]
    bot.sandbox.apps[provider].faults.add("malformed", method=method, path=path, times=1)
    done, card = await outcome(bot, request, ts, SPEND_MALFORMED[provider][1])
    state, words, marker, calls = SPEND_MALFORMED[provider]
    assert done.state.value == state, done.outcome
    assert bot.sandbox.apps[provider].count(method, path) == calls
    if provider == "webex":  # reported as assigned only because it is: the person has the number at Webex
        person = bot.sandbox.webex.person_by_email("alice@example.com")
        assert [p["value"] for p in person["phoneNumbers"] if p["type"] == "work"] == done.numbers
    assert await slack.wait_for(lambda: dm_about(slack, marker), what="the DM")


async def test_malformed_answers_to_polls_are_read_again(slack_bot):
    bot, slack = slack_bot, slack_bot.slack
    request, ts = await requested(bot, "acs")
    bot.sandbox.acs.faults.add("malformed", method=POLL[0], path=POLL[1], times=3)
    done, card = await outcome(bot, request, ts, "Purchased")
    assert done.state.value == "fulfilled"
    assert bot.sandbox.acs.count(*SPEND["acs"]) == 1
    assert await slack.wait_for(lambda: dm_about(slack, ":tada:"), what="the DM")


async def test_acs_purchase_operation_that_ends_failed(slack_bot):
    bot, slack = slack_bot, slack_bot.slack
    request, ts = await requested(bot, "acs")
    bot.sandbox.acs.fail_next_purchase("Billing account <b>suspended</b> & locked.", code="BillingSuspended")
    done, card = await outcome(bot, request, ts, "Failed")
    assert done.state.value == "failed"
    assert "Billing account &lt;b&gt;suspended&lt;/b&gt; &amp; locked." in card
    dm = await slack.wait_for(lambda: dm_about(slack, ":x:"), what="the failed DM")
    assert "Billing account &lt;b&gt;suspended&lt;/b&gt; &amp; locked." in dm[0]
    assert bot.sandbox.acs.count(*SPEND["acs"]) == 1


async def test_hold_that_runs_out_between_approval_and_purchase(slack_bot):
    """ACS throttles the purchase (429, Retry-After) and the hold expires meanwhile: ACS refuses the
    expired search, nothing is bought, the bot searches again (the search-again rule) and buys the new numbers
    at no more than the approved cost; the card says which numbers changed."""
    bot, slack = slack_bot, slack_bot.slack
    request, ts = await requested(bot, "acs")
    hold_left = (request.hold_expires_at - bot.clock.now()).total_seconds()
    # ACS asks for 3 s: the window in which the hold runs out (wide enough for a loaded machine).
    bot.sandbox.acs.faults.add("status", method="POST", path=SPEND["acs"][1], status=429, headers={"Retry-After": "3"}, times=1)
    await bot.click(ids.ACTION_APPROVE, str(request.id), user=APPROVER, channel=APPROVAL_CHANNEL, message_ts=ts)
    await slack.wait_for(lambda: bot.sandbox.acs.count(*SPEND["acs"]) >= 1, what="the throttled purchase")
    assert bot.sandbox.acs.count(*SPEND["acs"]) == 1, "the retry came before the hold ran out"
    bot.clock.advance(hold_left + 1)
    done = await bot.state_of(request.id, FINAL - {"pending"}, timeout=20)
    assert done.state.value == "fulfilled", done.outcome
    kinds = [e.kind for e in (await bot.service.get(request.id)).events]
    assert "hold_expired" in kinds and "rehold" in kinds
    # The throttled call and the expired one bought nothing; the purchase after the new search did.
    assert sorted(bot.sandbox.acs.purchased()) == sorted(done.numbers)
    card = await slack.wait_for(lambda: "Purchased" in card_text(slack, ts) and card_text(slack, ts), what="the card")
    assert not has_buttons(slack.messages[(APPROVAL_CHANNEL, ts)]["blocks"])
    for number in done.numbers:
        assert number in card


# --- Slack faults ------------------------------------------------------------------------------

SLACK_FAULTS = [
    # (name, method, fault kwargs)
    ("chat.update 500 twice", "chat.update", dict(status=500, times=2)),
    ("chat.update 429 Retry-After", "chat.update", dict(status=429, headers={"Retry-After": "1"}, times=1)),
    ("chat.update ok:false internal_error", "chat.update", dict(error="internal_error", times=2)),
    ("chat.postMessage 500 twice", "chat.postMessage", dict(status=500, times=2)),
    ("chat.postMessage 429 Retry-After", "chat.postMessage", dict(status=429, headers={"Retry-After": "1"}, times=1)),
    ("chat.postMessage ok:false internal_error", "chat.postMessage", dict(error="internal_error", times=1)),
]


@pytest.mark.parametrize("name,method,fault", SLACK_FAULTS, ids=[f[0] for f in SLACK_FAULTS])
async def test_slack_failing_while_the_request_moves_on(slack_bot, name, method, fault):
    """Slack fails the card update or the DM: the purchase is not disturbed, and the card and DM end up right."""
    bot, slack = slack_bot, slack_bot.slack
    request, ts = await requested(bot, "acs")
    await slack.wait_for(lambda: dm_about(slack, "waiting for approval"), what="the created DM")
    slack.fault(method, **fault)
    await bot.click(ids.ACTION_APPROVE, str(request.id), user=APPROVER, channel=APPROVAL_CHANNEL, message_ts=ts)
    done = await bot.state_of(request.id, {"fulfilled"}, timeout=20)
    assert bot.sandbox.acs.count(*SPEND["acs"]) == 1
    await slack.wait_for(lambda: "Purchased" in card_text(slack, ts), timeout=15, what="the purchased card")
    assert not has_buttons(slack.messages[(APPROVAL_CHANNEL, ts)]["blocks"])
    await slack.wait_for(lambda: dm_about(slack, ":tada:"), timeout=15, what="the done DM")
    assert [c for c in slack.of(method) if c.status != 200 or not c.answer.get("ok")], "the fault was injected"
    assert (await bot.service.get(request.id)).state == done.state


OPENERS = [
    # (name, how to press it) → the form that should have opened
    ("/numbers (search form)", "command"),
    ("Deny on the card", "deny"),
    ("Search on the Home tab", "home"),
]


@pytest.mark.parametrize("name,how", OPENERS, ids=[o[0] for o in OPENERS])
async def test_expired_trigger_id_gets_a_fallback_message(slack_bot, name, how):
    bot, slack = slack_bot, slack_bot.slack
    request = ts = None
    if how == "deny":
        request, ts = await requested(bot, "acs")
    slack.fault("views.open", error="expired_trigger_id")
    if how == "command":
        response, url = await bot.command("")
        answer = (await bot.response_to(url))[-1]["text"]
    elif how == "deny":
        response, url = await bot.click(ids.ACTION_DENY, str(request.id), user=APPROVER, channel=APPROVAL_CHANNEL, message_ts=ts)
        answer = (await bot.response_to(url))[-1]["text"]
    else:
        response, _ = await bot.click(ids.ACTION_HOME_SEARCH, "", user=REQUESTER, where="home")
        published = await slack.wait_for(lambda: slack.of("views.publish"), what="the Home notice")
        answer = json.dumps(published[-1].view())
    assert response.status_code == 200
    assert "expired_trigger_id" in answer and "again" in answer
    assert slack.of("views.open")[-1].answer == {"ok": False, "error": "expired_trigger_id"}
    if request is not None:
        assert (await bot.service.get(request.id)).state.value == "pending"


@pytest.mark.parametrize("method,error", [("chat.update", "internal_error"), ("chat.update", "fatal_error"), ("chat.postMessage", "internal_error")])
async def test_the_last_update_and_dm_failing_once_are_sent_again(slack_bot, method, error):
    """Slack's transient ``ok: false`` on the card update or DM that shows the outcome: no later step would fix
    the card (it would keep "buying…" and live buttons) nor resend the DM, so they are sent again."""
    bot, slack = slack_bot, slack_bot.slack
    request, ts = await requested(bot, "acs")
    bot.sandbox.acs.faults.add("delay", method=POLL[0], path=POLL[1], seconds=0.8, times=1)  # hold it at "buying…"
    await bot.click(ids.ACTION_APPROVE, str(request.id), user=APPROVER, channel=APPROVAL_CHANNEL, message_ts=ts)
    await slack.wait_for(lambda: "Approved by" in card_text(slack, ts) and dm_about(slack, "was approved by"), what="the approved card and DM")
    await bot.state_of(request.id, {"fulfilling"})
    # The worker polls only after it has told everyone of the approval: the next messages show the outcome.
    await slack.wait_for(lambda: bot.sandbox.acs.count(*POLL) >= 1, what="the first poll")
    slack.fault(method, error=error, times=1)
    await bot.state_of(request.id, {"fulfilled"}, timeout=20)
    await slack.wait_for(lambda: "Purchased" in card_text(slack, ts), timeout=15, what="the purchased card")
    assert not has_buttons(slack.messages[(APPROVAL_CHANNEL, ts)]["blocks"])
    await slack.wait_for(lambda: dm_about(slack, ":tada:"), timeout=15, what="the done DM")
    failed = [c for c in slack.of(method) if c.answer.get("error") == error]
    assert len(failed) == 1
    assert [c for c in slack.of(method) if c.at > failed[0].at and c.answer.get("ok")], "sent again after the error"
