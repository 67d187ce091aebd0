"""Two bots on one store (a SQLite file, or a PostgreSQL database): a Slack re-delivery that lands
on the other one is recognised there, through the store, and runs once.

Both bots run in this process under uvicorn with one recording Slack; each has its own memory of
deliveries, so only the store can tell the second bot that the first took the delivery.
"""

from __future__ import annotations

import asyncio

import pytest

from bot.slack import ids
from tests.reliability_harness import retry_headers
from tests.slack_harness import (
    APPROVAL_CHANNEL,
    FORM,
    REQUESTER,
    RecordingSlack,
    offers_in,
    slash_command,
    start_bot,
    text_value,
    view_submission,
)

SEARCH = r"/countries/US/:search$"


@pytest.fixture
async def two_bots(settings_env, store_target):
    slack = await RecordingSlack().start()
    bots = [await start_bot(settings_env, slack=slack, NUMBERS_DB=store_target) for _ in range(2)]
    yield bots
    for bot in bots:
        await bot.stop()
    await slack.stop()


async def test_a_search_retried_to_the_other_replica_runs_once(two_bots):
    first, other = two_bots
    slack = first.slack
    url = slack.response_url("cmd")
    body = slash_command("search US tollfree 833 x2", user=REQUESTER, response_url=url)
    assert (await first.post(body)).status_code == 200
    await first.response_to(url)
    for n in (1, 2):
        again = await other.post(body, headers=retry_headers(other.signer, body, FORM, n))
        assert again.status_code == 200
    await first.settled()
    await other.settled()
    assert len(slack.response_posts(url)) == 1
    assert first.sandbox.acs.count("POST", SEARCH) == 1
    assert other.sandbox.acs.count("POST", SEARCH) == 0
    assert [e.kind for e in first.store.iter_events(first.clock.now().replace(year=2000))].count("searched") == 1


async def test_a_request_form_sent_to_both_replicas_at_once_makes_one_request_and_card(two_bots):
    first, other = two_bots
    slack = first.slack
    _, url = await first.command("search US tollfree 833 x2")
    offer_id = next(oid for name, oid, _ in offers_in((await first.response_to(url))[-1]) if name == "ACS")
    await first.click(ids.ACTION_REQUEST, offer_id, user=REQUESTER, where="ephemeral")
    view = (await slack.wait_for(lambda: slack.of("views.open")))[-1].view()
    body = view_submission(
        ids.VIEW_REQUEST, {ids.INPUT_JUSTIFICATION: text_value("IVR")}, user=REQUESTER,
        private_metadata=view["private_metadata"],
    )
    answers = await asyncio.gather(
        first.post(body),
        other.post(body, headers=retry_headers(other.signer, body, FORM, 1)),
        other.post(body, headers=retry_headers(other.signer, body, FORM, 2)),
    )
    assert [a.status_code for a in answers] == [200] * 3
    await slack.wait_for(lambda: slack.posted_to(APPROVAL_CHANNEL), what="the card")
    await first.settled()
    await other.settled()
    assert len(first.store.list_requests(requester=REQUESTER)) == 1
    assert len(slack.posted_to(APPROVAL_CHANNEL)) == 1
