"""Crash recovery with real processes: ``numbers-bot serve`` killed with SIGKILL and started again.

The bot runs as a subprocess (HTTP mode, signed Slack requests, ``SLACK_API_URL`` at a RecordingSlack
in this test), its providers are the real clients pointed at ``numbers-bot sandbox --port N --state
FILE`` in another subprocess, so the provider outlives the bot. The restarted process opens the same
``NUMBERS_DB``; it takes over the dead process's leases at once (the holder ``host:pid`` is gone).

Each crash point gets an honest window:

* approved, nothing sent: (a1) approved with ``numbers-bot approve --no-wait`` while the server is down —
  the store holds exactly what a crash between the approval's commit and the worker's start leaves;
  (a2) approved in Slack and the operation's intent recorded, with the worker stalled on a Slack call
  (``chat.update`` hangs) before it sends the purchase, then killed;
* (b) the purchase sent, its answer not stored: a ``delay`` fault on the purchase POST (set over HTTP)
  holds the answer; the bot is killed while it waits, and the sandbox completes the purchase;
* (c) while polling: killed while the operation is ``polling``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal

import pytest

from bot.slack import ids
from tests.reliability_harness import ServedBot, ServedSandbox, StallingSlack, until, until_async
from tests.slack_harness import APPROVAL_CHANNEL, APPROVER, REQUESTER, card_text
from tests.test_slack_flow import request_offer

pytestmark = pytest.mark.slow  # about 20 s: each test starts two or three bot processes

ACS_PURCHASE = r"/availablePhoneNumbers/:purchase$"
PLIVO_RENT = r"/AvailableNumberGroup/\d+/$"
ANSWER_DELAY = 1.0  # the provider holds its answer this long; the bot is killed meanwhile


@pytest.fixture
async def world(tmp_path):
    slack = await StallingSlack().start()
    sandbox = await ServedSandbox(tmp_path).start()
    bots: list[ServedBot] = []

    def make(**env: str) -> ServedBot:
        bot = ServedBot(tmp_path, slack.api_url, sandbox, tmp_path / "bot.db", **env)
        bot.slack = slack
        bots.append(bot)
        return bot

    make.slack = slack
    make.sandbox = sandbox
    yield make
    slack.release()
    for bot in bots:
        bot.stop()
        bot.close()
        await bot.http.aclose()
    sandbox.stop()
    await slack.stop()


def kinds(bot: ServedBot, request_id: int) -> list[str]:
    return [e.kind for e in bot.store.events_for(request_id)]


async def purchased_card(slack, ts: str) -> str:
    return await slack.wait_for(lambda: "Purchased" in card_text(slack, ts) and card_text(slack, ts), timeout=15, what="the purchased card")


async def test_a1_approved_while_the_server_is_down_is_bought_once_on_start(world):
    bot = await world().start()
    request, ts = await request_offer(bot)
    bot.kill()
    # The pending request survived the kill; another process approves it without buying (--no-wait).
    assert bot.store.get_request(request.id).state.value == "pending"
    approved = await bot.cli("approve", str(request.id), "--as", APPROVER, "--no-wait", "--json")
    assert approved.returncode == 0, approved.stderr
    assert json.loads(approved.stdout)["state"] == "approved"
    assert "the card will be updated by the running bot" in approved.stderr  # no server to send it yet
    assert bot.store.get_operation(request.id) is None
    assert await world.sandbox.count("acs", "POST", ACS_PURCHASE) == 0

    await bot.start()
    done = await bot.state_of(request.id, {"fulfilled", "failed", "needs_attention"})
    assert done.state.value == "fulfilled", done.outcome
    assert await world.sandbox.count("acs", "POST", ACS_PURCHASE) == 1
    assert kinds(bot, request.id).count("submitted") == 1
    await purchased_card(world.slack, ts)


async def test_a2_killed_after_the_intent_before_the_purchase_is_sent(world):
    slack = world.slack
    bot = await world().start()
    request, ts = await request_offer(bot)
    slack.stall("chat.update")  # the bot's next card update hangs: it is stuck before sending the purchase
    await bot.click(ids.ACTION_APPROVE, str(request.id), user=APPROVER, channel=APPROVAL_CHANNEL, message_ts=ts)
    op = await until(lambda: bot.store.get_operation(request.id), 10, "the operation's intent")
    await until(lambda: "chat.update" in slack.stalls_hit, 10, "the bot to wait on the stalled card update")
    op = bot.store.get_operation(request.id)
    assert op.phase == "intent" and op.last_status is None
    assert await world.sandbox.count("acs", "POST", ACS_PURCHASE) == 0
    bot.kill()
    slack.release()

    await bot.start()
    done = await bot.state_of(request.id, {"fulfilled", "failed", "needs_attention"})
    assert done.state.value == "fulfilled", done.outcome
    assert await world.sandbox.count("acs", "POST", ACS_PURCHASE) == 1
    assert "recovered" not in kinds(bot, request.id)  # nothing had been sent: it is sent now, once
    await purchased_card(slack, ts)


async def test_b_killed_after_the_purchase_is_sent_asks_acs_instead_of_buying_again(world):
    bot = await world().start()
    request, ts = await request_offer(bot)
    await world.sandbox.fault("acs", kind="delay", method="POST", path=ACS_PURCHASE, seconds=ANSWER_DELAY, times=1)
    await bot.click(ids.ACTION_APPROVE, str(request.id), user=APPROVER, channel=APPROVAL_CHANNEL, message_ts=ts)
    for _ in range(200):
        if await world.sandbox.count("acs", "POST", ACS_PURCHASE) == 1:
            break
        await asyncio.sleep(0.05)
    bot.kill()
    op = bot.store.get_operation(request.id)
    assert op.last_status == "submitting"  # the bot died not knowing whether ACS acted
    # The sandbox carries the purchase out, answering nobody.
    await until_async(
        lambda: world.sandbox.count("acs", "POST", ACS_PURCHASE, answered=True), ANSWER_DELAY + 10, "ACS to finish"
    )

    await bot.start()
    done = await bot.state_of(request.id, {"fulfilled", "failed", "needs_attention"})
    assert done.state.value == "fulfilled", done.outcome
    assert await world.sandbox.count("acs", "POST", ACS_PURCHASE) == 1
    assert await world.sandbox.count("acs", "GET", r"/phoneNumbers/operations/purchase_") >= 1
    assert "recovered" in kinds(bot, request.id)
    await purchased_card(world.slack, ts)


async def test_c_pending_survives_a_kill_then_a_kill_while_polling_resumes_polling(world):
    bot = await world(NUMBERS_POLL_INTERVAL="0.5").start()
    request, ts = await request_offer(bot)
    bot.kill()
    await bot.start()
    # Approved on the new process: nothing pending was lost.
    response, _ = await bot.click(ids.ACTION_APPROVE, str(request.id), user=APPROVER, channel=APPROVAL_CHANNEL, message_ts=ts)
    assert response.status_code == 200
    await until(lambda: (op := bot.store.get_operation(request.id)) and op.phase == "polling", 10, "polling")
    bot.kill()
    polls = await world.sandbox.count("acs", "GET", r"/phoneNumbers/operations/purchase_")
    assert bot.store.get_request(request.id).state.value == "fulfilling"

    await bot.start()
    done = await bot.state_of(request.id, {"fulfilled", "failed", "needs_attention"})
    assert done.state.value == "fulfilled", done.outcome
    assert await world.sandbox.count("acs", "POST", ACS_PURCHASE) == 1
    assert await world.sandbox.count("acs", "GET", r"/phoneNumbers/operations/purchase_") > polls
    assert "recovered" not in kinds(bot, request.id)
    await purchased_card(world.slack, ts)


async def test_plivo_killed_after_the_rent_is_sent_needs_attention_and_approvers_are_told(world):
    slack = world.slack
    bot = await world().start()
    request, ts = await request_offer(bot, provider="Plivo", quantity=1, text="search US local 415 via plivo")
    await world.sandbox.fault("plivo", kind="delay", method="POST", path=PLIVO_RENT, seconds=ANSWER_DELAY, times=1)
    await bot.click(ids.ACTION_APPROVE, str(request.id), user=APPROVER, channel=APPROVAL_CHANNEL, message_ts=ts)
    for _ in range(200):
        if await world.sandbox.count("plivo", "POST", PLIVO_RENT) == 1:
            break
        await asyncio.sleep(0.05)
    bot.kill()
    await until_async(
        lambda: world.sandbox.count("plivo", "POST", PLIVO_RENT, answered=True), ANSWER_DELAY + 10, "Plivo to finish"
    )

    await bot.start()
    done = await bot.state_of(request.id, {"fulfilled", "failed", "needs_attention"})
    assert done.state.value == "needs_attention", done.outcome
    assert await world.sandbox.count("plivo", "POST", PLIVO_RENT) == 1  # never sent again blindly
    # The approvers are told under the card; the requester by DM; the card says so.
    thread = await slack.wait_for(
        lambda: [c for c in slack.posted_to(APPROVAL_CHANNEL) if c.params.get("thread_ts") == ts], what="the thread reply"
    )
    assert "Plivo" in thread[0].text()
    dm = await slack.wait_for(lambda: [d for d in slack.dms(REQUESTER) if "needs a person" in d.params.get("text", "")], what="the DM")
    assert "nothing is retried blindly" in dm[0].params["text"]
    assert "attention" in card_text(slack, ts).lower() or "person" in card_text(slack, ts).lower()


async def test_plivo_sigterm_while_the_rent_is_under_way_records_the_rented_number(world):
    """A graceful stop (SIGTERM, as a deploy sends) lets the rent under way record its answer:
    the number reaches the inventory and the request is fulfilled, not handed to a person."""
    bot = await world().start()
    request, ts = await request_offer(bot, provider="Plivo", quantity=1, text="search US local 415 via plivo")
    await world.sandbox.fault("plivo", kind="delay", method="POST", path=PLIVO_RENT, seconds=ANSWER_DELAY, times=1)
    await bot.click(ids.ACTION_APPROVE, str(request.id), user=APPROVER, channel=APPROVAL_CHANNEL, message_ts=ts)
    await until_async(lambda: world.sandbox.count("plivo", "POST", PLIVO_RENT), 20, "the rent to be sent")
    process = bot.process
    assert process is not None
    os.kill(process.pid, signal.SIGTERM)  # while Plivo still holds its answer
    await until(lambda: not process.alive(), 30, "the bot to exit")
    done = bot.store.get_request(request.id)
    assert done.state.value == "fulfilled", done.outcome
    assert [n.number for n in bot.store.held_numbers()] == done.numbers
    assert await world.sandbox.count("plivo", "POST", PLIVO_RENT) == 1
