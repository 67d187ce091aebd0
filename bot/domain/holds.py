"""What happens when a held search runs out before the purchase: the search-again rule.

The provider is searched again with the request's query. The rule is pure and
lives here: the first fresh offer of the same quantity at no more than the
approved monthly cost per number goes ahead without another approval (the card
says which numbers changed); anything else sends the request back to
``pending`` with the best fresh offer, for a fresh approval.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.display import both
from bot.domain.offers import Offer
from bot.domain.requests import NumberRequest

__all__ = ["GoAhead", "BackToPending", "after_search_again", "goes_ahead", "why_searching_again"]


@dataclass(frozen=True)
class GoAhead:
    """Buy ``offer`` instead, without asking again; ``changed`` when its numbers differ."""

    offer: Offer
    changed: bool
    note: str


@dataclass(frozen=True)
class BackToPending:
    """Ask the approvers again, with ``offer`` (None when the search found nothing)."""

    offer: Offer | None
    reason: str


def why_searching_again(provider: str) -> str:
    """The card's words for why the numbers may change: Twilio has no hold to expire."""
    if provider == "twilio":
        return "A number was bought by someone else before the purchase (Twilio holds none)"
    return "The hold expired"


def goes_ahead(offer: Offer, request: NumberRequest) -> bool:
    """Same quantity, at no more than the approved monthly cost per number (a request approved
    at an unknown cost accepts any cost; an offer of unknown cost never passes a known one)."""
    approved = request.unit_monthly_cost
    if offer.quantity != request.quantity:
        return False
    return approved is None or (offer.unit_monthly_cost is not None and offer.unit_monthly_cost <= approved)


def after_search_again(request: NumberRequest, fresh: list[Offer]) -> GoAhead | BackToPending:
    """Decide what the fresh offers (best first) mean for an approved request whose hold ran out."""
    gone = why_searching_again(request.provider)
    good = [o for o in fresh if goes_ahead(o, request)]
    if good:
        new = good[0]
        changed = bool(set(new.numbers) ^ set(request.numbers))
        if not changed:
            note = f"{gone}; searched again and got the same numbers."
        else:
            note = (
                f"{gone}; searched again. Numbers now: "
                + ", ".join(both(n) for n in new.numbers)
                + " (was "
                + ", ".join(both(n) for n in request.numbers)
                + ")."
            )
        return GoAhead(new, changed, note)
    if not fresh:
        return BackToPending(
            None,
            f"{gone} and searching again found no numbers; the request needs a new approval once numbers are found.",
        )
    best = fresh[0]
    cost = best.unit_monthly_cost if best.unit_monthly_cost is not None else "unknown cost"
    return BackToPending(
        best,
        f"{gone} and the new search found {best.quantity} number(s) at {cost} {best.currency}/month each "
        f"(approved: {request.quantity} at {request.unit_monthly_cost}); it needs a fresh approval.",
    )
