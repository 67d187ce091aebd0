"""Who may approve, deny and cancel; counts, budget, quantity, auto-approval."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from bot.domain import policy as rules
from bot.domain.errors import Conflict, NotAllowed, UsageError
from bot.domain.requests import NumberRequest
from bot.domain.policy import Policy
from bot.domain.states import State

NOW = datetime(2026, 11, 25, tzinfo=timezone.utc)


def req(**kw) -> NumberRequest:
    base = dict(
        id=7, offer_id="o1", provider="acs", kind="purchase", state=State.PENDING, requester="UREQ",
        requester_email=None, quantity=2, numbers=["+18332270001", "+18332270002"],
        unit_monthly_cost=Decimal("2.00"), unit_setup_cost=None, currency="USD", justification="x", ref={},
        approvals=[], created_at=NOW, updated_at=NOW, expires_at=NOW, hold_expires_at=None,
    )
    base.update(kw)
    return NumberRequest(**base)


P = Policy(approvers=frozenset({"UA", "UB", "UREQ"}))


@pytest.mark.parametrize(
    "user,is_approver,policy,request_kw,committed,expect",
    [
        ("UA", True, P, {}, Decimal(0), "complete"),
        ("UX", False, P, {}, Decimal(0), NotAllowed),  # not an approver
        ("UREQ", True, P, {}, Decimal(0), NotAllowed),  # self-approval
        ("UREQ", True, Policy(approvers=P.approvers, allow_self_approval=True), {}, Decimal(0), "complete"),
        ("UA", True, Policy(approvers=P.approvers, required_approvals=2), {}, Decimal(0), "counted"),
        ("UB", True, Policy(approvers=P.approvers, required_approvals=2), {"approvals": ["UA"]}, Decimal(0), "complete"),
        ("UA", True, Policy(approvers=P.approvers, required_approvals=2), {"approvals": ["UA"]}, Decimal(0), Conflict),
        ("UA", True, P, {"state": State.DENIED}, Decimal(0), Conflict),
        ("UA", True, P, {"state": State.FULFILLED}, Decimal(0), Conflict),
        # budget: 4.00/month more on 6.00 committed against 10.00 → exactly at budget is fine
        ("UA", True, Policy(approvers=P.approvers, monthly_budget=Decimal("10")), {}, Decimal("6"), "complete"),
        ("UA", True, Policy(approvers=P.approvers, monthly_budget=Decimal("10")), {}, Decimal("6.01"), NotAllowed),
        # unknown cost (ACS cost: null) is never counted as $0: with a budget set it cannot be approved
        ("UA", True, Policy(approvers=P.approvers, monthly_budget=Decimal("1")), {"unit_monthly_cost": None}, Decimal("5"), NotAllowed),
        # budget is checked only when the last approval completes it
        ("UA", True, Policy(approvers=P.approvers, required_approvals=2, monthly_budget=Decimal("1")), {}, Decimal("5"), "counted"),
    ],
)
def test_approve(user, is_approver, policy, request_kw, committed, expect):
    request = req(**request_kw)
    if isinstance(expect, type):
        with pytest.raises(expect):
            rules.approve(request, user, is_approver=is_approver, policy=policy, committed_this_month=committed)
        return
    outcome = rules.approve(request, user, is_approver=is_approver, policy=policy, committed_this_month=committed)
    assert outcome.complete is (expect == "complete")
    assert outcome.approvals[-1] == user
    assert len(set(outcome.approvals)) == len(outcome.approvals)


def test_budget_message_has_the_figures():
    policy = Policy(approvers=P.approvers, monthly_budget=Decimal("10"))
    with pytest.raises(NotAllowed) as info:
        rules.approve(req(), "UA", is_approver=True, policy=policy, committed_this_month=Decimal("8"))
    text = str(info.value)
    assert "$4.00" in text and "$8.00" in text and "$12.00" in text and "$10.00" in text


@pytest.mark.parametrize(
    "user,is_approver,state,reason,expect",
    [
        ("UA", True, State.PENDING, "not needed", None),
        ("UA", True, State.PENDING, "   ", UsageError),
        ("UX", False, State.PENDING, "no", NotAllowed),
        ("UA", True, State.APPROVED, "late", Conflict),
        # an approver may deny their own request (withdrawing is always allowed)
        ("UREQ", True, State.PENDING, "changed my mind", None),
    ],
)
def test_deny(user, is_approver, state, reason, expect):
    call = lambda: rules.deny(req(state=state), user, is_approver=is_approver, policy=P, reason=reason)  # noqa: E731
    if expect:
        with pytest.raises(expect):
            call()
    else:
        call()


@pytest.mark.parametrize(
    "user,state,expect",
    [("UREQ", State.PENDING, None), ("UA", State.PENDING, NotAllowed), ("UREQ", State.APPROVED, Conflict)],
)
def test_cancel(user, state, expect):
    if expect:
        with pytest.raises(expect):
            rules.cancel(req(state=state), user)
    else:
        rules.cancel(req(state=state), user)


@pytest.mark.parametrize(
    "quantity,available,expect",
    [(1, 5, None), (10, 50, None), (11, 50, NotAllowed), (0, 5, UsageError), (6, 5, NotAllowed)],
)
def test_quantity(quantity, available, expect):
    if expect:
        with pytest.raises(expect):
            rules.check_quantity(quantity, P, available)
    else:
        rules.check_quantity(quantity, P, available)


@pytest.mark.parametrize(
    "threshold,monthly,expect",
    [
        ("0", "0.50", False),  # off
        ("5", "4.99", True),
        ("5", "5.00", False),  # "below" is strict
        ("5", None, False),  # unknown cost is never auto-approved
    ],
)
def test_auto_approve(threshold, monthly, expect):
    policy = Policy(auto_approve_below=Decimal(threshold))
    assert rules.auto_approves(Decimal(monthly) if monthly else None, policy) is expect


def test_approver_ids_split_users_and_groups():
    policy = Policy(approvers=frozenset({"U1", "S1", "W2"}))
    assert policy.approver_groups == {"S1"}
    assert policy.approver_users == {"U1", "W2"}
