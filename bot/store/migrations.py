"""Versioned schema migrations, applied in order at start.

Each migration is a function decorated with ``@migration(n)``; the version
reached is kept in ``schema_migrations``. A migration runs inside one
transaction with its version row, so a crash leaves the schema either before
or after it, never half-way.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

import sqlite_utils

Migration = Callable[[sqlite_utils.Database], None]
MIGRATIONS: dict[int, Migration] = {}


def migration(version: int) -> Callable[[Migration], Migration]:
    def register(fn: Migration) -> Migration:
        if version in MIGRATIONS:
            raise ValueError(f"two migrations numbered {version}")
        MIGRATIONS[version] = fn
        return fn

    return register


@migration(1)
def create_core_tables(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE offers (
            id TEXT PRIMARY KEY,
            provider TEXT NOT NULL,
            kind TEXT NOT NULL,
            numbers TEXT NOT NULL,
            unit_monthly_cost TEXT,
            currency TEXT NOT NULL,
            unit_setup_cost TEXT,
            quantity INTEGER NOT NULL,
            max_quantity INTEGER NOT NULL,
            sms INTEGER NOT NULL,
            voice INTEGER NOT NULL,
            expires_at TEXT,
            ref TEXT NOT NULL,
            details TEXT NOT NULL,
            query TEXT NOT NULL,
            searched_by TEXT NOT NULL,
            created_at TEXT NOT NULL
        )"""
    )
    db.execute(
        """
        CREATE TABLE requests (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            offer_id TEXT NOT NULL REFERENCES offers(id),
            provider TEXT NOT NULL,
            kind TEXT NOT NULL,
            state TEXT NOT NULL,
            requester TEXT NOT NULL,
            requester_email TEXT,
            quantity INTEGER NOT NULL,
            numbers TEXT NOT NULL,
            unit_monthly_cost TEXT,
            unit_setup_cost TEXT,
            currency TEXT NOT NULL,
            justification TEXT NOT NULL,
            ref TEXT NOT NULL,
            approvals TEXT NOT NULL DEFAULT '[]',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            hold_expires_at TEXT,
            decided_by TEXT,
            decided_at TEXT,
            outcome TEXT,
            reminded_at TEXT,
            card_channel TEXT,
            card_ts TEXT,
            version INTEGER NOT NULL DEFAULT 0
        )"""
    )
    db.execute("CREATE INDEX requests_requester ON requests (requester, id DESC)")
    db.execute("CREATE INDEX requests_state ON requests (state, id)")
    db.execute("CREATE INDEX requests_decided ON requests (decided_at)")
    db.execute(
        """
        CREATE TABLE operations (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            request_id INTEGER NOT NULL REFERENCES requests(id),
            provider TEXT NOT NULL,
            kind TEXT NOT NULL,
            phase TEXT NOT NULL,
            ref TEXT NOT NULL DEFAULT '{}',
            next_poll_at TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            lease_owner TEXT,
            lease_until TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            last_status TEXT,
            UNIQUE (request_id, kind)
        )"""
    )
    db.execute("CREATE INDEX operations_due ON operations (phase, next_poll_at)")
    db.execute(
        """
        CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            request_id INTEGER,
            actor TEXT NOT NULL,
            kind TEXT NOT NULL,
            message TEXT NOT NULL,
            data TEXT NOT NULL DEFAULT '{}'
        )"""
    )
    db.execute("CREATE INDEX events_request ON events (request_id, id)")
    db.execute("CREATE INDEX events_at ON events (at)")
    # The audit log is append-only: the database itself refuses edits.
    db.execute(
        "CREATE TRIGGER events_no_update BEFORE UPDATE ON events "
        "BEGIN SELECT RAISE(ABORT, 'events are append-only'); END"
    )
    db.execute(
        "CREATE TRIGGER events_no_delete BEFORE DELETE ON events "
        "BEGIN SELECT RAISE(ABORT, 'events are append-only'); END"
    )


@migration(2)
def create_numbers_inventory(db: sqlite_utils.Database) -> None:
    """The numbers the team holds through the bot, and what they cost each month."""
    db.execute(
        """
        CREATE TABLE numbers (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            number TEXT NOT NULL,
            provider TEXT NOT NULL,
            kind TEXT NOT NULL,
            request_id INTEGER NOT NULL REFERENCES requests(id),
            requester TEXT NOT NULL,
            justification TEXT NOT NULL,
            approved_by TEXT,
            acquired_at TEXT NOT NULL,
            unit_monthly_cost TEXT,
            currency TEXT NOT NULL,
            ref TEXT NOT NULL DEFAULT '{}',
            state TEXT NOT NULL DEFAULT 'active',
            release_request_id INTEGER REFERENCES requests(id),
            released_at TEXT
        )"""
    )
    db.execute("CREATE INDEX numbers_state ON numbers (state, provider)")
    db.execute("CREATE INDEX numbers_requester ON numbers (requester, state)")
    db.execute("CREATE INDEX numbers_number ON numbers (number)")
    # Numbers bought before the inventory existed.
    db.execute(
        """
        INSERT INTO numbers (number, provider, kind, request_id, requester, justification, approved_by,
                             acquired_at, unit_monthly_cost, currency, ref)
        SELECT j.value, r.provider, r.kind, r.id, r.requester, r.justification, r.decided_by, r.updated_at,
               r.unit_monthly_cost, r.currency, r.ref
        FROM requests r, json_each(r.numbers) j
        WHERE r.state = 'fulfilled' AND r.kind != 'release'
        """
    )


