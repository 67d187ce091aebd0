"""Plivo number groups (the legacy ``AvailableNumberGroup`` API).

Plivo groups the numbers it sells by country, type, prefix and price; a search
returns groups (with their stock), and renting asks a group for N numbers. The
rent answers at once: ``fulfilled`` with the numbers (each with its own
``status``: a rent can partly succeed), or ``pending`` in countries with
address regulations, where a person at Plivo follows up and no number exists yet.

Protocol facts this adapter relies on (README, "Providers", Plivo):

* base ``{api_url}/v1/Account/{auth_id}/``, every path ends with ``/``, HTTP
  Basic auth ``auth_id:auth_token``;
* rates are *strings* (``"0.80000"``) except ``sms_rate``, a JSON number that
  is ``-1`` when the group has no SMS; JSON is parsed with ``Decimal`` floats so
  no amount ever passes through a binary float;
* ``meta.next`` is a relative URL or null; we take its ``offset`` and send the
  next page ourselves (relative URLs would lose any path prefix of ``api_url``);
* errors are ``{"api_id", "error"}``; a 401 may also come as plain text.

HTTP, errors, secret scrubbing, paging, release and check are the account's
(``PlivoAccount`` in ``_plivo_common``), shared with ``plivo_numbers``.
"""

from __future__ import annotations

import re
from typing import Any

from bot.domain.kinds import Kind
from bot.domain.errors import OutcomeUnknown, ProviderError, UsageError
from bot.providers._plivo_common import (
    CHECK_CONSOLE,
    MAX_PAGE,
    PLIVO_API_URL,
    PlivoAccount,
    as_e164,
    loads,
    money,
    rate_text,
    search_params,
)
from bot.domain.offers import OfferDraft, SearchQuery
from bot.domain.steps import Done, Failed, Job, ProviderPending, Requester, Step

__all__ = ["PlivoProvider", "PLIVO_API_URL"]

MAX_PREFIX_DIGITS = 5

_SEARCH = "AvailableNumberGroup/"
_RENT = "AvailableNumberGroup/{group_id}/"


