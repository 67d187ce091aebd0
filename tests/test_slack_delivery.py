"""Slack always ends true: through an outage, from the terminal, through a burst, with the bot
removed from the approval channel (the real app under uvicorn, against the recording Slack)."""

from __future__ import annotations

import asyncio
import logging

from bot.cli import main as cli_main, verbs as cli_verbs
from bot.delivery import MAX_BACKOFF
from bot.doctor import run_checks
from bot.slack import ids
from bot.slack.adapters.pacing import SlackPacer
from tests.slack_harness import (  # noqa: F401  (fixtures)
    APPROVAL_CHANNEL,
    APPROVER,
    APPROVER2,
    BOT_TOKEN,
    GROUP_MEMBER,
    REQUESTER,
    SIGNING_SECRET,
    RateLimits,
    card_text,
    has_buttons,
    offers_in,
    slack_bot,
    slack_bot_factory,
)
from tests.test_slack_flow import request_offer, search


def dm_texts(slack, user):
    return [c.text() for c in slack.dms(user)]


async def test_slack_down_around_an_approval_the_card_and_dm_follow_once_it_is_back(slack_bot):
    bot, slack = slack_bot, slack_bot.slack
    request, ts = await request_offer(bot)
    await slack.wait_for(lambda: slack.dms(REQUESTER), what="the created DM")  # delivered before the outage
    slack.outage(3600)  # down until the test says otherwise
    await bot.click(ids.ACTION_APPROVE, str(request.id), user=APPROVER, channel=APPROVAL_CHANNEL, message_ts=ts)
    done = await bot.state_of(request.id, {"fulfilled"})
    await bot.settled()
    assert "Waiting for approval" in card_text(slack, ts) or has_buttons(slack.messages[(APPROVAL_CHANNEL, ts)]["blocks"])
    # (Not "bought": the sandbox's notice, "Sandbox — nothing is bought", is on every DM.)
    assert not any("purchased" in t.lower() or "fulfilled" in t.lower() for t in dm_texts(slack, REQUESTER))

    slack.down_until = 0  # Slack is back; the sender's back-off is at most MAX_BACKOFF
    updates_before = len([c for c in slack.of("chat.update", ts=ts) if c.answer.get("ok")])
    bot.clock.advance(MAX_BACKOFF)
    await slack.wait_for(lambda: not has_buttons(slack.messages[(APPROVAL_CHANNEL, ts)]["blocks"]), timeout=15, what="the final card")
    final = card_text(slack, ts)
    assert done.numbers[0] in final and "Waiting for approval" not in final
    dms = await slack.wait_for(lambda: len(slack.dms(REQUESTER)) >= 3 and dm_texts(slack, REQUESTER), timeout=15, what="the outcome DM")
    assert any(done.numbers[0] in t for t in dms[1:]), dms
    await slack.wait_for(lambda: waiting(bot) == 0, what="the outbox empty")
    # approved, fulfilling and fulfilled waited together: one card update, to the latest state.
    assert len([c for c in slack.of("chat.update", ts=ts) if c.answer.get("ok")]) - updates_before == 1


def waiting(bot) -> int:
    return bot.store.db.execute("SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL").fetchone()[0]


def cli_env(monkeypatch, bot, slack):
    for name, value in {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "NUMBERS_APPROVAL_CHANNEL": APPROVAL_CHANNEL,
        "NUMBERS_APPROVERS": f"{APPROVER},{APPROVER2}",
        "NUMBERS_SANDBOX": "1",
        "NUMBERS_DB": bot.settings.db_path,
    }.items():
        monkeypatch.setenv(name, value)


async def run_cli(*argv):
    return await asyncio.to_thread(cli_main, list(argv))


