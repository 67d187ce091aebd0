"""ACS's JSON and the domain's values: search bodies and results, operations, errors, times.

How the real service answers (the recorded traffic, which beats the docs): operation statuses
are not monotonic and arrive capitalised or in lower camel case (only ``succeeded`` and
``failed`` end one); the 2021 service capitalised enum values, the 2022 one did not; times carry
7 fractional digits.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from bot.domain.kinds import Kind
from bot.domain.errors import ProviderError, UsageError
from bot.providers._http import parse_retry_after
from bot.domain.offers import OfferDraft, SearchQuery
from bot.domain.steps import Job

__all__ = [
    "LEGACY_API_VERSION", "NOTHING_FOUND_CODES", "PROVIDER", "Operation", "capability_on", "error_parts",
    "lower_camel", "offers_from", "parse_acs_time", "purchase_body", "search_body",
]

PROVIDER = "acs"
LEGACY_API_VERSION = "2021-03-07"  # the seed's version: no do-not-resell agreement exists there

_NUMBER_TYPES = {"local": "geographic", "national": "geographic", "tollfree": "tollFree"}
_TERMINAL = ("succeeded", "failed")
# The search operation of the sandbox (and, we expect, of the service) ends
# ``failed`` with this code when the stock is empty: that is "nothing found",
# not a fault, so search() answers with no offers.
NOTHING_FOUND_CODES = {"noavailablenumbers"}
_MAX_MESSAGE = 600

def parse_acs_time(value: Any) -> datetime | None:
    """ACS timestamps: 7 fractional digits, ``+00:00`` or ``Z``; always aware UTC."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Python wants at most 6 fractional digits on every version we support.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def lower_camel(value: Any) -> str | None:
    """``TollFree`` → ``tollFree``: the 2021 service capitalised, the 2022 one did not."""
    if not isinstance(value, str) or not value:
        return None
    return value[0].lower() + value[1:]


def capability_on(value: Any) -> bool:
    return isinstance(value, str) and value.strip().lower() not in ("", "none")


def error_parts(response: httpx.Response) -> tuple[str | None, str | None]:
    """(code, message) from a CommunicationErrorResponse, tolerating other shapes."""
    try:
        body = response.json()
    except ValueError:
        return None, None
    if not isinstance(body, dict):
        return None, None
    error = body.get("error", body)
    if isinstance(error, str):
        return None, error[:_MAX_MESSAGE]
    if not isinstance(error, dict):
        return None, None
    code = error.get("code") if isinstance(error.get("code"), str) else None
    message = error.get("message") if isinstance(error.get("message"), str) else None
    if message is None:
        return code, None
    target = error.get("target")
    if isinstance(target, str) and target and target.lower() not in message.lower():
        message = f"{message} (target: {target})"
    details = error.get("details")
    if isinstance(details, list):
        extra = [
            d["message"] for d in details[:3] if isinstance(d, dict) and isinstance(d.get("message"), str)
        ]
        extra = [m for m in extra if m != message]
        if extra:
            message = message + " — " + "; ".join(extra)
    return code, message[:_MAX_MESSAGE]


class Operation:
    """What a GET on ``/phoneNumbers/operations/{id}`` said."""

    def __init__(self, body: dict[str, Any], response: httpx.Response):
        self.body = body
        self.status = str(body.get("status") or "").strip().lower()
        self.resource_location = body.get("resourceLocation") or response.headers.get("location")
        error = body.get("error")
        self.error_code = error.get("code") if isinstance(error, dict) else None
        self.error_message = error.get("message") if isinstance(error, dict) else None
        self.retry_after = parse_retry_after(response.headers.get("retry-after"))

    @property
    def terminal(self) -> bool:
        return self.status in _TERMINAL

    def failure_reason(self, what: str) -> str:
        if self.error_message:
            return self.error_message[:_MAX_MESSAGE]
        if self.error_code:
            return f"the {what} operation failed ({self.error_code})"
        return f"the {what} operation failed without saying why"


