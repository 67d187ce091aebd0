"""The current provider APIs end to end (service + worker + sandbox): ACS's do-not-resell
agreement, Plivo's PhoneNumber API (the default), Webex's location rule."""

from __future__ import annotations

import json

import pytest

from bot.domain.states import State
from bot.domain.offers import SearchQuery
from bot.slack.render.offers import NOT_RESELL_LINE, offer_text
from bot.slack.render.requests import card_message, decision_buttons
from bot.slack.configure import render_config
from tests.conftest import APPROVER, APPROVER2, REQUESTER

PURCHASE = r"/availablePhoneNumbers/:purchase$"


def purchase_bodies(bot) -> list[dict]:
    return [json.loads(r.body) for r in bot.sandbox.acs.requests if r.method == "POST" and r.path.endswith(":purchase")]


def submitted_event(request):
    return next(e for e in request.events if e.kind == "submitted")


# --- ACS: the do-not-resell agreement -----------------------------------------------------------


async def acs_offer(bot, country="US", prefix="833"):
    result = await bot.svc.search(REQUESTER, SearchQuery(country, "tollfree", prefix, 1, provider="acs"))
    [offer] = result.offers
    return offer


async def test_an_offer_needing_the_agreement_says_so_and_approving_sends_it_and_records_who(bot_factory):
    bot = bot_factory(NUMBERS_REQUIRED_APPROVALS=2)
    offer = await acs_offer(bot)
    assert offer.ref["agree_to_not_resell"] is True
    assert NOT_RESELL_LINE in offer_text(offer)
    request = await bot.svc.request(REQUESTER, offer.id, "Support line")

    card = card_message(request, render_config(bot.c.settings), offer=offer)
    blocks = [b.to_dict() for b in card.blocks]
    assert NOT_RESELL_LINE in json.dumps(blocks, ensure_ascii=False)
    approve = decision_buttons(request).to_dict()["elements"][0]
    assert (
        f"Approving request #{request.id} agrees, for the organisation, not to resell these numbers."
        in approve["confirm"]["text"]["text"]
    )

    await bot.svc.approve(request.id, APPROVER)
    await bot.svc.approve(request.id, APPROVER2)
    done = await bot.settle(request.id)
    assert done.state == State.FULFILLED
    assert purchase_bodies(bot) == [{"searchId": offer.ref["search_id"], "agreeToNotResell": True}]
    data = submitted_event(done).data
    assert data == {"agreed_to_not_resell": True, "agreed_by": [APPROVER, APPROVER2]}


async def test_an_offer_not_needing_it_never_sends_true_and_asks_no_agreement(bot):
    offer = await acs_offer(bot, "CA", "877")
    assert "agree_to_not_resell" not in offer.ref and NOT_RESELL_LINE not in offer_text(offer)
    request = await bot.svc.request(REQUESTER, offer.id, "Support line")
    # Approve still confirms the spending (every paid request does), but asks for no agreement.
    confirm = decision_buttons(request).to_dict()["elements"][0]["confirm"]
    assert "resell" not in confirm["text"]["text"] and confirm["text"]["text"].startswith("Buy ")
    await bot.svc.approve(request.id, APPROVER)
    done = await bot.settle(request.id)
    assert done.state == State.FULFILLED
    assert purchase_bodies(bot) == [{"searchId": offer.ref["search_id"], "agreeToNotResell": False}]
    assert submitted_event(done).data == {}


async def test_a_missing_agreement_is_refused_in_the_providers_words(bot):
    """Were the agreement ever dropped (an old request, a changed search), ACS's refusal is what the user reads."""
    offer = await acs_offer(bot)
    request = await bot.svc.request(REQUESTER, offer.id, "Support line")
    bot.store.db.execute("UPDATE requests SET ref = ? WHERE id = ?", [json.dumps({"search_id": offer.ref["search_id"]}), request.id])
    await bot.svc.approve(request.id, APPROVER)
    done = await bot.settle(request.id)
    assert done.state == State.FAILED
    assert "Do not resell agreement was not provided and it is required for this purchase." in done.outcome


async def test_the_seed_version_2021_03_07_keeps_working_and_sends_no_agreement_field(bot_factory):
    bot = bot_factory(ACS_API_VERSION="2021-03-07")
    offer = await acs_offer(bot)
    assert "agree_to_not_resell" not in offer.ref  # the version cannot say it
    request = await bot.svc.request(REQUESTER, offer.id, "Support line")
    await bot.svc.approve(request.id, APPROVER)
    assert (await bot.settle(request.id)).state == State.FULFILLED
    assert purchase_bodies(bot) == [{"searchId": offer.ref["search_id"]}]
    assert all("api-version=2021-03-07" in r.raw_query for r in bot.sandbox.acs.requests if r.raw_query)


