"""Two ``numbers-bot serve`` processes on one PostgreSQL database, behind a round-robin of signed
Slack requests, sharing nothing else.

Requests are made through both replicas in turn. Every request then gets simultaneous Approve
clicks from two approvers spread over both replicas, and each click is re-delivered (Slack's
retry, the same body) to the *other* replica. For one request the provider holds the purchase's
answer and the replica driving it is SIGKILLed after the purchase was sent and before the answer
was stored; the surviving replica takes the operation over when the lease runs out and asks the
provider before doing anything. In the end: one spending call per request, every request
fulfilled, one approval card per request, and every event in the audit log.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time

import pytest

from bot.slack import ids
from tests.reliability_harness import FORM, ServedBot, ServedSandbox, all_events, retry_headers, until, until_async
from tests.slack_harness import (
    APPROVAL_CHANNEL,
    APPROVER,
    APPROVER2,
    REQUESTER,
    RecordingSlack,
    block_actions,
    card_text,
    offers_in,
    text_value,
)

pytestmark = pytest.mark.slow

ACS_PURCHASE = r"/availablePhoneNumbers/:purchase$"
REQUESTS = 4
CLICKS_PER_APPROVER = 3  # per request, each re-delivered to the other replica
LEASE_SECONDS = 4  # the dead replica's lease runs out this soon
ANSWER_DELAY = 2.0  # ACS holds the purchase's answer this long; the driving replica dies meanwhile


@pytest.fixture
async def replicas(tmp_path, pg_url):
    slack = await RecordingSlack().start()
    sandbox = await ServedSandbox(tmp_path).start()
    bots = []
    for n in range(2):
        bot = ServedBot(tmp_path, slack.api_url, sandbox, pg_url, NUMBERS_LEASE_SECONDS=str(LEASE_SECONDS))
        bot.slack = slack
        bots.append(bot)
    await asyncio.gather(*(bot.start() for bot in bots))
    yield bots, slack, sandbox
    for bot in bots:
        bot.stop()
        bot.close()
        await bot.http.aclose()
    sandbox.stop()
    await slack.stop()


async def make_request(bot, slack):
    """Search, Request and submit through ``bot``; the new request and its card's ts."""
    views, cards = len(slack.of("views.open")), len(slack.posted_to(APPROVAL_CHANNEL))
    response, url = await bot.command("search US tollfree 833 x2")
    assert response.status_code == 200
    offer_id = next(oid for name, oid, _ in offers_in((await bot.response_to(url))[-1]) if name == "ACS")
    await bot.click(ids.ACTION_REQUEST, offer_id, user=REQUESTER, where="ephemeral")
    view = (await slack.wait_for(lambda: len(slack.of("views.open")) > views and slack.of("views.open")))[-1].view()
    response = await bot.submit(
        ids.VIEW_REQUEST, {ids.INPUT_JUSTIFICATION: text_value("IVR")}, user=REQUESTER,
        private_metadata=view["private_metadata"],
    )
    assert response.status_code == 200
    card = (await slack.wait_for(lambda: len(slack.posted_to(APPROVAL_CHANNEL)) > cards and slack.posted_to(APPROVAL_CHANNEL)))[-1]
    ts = card.answer["ts"]
    request = await until(
        lambda: next((r for r in bot.store.list_requests(limit=50) if r.card_ts == ts), None), 15, "the card saved"
    )
    return request, ts


async def click_everywhere(bots, request, ts):
    """Simultaneous Approve clicks from two approvers over both replicas; once they are answered,
    Slack re-delivers each (as after a lost answer) to the other replica, all at once again."""
    turn = itertools.cycle(range(2))
    clicks, redeliveries = [], []
    for n in range(CLICKS_PER_APPROVER):
        for approver in (APPROVER, APPROVER2):
            first = bots[next(turn)]
            other = bots[1 - bots.index(first)]
            body = block_actions(ids.ACTION_APPROVE, str(request.id), user=approver, channel=APPROVAL_CHANNEL,
                                 message_ts=ts, response_url=first.slack.response_url("act"))
            clicks.append(first.post(body))
            redeliveries.append(lambda other=other, body=body: other.post(
                body, headers=retry_headers(other.signer, body, FORM, 1)))
    answers = await asyncio.gather(*clicks)
    # Slack re-delivers only after 3 s without an answer; by then the work process has taken the click
    # (the ack process answers first and hands it over): wait until every first delivery has run.
    await until(
        lambda: sum(e.kind in ("approved", "refused") for e in bots[0].store.events_for(request.id)) >= len(clicks),
        20, "every first click to be taken",
    )
    answers += await asyncio.gather(*(send() for send in redeliveries))
    assert [a.status_code for a in answers] == [200] * len(answers)
    return len(clicks), len(redeliveries)


