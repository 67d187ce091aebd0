"""The store: migrations, atomic state changes with their events, append-only audit log."""

from __future__ import annotations

import sqlite3
import threading

import psycopg
import pytest

from bot.domain.states import State
from bot.store import migrations
from bot.store.db import Store


def offer_row(clock, id="o1"):
    return {
        "id": id, "provider": "acs", "kind": "purchase", "numbers": "[]", "unit_monthly_cost": "2.00",
        "currency": "USD", "unit_setup_cost": None, "quantity": 1, "max_quantity": 1, "sms": 0, "voice": 1,
        "expires_at": None, "ref": "{}", "details": "{}", "query": '{"country": "US"}', "searched_by": "U1",
        "created_at": clock().isoformat(),
    }


def new_request(store, clock, requester="U1"):
    # One offer per request: a live request holds its offer (one offer, one request).
    offer_id = f"o{store.db['offers'].count + 1}"
    store.db["offers"].insert(offer_row(clock, offer_id))
    return store.create_request(
        {
            "offer_id": offer_id, "provider": "acs", "kind": "purchase", "state": "pending", "requester": requester,
            "requester_email": None, "quantity": 2, "numbers": ["+18332270001"], "unit_monthly_cost": "2.00",
            "unit_setup_cost": None, "currency": "USD", "justification": "why", "ref": {"search_id": "s1"},
            "expires_at": clock(), "hold_expires_at": None,
        },
        actor=requester, message="requested", data={},
    )


# The errors each engine raises when the database itself refuses a statement.
REFUSED = (sqlite3.DatabaseError, psycopg.Error)


def test_migrations_apply_once_and_record_version(store_target, clock):
    store = Store(store_target, clock=clock)
    assert migrations.current_version(store.db) == max(migrations.MIGRATIONS)
    req = new_request(store, clock)
    store.close()
    # Opening again applies nothing new and keeps the data.
    store = Store(store_target, clock=clock)
    assert migrations.apply_migrations(store.db) == []
    if store.engine == "sqlite":
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {"offers", "requests", "operations", "events", "schema_migrations", "slack_deliveries"} <= set(
        store.db.table_names()
    )
    assert store.get_request(req.id).state == State.PENDING
    assert [r[0] for r in store.db.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()] == sorted(
        migrations.MIGRATIONS
    )
    store.close()


def test_migrations_run_once_when_many_replicas_start_together(store_target, clock):
    """Eight processes' worth of connections open one empty store at once: each migration runs once."""
    barrier = threading.Barrier(8)
    errors, applied = [], []
    runs = []
    real = dict(migrations.MIGRATIONS)

    def counted(version):
        def run(db):
            runs.append(version)
            real[version](db)

        return run

    def start():
        try:
            barrier.wait()
            # What is tested is that each migration runs once, not how long seven openers wait for the
            # first one's migrations: on a saturated 2-core machine that took over the 5 s default once.
            Store(store_target, clock=clock, busy_timeout=60).close()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    original = dict(migrations.MIGRATIONS)
    migrations.MIGRATIONS.update({v: counted(v) for v in original})
    try:
        threads = [threading.Thread(target=start) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        migrations.MIGRATIONS.update(original)
    assert errors == []
    assert sorted(runs) == sorted(original)
    store = Store(store_target, clock=clock)
    assert migrations.current_version(store.db) == max(original)
    store.close()


def test_a_failing_migration_leaves_nothing_half_done(store_target, clock, monkeypatch):
    Store(store_target, clock=clock).close()

    @migrations.migration(999)
    def broken(db):
        db.execute("CREATE TABLE half (x TEXT)")
        raise RuntimeError("boom")

    try:
        with pytest.raises(RuntimeError):
            Store(store_target, clock=clock)
    finally:
        del migrations.MIGRATIONS[999]
    store = Store(store_target, clock=clock)
    assert "half" not in store.db.table_names()
    assert migrations.current_version(store.db) == max(migrations.MIGRATIONS)
    store.close()


def test_state_change_and_event_commit_together(fresh_store, clock):
    req = new_request(fresh_store, clock)
    before = len(fresh_store.events_for(req.id))

    class Boom(Exception):
        pass

    # A failure inside the transaction after the update rolls back the state change too.
    with pytest.raises(Boom):
        with fresh_store.atomic():
            fresh_store.transition(req.id, State.PENDING, State.APPROVED, actor="UA", kind="approved", message="ok")
            raise Boom()
    assert fresh_store.get_request(req.id).state == State.PENDING
    assert len(fresh_store.events_for(req.id)) == before


def test_events_are_append_only(fresh_store, clock):
    req = new_request(fresh_store, clock)
    with pytest.raises(REFUSED, match="append-only"):
        fresh_store.db.execute("UPDATE events SET message = 'changed' WHERE request_id = ?", [req.id])
    with pytest.raises(REFUSED, match="append-only"):
        fresh_store.db.execute("DELETE FROM events WHERE request_id = ?", [req.id])
    if fresh_store.postgres:
        with pytest.raises(REFUSED, match="append-only"):
            fresh_store.db.execute("TRUNCATE events")
    assert len(fresh_store.events_for(req.id)) == 1


def test_money_stays_exact(fresh_store, clock):
    req = new_request(fresh_store, clock)
    got = fresh_store.get_request(req.id)
    assert str(got.unit_monthly_cost) == "2.00"
    assert str(got.monthly_total) == "4.00"


def test_committed_this_month_counts_approved_this_month_only(fresh_store, clock):
    a = new_request(fresh_store, clock)
    b = new_request(fresh_store, clock)
    c = new_request(fresh_store, clock)
    fresh_store.transition(a.id, State.PENDING, State.APPROVED, actor="UA", kind="approved", message="",
                           changes={"decided_at": clock()})
    fresh_store.transition(b.id, State.PENDING, State.DENIED, actor="UA", kind="denied", message="",
                           changes={"decided_at": clock()})
    assert str(fresh_store.committed_this_month()) == "4.00"
    clock.advance(40 * 86400)  # next month
    fresh_store.transition(c.id, State.PENDING, State.APPROVED, actor="UA", kind="approved", message="",
                           changes={"decided_at": clock()})
    assert str(fresh_store.committed_this_month()) == "4.00"


def test_two_connections_one_wins_the_compare_and_set(store_target, clock):
    """Two processes' worth of connections race to approve: exactly one move, one event."""
    path = store_target
    first = Store(path, clock=clock)
    req = new_request(first, clock)
    results = []
    barrier = threading.Barrier(8)

    def approve():
        store = Store(path, clock=clock)  # a connection of its own, as another process has
        barrier.wait()
        results.append(store.transition(req.id, State.PENDING, State.APPROVED, actor="UA", kind="approved", message="ok"))
        store.close()

    threads = [threading.Thread(target=approve) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8
    assert sum(r is not None for r in results) == 1
    assert [e.kind for e in first.events_for(req.id)].count("approved") == 1
    first.close()


def test_audit_iterates_in_batches(fresh_store, clock):
    for _ in range(30):
        new_request(fresh_store, clock)
    events = list(fresh_store.iter_events(clock().replace(year=2000), batch=7))
    assert len(events) == 30
    assert [e.id for e in events] == sorted(e.id for e in events)
