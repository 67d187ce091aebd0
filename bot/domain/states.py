"""Request states and the transitions between them (README, "Requests and their states").

A transition is applied by the store as compare-and-set: it names the state it
expects, and it applies only if the request is still in that state. Two
approvers clicking at once, Slack retrying, or two processes on one store can
therefore never both move a request on.
"""

from __future__ import annotations

from enum import StrEnum

from bot.domain.errors import Conflict


class State(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    FULFILLING = "fulfilling"
    FULFILLED = "fulfilled"
    DENIED = "denied"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    FAILED = "failed"
    PROVIDER_PENDING = "provider_pending"
    NEEDS_ATTENTION = "needs_attention"


# Every allowed move. The first nine are the product's; the last three are the
# search-again rule (``bot/domain/holds.py``): approving an expired ACS hold re-runs the
# search while the request is `approved`; a worse result sends it back to `pending` for a fresh
# approval, and a provider that refuses the new search ends it as `failed`
# (no money was spent; nothing to look at). A hold can also run out after the
# approval, while the purchase waits (ACS throttled it): ACS refuses the
# purchase, nothing is spent, and `fulfilling → approved` sends the request
# through the same search-again path.
TRANSITIONS: frozenset[tuple[State, State]] = frozenset(
    {
        (State.PENDING, State.APPROVED),
        (State.PENDING, State.DENIED),
        (State.PENDING, State.CANCELLED),
        (State.PENDING, State.EXPIRED),
        (State.APPROVED, State.FULFILLING),
        (State.FULFILLING, State.FULFILLED),
        (State.FULFILLING, State.FAILED),
        (State.FULFILLING, State.PROVIDER_PENDING),
        (State.FULFILLING, State.NEEDS_ATTENTION),
        (State.APPROVED, State.PENDING),
        (State.APPROVED, State.FAILED),
        (State.FULFILLING, State.APPROVED),
    }
)

TERMINAL: frozenset[State] = frozenset(
    {
        State.FULFILLED,
        State.DENIED,
        State.CANCELLED,
        State.EXPIRED,
        State.FAILED,
        State.PROVIDER_PENDING,
        State.NEEDS_ATTENTION,
    }
)

# States in which the request's monthly cost counts against the budget.
COMMITTED: frozenset[State] = frozenset(
    {State.APPROVED, State.FULFILLING, State.FULFILLED, State.PROVIDER_PENDING, State.NEEDS_ATTENTION}
)

# States in which a request holds its offer: while one is in these, nobody may request
# that offer again (one hold, one purchase call).
HOLDS_OFFER: frozenset[State] = COMMITTED | {State.PENDING, State.FULFILLED}

# Past tense for people, e.g. "already approved".
DESCRIBED: dict[State, str] = {
    State.PENDING: "waiting for approval",
    State.APPROVED: "approved",
    State.FULFILLING: "approved and being fulfilled",
    State.FULFILLED: "fulfilled",
    State.DENIED: "denied",
    State.CANCELLED: "cancelled",
    State.EXPIRED: "expired",
    State.FAILED: "failed",
    State.PROVIDER_PENDING: "waiting on the provider",
    State.NEEDS_ATTENTION: "waiting for a person to check it",
}


def can_move(src: State | str, dst: State | str) -> bool:
    return (State(src), State(dst)) in TRANSITIONS


def check_move(src: State | str, dst: State | str) -> None:
    """Raise ``Conflict`` (with words a user can read) unless src → dst is allowed."""
    if not can_move(src, dst):
        raise Conflict(f"This request is already {DESCRIBED[State(src)]}; it cannot become {State(dst).value}.")
