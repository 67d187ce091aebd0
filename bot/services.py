"""Use cases: search, request, approve, deny, cancel, list, audit.

The Slack listeners, the CLI and the worker all call these. They talk to the
outside only through ports: the ``Store``, the providers, a ``Directory`` (who
is an approver, what is a user's e-mail: Slack answers in the bot, settings in
the CLI) and a ``Notifier`` (Slack cards and DMs, or lines on the terminal).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Callable, Iterator, Protocol

import phonenumbers

from bot.config import PROVIDER_LABELS, PROVIDER_SETTINGS
from bot.domain import policy as rules
from bot.domain.searchable import searchable_providers
from bot.domain.errors import (
    Conflict,
    DirectoryUnavailable,
    NotAllowed,
    NotFound,
    NumbersError,
    OfferTaken,
    ProviderAuthError,
    ProviderError,
    ProviderUnavailable,
    UsageError,
)
from bot.domain.display import e164
from bot.domain.models import HeldNumber, NumberRequest, Offer
from bot.domain.policy import Policy
from bot.domain.states import DESCRIBED, State
from bot.providers.base import Provider, Requester, SearchQuery, abandon_hold, extend_hold, extends_holds
from bot.store.db import Store
from bot.store.outbox import Notice

if TYPE_CHECKING:
    from bot.delivery import OutboxSender
from bot.store.threaded import ThreadedStore

log = logging.getLogger(__name__)

MAX_JUSTIFICATION = 3000
# A provider hold made at request time (Telnyx) is extended once it has less than this left.
HOLD_EXTEND_MARGIN = 5 * 60
HOLD_CHECK_EVERY = 30  # seconds between looks for holds to extend (the margin leaves ten such looks)
POLICY_ACTOR = "policy"
WORKER_ACTOR = "numbers-bot"


class Directory(Protocol):
    async def is_approver(self, user_id: str) -> bool: ...

    async def email(self, user_id: str) -> str | None: ...


class Notifier(Protocol):
    async def notify(self, request: NumberRequest, what: str, *, actor: str | None = None, text: str | None = None) -> None:
        """Tell people that ``request`` changed. ``what`` names the change
        (created, approval, approved, denied, cancelled, expired, reapproval,
        numbers_changed, fulfilled, failed, provider_pending, needs_attention,
        reminder)."""
        ...


class StaticDirectory:
    """Approvers from settings only (user ids); e-mails from a dict. For the CLI and tests."""

    def __init__(self, approvers: frozenset[str], emails: dict[str, str] | None = None):
        self.approvers = approvers
        self.emails = emails or {}

    async def is_approver(self, user_id: str) -> bool:
        return user_id in self.approvers

    async def email(self, user_id: str) -> str | None:
        return self.emails.get(user_id)


class SilentNotifier:
    async def notify(self, request: NumberRequest, what: str, *, actor: str | None = None, text: str | None = None) -> None:
        return None


def new_offer_id() -> str:
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "o" + "".join(secrets.choice(alphabet) for _ in range(7))


@dataclass
class SearchResult:
    query: SearchQuery
    offers: list[Offer]
    problems: list[str] = field(default_factory=list)  # per provider, readable
    providers: list[str] = field(default_factory=list)  # asked
    failures: dict[str, str] = field(default_factory=dict)  # provider → why its search failed (in problems too)

    @property
    def every_provider_failed(self) -> bool:
        """Nothing was searched at all: "no numbers found" would be a lie."""
        return bool(self.providers) and all(name in self.failures for name in self.providers)

    def outcomes(self) -> list[dict[str, Any]]:
        """Per provider asked: how many offers, or the reason it failed."""
        return [
            {
                "provider": name,
                "ok": name not in self.failures,
                "offers": sum(1 for o in self.offers if o.provider == name),
                "error": self.failures.get(name),
            }
            for name in self.providers
        ]

    def to_json(self) -> dict[str, Any]:
        return {"offers": [o.to_json() for o in self.offers], "providers": self.outcomes()}


@dataclass
class ApproveResult:
    request: NumberRequest
    complete: bool  # enough approvals: approved
    approvals: int
    required: int


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


def search_failure(provider: str, error: BaseException) -> str:
    """One line saying why a provider's search failed, apart from "nothing found"."""
    label = PROVIDER_LABELS.get(provider, provider.title())
    if isinstance(error, ProviderAuthError):
        required = PROVIDER_SETTINGS.get(provider, ((), ()))[0]
        secret = [v for v in required if "TOKEN" in v or "CONNECTION" in v] or list(required)
        return f"{label}: authentication failed" + (f" (check {' and '.join(secret)})" if secret else "")
    status = f" ({error.status})" if isinstance(error, ProviderError) and error.status else ""
    if isinstance(error, ProviderUnavailable):
        return f"{label}: unavailable{status} — {error.message}"
    if isinstance(error, ProviderError):
        return f"{label}: refused the search{status} — {error.message}"
    if isinstance(error, NumbersError):
        return f"{label}: {error}"
    return f"{label}: the search failed unexpectedly ({type(error).__name__})"