async def test_terminal_decisions_and_requests_reach_slack_while_the_server_runs(slack_bot, monkeypatch, capfd):
    bot, slack = slack_bot, slack_bot.slack
    cli_env(monkeypatch, bot, slack)
    post = await search(bot)
    offers = [oid for name, oid, _ in offers_in(post) if name == "ACS"]

    # A request made in the terminal gets its card and its DM.
    assert await run_cli("request", offers[0], "--reason", "From the terminal", "--as", REQUESTER, "--json") == 0
    made = bot.store.list_requests(requester=REQUESTER, limit=1)[0]
    card = await slack.wait_for(lambda: bot.store.get_request(made.id).card_ts, what="the terminal request's card")
    assert "From the terminal" in card_text(slack, card)
    assert has_buttons(slack.messages[(APPROVAL_CHANNEL, card)]["blocks"])
    assert any(f"#{made.id}" in t for t in dm_texts(slack, REQUESTER))
    assert cli_verbs.NOT_DELIVERED not in capfd.readouterr().err

    # Denied in the terminal: the card loses its buttons, the requester is told.
    assert await run_cli("deny", str(made.id), "--reason", "not this month", "--as", APPROVER) == 0
    await slack.wait_for(lambda: not has_buttons(slack.messages[(APPROVAL_CHANNEL, card)]["blocks"]), what="denied card")
    assert "not this month" in card_text(slack, card)
    assert any("not this month" in t for t in dm_texts(slack, REQUESTER))

    # Approved in the terminal, bought by the server's worker: the final card and the DM follow.
    post = await search(bot, "search US tollfree 855 x2")
    request = await bot.service.request(REQUESTER, next(o for n, o, _ in offers_in(post) if n == "ACS"), "approved in the terminal")
    ts = await slack.wait_for(lambda: bot.store.get_request(request.id).card_ts, what="the card")
    assert await run_cli("approve", str(request.id), "--no-wait", "--as", APPROVER) == 0
    done = await bot.state_of(request.id, {"fulfilled"})
    await slack.wait_for(lambda: done.numbers[0] in card_text(slack, ts), what="the fulfilled card")
    await slack.wait_for(lambda: any(done.numbers[0] in t for t in dm_texts(slack, REQUESTER)), what="the outcome DM")

    # Cancelled in the terminal.
    post = await search(bot, "search US tollfree 844 x1")
    other = next(oid for name, oid, _ in offers_in(post) if name == "ACS")
    assert await run_cli("request", other, "--reason", "second", "--as", REQUESTER) == 0
    mine = bot.store.list_requests(requester=REQUESTER, limit=1)[0]
    card = await slack.wait_for(lambda: bot.store.get_request(mine.id).card_ts, what="second card")
    assert await run_cli("cancel", str(mine.id), "--as", REQUESTER) == 0
    await slack.wait_for(lambda: not has_buttons(slack.messages[(APPROVAL_CHANNEL, card)]["blocks"]), what="cancelled card")


async def test_the_terminal_must_name_a_real_slack_user(slack_bot, monkeypatch, capfd):
    bot, slack = slack_bot, slack_bot.slack
    cli_env(monkeypatch, bot, slack)
    assert await run_cli("mine") == 2
    assert "--as" in capfd.readouterr().err
    assert await run_cli("mine", "--as", "alice") == 2
    assert "member id" in capfd.readouterr().err
    assert await run_cli("mine", "--as", REQUESTER) == 0
    assert slack.of("users.info", user=REQUESTER)


async def test_with_no_server_running_the_cli_says_the_card_will_follow(slack_bot, monkeypatch, capfd):
    bot, slack = slack_bot, slack_bot.slack
    cli_env(monkeypatch, bot, slack)
    monkeypatch.setattr(cli_verbs, "DELIVERY_WAIT", 0.3)
    post = await search(bot)
    offer = next(oid for name, oid, _ in offers_in(post) if name == "ACS")
    await bot.stop()  # no server delivers now
    assert await run_cli("request", offer, "--reason", "nobody listens", "--as", REQUESTER) == 0
    assert cli_verbs.NOT_DELIVERED in capfd.readouterr().err


