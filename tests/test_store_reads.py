"""The store read a release uses: the held numbers a typed number can be (not the whole inventory)."""

from __future__ import annotations

from bot.domain.states import State
from tests.test_store import new_request

HELD = ["+18332270001", "+441632960123", "+18332279999", "+41446681800"]


def _hold(store, clock, numbers):
    req = new_request(store, clock)
    store.transition(req.id, State.PENDING, State.APPROVED, actor="UA", kind="approved", message="ok",
                     changes={"decided_by": "UA", "decided_at": clock()})
    store.transition(req.id, State.APPROVED, State.FULFILLING, actor="bot", kind="fulfilling", message="go")
    store.transition(req.id, State.FULFILLING, State.FULFILLED, actor="bot", kind="fulfilled", message="ok",
                     also=lambda s: s.record_numbers(s.get_request(req.id), numbers))
    return req


def test_held_numbers_ending_reads_only_the_numbers_a_typed_number_can_be(fresh_store, clock):
    store = fresh_store
    req = _hold(store, clock, HELD)
    # National forms with punctuation and a trunk prefix end with the same subscriber digits.
    assert store.held_numbers_ending("(833) 227-0001") == ["+18332270001"]
    assert store.held_numbers_ending("01632 960123") == ["+441632960123"]
    assert store.held_numbers_ending("044 668 18 00") == ["+41446681800"]
    assert store.held_numbers_ending("833 227 5555") == []
    assert store.held_numbers_ending("no digits") == []
    # Released numbers are no longer held.
    number = store.held_number("+18332279999")
    store.mark_released(number.id, req.id)
    assert store.held_numbers_ending("+1 833 227 9999") == []


def test_held_numbers_ending_is_distinct_and_bounded(fresh_store, clock):
    store = fresh_store
    _hold(store, clock, ["+18332270001", "+14155550001"])
    _hold(store, clock, ["+18332270001"])  # held twice (a number bought back after a release elsewhere)
    assert store.held_numbers_ending("0001") == ["+14155550001", "+18332270001"]
    assert len(store.held_numbers_ending("0001", limit=1)) == 1
