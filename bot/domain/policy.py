"""Who may do what, as pure functions.

Nothing here does I/O: whether a user belongs to an approver user group is
resolved by the caller (the Slack side asks ``usergroups.users.list``) and
passed in as ``is_approver``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from bot.domain.errors import Conflict, NotAllowed, UsageError
from bot.domain.kinds import Kind
from bot.domain.requests import NumberRequest
from bot.domain.states import DESCRIBED, State

POLICY_ACTOR = "policy"  # the actor of decisions the policy takes on its own (auto-approval)


@dataclass(frozen=True)
class Policy:
    approvers: frozenset[str] = frozenset()  # U… user ids and S… user-group ids
    allow_self_approval: bool = False
    required_approvals: int = 1
    max_quantity: int = 10
    auto_approve_below: Decimal = Decimal("0")  # monthly USD; 0 = off
    monthly_budget: Decimal | None = None  # USD per calendar month

    @property
    def approver_users(self) -> frozenset[str]:
        return frozenset(a for a in self.approvers if not a.startswith("S"))

    @property
    def approver_groups(self) -> frozenset[str]:
        return frozenset(a for a in self.approvers if a.startswith("S"))


@dataclass(frozen=True)
class ApprovalOutcome:
    approvals: list[str]  # distinct approvers after this click
    complete: bool  # enough approvals: the request is approved


def money(amount: Decimal | None, currency: str = "USD") -> str:
    if amount is None:
        return "cost unknown"
    symbol = "$" if currency == "USD" else ""
    text = f"{amount:,.2f}"
    return f"{symbol}{text}" if symbol else f"{text} {currency}"


def check_quantity(quantity: int, policy: Policy, available: int) -> None:
    if quantity < 1:
        raise UsageError("Quantity must be at least 1.")
    if quantity > policy.max_quantity:
        raise NotAllowed(f"At most {policy.max_quantity} numbers can be asked for in one request (asked for {quantity}).")
    if quantity > available:
        raise NotAllowed(f"Only {available} available in this offer (asked for {quantity}).")


def check_budget(
    request_monthly: Decimal | None, committed_this_month: Decimal, policy: Policy, currency: str = "USD"
) -> None:
    """Refuse when approving would take this calendar month's committed cost over budget.

    A request whose cost is unknown (the provider quoted none) cannot be counted, so with a
    budget set it cannot be approved: counting it as $0 would let any amount through."""
    if policy.monthly_budget is None:
        return
    if request_monthly is None:
        raise NotAllowed(
            "The provider quoted no price for these numbers (cost unknown), and with a monthly budget "
            "set (NUMBERS_MONTHLY_BUDGET) a request of unknown cost cannot be approved. Deny it and "
            "search again for numbers with a quoted price."
        )
    after = committed_this_month + request_monthly
    if after > policy.monthly_budget:
        raise NotAllowed(
            "Over budget: approving adds "
            f"{money(request_monthly, currency)}/month to {money(committed_this_month)} already committed this month, "
            f"{money(after)} against a monthly budget of {money(policy.monthly_budget)}."
        )


def auto_approves(request_monthly: Decimal | None, policy: Policy) -> bool:
    """Cheap requests are approved by policy (``NUMBERS_AUTO_APPROVE_BELOW``)."""
    return (
        policy.auto_approve_below > 0
        and request_monthly is not None
        and request_monthly < policy.auto_approve_below
    )


def _check_decider(request: NumberRequest, user: str, is_approver: bool, policy: Policy, verb: str) -> None:
    if not is_approver:
        raise NotAllowed(f"Only approvers can {verb} requests; you are not in NUMBERS_APPROVERS.")
    if request.state != State.PENDING:
        raise Conflict(f"Request #{request.id} is already {DESCRIBED[request.state]}.")


def approve(
    request: NumberRequest,
    user: str,
    *,
    is_approver: bool,
    policy: Policy,
    committed_this_month: Decimal,
) -> ApprovalOutcome:
    """Count ``user``'s approval, or raise why it cannot count."""
    _check_decider(request, user, is_approver, policy, "approve")
    if user == request.requester and not policy.allow_self_approval:
        raise NotAllowed("You cannot approve your own request; another approver has to.")
    if user in request.approvals:
        raise Conflict(
            f"You have already approved request #{request.id}; it needs "
            f"{policy.required_approvals - len(request.approvals)} more approver(s)."
        )
    approvals = [*request.approvals, user]
    complete = len(approvals) >= policy.required_approvals
    if complete and request.kind != Kind.RELEASE:  # giving numbers back never costs more
        check_budget(request.monthly_total, committed_this_month, policy, request.currency)
    return ApprovalOutcome(approvals=approvals, complete=complete)


def deny(request: NumberRequest, user: str, *, is_approver: bool, policy: Policy, reason: str) -> None:
    _check_decider(request, user, is_approver, policy, "deny")
    if not reason.strip():
        raise UsageError("Say why the request is denied; the requester will see the reason.")


def cancel(request: NumberRequest, user: str) -> None:
    if user != request.requester:
        raise NotAllowed(f"Only the requester (<@{request.requester}>) can cancel request #{request.id}.")
    if request.state != State.PENDING:
        raise Conflict(f"Request #{request.id} is already {DESCRIBED[request.state]}; only pending requests can be cancelled.")