async def test_a_burst_under_slacks_rate_limits_loses_nothing(slack_bot, caplog):
    from bot.slack.render.modals import metadata
    from tests.slack_harness import number_value, text_value

    bot, slack = slack_bot, slack_bot.slack
    caplog.set_level(logging.WARNING)
    # Slack's limits ten times faster than real; the bot's pacer twice as eager, so Slack answers 429s
    # with Retry-After and the bot must wait them out.
    slack.limits = RateLimits(speed=10, burst=3, per_minute=50)
    bot.service.notifier.pacer = SlackPacer(rate=20, burst=3)
    groups = []
    for text in ("search US local via plivo", "search US local via plivo"):  # each search: offers of its own
        groups += [oid for _, oid, _ in offers_in(await search(bot, text))]
    wave = 30
    assert len(set(groups)) >= 2 * wave  # one offer per request: a live request holds its offer

    async def create_at_once(start: int) -> None:
        forms = [
            bot.submit(
                ids.VIEW_REQUEST,
                {ids.INPUT_JUSTIFICATION: text_value(f"burst {i}"), ids.INPUT_QUANTITY: number_value(1)},
                user=REQUESTER,
                private_metadata=metadata(offer=groups[i % len(groups)]),
            )
            for i in range(start, start + wave)
        ]
        assert [a.status_code for a in await asyncio.gather(*forms)] == [200] * wave
        await slack.wait_for(
            lambda: len([x for x in bot.store.list_requests(requester=REQUESTER, limit=200) if x.card_ts]) == start + wave,
            timeout=60, what=f"{start + wave} cards posted",
        )

    await create_at_once(0)
    await create_at_once(wave)
    requests = bot.store.list_requests(requester=REQUESTER, limit=200)
    assert len(requests) == 2 * wave
    clicks = [bot.click(ids.ACTION_APPROVE, str(r.id), user=APPROVER, channel=APPROVAL_CHANNEL, message_ts=r.card_ts) for r in requests]
    assert [r.status_code for r, _ in await asyncio.gather(*clicks)] == [200] * len(requests)
    for r in requests:
        await bot.state_of(r.id, {"fulfilled"}, timeout=60)

    def all_final():
        return all(not has_buttons(slack.messages[(APPROVAL_CHANNEL, r.card_ts)]["blocks"])
                   and "Waiting" not in card_text(slack, r.card_ts) and "renting" not in card_text(slack, r.card_ts).lower()
                   for r in requests)

    await slack.wait_for(all_final, timeout=90, what="every final card")
    # created + approved + fulfilled for each request: 3 DMs each, every one delivered.
    await slack.wait_for(lambda: len(slack.dms(REQUESTER)) >= 3 * len(requests), timeout=90, what="every DM")
    assert len(slack.dms(REQUESTER)) == 3 * len(requests)  # and none twice
    assert len(slack.posted_to(APPROVAL_CHANNEL)) == len(requests)  # one card each, none posted twice
    assert slack.limits.refused > 0  # Slack did push back
    await slack.wait_for(lambda: waiting(bot) == 0, what="the outbox empty")
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []


async def test_bot_removed_from_the_approval_channel_approvers_get_the_card_and_doctor_fails(slack_bot):
    bot, slack = slack_bot, slack_bot.slack
    slack.remove_bot_from(APPROVAL_CHANNEL)
    post = await search(bot)
    offers = [oid for name, oid, _ in offers_in(post) if name == "ACS"]
    await bot.service.request(REQUESTER, offers[0], "first")
    for approver in (APPROVER, APPROVER2, GROUP_MEMBER):
        dms = await slack.wait_for(lambda a=approver: dm_texts(slack, a), what=f"the card DMed to {approver}")
        assert "invite @numbers-bot" in dms[0] and "first" in dms[0]
    problems = [e for e in bot.store.events_for(1) if e.kind == "slack_channel_problem"]
    assert len(problems) == 1 and problems[0].data == {"channel": APPROVAL_CHANNEL, "error": "not_in_channel"}

    # A second card within the hour still reaches the approvers, without a second alarm.
    post = await search(bot, "search US tollfree 844 x1")
    other = next(oid for name, oid, _ in offers_in(post) if name == "ACS")
    second = await bot.service.request(REQUESTER, other, "second")
    dms = await slack.wait_for(lambda: len(slack.dms(APPROVER)) >= 2 and dm_texts(slack, APPROVER), what="second card")
    assert "second" in dms[1] and "invite @numbers-bot" not in dms[1]
    assert not [e for e in bot.store.events_for(second.id) if e.kind == "slack_channel_problem"]

    checks = {c.name: c for c in await run_checks(bot.settings)}
    assert not checks["approval channel"].ok and "invite @numbers-bot" in checks["approval channel"].detail
    assert checks["slack scopes"].ok


async def test_doctor_names_missing_scopes_and_waiting_notifications(slack_bot):
    bot, slack = slack_bot, slack_bot.slack
    slack.scopes.discard("groups:read")
    checks = {c.name: c for c in await run_checks(bot.settings)}
    assert checks["outbox"].ok and checks["outbox"].detail == "every notification is delivered to Slack"
    post = await search(bot)
    offer = next(oid for name, oid, _ in offers_in(post) if name == "ACS")
    slack.outage(3600)
    await bot.service.request(REQUESTER, offer, "while Slack is down")
    slack.down_until = 0
    checks = {c.name: c for c in await run_checks(bot.settings)}
    assert not checks["slack scopes"].ok and "groups:read" in checks["slack scopes"].detail
    assert "1 notification(s) waiting for Slack" in checks["outbox"].detail, checks["outbox"].detail


