"""Plivo's current phone-number API: search single numbers, buy one, ask the account.

The number-group API of the seeds was deprecated by Plivo in 2015 (its SDK
raises before calling it; SDK 4.x has no group calls). The current one
(what changed since the first version: the group API is deprecated):

* search ``GET PhoneNumber/?country_iso=&type=&pattern=&region=&services=&limit=&offset=``
  → real numbers, each with ``monthly_rental_rate``/``setup_rate`` (strings)
  and ``restriction``/``restriction_text`` (what Plivo needs before it sells it);
* buy ``POST PhoneNumber/{number}/`` with ``app_id`` → ``201 {numbers:[{number, status}], status}``;
  in regulated countries a number's status is ``pending``: a person at Plivo
  follows up, so the request is ``provider_pending``, never ``failed``;
* the account: ``GET Number/{number}/`` (200 when held, 404 when not), release
  ``DELETE Number/{number}/``.

Unlike a group rent, a buy names its number before it is sent, so after a
crash or an unreadable answer the bot asks ``GET Number/{number}/`` whether the
account now holds it (``recover``) instead of sending the request to a person.

HTTP, errors, secret scrubbing, paging, release and check are the account's
(``PlivoAccount`` in ``_plivo_common``), shared with the group adapter.
"""

from __future__ import annotations

import re
from typing import Any

from bot.domain.kinds import Kind
from bot.domain.errors import OutcomeUnknown, ProviderError, UsageError
from bot.domain.offers import OfferDraft, SearchQuery
from bot.domain.steps import Done, Failed, Job, ProviderPending, Requester, Step
from bot.providers._plivo_common import CHECK_CONSOLE, MAX_PAGE, PlivoAccount, as_e164, loads, money, rate_text, search_params
from bot.providers.plivo import PlivoProvider

_SEARCH = "PhoneNumber/"
_BUY = "PhoneNumber/{number}/"
_NUMBER = "Number/{number}/"
MAX_PATTERN_DIGITS = 10
# Our number types → Plivo's ``type`` values.
_TYPES = {"local": "local", "tollfree": "tollfree", "national": "national"}
_PENDING_TEXT = (
    "Plivo accepted the order for {number} but it is pending: the number's country regulates numbers, "
    "and Plivo's team follows up for the documents it needs"
)


