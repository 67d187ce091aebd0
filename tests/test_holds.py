"""The search-again rule (``bot/domain/holds.py``), as a pure function: same quantity at no more than
the approved monthly cost goes ahead; anything else goes back for a fresh approval."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from bot.domain.holds import BackToPending, GoAhead, after_search_again, goes_ahead, why_searching_again
from bot.domain.kinds import Kind
from bot.domain.offers import Offer, SearchQuery
from tests.test_policy import req

NOW = datetime(2026, 11, 25, tzinfo=timezone.utc)
OLD = ["+18332270001", "+18332270002"]


def offer(numbers=OLD, cost="2.00", id="o2") -> Offer:
    return Offer(
        id=id, provider="acs", kind=Kind.PURCHASE, numbers=list(numbers),
        unit_monthly_cost=Decimal(cost) if cost is not None else None, currency="USD", unit_setup_cost=None,
        quantity=len(numbers), max_quantity=len(numbers), sms=False, voice=False, expires_at=None, ref={},
        details={}, query=SearchQuery("US"), searched_by="numbers-bot", created_at=NOW,
    )


def test_the_same_numbers_at_the_same_price_go_ahead_unchanged():
    decision = after_search_again(req(state="approved"), [offer()])
    assert decision == GoAhead(offer(), False, "The hold expired; searched again and got the same numbers.")


def test_other_numbers_at_a_lower_price_go_ahead_and_say_which():
    new = offer(["+18332270003", "+18332270004"], cost="1.50")
    decision = after_search_again(req(state="approved"), [new])
    assert isinstance(decision, GoAhead) and decision.changed and decision.offer is new
    assert "+18332270003" in decision.note and "(was " in decision.note and "+18332270001" in decision.note


@pytest.mark.parametrize(
    "approved_cost,offered_cost,quantity,expected",
    [
        ("2.00", "2.00", 2, True),  # exactly the approved price
        ("2.00", "2.01", 2, False),  # a cent more needs a fresh approval
        ("2.00", "1.00", 1, False),  # fewer numbers
        ("2.00", "1.00", 3, False),  # more numbers
        (None, "9.00", 2, True),  # approved at an unknown cost: any cost
        ("2.00", None, 2, False),  # an unknown cost never passes a known one
    ],
)
def test_goes_ahead_only_at_the_same_quantity_and_no_higher_cost(approved_cost, offered_cost, quantity, expected):
    request = req(unit_monthly_cost=Decimal(approved_cost) if approved_cost else None)
    numbers = [f"+1833227{i:04d}" for i in range(quantity)]
    assert goes_ahead(offer(numbers, offered_cost), request) is expected


def test_a_dearer_offer_goes_back_to_pending_with_the_best_fresh_offer():
    dear, dearer = offer(cost="3.00", id="o3"), offer(cost="4.00", id="o4")
    decision = after_search_again(req(), [dear, dearer])
    assert isinstance(decision, BackToPending) and decision.offer is dear
    assert decision.reason == (
        "The hold expired and the new search found 2 number(s) at 3.00 USD/month each "
        "(approved: 2 at 2.00); it needs a fresh approval."
    )


def test_the_first_good_offer_wins_over_a_dearer_one_listed_first():
    dear, good = offer(cost="3.00", id="o3"), offer(cost="1.00", id="o4")
    decision = after_search_again(req(), [dear, good])
    assert isinstance(decision, GoAhead) and decision.offer is good


def test_nothing_found_goes_back_to_pending_without_an_offer():
    decision = after_search_again(req(provider="twilio"), [])
    assert decision == BackToPending(
        None,
        "A number was bought by someone else before the purchase (Twilio holds none) and searching again "
        "found no numbers; the request needs a new approval once numbers are found.",
    )


def test_twilio_has_no_hold_to_expire():
    assert why_searching_again("twilio").startswith("A number was bought by someone else")
    assert why_searching_again("acs") == "The hold expired"