class PlivoProvider(PlivoAccount):
    """Search Plivo number groups and rent numbers from them."""

    def __init__(self, auth_id: str, auth_token: str, *, max_groups: int = 60, **kwargs: Any):
        super().__init__(auth_id, auth_token, **kwargs)
        self._max_groups = max(1, max_groups)

    # --- search -------------------------------------------------------------------

    async def search(self, query: SearchQuery) -> list[OfferDraft]:
        params = self._search_params(query)
        groups = await self._pages(_SEARCH, params, enough=self._max_groups, what="groups")
        return [offer for g in groups[: self._max_groups] if (offer := self._offer(g, query)) is not None]

    def _search_params(self, query: SearchQuery) -> dict[str, str]:
        """Plivo's own limits, checked here so a bad query costs no call."""
        params, tail = search_params(query, min(MAX_PAGE, self._max_groups))
        if query.prefix:
            prefix = query.prefix.strip()
            if not prefix.isascii() or not prefix.isdigit() or len(prefix) > MAX_PREFIX_DIGITS:
                raise UsageError(
                    f"Plivo takes a prefix or area code of digits only, at most {MAX_PREFIX_DIGITS} "
                    f"(e.g. 415 or 833), not {query.prefix!r}."
                )
            params["prefix"] = prefix
        return {**params, **tail}

    def _offer(self, g: dict[str, Any], query: SearchQuery) -> OfferDraft | None:
        try:
            stock = int(g.get("stock") or 0)
        except (TypeError, ValueError):
            return None
        group_id = g.get("group_id")
        if stock <= 0 or group_id in (None, ""):
            return None
        sms = bool(g.get("sms_enabled"))
        voice = bool(g.get("voice_enabled"))
        # Plivo filters by services too; this keeps the promise if it ever does not.
        if (query.sms and not sms) or (query.voice and not voice):
            return None
        return OfferDraft(
            provider=self.name,
            kind=Kind.RENT,
            numbers=[],
            unit_monthly_cost=money(g.get("rental_rate")),
            unit_setup_cost=money(g.get("setup_rate")),
            currency="USD",
            quantity=min(query.quantity, stock),
            max_quantity=stock,
            sms=sms,
            voice=voice,
            expires_at=None,
            ref={"group_id": str(group_id)},
            details={
                "region": g.get("region"),
                "prefix": g.get("prefix"),
                "stock": stock,
                "number_type": g.get("number_type") or query.number_type,
                # Exact decimal text (JSON-safe for the store); None: not offered.
                "voice_rate": rate_text(g.get("voice_rate")),
                "sms_rate": rate_text(g.get("sms_rate")),
                "country": query.country.upper(),
            },
        )

    # --- request / fulfil ------------------------------------------------------------

    async def prepare(self, offer: OfferDraft, quantity: int, requester: Requester) -> dict[str, Any]:
        if not isinstance(quantity, int) or quantity < 1:
            raise UsageError("Ask for at least 1 number.")
        if quantity > offer.max_quantity:
            raise UsageError(
                f"This Plivo group has {offer.max_quantity} number{'s' if offer.max_quantity != 1 else ''} "
                f"in stock; ask for {offer.max_quantity} or fewer."
            )
        return {}

    async def submit(self, job: Job) -> Step:
        """Rent ``job.quantity`` numbers from the group. Sent once, never retried."""
        group_id = str(job.ref.get("group_id") or "")
        if not re.fullmatch(r"[0-9A-Za-z_-]+", group_id):
            raise ProviderError(self.name, "the request names no valid Plivo number group")
        if job.quantity < 1:
            raise UsageError("Ask for at least 1 number.")
        body: dict[str, Any] = {"quantity": job.quantity}
        if self._app_id:
            body["app_id"] = self._app_id
        what = f"the rent of {job.quantity} number{'s' if job.quantity != 1 else ''} from group {group_id}"
        request = self._client.build_request("POST", _RENT.format(group_id=group_id), json=body)
        response = await self._send_once(request, _RENT, what)

        if response.status_code >= 500:
            raise self._unknown(response, what, f"it may have rented numbers: {CHECK_CONSOLE}")
        if response.status_code >= 300:
            raise self._error(response, _RENT)
        try:
            data = loads(response.content)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise OutcomeUnknown(
                self.name, f"Plivo accepted {what} but its answer could not be read; {CHECK_CONSOLE}"
            )
        status = str(data.get("status") or "").lower()
        if status == "pending":
            details = self._scrub(str(data.get("details") or data.get("message") or "order pending at Plivo"))
            return ProviderPending(details)
        if status == "fulfilled":
            return self._rent_outcome(data.get("numbers"), job.quantity, what)
        raise OutcomeUnknown(
            self.name,
            f"Plivo answered {what} with status {self._scrub(str(data.get('status')))!r}; {CHECK_CONSOLE}",
            status=response.status_code,
        )

    def _rent_outcome(self, entries: Any, asked: int, what: str) -> Step:
        if not isinstance(entries, list) or not entries:
            raise OutcomeUnknown(self.name, f"Plivo said {what} was fulfilled but named no numbers; {CHECK_CONSOLE}")
        rented: list[str] = []
        refused: list[tuple[str, str]] = []
        for entry in entries:
            if not isinstance(entry, dict) or not entry.get("number"):
                continue
            number = as_e164(entry["number"])
            status = str(entry.get("status") or "no status")
            if status.lower() == "success":
                rented.append(number)
            else:
                refused.append((number, status))
        if not rented and not refused:
            raise OutcomeUnknown(self.name, f"Plivo said {what} was fulfilled but named no numbers; {CHECK_CONSOLE}")
        refused_text = ", ".join(f"{n} ({s})" for n, s in refused)
        if not rented:
            return Failed(f"Plivo rented none of the {asked} numbers asked for: {refused_text}")
        note = None
        if len(rented) != asked or refused:
            note = f"{len(rented)} of {asked} numbers rented"
            if refused:
                note += f"; {len(refused)} not: {refused_text}"
            unanswered = asked - len(rented) - len(refused)
            if unanswered > 0:
                note += f"; Plivo said nothing about {unanswered} more"
        return Done(numbers=rented, note=note, failed_numbers=[n for n, _ in refused])

    async def poll(self, job: Job, ref: dict[str, Any]) -> Step:
        # submit() never returns InProgress: a Plivo group rent is answered at once.
        raise ProviderError(
            self.name, "a Plivo rent is answered at once (fulfilled or pending); there is no operation to poll"
        )

    async def recover(self, job: Job) -> Step | None:
        # Plivo has no order id we chose up front, and its number list cannot tell our
        # rent apart from any other: nobody can say whether the rent went through.
        raise OutcomeUnknown(self.name, f"Plivo cannot say whether the rent was carried out; {CHECK_CONSOLE}")
