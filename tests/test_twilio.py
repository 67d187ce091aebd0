"""Twilio through the bot: search with a price (or "see Twilio pricing", never $0), a card that says the
number is not reserved, a purchase tagged with the request's reference, the "number taken meanwhile"
path, regulatory refusals in words, recovery by look-up, release, inventory and costs."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest

from bot.domain.errors import ProviderAuthError, ProviderError
from bot.domain.states import State
from bot.providers.base import Done, Job, Requester, SearchQuery
from bot.providers.twilio import TwilioProvider, friendly_name
from bot.sandbox.twilio import (
    INCOMPLETE_BUNDLE_SID,
    SANDBOX_TWILIO_ACCOUNT_SID,
    SANDBOX_TWILIO_API_URL,
    SANDBOX_TWILIO_AUTH_TOKEN,
    create_twilio_sandbox,
)
from bot.slack import blocks
from tests.conftest import APPROVER, REQUESTER, no_wait

BUY = r"/IncomingPhoneNumbers\.json$"
LOOKUP = r"/IncomingPhoneNumbers\.json$"
SF = SearchQuery("US", "local", "415", provider="twilio")


def client(app, **kw) -> TwilioProvider:
    return TwilioProvider(
        SANDBOX_TWILIO_ACCOUNT_SID,
        kw.pop("token", SANDBOX_TWILIO_AUTH_TOKEN),
        api_url=SANDBOX_TWILIO_API_URL,
        transport=httpx.ASGITransport(app=app),
        sleep=no_wait,
        **kw,
    )


async def offer_of(bot, query=SF):
    result = await bot.svc.search(REQUESTER, query)
    offers = [o for o in result.offers if o.provider == "twilio"]
    assert offers, result.problems
    return offers[0]


def buys(bot) -> int:
    return bot.sandbox.twilio.count("POST", BUY)


async def test_offer_shows_price_and_says_not_reserved(bot):
    offer = await offer_of(bot)
    assert offer.unit_monthly_cost == Decimal("1.15") and offer.expires_at is None
    text = blocks.offer_text(offer)
    assert "$1.15/month" in text and "not reserved" in text


async def test_no_price_says_see_twilio_pricing_never_zero(bot):
    # The sandbox's Pricing API has no entry for Canada, as an account without pricing access sees.
    offer = await offer_of(bot, SearchQuery("CA", "local", "416", provider="twilio"))
    assert offer.unit_monthly_cost is None
    text = blocks.offer_text(offer)
    assert "see Twilio pricing" in text and "$0" not in text


async def test_pricing_api_refused_still_searches(bot):
    bot.sandbox.twilio.faults.add("status", path=r"/v1/PhoneNumbers/Countries/", status=403, times=-1,
                                  body={"code": 20003, "message": "Authenticate", "status": 403})
    offer = await offer_of(bot)
    assert offer.unit_monthly_cost is None and offer.numbers


async def test_purchase_carries_the_reference_and_buys_once(bot):
    offer = await offer_of(bot)
    request = await bot.svc.request(REQUESTER, offer.id, "Sales line")
    card = json.dumps(blocks.card_message(request, bot.c.settings, offer=(await bot.svc.offer(offer.id))).payload())
    assert request.hold_expires_at is None and "not reserved" in card
    await bot.svc.approve(request.id, APPROVER)
    done = await bot.settle(request.id)
    assert done.state == State.FULFILLED, done.outcome
    assert done.numbers == offer.numbers and buys(bot) == 1
    bought = bot.sandbox.twilio.state.items("twilio_numbers")
    assert [doc["friendly_name"] for _, doc in bought] == [friendly_name(request.id)]
    held = (await bot.svc.inventory())
    assert [h.number for h in held] == offer.numbers and held[0].provider == "twilio"
    assert (await bot.svc.costs()).by_provider()["twilio"] == Decimal("1.15")


async def test_number_taken_meanwhile_buys_an_equivalent_and_says_which_changed(bot):
    offer = await offer_of(bot)
    request = await bot.svc.request(REQUESTER, offer.id, "Sales line")
    bot.sandbox.twilio.take(offer.numbers[0])  # another Twilio customer buys it before the approval
    await bot.svc.approve(request.id, APPROVER)
    done = await bot.settle(request.id)
    assert done.state == State.FULFILLED, done.outcome
    assert done.numbers != offer.numbers and len(done.numbers) == 1
    assert bot.sandbox.twilio.owned_numbers() == done.numbers  # one number bought, the equivalent
    assert done.unit_monthly_cost <= offer.unit_monthly_cost
    kinds = [e.kind for e in done.events]
    assert "hold_expired" in kinds and "rehold" in kinds
    assert "numbers_changed" in bot.notes.whats(request.id)
    said = [t for rid, w, t in bot.notes.seen if rid == request.id and w == "numbers_changed"][0]
    assert "bought by someone else" in said and offer.numbers[0][-4:] in said


async def test_number_taken_and_none_left_returns_to_pending(bot):
    offer = await offer_of(bot, SearchQuery("US", "local", "512", provider="twilio"))
    request = await bot.svc.request(REQUESTER, offer.id, "Austin office")
    for number in list(bot.sandbox.twilio.catalogue):
        if number.startswith("+1512"):
            bot.sandbox.twilio.take(number)
    await bot.svc.approve(request.id, APPROVER)
    done = await bot.settle(request.id)
    assert done.state == State.PENDING and not done.approvals
    assert buys(bot) == 1 and bot.sandbox.twilio.owned_numbers() == []
    assert "reapproval" in bot.notes.whats(request.id)


async def test_address_required_is_refused_before_approval_with_the_setting(bot):
    offer = await offer_of(bot, SearchQuery("DE", "local", "30", provider="twilio"))
    with pytest.raises(ProviderError) as info:
        await bot.svc.request(REQUESTER, offer.id, "Berlin office")
    assert "TWILIO_ADDRESS_SID" in str(info.value)
    assert bot.store.list_requests(requester=REQUESTER) == []


@pytest.mark.parametrize(
    "country,prefix,settings,code,setting",
    [
        ("DE", "30", {"address_sid": "AD" + "1" * 32}, "21649", "TWILIO_BUNDLE_SID"),
        ("FR", "1", {"bundle_sid": INCOMPLETE_BUNDLE_SID}, "21650", "TWILIO_BUNDLE_SID"),
    ],
)
async def test_regulatory_refusals_at_purchase_say_the_setting(country, prefix, settings, code, setting):
    app = create_twilio_sandbox()
    twilio = client(app, **settings)
    offers = await twilio.search(SearchQuery(country, "local", prefix))
    await twilio.prepare(offers[0], 1, Requester("U1"))
    with pytest.raises(ProviderError) as info:
        await twilio.submit(Job(7, "twilio", "purchase", {}, 1, offers[0].numbers, Requester("U1")))
    assert info.value.code == code and setting in str(info.value)
    assert app.owned_numbers() == []


async def test_wrong_token_says_which_setting_in_twilios_words():
    twilio = client(create_twilio_sandbox(), token="wrong-token-0000")
    with pytest.raises(ProviderAuthError) as info:
        await twilio.check()
    text = str(info.value)
    assert "20003" in text and "Authenticate" in text and "TWILIO_AUTH_TOKEN" in text
    assert "wrong-token-0000" not in text and "wrong-token-0000" not in repr(twilio)


async def test_recover_finds_only_numbers_carrying_our_reference():
    app = create_twilio_sandbox()
    twilio = client(app)
    numbers = (await twilio.search(SearchQuery("US", "local", "415")))[0].numbers
    job = Job(11, "twilio", "purchase", {}, 1, numbers, Requester("U1"))
    assert await twilio.recover(job) is None  # nothing bought: safe to buy
    other = Job(12, "twilio", "purchase", {}, 1, numbers, Requester("U1"))
    await twilio.submit(other)  # the same number bought for another request
    assert await twilio.recover(job) is None
    assert await twilio.recover(other) == Done(numbers=numbers)


async def test_answer_lost_after_buying_is_recovered_not_bought_twice(bot):
    offer = await offer_of(bot)
    request = await bot.svc.request(REQUESTER, offer.id, "Sales line")
    # Twilio buys the number, then the answer is lost (a 502 from a proxy on the way back).
    bot.sandbox.twilio.faults.add("after", method="POST", path=BUY, status=502, times=1)
    await bot.svc.approve(request.id, APPROVER)
    done = await bot.settle(request.id)
    assert done.state == State.FULFILLED, done.outcome
    assert buys(bot) == 1 and bot.sandbox.twilio.owned_numbers() == offer.numbers
    assert "recovered" in [e.kind for e in done.events]
    assert bot.sandbox.twilio.count("GET", LOOKUP) >= 1


async def test_a_resend_answered_21422_because_we_hold_it_is_bought_not_gone():
    """The first buy's answer was lost and a resend raced it: 21422 on a number of ours is success."""
    app = create_twilio_sandbox()
    twilio = client(app)
    numbers = (await twilio.search(SearchQuery("US", "local", "415")))[0].numbers
    job = Job(21, "twilio", "purchase", {}, 1, numbers, Requester("U1"))
    await twilio.submit(job)
    assert await twilio.submit(job) == Done(numbers=numbers)
    assert app.count("POST", BUY) == 2 and app.owned_numbers() == numbers


