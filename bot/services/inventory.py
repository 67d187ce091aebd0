"""The numbers the team holds: the inventory, monthly costs, and asking to release a number."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import phonenumbers

from bot.domain.display import e164
from bot.domain.errors import Conflict, NotAllowed, NotFound, UsageError
from bot.domain.kinds import Change, Kind
from bot.domain.offers import Offer, SearchQuery
from bot.domain.requests import HeldNumber, NumberRequest
from bot.domain.states import State
from bot.services.core import MAX_JUSTIFICATION, ServiceCore, new_offer_id
from bot.store.outbox import Notice

__all__ = ["Inventory", "CostSummary"]


@dataclass
class CostSummary:
    rows: list[tuple[str, str, str, Decimal, int]]  # provider, requester, currency, monthly total, numbers
    budget: Decimal | None
    committed_this_month: Decimal

    def by_provider(self) -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        for provider, _, _, total, _ in self.rows:
            out[provider] = out.get(provider, Decimal(0)) + total
        return out

    def by_requester(self) -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        for _, requester, _, total, _ in self.rows:
            out[requester] = out.get(requester, Decimal(0)) + total
        return out

    @property
    def total(self) -> Decimal:
        return sum((r[3] for r in self.rows), Decimal(0))

    @property
    def budget_left(self) -> Decimal | None:
        return None if self.budget is None else self.budget - self.committed_this_month

    def to_json(self) -> dict[str, Any]:
        return {
            "monthly_total": str(self.total),
            "by_provider": {k: str(v) for k, v in self.by_provider().items()},
            "by_requester": {k: str(v) for k, v in self.by_requester().items()},
            "budget": str(self.budget) if self.budget is not None else None,
            "committed_this_month": str(self.committed_this_month),
            "budget_left": str(self.budget_left) if self.budget_left is not None else None,
        }


class Inventory(ServiceCore):
    async def inventory(self, requester: str | None = None) -> list[HeldNumber]:
        return await self.store.held_numbers(requester=requester)

    async def costs(self) -> CostSummary:
        rows = await self.store.monthly_costs()
        budget = self.policy.monthly_budget
        committed = await self.store.committed_this_month()
        return CostSummary(rows=rows, budget=budget, committed_this_month=committed)

    async def may_release(self, user: str, number: str) -> HeldNumber:
        """The held number ``user`` may ask to release (checked again when the form is sent)."""
        number = await self.held_e164(number)  # as typed: national form as the bot prints it, or +…
        held = await self.store.held_number(number)
        if held is None:
            raise NotFound(f"{number} is not in the inventory: only numbers obtained through numbers-bot can be released here.")
        if held.requester != user and not await self.is_approver(user):
            raise NotAllowed(f"Only <@{held.requester}> (who asked for {number}) or an approver can release it.")
        return held

    async def held_e164(self, number: str) -> str:
        """The E.164 form of ``number`` as the inventory holds it.

        ``+…`` is international. Anything else is read as the bot prints numbers, in their national
        form (``(415) 243-7047``), with the country of each number in the inventory — never as if its
        first digits were a country code (``41…`` is Switzerland) — and international without the
        ``+`` is tried too. Two readings that both name held numbers are ambiguous: say so."""
        text = number.strip()
        if text.startswith("+"):
            return e164(text)
        readings = {e164("+" + re.sub(r"[^0-9]", "", text))}
        # Only held numbers ending in the typed digits can match: their countries are the ones to try.
        regions = {phonenumbers.region_code_for_number(phonenumbers.parse(n)) for n in await self.store.held_numbers_ending(text)}
        for region in regions - {None}:
            try:
                parsed = phonenumbers.parse(text, region)
            except phonenumbers.NumberParseException:
                continue
            readings.add(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))
        held = sorted([r for r in readings if await self.store.held_number(r) is not None])
        if len(held) > 1:
            raise UsageError(f"`{text}` could be {' or '.join(held)}; give it with its country code, like {held[0]}.")
        if held:
            return held[0]
        return e164(text)

    async def request_release(self, user: str, number: str, reason: str) -> NumberRequest:
        """Ask to give a number back; approved like a purchase, then released at the provider."""
        wanted = await self.held_e164(number)
        if not re.fullmatch(r"\+\d{6,15}", wanted):
            raise UsageError(f"`{number}` is not a phone number; give it as +18332272459 or as listed by `inventory`.")
        held = await self.store.held_number(wanted)
        if held is None:
            raise NotFound(f"{wanted} is not in the inventory: only numbers obtained through numbers-bot can be released here.")
        if user != held.requester and not await self.is_approver(user):
            exc = NotAllowed(f"Only <@{held.requester}> (who asked for {wanted}) or an approver can release it.")
            await self._refused(None, user, "release", exc)
            raise exc
        if not reason or not reason.strip():
            raise UsageError("Say why the number can go; approvers will see the reason.")
        if len(reason) > MAX_JUSTIFICATION:
            raise UsageError(f"The reason is {len(reason)} characters; keep it under {MAX_JUSTIFICATION}.")
        open_id = await self.store.open_release_for(held.id)
        if open_id is not None:
            raise Conflict(f"Releasing {wanted} is already requested: request #{open_id}.")
        now = self.clock()
        offer = release_offer(held, wanted, user, now)
        ref = offer.ref
        await self.store.save_offers([offer], actor=user, message=f"asked to release {wanted}", data={"number": wanted})
        request = await self.store.create_request(
            {
                "offer_id": offer.id,
                "provider": held.provider,
                "kind": Kind.RELEASE,
                "state": State.PENDING.value,
                "requester": user,
                "requester_email": None,
                "quantity": 1,
                "numbers": [wanted],
                "unit_monthly_cost": held.unit_monthly_cost,
                "unit_setup_cost": None,
                "currency": held.currency,
                "justification": reason,
                "ref": ref,
                "expires_at": now + timedelta(seconds=self.request_ttl),
                "hold_expires_at": None,
            },
            actor=user,
            message=f"requested the release of {wanted} ({held.provider})",
            data={"number": wanted, "justification": reason},
            notify=Notice(Change.CREATED, user),
        )
        await self.tell(request, Change.CREATED, actor=user)
        return request


def release_offer(held: HeldNumber, number: str, user: str, now: datetime) -> Offer:
    """The offer a release request is made from: the held number, its cost, and the held number's
    provider ref the release needs (its inventory id; Webex: the person it is assigned to)."""
    ref: dict[str, Any] = {"number_id": held.id}
    if "person_id" in held.ref:
        ref["person_id"] = held.ref["person_id"]
    region = phonenumbers.region_code_for_number(phonenumbers.parse(number)) or "US"
    return Offer(
        id=new_offer_id(),
        provider=held.provider,
        kind=Kind.RELEASE,
        numbers=[number],
        unit_monthly_cost=held.unit_monthly_cost,
        currency=held.currency,
        unit_setup_cost=None,
        quantity=1,
        max_quantity=1,
        sms=False,
        voice=False,
        expires_at=None,
        ref=ref,
        details={"acquired_by": held.requester, "acquired_at": held.acquired_at.isoformat(), "request": held.request_id},
        query=SearchQuery(country=region),
        searched_by=user,
        created_at=now,
    )