def sort_key(offer: Offer) -> tuple[int, Decimal, str]:
    unit = offer.unit_monthly_cost
    return (1 if unit is None else 0, unit if unit is not None else Decimal(0), offer.provider)


INLINE_DELIVERY_WAIT = 3.0  # seconds a state change waits for its notifications to reach Slack


class HoldKeeping:
    """Provider holds made at request time (Telnyx reservations) follow the request.

    While a request waits for approval its hold is extended before it lapses;
    when the request is denied, cancelled or expires the hold is let go. Mixed
    into ``NumbersService``; failures are logged and audited, never raised: a
    hold that could not be extended is found out at purchase, where the worker
    searches again (SPEC.md "Holds").
    """

    store: ThreadedStore
    providers: dict[str, Provider]
    clock: Callable[[], datetime]
    _holds_checked_at: datetime | None = None

    async def extend_holds(self) -> list[NumberRequest]:
        """Extend every pending request's hold that ends within ``HOLD_EXTEND_MARGIN``.

        Called on every worker pass; looks at the store at most every ``HOLD_CHECK_EVERY``
        seconds, and not at all when no enabled provider keeps such holds."""
        now = self.clock()
        if not any(extends_holds(p) for p in self.providers.values()):
            return []
        if self._holds_checked_at is not None and (now - self._holds_checked_at).total_seconds() < HOLD_CHECK_EVERY:
            return []
        self._holds_checked_at = now
        extended = []
        for request in await self.store.list_requests(states=[State.PENDING], limit=1000, oldest_first=True):
            provider = self.providers.get(request.provider)
            if provider is None or not extends_holds(provider) or request.hold_expires_at is None:
                continue
            if (request.hold_expires_at - now).total_seconds() > HOLD_EXTEND_MARGIN:
                continue
            try:
                until = await extend_hold(provider, request.ref)
            except NumbersError as exc:
                log.warning("could not extend the hold of request %s: %s", request.id, exc)
                await self.store.add_event(request.id, WORKER_ACTOR, "hold_not_extended", f"the hold could not be extended: {exc}")
                continue
            if until is None:
                continue
            moved = await self.store.update_request(
                request.id,
                expect_state=State.PENDING,
                changes={"hold_expires_at": until},
                event=(WORKER_ACTOR, "hold_extended", f"{request.provider} hold extended to {until.isoformat()}", {}),
                notify=Notice("hold_extended"),
            )
            if moved is not None:
                extended.append(moved)
                await self.tell(moved, "hold_extended")  # type: ignore[attr-defined]
        return extended

    async def let_hold_go(self, request: NumberRequest) -> None:
        provider = self.providers.get(request.provider)
        if provider is None or request.kind == "release":
            return
        try:
            note = await abandon_hold(provider, request.ref)
        except NumbersError as exc:
            note = f"the hold could not be let go: {exc}"
        if note:
            await self.store.add_event(request.id, WORKER_ACTOR, "hold_abandoned", note)