async def test_release_deletes_and_a_number_already_gone_counts_as_released(bot):
    offer = await offer_of(bot)
    request = await bot.svc.request(REQUESTER, offer.id, "Sales line")
    await bot.svc.approve(request.id, APPROVER)
    await bot.settle(request.id)
    release = await bot.svc.request_release(REQUESTER, offer.numbers[0], "campaign over")
    await bot.svc.approve(release.id, APPROVER)
    done = await bot.settle(release.id)
    assert done.state == State.FULFILLED, done.outcome
    assert bot.sandbox.twilio.owned_numbers() == [] and bot.sandbox.twilio.count("DELETE", r"/IncomingPhoneNumbers/") == 1
    assert (await bot.svc.inventory()) == []
    twilio = bot.c.providers["twilio"]
    again = await twilio.release(offer.numbers[0], {})
    assert again.numbers == offer.numbers and "no longer lists" in (again.note or "")


async def test_search_waits_out_429(bot):
    bot.sandbox.twilio.faults.add("status", path=r"/AvailablePhoneNumbers/", status=429, times=1,
                                  headers={"Retry-After": "2"}, body={"code": 20429, "message": "Too Many Requests", "status": 429})
    no_wait.waits.clear()
    bot.c.providers["twilio"]._sleep = no_wait
    offer = await offer_of(bot)
    assert offer.numbers and 2.0 in no_wait.waits