class PlivoNumbersProvider(PlivoAccount):
    """Search and buy single Plivo numbers with the current PhoneNumber API (``PLIVO_API=numbers``)."""

    def __init__(self, auth_id: str, auth_token: str, *, max_offers: int = 20, **kwargs: Any):
        kwargs.pop("max_groups", None)
        super().__init__(auth_id, auth_token, **kwargs)
        self._max_offers = max(1, max_offers)

    # --- search -------------------------------------------------------------------

    async def search(self, query: SearchQuery) -> list[OfferDraft]:
        params = self._number_search_params(query)
        found = await self._pages(_SEARCH, params, enough=self._max_offers, what="numbers")
        offers = [offer for o in found if (offer := self._number_offer(o, query)) is not None]
        return offers[: self._max_offers]

    def _number_search_params(self, query: SearchQuery) -> dict[str, str]:
        """The account's search checks (country, type, quantity, services), with ``pattern`` and ``type``."""
        head, tail = search_params(query, min(MAX_PAGE, self._max_offers))
        params = {**head, **tail}
        params["type"] = _TYPES[params.pop("number_type")]
        if query.prefix:
            pattern = query.prefix.strip()
            if not pattern.isascii() or not pattern.isdigit() or len(pattern) > MAX_PATTERN_DIGITS:
                raise UsageError(
                    f"Plivo searches by a pattern of digits (an area code or prefix such as 415), not {query.prefix!r}."
                )
            params["pattern"] = pattern
        return params

    def _number_offer(self, o: dict[str, Any], query: SearchQuery) -> OfferDraft | None:
        number = o.get("number")
        if not isinstance(number, (str, int)) or not re.fullmatch(r"\d{6,15}", str(number)):
            return None
        sms = bool(o.get("sms_enabled"))
        voice = bool(o.get("voice_enabled"))
        if (query.sms and not sms) or (query.voice and not voice):
            return None
        e164 = as_e164(number)
        ref: dict[str, Any] = {"number": str(number)}
        restriction = o.get("restriction") if isinstance(o.get("restriction"), str) else None
        restriction_text = o.get("restriction_text") if isinstance(o.get("restriction_text"), str) else None
        if restriction or restriction_text:
            # Kept with the request so the approval card can say it too.
            ref["restriction"] = self._scrub(restriction or "")
            ref["restriction_text"] = self._scrub(restriction_text or restriction or "")
        return OfferDraft(
            provider=self.name,
            kind=Kind.PURCHASE,
            numbers=[e164],
            unit_monthly_cost=money(o.get("monthly_rental_rate")),
            unit_setup_cost=money(o.get("setup_rate")),
            currency="USD",
            quantity=1,
            max_quantity=1,
            sms=sms,
            voice=voice,
            expires_at=None,  # Plivo holds nothing between search and buy
            ref=ref,
            details={
                "country": query.country.upper(),
                "prefix": o.get("prefix"),
                "region": o.get("region"),
                "city": o.get("city"),
                "number_type": o.get("type") or query.number_type,
                "voice_rate": rate_text(o.get("voice_rate")),
                "sms_rate": rate_text(o.get("sms_rate")),
                **({"restriction": ref["restriction"], "restriction_text": ref["restriction_text"]}
                   if "restriction_text" in ref else {}),
            },
        )

    # --- request / fulfil ------------------------------------------------------------

    async def prepare(self, offer: OfferDraft, quantity: int, requester: Requester) -> dict[str, Any]:
        if quantity != 1:
            raise UsageError("A Plivo number is bought one at a time: request each number you want.")
        return {}

    @staticmethod
    def _digits(job: Job) -> str:
        digits = str((job.ref or {}).get("number") or "")
        if not re.fullmatch(r"\d{6,15}", digits):
            raise ProviderError("plivo", "the request names no Plivo number to buy")
        return digits

    async def submit(self, job: Job) -> Step:
        """Buy the job's number. Sent once, never retried; doubt goes to ``recover``."""
        digits = self._digits(job)
        body: dict[str, Any] = {"app_id": self._app_id} if self._app_id else {}
        what = f"the purchase of +{digits}"
        request = self._client.build_request("POST", _BUY.format(number=digits), json=body)
        response = await self._send_once(request, _BUY, what, after="it may have been bought")
        if response.status_code >= 500:
            raise self._unknown(response, what, "asking Plivo whether the account now holds it")
        if response.status_code >= 300:
            raise self._error(response, _BUY)
        try:
            data = loads(response.content)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise OutcomeUnknown(self.name, f"Plivo accepted {what} but its answer could not be read")
        return self._buy_outcome(data, digits, what)

    def _buy_outcome(self, data: dict[str, Any], digits: str, what: str) -> Step:
        entries = data.get("numbers")
        if not isinstance(entries, list):
            entries = []
        mine = [e for e in entries if isinstance(e, dict) and re.sub(r"\D", "", str(e.get("number"))) == digits]
        status = str((mine[0].get("status") if mine else data.get("status")) or "").strip().lower()
        if status in ("success", "fulfilled"):
            return Done(numbers=[f"+{digits}"])
        if status == "pending":
            text = data.get("details") or data.get("message")
            detail = _PENDING_TEXT.format(number=f"+{digits}")
            if isinstance(text, str) and text.strip() and text.strip().lower() != "created":
                detail = f"{detail}. Plivo said: {text.strip()}"
            return ProviderPending(self._scrub(detail))
        if status:
            return Failed(f"Plivo did not sell +{digits}: {self._scrub(status)}")
        raise OutcomeUnknown(self.name, f"Plivo answered {what} without a status; asking whether it was bought")

    async def poll(self, job: Job, ref: dict[str, Any]) -> Step:
        raise ProviderError(self.name, "a Plivo purchase is answered at once; there is no operation to poll")

    async def recover(self, job: Job) -> Step | None:
        """Does the account hold the number now? ``GET Number/{number}/``: 404 → not bought (safe to
        buy), 200 → bought (or pending, when Plivo lists it as not yet active)."""
        digits = self._digits(job)
        response = await self._read("GET", _NUMBER.format(number=digits), _NUMBER)
        if response.status_code == 404:
            return None
        if response.status_code >= 300:
            raise self._error(response, _NUMBER)
        try:
            held = loads(response.content)
        except ValueError:
            held = None
        if not isinstance(held, dict) or re.sub(r"\D", "", str(held.get("number"))) != digits:
            raise OutcomeUnknown(
                self.name, f"Plivo's answer about +{digits} could not be read; {CHECK_CONSOLE}"
            )
        if held.get("active") is False or str(held.get("compliance_status") or "").lower() == "pending":
            return ProviderPending(_PENDING_TEXT.format(number=f"+{digits}"))
        return Done(numbers=[f"+{digits}"])


def plivo_provider(
    auth_id: str, auth_token: str, *, api: str = "numbers", **kwargs: Any
) -> "PlivoProvider | PlivoNumbersProvider":
    """The adapter ``PLIVO_API`` names: ``numbers`` (current, default) or ``groups`` (the seeds')."""
    if api == "groups":
        return PlivoProvider(auth_id, auth_token, **kwargs)
    if api == "numbers":
        return PlivoNumbersProvider(auth_id, auth_token, **kwargs)
    raise UsageError(f"PLIVO_API is numbers or groups, not {api!r}")


__all__ = ["PlivoNumbersProvider", "plivo_provider"]
