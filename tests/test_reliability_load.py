"""SQLite under load over HTTP: 50 concurrent signed requests into the running app while its worker buys.

tests/test_store_load.py drives the service directly; this sends what Slack sends — Request form
submissions, Approve clicks and ``/numbers mine`` / ``pending`` — fifty at a time at the real endpoint.
"""

from __future__ import annotations

import asyncio
import logging

from bot.slack import ids
from bot.slack.render.modals import metadata
from tests.reliability_harness import all_events
from tests.slack_harness import (  # noqa: F401  (fixtures)
    APPROVAL_CHANNEL,
    APPROVER,
    REQUESTER,
    number_value,
    offers_in,
    slack_bot,
    text_value,
)

WAVE = 50
RENT = r"/AvailableNumberGroup/\d+/$"


async def test_fifty_concurrent_requests_while_the_worker_runs(slack_bot, caplog):
    bot, slack = slack_bot, slack_bot.slack
    caplog.set_level(logging.INFO)
    _, url = await bot.command("search US local via plivo")
    groups = [oid for _, oid, _ in offers_in((await bot.response_to(url))[-1])]
    assert len(groups) >= 5
    half = WAVE // 2

    # Wave 1: 25 Request forms and 25 `/numbers mine`, all at once.
    forms = [
        bot.submit(
            ids.VIEW_REQUEST,
            {ids.INPUT_JUSTIFICATION: text_value(f"load {i}"), ids.INPUT_QUANTITY: number_value(1)},
            user=REQUESTER,
            private_metadata=metadata(offer=groups[i % len(groups)]),
        )
        for i in range(half)
    ]
    commands = [bot.command("mine") for _ in range(half)]
    answers = await asyncio.gather(*forms, *commands)
    statuses = [a.status_code for a in answers[:half]] + [r.status_code for r, _ in answers[half:]]
    assert statuses == [200] * WAVE
    cards = await slack.wait_for(lambda: len(slack.posted_to(APPROVAL_CHANNEL)) >= half and slack.posted_to(APPROVAL_CHANNEL), timeout=30, what="25 cards")
    requests = await slack.wait_for(
        lambda: len(r := [x for x in bot.store.list_requests(requester=REQUESTER, limit=100) if x.card_ts]) == half and r,
        timeout=30,
        what="25 requests with their cards",
    )
    assert len(cards) == half
    for _, command_url in answers[half:]:
        await bot.response_to(command_url)

    # Wave 2: 25 Approve clicks and 25 `/numbers pending`, at once, while the worker rents what is approved.
    clicks = [bot.click(ids.ACTION_APPROVE, str(r.id), user=APPROVER, channel=APPROVAL_CHANNEL, message_ts=r.card_ts) for r in requests]
    pendings = [bot.command("pending", user=APPROVER) for _ in range(half)]
    answers = await asyncio.gather(*clicks, *pendings)
    assert [r.status_code for r, _ in answers] == [200] * WAVE
    for request in requests:
        await bot.state_of(request.id, {"fulfilled"}, timeout=30)
    for _, command_url in answers[half:]:
        await bot.response_to(command_url)

    # Nothing lost, nothing twice, nothing locked.
    for request in requests:
        kinds = [e.kind for e in (await bot.service.get(request.id)).events]
        assert kinds == ["requested", "approved", "fulfilling", "submitted", "fulfilled"], kinds
    assert bot.sandbox.plivo.count("POST", RENT) == half
    assert len([e for e in all_events(bot.store) if e.kind == "fulfilled"]) == half
    assert "database is locked" not in caplog.text.lower()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