def test_approve_on_a_spending_request_asks_to_confirm_the_cost():
    from dataclasses import replace
    from datetime import datetime, timezone
    from decimal import Decimal

    from bot.domain.requests import NumberRequest
    from bot.domain.states import State
    from bot.slack.render.requests import decision_buttons

    now = datetime.now(timezone.utc)
    request = NumberRequest(
        id=7, offer_id="o", provider="acs", kind="purchase", state=State.PENDING, requester=REQUESTER,
        requester_email=None, quantity=2, numbers=["+18335550100", "+18335550101"], unit_monthly_cost=Decimal("2.00"),
        unit_setup_cost=None, currency="USD", justification="x", ref={}, expires_at=now, hold_expires_at=None,
        approvals=[], created_at=now, updated_at=now,
    )
    approve = decision_buttons(request).to_dict()["elements"][0]
    assert approve["action_id"] == ids.ACTION_APPROVE
    assert approve["confirm"]["text"]["text"] == "Buy 2 numbers at ACS for $4.00/month?"
    extra = decision_buttons(request, ["You agree not to resell these numbers."]).to_dict()["elements"][0]
    assert extra["confirm"]["text"]["text"].endswith("You agree not to resell these numbers.")
    release = replace(request, kind="release", quantity=1, numbers=["+18335550100"])
    assert decision_buttons(release).to_dict()["elements"][0]["confirm"]["text"]["text"].startswith("Release +18335550100 at ACS")
    free = replace(request, unit_monthly_cost=Decimal("0"))
    assert "confirm" not in decision_buttons(free).to_dict()["elements"][0]


async def test_a_search_larger_than_the_text_budget_fits_from_the_command_and_from_home(slack_bot, monkeypatch):
    from bot.slack.render import offers as rendered_offers
    from bot.slack.render.kit import as_text
    from bot.slack.render.modals import metadata
    from tests.slack_harness import select_value, text_value

    bot, slack = slack_bot, slack_bot.slack
    # The sandbox's US local answer is 8–10k characters: scaled down, the same search is "too big".
    monkeypatch.setattr(rendered_offers, "BLOCK_TEXT_BUDGET", 2500)
    slack.block_text_max = 3000
    response, url = await bot.command("search US local")
    post = (await bot.response_to(url))[-1]
    text = as_text(post["blocks"])
    assert len(text) <= 2500 and "more offers — narrow the search with an area code" in text
    assert offers_in(post)

    values = {ids.INPUT_PROVIDER: select_value("any"), ids.INPUT_COUNTRY: text_value("US"), ids.INPUT_TYPE: select_value("local")}
    ok = await bot.submit(ids.VIEW_SEARCH, values, user=REQUESTER, private_metadata=metadata())
    assert ok.status_code == 200
    dm = (await slack.wait_for(lambda: slack.dms(REQUESTER), what="the Home search's answer"))[-1]
    assert len(dm.text()) <= 2500 and "more offers — narrow the search" in dm.text()

    # Refused anyway (the limit is Slack's, undocumented): the text alone still answers.
    slack.block_text_max = 100
    ok = await bot.submit(ids.VIEW_SEARCH, values, user=REQUESTER, private_metadata=metadata())
    taken = lambda: [c for c in slack.dms(REQUESTER) if c.answer.get("ok")]  # noqa: E731
    answers = await slack.wait_for(lambda: len(taken()) >= 2 and taken(), what="the text-only answer")
    assert answers[-1].blocks() == [] and "offers for US local" in answers[-1].params["text"]


async def test_shutdown_while_a_listener_is_mid_work_records_and_delivers_its_result(slack_bot_factory):
    bot = await slack_bot_factory(latency=1.0)  # every provider answer takes a second
    slack = bot.slack
    response, url = await bot.command("search US tollfree 833")
    assert response.status_code == 200  # acked; the search itself is still under way
    await slack.wait_for(lambda: len(bot.components.in_flight) > 0, what="the listener at work")
    await bot.stop()  # SIGTERM now: the store and the provider clients must not close under it
    posts = slack.response_posts(url)
    assert posts and offers_in(posts[-1]), posts
    offer_id = offers_in(posts[-1])[0][1]
    from bot.store.db import Store

    store = Store(bot.settings.db_path)
    try:
        assert store.get_offer(offer_id) is not None  # recorded: the offer can be requested after a restart
    finally:
        store.close()