@migration(3)
def index_open_operations_and_committed_cost(db: sqlite_utils.Database) -> None:
    """The worker asks for open operations on every pass; without the partial index SQLite scans
    every operation ever made (6-10 ms at 70,000, on the event loop). The budget check reads the
    month's approved requests on every approval; the covering index answers it from the index alone."""
    db.execute("CREATE INDEX operations_open ON operations (next_poll_at) WHERE phase != 'done'")
    db.execute("CREATE INDEX requests_committed ON requests (decided_at, kind, state, unit_monthly_cost, quantity)")


@migration(4)
def one_open_operation_per_request(db: sqlite_utils.Database) -> None:
    """A request may need a second operation of a kind (a purchase refused because its hold ran
    out is sent again after a new search); what must stay unique is the *open* one."""
    db.execute("ALTER TABLE operations RENAME TO operations_v1")
    db.execute(
        """
        CREATE TABLE operations (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            request_id INTEGER NOT NULL REFERENCES requests(id),
            provider TEXT NOT NULL,
            kind TEXT NOT NULL,
            phase TEXT NOT NULL,
            ref TEXT NOT NULL DEFAULT '{}',
            next_poll_at TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            lease_owner TEXT,
            lease_until TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            last_status TEXT
        )"""
    )
    db.execute("INSERT INTO operations SELECT * FROM operations_v1")
    db.execute("DROP TABLE operations_v1")
    db.execute("CREATE INDEX operations_due ON operations (phase, next_poll_at)")
    db.execute("CREATE INDEX operations_open ON operations (next_poll_at) WHERE phase != 'done'")
    db.execute("CREATE INDEX operations_request ON operations (request_id, id)")
    db.execute("CREATE UNIQUE INDEX operations_one_open ON operations (request_id, kind) WHERE phase != 'done'")


@migration(5)
def one_live_request_per_offer(db: sqlite_utils.Database) -> None:
    """An offer is one hold: while a request of it is live, nobody may request it again
    (``Store.create_request`` says so in words; this index holds any other writer to it).
    A store from before this rule may already hold two live requests of one offer; the
    index then waits for them to end rather than rewrite history (nothing is deleted)."""
    duplicates = db.execute(
        f"SELECT offer_id FROM requests WHERE state IN ({_LIVE}) GROUP BY offer_id HAVING COUNT(*) > 1 LIMIT 1"
    ).fetchone()
    if duplicates is None:
        db.execute(f"CREATE UNIQUE INDEX requests_live_offer ON requests (offer_id) WHERE state IN ({_LIVE})")


@migration(10)
def outbox(db: sqlite_utils.Database) -> None:
    """What Slack must show, written in the same commit as the change that causes it
    (``bot.store.outbox``). A row is one notification: the request as the change left it
    (``snapshot``), what happened (``what``, ``actor``, ``text``) and the parts already
    delivered (``done``: card, dm, thread), so a retry never sends a part twice."""
    db.execute(
        """CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            request_id INTEGER NOT NULL,
            what TEXT NOT NULL,
            actor TEXT,
            text TEXT,
            snapshot TEXT NOT NULL,
            done TEXT NOT NULL DEFAULT '[]',
            created_at TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_at TEXT NOT NULL,
            last_error TEXT,
            delivered_at TEXT,
            lease_owner TEXT,
            lease_until TEXT
        )"""
    )
    db.execute("CREATE INDEX outbox_pending ON outbox (request_id, id) WHERE delivered_at IS NULL")
    db.execute("CREATE INDEX outbox_due ON outbox (next_at) WHERE delivered_at IS NULL")


# The states of bot.domain.states.HOLDS_OFFER, spelled out: a migration must not change when the code does.
_LIVE = "'pending', 'approved', 'fulfilling', 'fulfilled', 'provider_pending', 'needs_attention'"


def current_version(db: sqlite_utils.Database) -> int:
    if "schema_migrations" not in db.table_names():
        return 0
    row = db.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
    return row[0] or 0


def apply_migrations(db: sqlite_utils.Database) -> list[int]:
    """Bring the schema up to date; return the versions applied now.

    An up-to-date store is only read: opening one never waits for another process's write lock."""
    if "schema_migrations" in db.table_names() and current_version(db) >= max(MIGRATIONS):
        return []
    db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
    db.conn.commit()
    applied = []
    for version in sorted(MIGRATIONS):
        db.execute("BEGIN IMMEDIATE")
        try:
            # Re-read inside the write lock: another process may have migrated meanwhile.
            if current_version(db) >= version:
                db.conn.rollback()
                continue
            MIGRATIONS[version](db)
            db.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                [version, datetime.now(timezone.utc).isoformat()],
            )
            db.conn.commit()
        except BaseException:
            db.conn.rollback()
            raise
        applied.append(version)
    return applied
