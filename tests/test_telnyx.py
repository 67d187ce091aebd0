"""Telnyx through the bot: search with cost_information, a reservation made when the offer is requested and
shown on the card, extended while the request waits and let go when it ends, orders polled to their outcome,
regulatory sub-orders as provider_pending, recovery by customer_reference, release, inventory and costs."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest

from bot.domain.errors import ProviderAuthError
from bot.domain.states import State
from bot.providers.base import SearchQuery
from bot.providers.telnyx import TelnyxProvider, customer_reference
from bot.sandbox.telnyx import HOLD_MINUTES, SANDBOX_TELNYX_API_URL, create_telnyx_sandbox
from bot.services import HOLD_EXTEND_MARGIN
from bot.slack import blocks
from tests.conftest import APPROVER, REQUESTER

ORDER = r"/v2/number_orders$"
RESERVE = r"/v2/number_reservations$"
EXTEND = r"/actions/extend$"
SF = SearchQuery("US", "local", "415", quantity=2, sms=True, provider="telnyx")


async def offer_of(bot, query=SF):
    result = await bot.svc.search(REQUESTER, query)
    offers = [o for o in result.offers if o.provider == "telnyx"]
    assert offers, result.problems
    return offers[0]


async def pending_request(bot, query=SF):
    offer = await offer_of(bot, query)
    return offer, await bot.svc.request(REQUESTER, offer.id, "Support line")


def orders(bot) -> int:
    return bot.sandbox.telnyx.count("POST", ORDER)


def card(bot, request) -> str:
    fresh = bot.store.get_request(request.id)
    return json.dumps(blocks.card_message(fresh, bot.c.settings, offer=bot.store.get_offer(fresh.offer_id), now=bot.clock.now()).payload())


async def test_offer_carries_cost_information(bot):
    offer = await offer_of(bot)
    assert offer.unit_monthly_cost == Decimal("1.00") and offer.unit_setup_cost == Decimal("1.00")
    assert offer.quantity == 2 and offer.sms and offer.voice
    assert "Held for 30 minutes once you request it" in blocks.offer_text(offer)


async def test_requesting_reserves_the_numbers_and_the_card_shows_the_hold_end(bot):
    offer, request = await pending_request(bot)
    assert bot.sandbox.telnyx.count("POST", RESERVE) == 1
    reservation = bot.sandbox.telnyx.reservation(request.ref["reservation_id"])
    assert sorted(n["phone_number"] for n in reservation["phone_numbers"]) == sorted(offer.numbers)
    assert request.hold_expires_at is not None
    minutes = (request.hold_expires_at - bot.clock.now()).total_seconds() / 60
    assert HOLD_MINUTES - 1 < minutes <= HOLD_MINUTES
    assert "*Hold*" in card(bot, request)
    # Held: another search no longer offers them.
    again = await bot.svc.search(REQUESTER, SF)
    assert not set(offer.numbers) & {n for o in again.offers for n in o.numbers}


async def test_the_hold_is_extended_while_the_request_waits(bot):
    _, request = await pending_request(bot)
    first_end = request.hold_expires_at
    await bot.c.worker.run_once()
    assert bot.sandbox.telnyx.count("POST", EXTEND) == 0  # far from its end: left alone
    for _ in range(4):  # two hours of waiting, past four 30-minute holds
        bot.advance(HOLD_MINUTES * 60 - HOLD_EXTEND_MARGIN + 10)
        await bot.c.worker.run_once()
    waited = (await bot.svc.get(request.id))
    assert bot.sandbox.telnyx.count("POST", EXTEND) == 4
    assert waited.state == State.PENDING and waited.hold_expires_at > bot.clock.now() > first_end
    assert [e.kind for e in waited.events].count("hold_extended") == 4
    assert "hold_extended" in bot.notes.whats(request.id)  # the card is redrawn with the new end
    shown = card(bot, request)
    assert f"held until {blocks.slack_date(waited.hold_expires_at)} (2" in shown and "min more" in shown
    await bot.svc.approve(request.id, APPROVER)
    done = await bot.settle(request.id)
    assert done.state == State.FULFILLED and orders(bot) == 1 and "rehold" not in [e.kind for e in done.events]


@pytest.mark.parametrize("ending", ["deny", "cancel", "expire"])
async def test_the_hold_is_let_go_when_the_request_ends(bot, ending):
    _, request = await pending_request(bot)
    if ending == "deny":
        await bot.svc.deny(request.id, APPROVER, "not now")
    elif ending == "cancel":
        await bot.svc.cancel(request.id, REQUESTER)
    else:
        bot.advance(bot.svc.request_ttl + 1)
        await bot.svc.expire_due()
    ended = (await bot.svc.get(request.id))
    assert "hold_abandoned" in [e.kind for e in ended.events]
    bot.advance(HOLD_MINUTES * 60)
    await bot.c.worker.run_once()
    assert bot.sandbox.telnyx.count("POST", EXTEND) == 0


async def test_order_is_polled_to_success_with_the_reference_and_bought_once(bot):
    offer, request = await pending_request(bot)
    await bot.svc.approve(request.id, APPROVER)
    done = await bot.settle(request.id)
    assert done.state == State.FULFILLED, done.outcome
    assert sorted(done.numbers) == sorted(offer.numbers) and orders(bot) == 1
    assert bot.sandbox.telnyx.count("GET", r"/v2/number_orders/[^/]+$") >= 2  # pending, then success
    (_, order), = bot.sandbox.telnyx.state.items("telnyx_orders")
    assert order["customer_reference"] == customer_reference(request.id)
    assert sorted(bot.sandbox.telnyx.owned_numbers()) == sorted(offer.numbers)
    assert sorted(h.number for h in (await bot.svc.inventory())) == sorted(offer.numbers)
    assert (await bot.svc.costs()).by_provider()["telnyx"] == Decimal("2.00")


async def test_connection_and_messaging_profile_go_with_the_order(bot_factory):
    # A whole Telnyx configuration (a key with the ids: half-set settings stop start-up); NUMBERS_SANDBOX
    # still sends it all to the sandbox.
    bot = bot_factory(
        TELNYX_API_KEY="KEYsandbox", TELNYX_CONNECTION_ID="1293384261075731499",
        TELNYX_MESSAGING_PROFILE_ID="4001767e-ce0f-4cae-9d5f-0d5e636e7809",
    )
    _, request = await pending_request(bot)
    await bot.svc.approve(request.id, APPROVER)
    await bot.settle(request.id)
    (_, order), = bot.sandbox.telnyx.state.items("telnyx_orders")
    assert order["connection_id"] == "1293384261075731499"
    assert order["messaging_profile_id"] == "4001767e-ce0f-4cae-9d5f-0d5e636e7809"


async def test_regulated_country_waits_at_telnyx_in_its_words(bot):
    _, request = await pending_request(bot, SearchQuery("DE", "local", "30", provider="telnyx"))
    await bot.svc.approve(request.id, APPROVER)
    done = await bot.settle(request.id)
    assert done.state == State.PROVIDER_PENDING, done.outcome
    assert "Proof of a local address in Germany" in done.outcome and orders(bot) == 1


async def test_answer_lost_after_ordering_is_recovered_by_reference_not_ordered_twice(bot):
    _, request = await pending_request(bot)
    bot.sandbox.telnyx.faults.add("after", method="POST", path=ORDER, status=502, times=1)
    await bot.svc.approve(request.id, APPROVER)
    done = await bot.settle(request.id)
    assert done.state == State.FULFILLED, done.outcome
    assert orders(bot) == 1 and "recovered" in [e.kind for e in done.events]
    assert bot.sandbox.telnyx.count("GET", r"/v2/number_orders$") >= 1


async def test_numbers_gone_at_order_time_buys_an_equivalent(bot):
    offer, request = await pending_request(bot, SearchQuery("US", "local", "312", provider="telnyx"))
    bot.sandbox.telnyx.take(offer.numbers[0])  # the hold was lost and another customer ordered it
    await bot.svc.approve(request.id, APPROVER)
    done = await bot.settle(request.id)
    assert done.state == State.FULFILLED, done.outcome
    assert offer.numbers[0] not in done.numbers and "rehold" in [e.kind for e in done.events]
    assert sorted(bot.sandbox.telnyx.owned_numbers()) == sorted(done.numbers)


async def test_wrong_key_says_which_setting_in_telnyxs_words():
    telnyx = TelnyxProvider("KEYwrong-key-0000", api_url=SANDBOX_TELNYX_API_URL,
                            transport=httpx.ASGITransport(app=create_telnyx_sandbox()))
    with pytest.raises(ProviderAuthError) as info:
        await telnyx.check()
    text = str(info.value)
    assert "10009" in text and "Authentication failed" in text and "TELNYX_API_KEY" in text
    assert "KEYwrong-key-0000" not in text and "KEYwrong" not in repr(telnyx)


async def test_release_deletes_and_a_number_already_gone_counts_as_released(bot):
    offer, request = await pending_request(bot)
    await bot.svc.approve(request.id, APPROVER)
    await bot.settle(request.id)
    release = await bot.svc.request_release(REQUESTER, offer.numbers[0], "campaign over")
    await bot.svc.approve(release.id, APPROVER)
    done = await bot.settle(release.id)
    assert done.state == State.FULFILLED, done.outcome
    assert bot.sandbox.telnyx.owned_numbers() == [offer.numbers[1]]
    again = await bot.c.providers["telnyx"].release(offer.numbers[0], {})
    assert again.numbers == [offer.numbers[0]] and "no longer lists" in (again.note or "")


async def test_a_hold_that_could_not_be_extended_is_found_out_at_purchase(bot):
    offer, request = await pending_request(bot)
    bot.sandbox.telnyx.faults.add("status", method="POST", path=EXTEND, status=500, times=-1)
    bot.advance(HOLD_MINUTES * 60 + 60)  # the reservation lapsed
    await bot.c.worker.run_once()
    assert "hold_not_extended" in [e.kind for e in (await bot.svc.get(request.id)).events]
    await bot.svc.approve(request.id, APPROVER)
    done = await bot.settle(request.id)
    # The hold's end has passed: the worker searches again before ordering, and buys within the approved cost.
    assert done.state == State.FULFILLED, done.outcome
    assert "rehold" in [e.kind for e in done.events] and orders(bot) == 1
    assert done.unit_monthly_cost <= offer.unit_monthly_cost
    assert timedelta(0) < bot.clock.now() - request.hold_expires_at


async def test_a_resend_refused_because_our_own_order_took_the_numbers_follows_that_order():
    """The first order's answer was lost and a resend raced it: "no longer available" is our own order."""
    from bot.providers.base import InProgress, Job, Requester
    from bot.sandbox.telnyx import SANDBOX_TELNYX_API_KEY

    app = create_telnyx_sandbox()
    telnyx = TelnyxProvider(SANDBOX_TELNYX_API_KEY, api_url=SANDBOX_TELNYX_API_URL, transport=httpx.ASGITransport(app=app))
    numbers = (await telnyx.search(SearchQuery("US", "local", "415")))[0].numbers
    job = Job(31, "telnyx", "purchase", {}, 1, numbers, Requester("U1"))
    first = await telnyx.submit(job)
    second = await telnyx.submit(job)
    assert isinstance(second, InProgress) and second.ref == first.ref
    assert len(app.state.items("telnyx_orders")) == 1


