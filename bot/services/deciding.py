"""Deciding: a request made from an offer, approved (by people or by policy), denied or cancelled.

Every move is a compare-and-set on the request's state (and version), so two
clicks, a Slack retry or two processes never both move a request; a refusal is
audited with who tried and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Callable

from bot.domain import policy as rules
from bot.domain.errors import Conflict, NotAllowed, NotFound, OfferTaken, UsageError
from bot.domain.kinds import Change, Kind
from bot.domain.offers import Offer
from bot.domain.requests import NumberRequest
from bot.domain.states import DESCRIBED, State
from bot.domain.steps import Requester
from bot.services.core import MAX_JUSTIFICATION, POLICY_ACTOR
from bot.services.housekeeping import Housekeeping
from bot.store.db import Store
from bot.store.outbox import Notice

__all__ = ["Deciding", "ApproveResult"]


@dataclass
class ApproveResult:
    request: NumberRequest
    complete: bool  # enough approvals: approved
    approvals: int
    required: int


class Deciding(Housekeeping):
    async def request(
        self,
        user: str,
        offer_id: str,
        justification: str,
        *,
        quantity: int | None = None,
        email: str | None = None,
    ) -> NumberRequest:
        offer = await self.offer(offer_id)
        await self._check_requestable(offer, user, justification)
        now = self.clock()
        quantity = self._quantity(offer, quantity)
        if email is None and offer.kind == Kind.ASSIGN:
            # Only a Webex assignment needs it (the person is found by e-mail): no Slack lookup for the others.
            email = await self.directory.email(user)
        provider = self.provider(offer.provider)
        extra = await provider.prepare(offer.draft(), quantity, Requester(user_id=user, email=email))
        # A hold made now (a Telnyx reservation) ends when the provider says, not when the search did.
        hold_expires_at = extra.pop("hold_expires_at", None) or offer.expires_at
        request = await self.store.create_request(
            {
                "offer_id": offer.id,
                "provider": offer.provider,
                "kind": offer.kind,
                "state": State.PENDING.value,
                "requester": user,
                "requester_email": email,
                "quantity": quantity,
                "numbers": offer.numbers,
                "unit_monthly_cost": offer.unit_monthly_cost,
                "unit_setup_cost": offer.unit_setup_cost,
                "currency": offer.currency,
                "justification": justification,
                "ref": {**offer.ref, **extra},
                "expires_at": now + timedelta(seconds=self.request_ttl),
                "hold_expires_at": hold_expires_at,
            },
            actor=user,
            message=f"requested {quantity} {offer.provider} number(s) from offer {offer.id}",
            data={"offer": offer.id, "quantity": quantity, "justification": justification},
            notify=Notice(Change.CREATED, user),
        )
        request = await self._maybe_auto_approve(request)
        await self.tell(request, Change.CREATED, actor=user)
        if request.state == State.APPROVED:
            self.kick()
        return request

    async def _check_requestable(self, offer: Offer, user: str, justification: str) -> None:
        """Refuse a request of someone else's offer, of an offer already requested, or without a
        justification a person can read."""
        if offer.searched_by != user:
            exc = NotAllowed(
                f"Offer {offer.id} came from someone else's search; only they can request it. "
                "Run the search yourself to get an offer of your own."
            )
            await self._refused(None, user, "request", exc)
            raise exc
        taken = await self.store.live_request_for(offer.id)
        if taken is not None:
            # Before prepare(): a second request must not reserve or look anything up for a held offer.
            raise OfferTaken(taken)
        if not justification or not justification.strip():
            raise UsageError("A justification is required: say what the numbers are for.")
        if len(justification) > MAX_JUSTIFICATION:
            raise UsageError(
                f"The justification is {len(justification)} characters; keep it under {MAX_JUSTIFICATION}."
            )

    def _quantity(self, offer: Offer, asked: int | None) -> int:
        if offer.kind == Kind.PURCHASE:
            # An ACS offer is a hold on exactly these numbers; the quantity is the hold's.
            if asked not in (None, offer.quantity):
                raise UsageError(f"This offer holds exactly {offer.quantity} number(s); search again for another quantity.")
            asked = offer.quantity
        quantity = asked or offer.quantity
        rules.check_quantity(quantity, self.policy, offer.max_quantity)
        return quantity

    async def _maybe_auto_approve(self, request: NumberRequest) -> NumberRequest:
        if request.kind == Kind.RELEASE or not rules.auto_approves(request.monthly_total, self.policy):
            return request
        try:
            return await self._auto_approve(request)
        except NotAllowed as exc:
            await self.store.add_event(request.id, POLICY_ACTOR, "auto_approval_refused", str(exc))
            return await self.store.get_request(request.id) or request

    async def _auto_approve(self, request: NumberRequest) -> NumberRequest:
        moved = await self.store.transition(
            request.id,
            State.PENDING,
            State.APPROVED,
            actor=POLICY_ACTOR,
            kind="approved",
            message=(
                f"approved by policy: {rules.money(request.monthly_total)}/month is below "
                f"NUMBERS_AUTO_APPROVE_BELOW {rules.money(self.policy.auto_approve_below)}"
            ),
            changes={"decided_by": POLICY_ACTOR, "decided_at": self.clock()},
            also=self._budget_guard(request),
        )
        return moved or request

    def _budget_guard(self, request: NumberRequest) -> Callable[[Store], None] | None:
        """The budget check that counts, run inside the approving transaction.

        Writers queue on ``BEGIN IMMEDIATE`` (on PostgreSQL on the budget's lock, see
        ``Store.committed_this_month``), so two approvals of different requests
        cannot both pass a check made before either was written. The approved row
        is already counted here; raising rolls the approval back."""
        if self.policy.monthly_budget is None or request.kind == Kind.RELEASE:
            return None
        monthly = request.monthly_total

        def check(store: Store) -> None:
            committed = store.committed_this_month()
            rules.check_budget(monthly, committed - (monthly or 0), self.policy, request.currency)

        return check

    async def _expire_if_due(self, request: NumberRequest, user: str, action: str) -> None:
        """A decision on a request past its TTL is refused at the click, whether or not the
        worker's expiry pass has run yet; the request is expired there and then."""
        if request.state != State.PENDING or request.expires_at > self.clock():
            return
        moved = await self._expire(request)
        exc = Conflict(f"Request #{request.id} expired before this {action}; ask the requester to request again.")
        await self._refused(request.id, user, action, exc)
        if moved is not None:
            await self.tell(moved, Change.EXPIRED)
            await self.let_hold_go(moved)
        raise exc

    async def approve(self, request_id: int, user: str) -> ApproveResult:
        try:
            request = await self.get(request_id)
        except NotFound as exc:
            await self._refused(None, user, "approve", exc)
            raise
        await self._expire_if_due(request, user, "approval")
        is_approver = await self._approver_or_refuse(request.id, user, "approve")
        try:
            outcome = rules.approve(
                request,
                user,
                is_approver=is_approver,
                policy=self.policy,
                committed_this_month=await self.store.committed_this_month(),
            )
        except (NotAllowed, Conflict) as exc:
            await self._refused(request.id, user, "approve", exc)
            raise
        required = self.policy.required_approvals
        if not outcome.complete:
            moved = await self.store.update_request(
                request.id,
                expect_version=request.version,
                expect_state=State.PENDING,
                changes={"approvals": outcome.approvals},
                event=(user, "approval", f"approval {len(outcome.approvals)} of {required}", {}),
                notify=Notice(Change.APPROVAL, user),
            )
            if moved is None:
                return await self._lost_race(request.id, user)
            await self.tell(moved, Change.APPROVAL, actor=user)
            return ApproveResult(moved, False, len(outcome.approvals), required)
        try:
            moved = await self.store.transition(
                request.id,
                State.PENDING,
                State.APPROVED,
                actor=user,
                kind="approved",
                message=f"approved ({len(outcome.approvals)} of {required})",
                changes={"approvals": outcome.approvals, "decided_by": user, "decided_at": self.clock()},
                also=self._budget_guard(request),
                notify=Notice(Change.APPROVED, user),
            )
        except NotAllowed as exc:  # over budget, counted with every approval committed before this one
            await self._refused(request.id, user, "approve", exc)
            raise
        if moved is None:
            return await self._lost_race(request.id, user)
        await self.tell(moved, Change.APPROVED, actor=user)
        self.kick()
        return ApproveResult(moved, True, len(outcome.approvals), required)

    async def _lost_race(self, request_id: int, user: str) -> ApproveResult:
        """Another click changed the request between our read and our write: say so, change nothing."""
        current = await self.get(request_id)
        exc = Conflict(
            f"Request #{request_id} is already {DESCRIBED[current.state]}: another decision was recorded first."
        )
        if current.state == State.PENDING:
            # Another approval was counted first; try once more with the fresh count.
            return await self.approve(request_id, user)
        await self._refused(request_id, user, "approve", exc)
        raise exc

    async def deny(self, request_id: int, user: str, reason: str) -> NumberRequest:
        request = await self.get(request_id)
        await self._expire_if_due(request, user, "denial")
        is_approver = await self._approver_or_refuse(request.id, user, "deny")
        try:
            rules.deny(request, user, is_approver=is_approver, policy=self.policy, reason=reason)
        except (NotAllowed, Conflict) as exc:
            await self._refused(request.id, user, "deny", exc)
            raise
        moved = await self.store.transition(
            request.id,
            State.PENDING,
            State.DENIED,
            actor=user,
            kind="denied",
            message=f"denied: {reason.strip()}",
            data={"reason": reason.strip()},
            changes={"decided_by": user, "decided_at": self.clock(), "outcome": reason.strip()},
            notify=Notice(Change.DENIED, user, reason.strip()),
        )
        if moved is None:
            current = await self.get(request.id)
            lost = Conflict(f"Request #{request.id} is already {current.state.value}.")
            await self._refused(request.id, user, "deny", lost)
            raise lost
        await self.tell(moved, Change.DENIED, actor=user, text=reason.strip())
        await self.let_hold_go(moved)
        return moved

    async def may_deny(self, request_id: int, user: str) -> NumberRequest:
        """Whether ``user`` could deny the request now (checked before the reason form opens,
        so nobody writes a reason in vain); refusals are audited like a denial's."""
        try:
            request = await self.get(request_id)
            await self._expire_if_due(request, user, "denial")
            is_approver = await self._approver_or_refuse(request.id, user, "deny")
            rules.deny(request, user, is_approver=is_approver, policy=self.policy, reason="(asked in the form)")
        except (NotAllowed, Conflict, NotFound) as exc:
            await self._refused(request_id, user, "deny", exc)
            raise
        return request

    async def cancel(self, request_id: int, user: str) -> NumberRequest:
        request = await self.get(request_id)
        try:
            rules.cancel(request, user)
        except (NotAllowed, Conflict) as exc:
            await self._refused(request.id, user, "cancel", exc)
            raise
        moved = await self.store.transition(
            request.id,
            State.PENDING,
            State.CANCELLED,
            actor=user,
            kind="cancelled",
            message="cancelled by the requester",
            notify=Notice(Change.CANCELLED, user),
        )
        if moved is None:
            raise Conflict(f"Request #{request.id} is already {(await self.get(request.id)).state.value}.")
        await self.tell(moved, Change.CANCELLED, actor=user)
        await self.let_hold_go(moved)
        return moved