def search_body(query: SearchQuery, assignment_type: str) -> dict[str, Any]:
    """The body of ``POST …/countries/{country}/:search``; a query ACS cannot answer is refused here."""
    number_type = _NUMBER_TYPES.get((query.number_type or "").lower())
    if number_type is None:
        raise UsageError(f"ACS has no {query.number_type!r} numbers; use local or tollfree")
    if not isinstance(query.quantity, int) or query.quantity < 1:
        raise UsageError("the quantity must be at least 1")
    wants_voice = query.voice or not query.sms
    body: dict[str, Any] = {
        "phoneNumberType": number_type,
        "assignmentType": assignment_type,
        "capabilities": {
            "calling": "inbound+outbound" if wants_voice else "none",
            "sms": "inbound+outbound" if query.sms else "none",
        },
        "quantity": query.quantity,
    }
    if query.prefix:
        body["areaCode"] = query.prefix
    return body


def offers_from(
    result: dict[str, Any], query: SearchQuery, request_body: dict[str, Any], assignment_type: str
) -> list[OfferDraft]:
    """The offer of a search result (one offer: ACS sells a search's numbers together)."""
    numbers = [n for n in result.get("phoneNumbers") or [] if isinstance(n, str) and n]
    if not numbers:
        return []
    search_id = result.get("searchId")
    if not isinstance(search_id, str) or not search_id:
        raise ProviderError(PROVIDER, "the search result carried no searchId, so it cannot be purchased")
    cost = result.get("cost") if isinstance(result.get("cost"), dict) else None
    unit_cost: Decimal | None = None
    currency = "USD"
    if cost is not None:
        amount = cost.get("amount")
        if amount is not None and not isinstance(amount, bool):
            try:
                unit_cost = Decimal(str(amount))
            except InvalidOperation:
                unit_cost = None
        if isinstance(cost.get("currencyCode"), str) and cost["currencyCode"]:
            currency = cost["currencyCode"].upper()
    capabilities = result.get("capabilities") if isinstance(result.get("capabilities"), dict) else None
    if capabilities is None:
        capabilities = request_body["capabilities"]
    details: dict[str, Any] = {
        "number_type": lower_camel(result.get("phoneNumberType")) or request_body["phoneNumberType"],
        "area_code": query.prefix,
        "country": (query.country or "").upper(),
        "assignment_type": lower_camel(result.get("assignmentType")) or assignment_type,
    }
    if cost is not None and isinstance(cost.get("billingFrequency"), str):
        details["billing_frequency"] = lower_camel(cost["billingFrequency"])
    ref: dict[str, Any] = {"search_id": search_id}
    if result.get("isAgreementToNotResellRequired") is True:
        # Shown on the offer and the card; the purchase then sends agreeToNotResell: true.
        ref["agree_to_not_resell"] = True
        details["agreement_to_not_resell_required"] = True
    return [
        OfferDraft(
            provider=PROVIDER,
            kind=Kind.PURCHASE,
            numbers=numbers,
            unit_monthly_cost=unit_cost,
            currency=currency,
            quantity=len(numbers),
            max_quantity=len(numbers),
            sms=capability_on(capabilities.get("sms")),
            voice=capability_on(capabilities.get("calling")),
            expires_at=parse_acs_time(result.get("searchExpiresBy")),
            ref=ref,
            details=details,
        )
    ]


def purchase_body(job: Job, search_id: str, api_version: str) -> dict[str, Any]:
    """``{searchId}``, plus ``agreeToNotResell`` at versions that know it: ``true`` only when the
    search said the agreement is required (the request's approval is that agreement)."""
    body: dict[str, Any] = {"searchId": search_id}
    if api_version != LEGACY_API_VERSION:
        body["agreeToNotResell"] = (job.ref or {}).get("agree_to_not_resell") is True
    return body