async def test_an_order_that_ends_in_failure_fails_the_request_in_telnyxs_words(bot):
    offer, request = await pending_request(bot)
    bot.sandbox.telnyx.fail_next_order()
    await bot.svc.approve(request.id, APPROVER)
    done = await bot.settle(request.id)
    assert done.state == State.FAILED and orders(bot) == 1
    assert "could not complete order" in done.outcome and offer.numbers[0] in done.outcome
    assert bot.sandbox.telnyx.owned_numbers() == [] and (await bot.svc.inventory()) == []


async def test_regulatory_words_come_from_telnyx_and_fall_back_to_its_field_types(bot):
    _, request = await pending_request(bot, SearchQuery("FR", "local", "1", provider="telnyx"))
    await bot.svc.approve(request.id, APPROVER)
    done = await bot.settle(request.id)
    assert done.state == State.PROVIDER_PENDING
    assert "Address in France: Proof of address in France" in done.outcome
    assert "Identity document: Copy of a valid identity document" in done.outcome
    bot.sandbox.telnyx.faults.add("status", path=r"/v2/regulatory_requirements$", status=500, times=-1)
    _, second = await pending_request(bot, SearchQuery("FR", "local", "1", provider="telnyx"))
    await bot.svc.approve(second.id, APPROVER)
    done = await bot.settle(second.id)
    assert done.state == State.PROVIDER_PENDING, done.outcome
    assert "an address requirement; a document requirement" in done.outcome
