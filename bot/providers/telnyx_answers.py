"""What Telnyx answers, read into the bot's values: errors, offers, holds, requirements (no I/O here)."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from bot.domain.errors import ProviderError
from bot.domain.kinds import Kind
from bot.domain.offers import OfferDraft, SearchQuery

__all__ = [
    "MAX_OFFERS",
    "parse_time",
    "error_parts",
    "offers_from",
    "hold_from",
    "unmet_requirements",
    "requirement_words",
    "requirements_text",
]

PROVIDER = "telnyx"
MAX_OFFERS = 5
_MAX_MESSAGE = 600


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() and amount >= 0 else None


def error_parts(response: httpx.Response) -> tuple[str | None, str | None]:
    """(code, "title: detail; …") from ``{"errors":[{code, title, detail}]}``."""
    try:
        body = response.json()
    except ValueError:
        return None, None
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list) or not errors or not isinstance(errors[0], dict):
        return None, None
    code = errors[0].get("code")
    texts = []
    for e in errors[:3]:
        if isinstance(e, dict):
            bits = [str(e[k]) for k in ("title", "detail") if isinstance(e.get(k), str) and e.get(k)]
            if bits:
                texts.append(": ".join(dict.fromkeys(bits)))
    return (str(code) if code is not None else None), ("; ".join(texts)[:_MAX_MESSAGE] or None)


def offers_from(items: list[dict[str, Any]], query: SearchQuery) -> list[OfferDraft]:
    """One offer per ``quantity`` numbers found (cheapest first), up to ``MAX_OFFERS``."""
    # Cheapest first, so each offer groups numbers of one price where it can.
    items = sorted(items, key=lambda d: _decimal((d.get("cost_information") or {}).get("monthly_cost")) or Decimal("1e9"))
    size = max(1, query.quantity)
    offers = []
    for start in range(0, len(items) - size + 1, size):
        chunk = items[start : start + size]
        costs: list[dict[str, Any]] = [_dict(c.get("cost_information")) for c in chunk]
        monthly = [_decimal(c.get("monthly_cost")) for c in costs]
        upfront = [_decimal(c.get("upfront_cost")) for c in costs]
        features = [{f.get("name") for f in c.get("features") or [] if isinstance(f, dict)} for c in chunk]
        regions = chunk[0].get("region_information") or []
        region = ", ".join(
            r["region_name"] for r in regions if isinstance(r, dict) and isinstance(r.get("region_name"), str)
        )
        currency = str(costs[0]["currency"]) if isinstance(costs[0].get("currency"), str) else "USD"
        offers.append(
            OfferDraft(
                provider=PROVIDER,
                kind=Kind.PURCHASE,
                numbers=[c["phone_number"] for c in chunk],
                unit_monthly_cost=None if None in monthly else max(monthly),  # type: ignore[type-var]
                unit_setup_cost=None if None in upfront else max(upfront),  # type: ignore[type-var]
                currency=currency.upper(),
                quantity=size,
                max_quantity=size,
                sms=all("sms" in f for f in features),
                voice=all("voice" in f for f in features),
                ref={"reservable": all(c.get("reservable", True) is not False for c in chunk)},
                details={"country": query.country.upper(), "number_type": query.number_type, "region": region or None},
            )
        )
        if len(offers) >= MAX_OFFERS:
            break
    return offers


def hold_from(data: Any) -> dict[str, Any]:
    """``reservation_id`` and ``hold_expires_at`` (the earliest number's ``expired_at``) of a reservation."""
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        raise ProviderError(PROVIDER, "the reservation answer named no reservation")
    read = [parse_time(n.get("expired_at")) for n in data.get("phone_numbers") or [] if isinstance(n, dict)]
    ends = [e for e in read if e is not None]
    return {"reservation_id": data["id"], "hold_expires_at": min(ends) if ends else None}


def unmet_requirements(order: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    """(phone number, requirement id, field type) of every requirement not yet given a value."""
    unmet = []
    for number in order.get("phone_numbers") or []:
        if not isinstance(number, dict) or number.get("requirements_met") is not False:
            continue
        for req in number.get("regulatory_requirements") or []:
            if isinstance(req, dict) and isinstance(req.get("requirement_id"), str) and not req.get("field_value"):
                unmet.append((str(number.get("phone_number")), req["requirement_id"], req.get("field_type")))
    return unmet


def requirement_words(body: Any) -> dict[str, str]:
    """requirement id → "name: description" from ``GET /v2/regulatory_requirements``."""
    words: dict[str, str] = {}
    for group in (body.get("data") if isinstance(body, dict) else None) or []:
        for req in (group.get("regulatory_requirements") if isinstance(group, dict) else None) or []:
            if isinstance(req, dict) and isinstance(req.get("id"), str):
                bits = [str(req[k]) for k in ("name", "description") if isinstance(req.get(k), str) and req.get(k)]
                if bits:
                    words[req["id"]] = ": ".join(dict.fromkeys(bits))
    return words


def requirements_text(order: dict[str, Any], words: dict[str, str]) -> str:
    """Telnyx's own words for what a regulated order still needs (its field types when the words are missing)."""
    said: list[str] = []
    for _, requirement_id, field_type in unmet_requirements(order):
        kind = f"{field_type} requirement" if field_type else "regulatory requirement"
        text = words.get(requirement_id) or ("an " if kind[0] in "aeiou" else "a ") + kind
        if text not in said:
            said.append(text)
    needed = "; ".join(said) if said else "regulatory documents"
    return f"Telnyx order {order.get('id')} waits for regulatory requirements: {needed}"[:_MAX_MESSAGE]


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
