"""Every pair of states: allowed moves apply (compare-and-set), forbidden ones never do."""

from __future__ import annotations

import itertools

import pytest

from bot.domain.errors import Conflict
from bot.domain.states import State, TRANSITIONS, can_move, check_move

ALLOWED = {
    ("pending", "approved"),
    ("pending", "denied"),
    ("pending", "cancelled"),
    ("pending", "expired"),
    ("approved", "fulfilling"),
    ("fulfilling", "fulfilled"),
    ("fulfilling", "failed"),
    ("fulfilling", "provider_pending"),
    ("fulfilling", "needs_attention"),
    # The search-again rule: an expired hold re-searched on approval
    ("approved", "pending"),
    ("approved", "failed"),
    # the hold ran out while the purchase waited: refused, nothing spent, search again
    ("fulfilling", "approved"),
}

ALL_PAIRS = list(itertools.product([s.value for s in State], repeat=2))


@pytest.mark.parametrize("src,dst", ALL_PAIRS)
def test_transition_table(src, dst):
    expected = (src, dst) in ALLOWED
    assert can_move(src, dst) is expected
    if expected:
        check_move(src, dst)
    else:
        with pytest.raises(Conflict):
            check_move(src, dst)


def test_table_is_exactly_the_spec():
    assert {(a.value, b.value) for a, b in TRANSITIONS} == ALLOWED


def _request(store, clock):
    store.save_offers([], actor="U1", message="x", data={})
    store.db["offers"].insert(
        {
            "id": "o1", "provider": "acs", "kind": "purchase", "numbers": "[]", "unit_monthly_cost": "2",
            "currency": "USD", "unit_setup_cost": None, "quantity": 1, "max_quantity": 1, "sms": 0, "voice": 1,
            "expires_at": None, "ref": "{}", "details": "{}", "query": '{"country": "US"}', "searched_by": "U1",
            "created_at": clock().isoformat(),
        }
    )
    return store.create_request(
        {
            "offer_id": "o1", "provider": "acs", "kind": "purchase", "state": "pending", "requester": "U1",
            "requester_email": None, "quantity": 1, "numbers": ["+18332272459"], "unit_monthly_cost": "2",
            "unit_setup_cost": None, "currency": "USD", "justification": "x", "ref": {},
            "expires_at": clock(), "hold_expires_at": None,
        },
        actor="U1", message="requested", data={},
    )


PATHS = {
    "pending": [],
    "approved": [("pending", "approved")],
    "fulfilling": [("pending", "approved"), ("approved", "fulfilling")],
    "denied": [("pending", "denied")],
    "fulfilled": [("pending", "approved"), ("approved", "fulfilling"), ("fulfilling", "fulfilled")],
}


@pytest.mark.parametrize("start", sorted(PATHS))
@pytest.mark.parametrize("dst", [s.value for s in State])
def test_store_applies_only_from_expected_state(fresh_store, clock, start, dst):
    """The store's compare-and-set: a move applies once, from the state it expects, with its event."""
    req = _request(fresh_store, clock)
    for a, b in PATHS[start]:
        assert fresh_store.transition(req.id, State(a), State(b), actor="t", kind=b, message=b) is not None
    events_before = len(fresh_store.events_for(req.id))
    if (start, dst) not in ALLOWED:
        with pytest.raises(Conflict):
            fresh_store.transition(req.id, State(start), State(dst), actor="t", kind=dst, message=dst)
        assert len(fresh_store.events_for(req.id)) == events_before
        return
    moved = fresh_store.transition(req.id, State(start), State(dst), actor="t", kind=dst, message=dst)
    assert moved is not None and moved.state == State(dst)
    assert len(fresh_store.events_for(req.id)) == events_before + 1
    # The same move again is refused by compare-and-set: the request is no longer in `start`.
    again = fresh_store.transition(req.id, State(start), State(dst), actor="t", kind=dst, message=dst)
    assert again is None
    assert len(fresh_store.events_for(req.id)) == events_before + 1