class NumbersService(HoldKeeping):
    def __init__(
        self,
        store: Store | ThreadedStore,
        providers: dict[str, Provider],
        policy: Policy,
        *,
        directory: Directory,
        notifier: Notifier | None = None,
        request_ttl: float = 24 * 3600,
        remind_after: float = 4 * 3600,
        clock: Callable[[], datetime] | None = None,
    ):
        self.store = store if isinstance(store, ThreadedStore) else ThreadedStore(store)
        self.providers = providers
        self.policy = policy
        self.directory = directory
        self.notifier: Notifier = notifier or SilentNotifier()
        self.request_ttl = request_ttl
        self.remind_after = remind_after
        self.clock = clock or store.clock
        self._kick: Callable[[], None] | None = None
        # The outbox sender when this process delivers (``bot.app.build(deliver=True)``).
        self.sender: OutboxSender | None = None

    # --- plumbing ---------------------------------------------------------

    def on_work(self, kick: Callable[[], None]) -> None:
        """The worker registers here to be woken when there is work (an approval)."""
        self._kick = kick

    def kick(self) -> None:
        if self._kick is not None:
            self._kick()

    async def tell(self, request: NumberRequest, what: str, *, actor: str | None = None, text: str | None = None) -> None:
        """After a commit that wrote its notice to the outbox: deliver the request's waiting
        notices now when this process delivers (the server); otherwise (the CLI) show it
        here and leave the outbox to the running server. Never raises: a notification
        must not undo or hide the state change, and the outbox keeps what is not sent."""
        try:
            if self.sender is not None:
                # Usually done in a moment; when Slack's pacing holds it longer, the caller (a
                # listener, a drive) goes on and the sender finishes it.
                await asyncio.wait({self.sender.deliver_soon(request.id)}, timeout=INLINE_DELIVERY_WAIT)
            else:
                await self.notifier.notify(request, what, actor=actor, text=text)
        except Exception:
            log.exception("could not notify about request %s (%s)", request.id, what)

    def provider(self, name: str) -> Provider:
        try:
            return self.providers[name]
        except KeyError:
            raise NotFound(f"The provider `{name}` is not enabled here.") from None

    async def is_approver(self, user: str) -> bool:
        return await self.directory.is_approver(user)

    # --- search -----------------------------------------------------------

    def searchable_providers(self, query: SearchQuery) -> list[str]:
        return searchable_providers(query, self.providers)

    async def search(self, user: str, query: SearchQuery) -> SearchResult:
        """Search every provider that can serve ``query``, in parallel; cheapest first."""
        if query.quantity > self.policy.max_quantity:
            raise NotAllowed(
                f"At most {self.policy.max_quantity} numbers can be asked for in one request (asked for {query.quantity})."
            )
        names = self.searchable_providers(query)
        if not names:
            raise UsageError("No enabled provider sells national numbers; try local or tollfree.")
        return await self._search(user, query, names)

    async def assign_search(self, user: str, location: str | None) -> SearchResult:
        """Webex numbers the caller could take as their primary number."""
        if "webex" not in self.providers:
            raise UsageError("Webex Calling is not enabled here (WEBEX_ACCESS_TOKEN is not set).")
        # The caller's Webex person decides which location's numbers can be theirs.
        email = await self.directory.email(user)
        query = SearchQuery(
            country="US", number_type="local", provider="webex", location=location, requester_email=email
        )
        return await self._search(user, query, ["webex"])

    async def _search(self, user: str, query: SearchQuery, names: list[str]) -> SearchResult:
        results = await asyncio.gather(*(self.providers[n].search(query) for n in names), return_exceptions=True)
        now = self.clock()
        offers: list[Offer] = []
        failures: dict[str, str] = {}
        for name, result in zip(names, results):
            if isinstance(result, BaseException):
                if not isinstance(result, NumbersError):
                    log.error("search at %s failed", name, exc_info=result)
                failures[name] = search_failure(name, result)
            else:
                offers.extend(Offer.from_draft(new_offer_id(), d, query, user, now) for d in result)
        problems = list(failures.values())
        offers.sort(key=sort_key)
        await self.store.save_offers(
            offers,
            actor=user,
            message=f"searched {query.country} {query.number_type} at {', '.join(names)}: {len(offers)} offer(s)",
            data={"query": query.to_dict(), "offers": [o.id for o in offers], "problems": problems},
        )
        return SearchResult(query=query, offers=offers, problems=problems, providers=names, failures=failures)

    async def offer(self, offer_id: str) -> Offer:
        offer = await self.store.get_offer(offer_id.strip())
        if offer is None:
            raise NotFound(f"There is no offer `{offer_id}`; search again to get fresh offers.")
        return offer

    async def offer_or_none(self, offer_id: str) -> Offer | None:
        return await self.store.get_offer(offer_id.strip())

    # --- request ----------------------------------------------------------

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
        now = self.clock()
        if offer.kind == "purchase":
            # An ACS offer is a hold on exactly these numbers; the quantity is the hold's.
            if quantity not in (None, offer.quantity):
                raise UsageError(f"This offer holds exactly {offer.quantity} number(s); search again for another quantity.")
            quantity = offer.quantity
        quantity = quantity or offer.quantity
        rules.check_quantity(quantity, self.policy, offer.max_quantity)
        if email is None and offer.kind == "assign":
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
            notify=Notice("created", user),
        )
        request = await self._maybe_auto_approve(request)
        await self.tell(request, "created", actor=user)
        if request.state == State.APPROVED:
            self.kick()
        return request

    async def _maybe_auto_approve(self, request: NumberRequest) -> NumberRequest:
        if request.kind == "release" or not rules.auto_approves(request.monthly_total, self.policy):
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
        if self.policy.monthly_budget is None or request.kind == "release":
            return None
        monthly = request.monthly_total

        def check(store: Store) -> None:
            committed = store.committed_this_month()
            rules.check_budget(monthly, committed - (monthly or 0), self.policy, request.currency)

        return check

    # --- decisions --------------------------------------------------------

    async def get(self, request_id: int) -> NumberRequest:
        request = await self.store.get_request(request_id)
        if request is None:
            raise NotFound(f"There is no request #{request_id}.")
        return request

    async def _refused(self, request_id: int | None, user: str, action: str, exc: NumbersError) -> None:
        await self.store.add_event(request_id, user, "refused", f"{action} refused: {exc}", {"action": action})

    async def note_refusal(self, request_id: int | None, user: str, action: str, exc: NumbersError) -> None:
        """Audit a refusal decided outside the service (a listener's own check, e.g. a foreign button)."""
        await self._refused(request_id, user, action, exc)

    async def _approver_or_refuse(self, request_id: int | None, user: str, action: str) -> bool:
        """Whether ``user`` may decide; when that cannot be checked, the click is refused and audited."""
        try:
            return await self.is_approver(user)
        except DirectoryUnavailable as exc:
            await self._refused(request_id, user, action, exc)
            raise

    async def _expire_if_due(self, request: NumberRequest, user: str, action: str) -> None:
        """A decision on a request past its TTL is refused at the click, whether or not the
        worker's expiry pass has run yet; the request is expired there and then."""
        if request.state != State.PENDING or request.expires_at > self.clock():
            return
        moved = await self._expire(request)
        exc = Conflict(f"Request #{request.id} expired before this {action}; ask the requester to request again.")
        await self._refused(request.id, user, action, exc)
        if moved is not None:
            await self.tell(moved, "expired")
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
                notify=Notice("approval", user),
            )
            if moved is None:
                return await self._lost_race(request.id, user)
            await self.tell(moved, "approval", actor=user)
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
                notify=Notice("approved", user),
            )
        except NotAllowed as exc:  # over budget, counted with every approval committed before this one
            await self._refused(request.id, user, "approve", exc)
            raise
        if moved is None:
            return await self._lost_race(request.id, user)
        await self.tell(moved, "approved", actor=user)
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
            notify=Notice("denied", user, reason.strip()),
        )
        if moved is None:
            current = await self.get(request.id)
            lost = Conflict(f"Request #{request.id} is already {current.state.value}.")
            await self._refused(request.id, user, "deny", lost)
            raise lost
        await self.tell(moved, "denied", actor=user, text=reason.strip())
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
            notify=Notice("cancelled", user),
        )
        if moved is None:
            raise Conflict(f"Request #{request.id} is already {(await self.get(request.id)).state.value}.")
        await self.tell(moved, "cancelled", actor=user)
        await self.let_hold_go(moved)
        return moved

    # --- reading ----------------------------------------------------------

    async def mine(self, user: str, limit: int = 20) -> list[NumberRequest]:
        return await self.store.list_requests(requester=user, limit=limit)

    async def pending(self, user: str, limit: int = 50) -> list[NumberRequest]:
        if not await self.is_approver(user):
            raise NotAllowed("Only approvers can see the pending queue.")
        return await self.store.list_requests(states=[State.PENDING], limit=limit, oldest_first=True)

    async def show(self, request_id: int, user: str) -> NumberRequest:
        request = await self.get(request_id)
        if request.requester != user and not await self.is_approver(user):
            raise NotAllowed(f"Request #{request_id} is not yours; only its requester and approvers can see it.")
        return request

    async def audit_csv(self, user: str, days: int = 30) -> Iterator[str]:
        """CSV lines of every event in the last ``days`` days, streamed from the store."""
        if not await self.is_approver(user):
            await self.store.add_event(None, user, "refused", "audit refused: not an approver", {"action": "audit"})
            raise NotAllowed("Only approvers can export the audit log.")
        since = self.clock() - timedelta(days=days)
        await self.store.add_event(None, user, "audited", f"exported the audit log of the last {days} day(s)")

        def lines() -> Iterator[str]:
            buf = io.StringIO()
            writer = csv.writer(buf)
            writer.writerow(["id", "at", "request_id", "actor", "kind", "message", "data"])
            for e in self.store.origin.iter_events(since):
                writer.writerow([e.id, e.at.isoformat(), e.request_id or "", e.actor, e.kind, e.message, _json(e.data)])
                if buf.tell() > 64 * 1024:
                    yield buf.getvalue()
                    buf.seek(0)
                    buf.truncate()
            yield buf.getvalue()

        return lines()

    # --- inventory and release ------------------------------------------------

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
        regions = {phonenumbers.region_code_for_number(phonenumbers.parse(h.number)) for h in await self.store.held_numbers(limit=100000)}
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
        ref: dict[str, Any] = {"number_id": held.id}
        if "person_id" in held.ref:
            ref["person_id"] = held.ref["person_id"]
        region = phonenumbers.region_code_for_number(phonenumbers.parse(wanted)) or "US"
        offer = Offer(
            id=new_offer_id(),
            provider=held.provider,
            kind="release",
            numbers=[wanted],
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
        await self.store.save_offers([offer], actor=user, message=f"asked to release {wanted}", data={"number": wanted})
        request = await self.store.create_request(
            {
                "offer_id": offer.id,
                "provider": held.provider,
                "kind": "release",
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
            notify=Notice("created", user),
        )
        await self.tell(request, "created", actor=user)
        return request

    # --- time-driven --------------------------------------------------------

    async def expire_due(self) -> list[NumberRequest]:
        expired = []
        for request in await self.store.due_for_expiry(self.clock()):
            moved = await self._expire(request)
            if moved is not None:
                expired.append(moved)
                await self.tell(moved, "expired")
                await self.let_hold_go(moved)
        return expired

    async def _expire(self, request: NumberRequest) -> NumberRequest | None:
        return await self.store.transition(
            request.id,
            State.PENDING,
            State.EXPIRED,
            actor=WORKER_ACTOR,
            kind="expired",
            message="expired: no decision within NUMBERS_REQUEST_TTL",
            notify=Notice("expired"),
        )

    async def remind_due(self) -> list[NumberRequest]:
        reminded = []
        cutoff = self.clock() - timedelta(seconds=self.remind_after)
        for request in await self.store.due_for_reminder(cutoff):
            # Compare-and-set on the version read: of two replicas reminding at once, one does.
            moved = await self.store.update_request(
                request.id,
                expect_version=request.version,
                expect_state=State.PENDING,
                changes={"reminded_at": self.clock()},
                event=(WORKER_ACTOR, "reminded", "approvers reminded", {}),
                notify=Notice("reminder"),
            )
            if moved is not None:
                reminded.append(moved)
                await self.tell(moved, "reminder")
        return reminded


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, default=str) if data else ""

