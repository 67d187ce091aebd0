"""When a held search runs out before the purchase: search again and store what the rule decides.

The rule itself (same quantity at no more than the approved price goes ahead,
otherwise back to ``pending``) is ``bot.domain.holds``; this module runs the
search, keeps the fresh offers and moves the request accordingly.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any

from bot.domain.errors import HoldExpired, NumbersError, ProviderUnavailable
from bot.domain.holds import BackToPending, GoAhead, after_search_again, why_searching_again
from bot.domain.kinds import Change
from bot.domain.offers import Offer
from bot.domain.requests import NumberRequest, Operation
from bot.domain.states import State
from bot.services.core import WORKER_ACTOR, new_offer_id
from bot.services.outcomes import Outcomes
from bot.store.outbox import Notice

__all__ = ["SearchAgain", "HOLD_GONE"]

log = logging.getLogger(__name__)

HOLD_GONE = datetime(1970, 1, 1, tzinfo=timezone.utc)  # "the hold is gone", whatever the local clock says


class SearchAgain(Outcomes):
    async def rehold(self, request: NumberRequest) -> NumberRequest | None:
        """The hold expired before the purchase: search again (the search-again rule, ``bot/domain/holds.py``). The request to
        buy now, or None when it went back to ``pending``, failed, or the search is tried later."""
        gone = why_searching_again(request.provider)
        offer = await self.service.offer(request.offer_id)
        provider = self.service.provider(request.provider)
        try:
            drafts = await provider.search(offer.query)
        except ProviderUnavailable as exc:
            log.warning("re-search for request %s failed, will retry: %s", request.id, exc)
            return None
        except NumbersError as exc:
            await self._search_failed(request, gone, exc)
            return None
        now = self.service.clock()
        fresh = [
            Offer.from_draft(new_offer_id(), d, offer.query, WORKER_ACTOR, now) for d in drafts if d.quantity >= 1
        ]
        if fresh:
            await self.store.save_offers(
                fresh,
                actor=WORKER_ACTOR,
                message=f"searched again for request #{request.id}: {gone.lower()}",
                data={"request": request.id, "offers": [o.id for o in fresh]},
            )
        decision = after_search_again(request, fresh)
        if isinstance(decision, GoAhead):
            return await self._go_ahead(request, decision)
        await self._back_to_pending(request, decision)
        return None

    async def _search_failed(self, request: NumberRequest, gone: str, exc: NumbersError) -> None:
        moved = await self.store.transition(
            request.id,
            State.APPROVED,
            State.FAILED,
            actor=WORKER_ACTOR,
            kind="failed",
            message=f"{gone.lower()} and the search again failed: {exc}",
            changes={"outcome": f"{gone} and searching again failed: {exc}"},
            notify=Notice(Change.FAILED, text=str(exc)),
        )
        if moved:
            await self.service.tell(moved, Change.FAILED, text=str(exc))

    async def _go_ahead(self, request: NumberRequest, decision: GoAhead) -> NumberRequest | None:
        new, note = decision.offer, decision.note
        moved = await self.store.update_request(
            request.id,
            expect_state=State.APPROVED,
            changes={
                "offer_id": new.id,
                "numbers": new.numbers,
                "ref": {**request.ref, **new.ref},
                "hold_expires_at": new.expires_at,
                "unit_monthly_cost": new.unit_monthly_cost,
                "outcome": note,
            },
            event=(WORKER_ACTOR, "rehold", note, {"old": request.numbers, "new": new.numbers, "offer": new.id}),
            notify=Notice(Change.NUMBERS_CHANGED, text=note) if decision.changed else None,
        )
        if moved is not None and decision.changed:
            await self.service.tell(moved, Change.NUMBERS_CHANGED, text=note)
        return moved

    async def _back_to_pending(self, request: NumberRequest, decision: BackToPending) -> None:
        best, reason = decision.offer, decision.reason
        changes: dict[str, Any] = {"outcome": reason, "approvals": [], "decided_by": None, "decided_at": None}
        if best is not None:
            changes.update(
                {
                    "offer_id": best.id,
                    "numbers": best.numbers,
                    "quantity": best.quantity,
                    "ref": {**request.ref, **best.ref},
                    "hold_expires_at": best.expires_at,
                    "unit_monthly_cost": best.unit_monthly_cost,
                    "unit_setup_cost": best.unit_setup_cost,
                    "expires_at": self.service.clock() + timedelta(seconds=self.service.request_ttl),
                }
            )
        moved = await self.store.transition(
            request.id,
            State.APPROVED,
            State.PENDING,
            actor=WORKER_ACTOR,
            kind="reapproval",
            message=reason,
            changes=changes,
            notify=Notice(Change.REAPPROVAL, text=reason),
        )
        if moved is not None:
            await self.service.tell(moved, Change.REAPPROVAL, text=reason)

    async def _hold_ran_out(self, op: Operation, request: NumberRequest, exc: HoldExpired) -> None:
        """The hold expired before the provider took the purchase: nothing spent, so back to
        ``approved`` with the hold marked gone; ``begin`` then searches again (the search-again rule, ``bot/domain/holds.py``).

        The hold is marked gone outright rather than "expired now": with the local clock behind
        the provider's, "now" could still be before the hold's end and the search would not run."""
        moved = await self._record(
            lambda: self.store.transition(
                request.id,
                State.FULFILLING,
                State.APPROVED,
                actor=WORKER_ACTOR,
                kind="hold_expired",
                message=(
                    f"{why_searching_again(request.provider).lower()}; searching again ({exc.message})"
                    if request.provider == "twilio"
                    else f"the hold ran out before the purchase was taken; searching again ({exc.message})"
                ),
                changes={"hold_expires_at": HOLD_GONE},
                finish_operation=op.id,
            )
        )
        if moved is not None:
            self.pacer.kick()