async def test_a_release_answered_204_with_an_operation_is_followed_to_its_end(bot):
    offer = await acs_offer(bot, "CA", "877")
    request = await bot.svc.request(REQUESTER, offer.id, "Support line")
    await bot.svc.approve(request.id, APPROVER)
    await bot.settle(request.id)
    bot.sandbox.acs.set_release_status(204)
    [number] = offer.numbers
    release = await bot.svc.request_release(REQUESTER, number, "no longer needed")
    await bot.svc.approve(release.id, APPROVER)
    done = await bot.settle(release.id)
    assert done.state == State.FULFILLED
    ops = [r for r in bot.sandbox.acs.requests if r.method == "GET" and "/operations/release_" in r.path]
    assert ops, "the release operation was never polled"
    assert number not in bot.sandbox.acs.purchased()


# --- Plivo: the PhoneNumber API is the default ----------------------------------------------------


@pytest.fixture
async def numbers_bot(bot_factory):
    return bot_factory(PLIVO_API="numbers")


async def plivo_offer(bot, country="US", prefix="415"):
    result = await bot.svc.search(REQUESTER, SearchQuery(country, "local", prefix, 1, provider="plivo"))
    assert result.offers, result.problems
    return result.offers[0]


async def test_plivo_search_offers_real_numbers_and_buys_the_one_requested(numbers_bot):
    bot = numbers_bot
    offer = await plivo_offer(bot)
    assert offer.kind == "purchase" and len(offer.numbers) == 1 and offer.numbers[0].startswith("+1415")
    assert offer.unit_monthly_cost is not None
    request = await bot.svc.request(REQUESTER, offer.id, "Sales line")
    await bot.svc.approve(request.id, APPROVER)
    done = await bot.settle(request.id)
    assert done.state == State.FULFILLED and done.numbers == offer.numbers
    assert bot.sandbox.plivo.count("POST", r"/PhoneNumber/\d+/$") == 1
    assert bot.sandbox.plivo.count("POST", r"/AvailableNumberGroup/") == 0


async def test_plivo_restriction_is_on_the_offer_and_card_and_a_regulated_buy_is_provider_pending(numbers_bot):
    bot = numbers_bot
    offer = await plivo_offer(bot, "DE", "30")
    assert "local address" in offer.ref["restriction_text"]
    assert "Plivo restriction" in offer_text(offer)
    request = await bot.svc.request(REQUESTER, offer.id, "Berlin office")
    assert "Plivo restriction" in json.dumps([b.to_dict() for b in card_message(request, render_config(bot.c.settings)).blocks])
    await bot.svc.approve(request.id, APPROVER)
    done = await bot.settle(request.id)
    assert done.state == State.PROVIDER_PENDING
    assert "pending" in done.outcome and offer.numbers[0] in done.outcome


async def test_plivo_buy_answer_lost_is_recovered_by_asking_for_the_number(numbers_bot):
    """Where the group API forced needs_attention, GET Number/{n}/ tells: fulfilled, one buy."""
    bot = numbers_bot
    offer = await plivo_offer(bot)
    request = await bot.svc.request(REQUESTER, offer.id, "Sales line")
    bot.sandbox.plivo.faults.add("after", method="POST", path=r"/PhoneNumber/\d+/$", status=502)
    await bot.svc.approve(request.id, APPROVER)
    done = await bot.settle(request.id)
    assert done.state == State.FULFILLED and done.numbers == offer.numbers
    assert bot.sandbox.plivo.count("POST", r"/PhoneNumber/\d+/$") == 1
    assert bot.sandbox.plivo.count("GET", r"/Number/\d+/$") >= 1


async def test_plivo_buy_that_never_arrived_is_found_missing_and_sent_again_once(numbers_bot):
    bot = numbers_bot
    offer = await plivo_offer(bot)
    request = await bot.svc.request(REQUESTER, offer.id, "Sales line")
    bot.sandbox.plivo.faults.add("status", method="POST", path=r"/PhoneNumber/\d+/$", status=502)
    await bot.svc.approve(request.id, APPROVER)
    done = await bot.settle(request.id)
    assert done.state == State.FULFILLED
    assert bot.sandbox.plivo.count("POST", r"/PhoneNumber/\d+/$") == 2


async def test_plivo_an_unreadable_answer_about_the_number_goes_to_needs_attention(numbers_bot):
    bot = numbers_bot
    offer = await plivo_offer(bot)
    request = await bot.svc.request(REQUESTER, offer.id, "Sales line")
    bot.sandbox.plivo.faults.add("after", method="POST", path=r"/PhoneNumber/\d+/$", status=502)
    bot.sandbox.plivo.faults.add("malformed", method="GET", path=r"/Number/\d+/$", times=10)
    await bot.svc.approve(request.id, APPROVER)
    done = await bot.settle(request.id)
    assert done.state == State.NEEDS_ATTENTION
    assert bot.sandbox.plivo.count("POST", r"/PhoneNumber/\d+/$") == 1


# --- Webex: offers of the requester's own location ------------------------------------------------


async def test_assign_offers_only_numbers_of_the_requesters_location(bot):
    result = await bot.svc.assign_search(REQUESTER, None)  # alice: a calling user in San Jose
    assert result.offers and {o.details["location_name"] for o in result.offers} == {"San Jose"}
    elsewhere = await bot.svc.assign_search(REQUESTER, "London")
    assert elsewhere.offers == []
    assert any("Your Webex Calling location is San Jose, not London" in p for p in elsewhere.problems)
