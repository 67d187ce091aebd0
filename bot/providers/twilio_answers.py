"""What Twilio answers, read into the bot's values: errors, prices and offers (no I/O here)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from bot.domain.kinds import Kind
from bot.domain.offers import OfferDraft, SearchQuery

__all__ = ["PRICE_UNKNOWN", "MAX_OFFERS", "error_parts", "price_from", "offers_from"]

PROVIDER = "twilio"
PRICE_UNKNOWN = "see Twilio pricing"
MAX_OFFERS = 5
_MAX_MESSAGE = 600
_PRICE_TYPES = {"local": "local", "tollfree": "toll free"}


def error_parts(response: httpx.Response) -> tuple[int | None, str | None]:
    """(code, message) from Twilio's ``{code, message, more_info, status}``."""
    try:
        body = response.json()
    except ValueError:
        return None, None
    if not isinstance(body, dict):
        return None, None
    code = body.get("code")
    code = code if isinstance(code, int) and not isinstance(code, bool) else None
    message = body.get("message") if isinstance(body.get("message"), str) else None
    return code, message[:_MAX_MESSAGE] if message else None


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() and amount >= 0 else None


def price_from(body: Any, number_type: str) -> tuple[Decimal, str] | None:
    """(monthly price, currency) for ``number_type`` from a Pricing API country, or None (never 0)."""
    prices = body.get("phone_number_prices") if isinstance(body, dict) else None
    wanted = _PRICE_TYPES.get(number_type)
    for entry in prices if isinstance(prices, list) else []:
        if isinstance(entry, dict) and entry.get("number_type") == wanted:
            amount = _decimal(entry.get("current_price", entry.get("base_price")))
            unit = body.get("price_unit")
            if amount is not None and amount > 0:
                return amount, unit.upper() if isinstance(unit, str) and unit else "USD"
    return None


def offers_from(items: list[dict[str, Any]], query: SearchQuery, price: tuple[Decimal, str] | None) -> list[OfferDraft]:
    """One offer per ``quantity`` numbers found, up to ``MAX_OFFERS``."""
    size = max(1, query.quantity)
    offers = []
    for start in range(0, len(items) - size + 1, size):
        chunk = items[start : start + size]
        first = chunk[0]
        caps: list[dict[str, Any]] = [_dict(c.get("capabilities")) for c in chunk]
        needs = sorted({str(c.get("address_requirements") or "none") for c in chunk} - {"none"})
        details: dict[str, Any] = {
            "country": query.country.upper(),
            "number_type": query.number_type,
            "locality": first.get("locality"),
            "region": first.get("region"),
            "not_reserved": True,
            "address_requirements": needs[0] if needs else "none",
        }
        if price is None:
            details["price_note"] = PRICE_UNKNOWN
        offers.append(
            OfferDraft(
                provider=PROVIDER,
                kind=Kind.PURCHASE,
                numbers=[c["phone_number"] for c in chunk],
                unit_monthly_cost=price[0] if price else None,
                currency=price[1] if price else "USD",
                quantity=size,
                max_quantity=size,
                sms=all(bool(c.get("SMS", c.get("sms"))) for c in caps),
                voice=all(bool(c.get("voice")) for c in caps),
                expires_at=None,
                ref={},
                details=details,
            )
        )
        if len(offers) >= MAX_OFFERS:
            break
    return offers


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