async def test_two_replicas_on_postgresql_buy_once_per_request_through_clicks_retries_and_a_kill(replicas):
    bots, slack, sandbox = replicas
    started = time.monotonic()
    made = [await make_request(bots[n % 2], slack) for n in range(REQUESTS)]
    assert len(slack.posted_to(APPROVAL_CHANNEL)) == REQUESTS

    clicks = redeliveries = 0
    for request, ts in made[:-1]:
        c, r = await click_everywhere(bots, request, ts)
        clicks, redeliveries = clicks + c, redeliveries + r
    for request, _ in made[:-1]:
        done = await bots[0].state_of(request.id, {"fulfilled", "failed", "needs_attention"})
        assert done.state.value == "fulfilled", done.outcome
    assert await sandbox.count("acs", "POST", ACS_PURCHASE) == REQUESTS - 1

    # The last request: ACS holds the purchase's answer; the replica driving it dies meanwhile.
    victim_request, victim_ts = made[-1]
    await sandbox.fault("acs", kind="delay", method="POST", path=ACS_PURCHASE, seconds=ANSWER_DELAY, times=1)
    c, r = await click_everywhere(bots, victim_request, victim_ts)
    clicks, redeliveries = clicks + c, redeliveries + r
    await until_async(
        lambda: _count_is(sandbox, REQUESTS), 15, "the last purchase to reach ACS"
    )
    op = bots[0].store.get_operation(victim_request.id)
    assert op.last_status == "submitting"  # sent; the answer not stored
    driver_pid = int(op.lease_owner.split(":")[1])
    victim = next(b for b in bots if driver_pid in b.pids())  # the work process of one of them
    survivor = next(b for b in bots if b is not victim)
    victim.kill()
    killed_at = time.monotonic()
    await until_async(
        lambda: sandbox.count("acs", "POST", ACS_PURCHASE, answered=True), ANSWER_DELAY + 10, "ACS to finish"
    )
    done = await survivor.state_of(victim_request.id, {"fulfilled", "failed", "needs_attention"}, timeout=LEASE_SECONDS + 30)
    took_over_after = time.monotonic() - killed_at
    assert done.state.value == "fulfilled", done.outcome

    store = survivor.store
    assert await sandbox.count("acs", "POST", ACS_PURCHASE) == REQUESTS  # one spending call per request
    assert len(slack.posted_to(APPROVAL_CHANNEL)) == REQUESTS  # one card per request
    events = all_events(store)
    for request, ts in made:
        kinds = [e.kind for e in events if e.request_id == request.id]
        assert store.get_request(request.id).state.value == "fulfilled"
        assert kinds.count("requested") == 1 and kinds.count("approved") == 1 and kinds.count("fulfilled") == 1, kinds
        # Every click ran once, wherever it and its re-delivery landed: one approval, the rest refused.
        assert kinds.count("refused") == 2 * CLICKS_PER_APPROVER - 1, kinds
        assert await slack.wait_for(lambda: "Purchased" in card_text(slack, ts), timeout=15, what="the card updated")
    victim_kinds = [e.kind for e in events if e.request_id == victim_request.id]
    assert "recovered" in victim_kinds  # the survivor asked ACS before doing anything
    assert len(store.held_numbers()) == 2 * REQUESTS
    print(
        f"\nreplicas=2 requests={REQUESTS} clicks={clicks} redeliveries={redeliveries} kills=1 "
        f"spending_calls={await sandbox.count('acs', 'POST', ACS_PURCHASE)} "
        f"final={[store.get_request(r.id).state.value for r, _ in made]} cards={len(slack.posted_to(APPROVAL_CHANNEL))} "
        f"events={len(events)} takeover_s={took_over_after:.1f} total_s={time.monotonic() - started:.1f} pid={os.getpid()}"
    )


async def _count_is(sandbox, n):
    return await sandbox.count("acs", "POST", ACS_PURCHASE) >= n