async def test_doctor_check_is_a_harmless_read(bot):
    said = await bot.c.providers["twilio"].check()
    assert "accepted" in said and bot.sandbox.twilio.count("POST", r".*") == 0


async def test_prices_are_read_once_an_hour_not_on_every_search():
    app = create_twilio_sandbox()
    twilio = client(app)
    for _ in range(3):
        assert (await twilio.search(SearchQuery("US", "local", "415")))[0].unit_monthly_cost == Decimal("1.15")
    assert app.count("GET", r"/v1/PhoneNumbers/Countries/US$") == 1
    assert app.count("GET", r"/AvailablePhoneNumbers/") == 3


async def test_second_number_taken_mid_purchase_keeps_the_first_and_says_which_was_not_bought(bot):
    offer = await offer_of(bot, SearchQuery("US", "local", "415", quantity=2, provider="twilio"))
    request = await bot.svc.request(REQUESTER, offer.id, "Two lines")
    bot.sandbox.twilio.take(offer.numbers[1])
    await bot.svc.approve(request.id, APPROVER)
    done = await bot.settle(request.id)
    assert done.state == State.FULFILLED and done.numbers == offer.numbers[:1] and done.quantity == 1
    assert offer.numbers[1] in done.outcome and "1 of 2" in done.outcome
    assert bot.sandbox.twilio.owned_numbers() == offer.numbers[:1] and buys(bot) == 2


async def test_errors_never_name_the_account_sid():
    app = create_twilio_sandbox()
    twilio = client(app)
    app.faults.add("drop", path=r"/AvailablePhoneNumbers/", times=-1)
    app.faults.add("status", path=r"/IncomingPhoneNumbers\.json$", status=500, times=-1, body="<html>oops</html>")
    said = []
    for call in (twilio.search(SearchQuery("US", "local", "415")), twilio.release("+14155550100", {})):
        with pytest.raises(ProviderError) as info:
            await call
        said.append(str(info.value))
    assert "could not be reached" in said[0] and "{AccountSid}" in said[0] + said[1]
    assert all(SANDBOX_TWILIO_ACCOUNT_SID not in text for text in said)
