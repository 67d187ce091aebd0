"""How numbers and money are written for people (phonenumbers does the numbering plans)."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import phonenumbers

from bot.domain.policy import money

__all__ = ["e164", "national", "both", "money", "until"]


def e164(number: str) -> str:
    """``553139560512`` or ``+1 (833) 227-2459`` → ``+5531…``/``+18332272459``."""
    raw = number.strip()
    if not raw.startswith("+"):
        raw = "+" + raw
    try:
        parsed = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException:
        return raw
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _parsed(number: str) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(e164(number), None)
    except phonenumbers.NumberParseException:
        return None


def national(number: str) -> str:
    p = _parsed(number)
    if p is None:
        return number
    return phonenumbers.format_number(p, phonenumbers.PhoneNumberFormat.NATIONAL)


def both(number: str) -> str:
    """``(833) 227-2459 · +18332272459``: what a person dials and what systems store."""
    n, e = national(number), e164(number)
    return e if n == e else f"{n} · {e}"


def until(when: datetime | None, now: datetime | None = None) -> str:
    """``held 14 min more (until 15:42 UTC)`` style text."""
    if when is None:
        return ""
    now = now or datetime.now(timezone.utc)
    left = (when - now).total_seconds()
    clock = when.astimezone(timezone.utc).strftime("%H:%M UTC")
    if left <= 0:
        return f"hold expired at {clock}"
    minutes = int(left // 60)
    if minutes >= 1:
        return f"held {minutes} min more (until {clock})"
    return f"held {int(left)} s more (until {clock})"


def total_text(unit: Decimal | None, quantity: int, currency: str) -> str:
    if unit is None:
        return "cost unknown"
    if quantity == 1:
        return f"{money(unit, currency)}/month"
    return f"{money(unit * quantity, currency)}/month ({quantity} × {money(unit, currency)})"
