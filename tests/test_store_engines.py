"""The store's guarantees under concurrency, on both engines: connections of their own, forced to race.

Each test opens several stores on one target (a SQLite file, or a PostgreSQL database), as
replicas or processes would, and starts them together on a barrier.
"""

from __future__ import annotations

import socket
import threading
from datetime import timedelta

import pytest

from bot.domain.errors import OfferTaken, StoreBusy
from bot.domain.states import State
from bot.store.db import Store
from tests.test_store import new_request, offer_row

RACERS = 8


def race(target, clock, work):
    """``work(store)`` on RACERS connections at once; their results (or exceptions) in a list."""
    barrier = threading.Barrier(RACERS)
    results = []
    lock = threading.Lock()

    def run():
        store = Store(target, clock=clock)
        try:
            barrier.wait()
            try:
                out = work(store)
            except Exception as exc:  # noqa: BLE001 - the caller inspects it
                out = exc
            with lock:
                results.append(out)
        finally:
            store.close()

    threads = [threading.Thread(target=run) for _ in range(RACERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def request_fields(offer_id, clock):
    return {
        "offer_id": offer_id, "provider": "acs", "kind": "purchase", "state": "pending", "requester": "U1",
        "requester_email": None, "quantity": 1, "numbers": ["+18332270001"], "unit_monthly_cost": "2.00",
        "unit_setup_cost": None, "currency": "USD", "justification": "why", "ref": {}, "expires_at": clock(),
        "hold_expires_at": None,
    }


def test_one_offer_makes_one_request_however_many_ask_at_once(store_target, clock):
    first = Store(store_target, clock=clock)
    first.db["offers"].insert(offer_row(clock, "o1"))
    results = race(
        store_target, clock, lambda s: s.create_request(request_fields("o1", clock), actor="U1", message="m", data={})
    )
    made = [r for r in results if not isinstance(r, Exception)]
    assert len(made) == 1
    assert all(isinstance(r, OfferTaken) and r.request_id == made[0].id for r in results if r not in made)
    assert first.db.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 1
    assert first.db.execute("SELECT COUNT(*) FROM events WHERE kind = 'requested'").fetchone()[0] == 1
    first.close()


def _fulfilling(store, clock, **operation):
    req = new_request(store, clock)
    store.transition(req.id, State.PENDING, State.APPROVED, actor="UA", kind="approved", message="ok")
    store.transition(
        req.id, State.APPROVED, State.FULFILLING, actor="bot", kind="fulfilling", message="go",
        operation={"provider": "acs", "kind": "purchase", **operation},
    )
    return store.get_operation(req.id)


def test_one_drive_claims_an_operation_however_many_try_at_once(store_target, clock):
    first = Store(store_target, clock=clock)
    op = _fulfilling(first, clock)
    results = race(store_target, clock, lambda s: s.claim_operation(op.id, f"h:1:{threading.get_ident()}", 60))
    assert [type(r) for r in results if isinstance(r, Exception)] == []
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert first.get_operation_by_id(op.id).lease_owner == winners[0].lease_owner
    first.close()


def test_a_lease_frees_by_its_expiry_and_not_before(store_target, clock):
    store = Store(store_target, clock=clock)
    op = _fulfilling(store, clock)
    assert store.claim_operation(op.id, "replica-a:7:aa", 60) is not None
    assert store.claim_operation(op.id, "replica-b:9:bb", 60) is None
    assert store.renew_lease(op.id, "replica-a:7:aa", 60)  # the heartbeat
    clock.advance(59)
    assert store.claim_operation(op.id, "replica-b:9:bb", 60) is None
    clock.advance(2)
    taken = store.claim_operation(op.id, "replica-b:9:bb", 60)
    assert taken is not None and taken.lease_owner == "replica-b:9:bb"
    assert not store.renew_lease(op.id, "replica-a:7:aa", 60)  # the old holder learns it lost the lease
    assert not store.update_operation(op.id, "replica-a:7:aa", phase="sent")
    store.close()


def test_a_pid_frees_a_lease_only_on_sqlite(store_target, clock):
    """On PostgreSQL the holder may be a replica on another host, or in another container that shares
    this host's name: a pid that is not running here says nothing, and only the expiry frees the lease."""
    store = Store(store_target, clock=clock)
    op = _fulfilling(store, clock)
    gone = f"{socket.gethostname()}:999999999:aa"  # no such pid here
    assert store.claim_operation(op.id, gone, 60) is not None
    taken = store.claim_operation(op.id, "replica-b:9:bb", 60)
    assert (taken is not None) is (store.engine == "sqlite")
    store.close()


def test_a_slack_delivery_runs_once_however_many_replicas_get_it(store_target, clock):
    first = Store(store_target, clock=clock)
    results = race(store_target, clock, lambda s: s.take_delivery("trigger:123.456", f"host:{threading.get_ident()}", 3600))
    assert results.count(True) == 1 and results.count(False) == RACERS - 1
    assert first.take_delivery("trigger:other", "host:1", 3600)
    # An hour later the keys are forgotten, a few at a time as new ones come.
    clock.advance(3601)
    assert first.take_delivery("event:new", "host:1", 3600)
    assert first.db.execute("SELECT key FROM slack_deliveries").fetchall() == [("event:new",)]
    first.close()


def test_a_write_that_waits_too_long_is_store_busy_and_changes_nothing(store_target, clock):
    holder = Store(store_target, clock=clock)
    req = new_request(holder, clock)
    waiter = Store(store_target, clock=clock, busy_timeout=0.2)
    with holder.atomic():
        holder.update_request(req.id, changes={"card_ts": "1.1"})
        with pytest.raises(StoreBusy):
            waiter.transition(req.id, State.PENDING, State.APPROVED, actor="UA", kind="approved", message="ok")
    assert waiter.get_request(req.id).state == State.PENDING
    assert [e.kind for e in waiter.events_for(req.id)] == ["requested"]
    waiter.close()
    holder.close()


def test_inventory_and_releases_read_alike(fresh_store, clock):
    store = fresh_store
    req = new_request(store, clock)
    store.transition(req.id, State.PENDING, State.APPROVED, actor="UA", kind="approved", message="ok",
                     changes={"decided_by": "UA", "decided_at": clock()})
    store.transition(req.id, State.APPROVED, State.FULFILLING, actor="bot", kind="fulfilling", message="go")
    done = store.transition(req.id, State.FULFILLING, State.FULFILLED, actor="bot", kind="fulfilled", message="ok",
                            also=lambda s: s.record_numbers(store.get_request(req.id), ["+18332270001", "+18332270002"]))
    assert done.state == State.FULFILLED
    held = store.held_numbers()
    assert [h.number for h in held] == ["+18332270001", "+18332270002"]
    assert [(p, r, c, str(t), n) for p, r, c, t, n in store.monthly_costs()] == [("acs", "U1", "USD", "4.00", 2)]
    number = store.held_number("+18332270002")
    offer_id = f"o{store.db['offers'].count + 1}"
    store.db["offers"].insert(offer_row(clock, offer_id))
    release = store.create_request(
        {**request_fields(offer_id, clock), "kind": "release", "ref": {"number_id": number.id}},
        actor="U1", message="release", data={},
    )
    assert store.open_release_for(number.id) == release.id
    assert store.open_release_for(number.id + 1000) is None
    events = list(store.iter_events(clock() - timedelta(days=1), batch=2))
    assert [e.kind for e in events] == ["requested", "approved", "fulfilling", "fulfilled", "requested"]


def test_a_connection_the_server_dropped_is_replaced_before_the_next_call(pg_url, clock):
    """A PostgreSQL restart or failover cuts the store's connection: the call under way fails, and the
    next one gets a fresh connection from the pool instead of failing for ever."""
    import psycopg

    store = Store(pg_url, clock=clock)
    req = new_request(store, clock)
    backend = store.db.execute("SELECT pg_backend_pid()").fetchone()[0]
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [backend])
    with pytest.raises(psycopg.OperationalError):
        store.get_request(req.id)
    assert store.get_request(req.id).state == State.PENDING
    assert store.db.execute("SELECT pg_backend_pid()").fetchone()[0] != backend
    store.close()
