"""The store: offers, requests, operations in flight, and the audit log, on SQLite or PostgreSQL.

Every state change commits together with its event. On SQLite (the default, one
file) writes start with ``BEGIN IMMEDIATE`` (``Store.atomic``) so that two
processes on one file queue on the busy timeout instead of failing with
``database is locked`` when a read transaction tries to become a write.

On PostgreSQL (``postgresql://…``, for two or more replicas) the same SQL runs
through ``bot.store.postgres``; the differences are kept to a few places: a
compare-and-set ``UPDATE … WHERE state = ?`` is already safe under READ
COMMITTED (the second writer waits, re-reads the row and matches nothing), a
check-then-insert takes a transaction-scoped advisory lock on what it checks,
a claim reads its row ``FOR UPDATE SKIP LOCKED``, and a lease is free only by
its expiry (a pid means nothing on another host).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import sqlite3
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Callable, Iterator

import psycopg
import psycopg.errors
import sqlite_utils

from bot.domain.errors import OfferTaken, StoreBusy
from bot.domain.offers import Offer
from bot.domain.requests import Event, HeldNumber, NumberRequest, Operation
from bot.domain.values import ts
from bot.domain.states import COMMITTED, HOLDS_OFFER, State, check_move
from bot.store import outbox
from bot.store.migrations import apply_migrations
from bot.store.postgres import PostgresDatabase, is_postgres_url
from bot.store.outbox import Notice

Clock = Callable[[], datetime]


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc)
    return "locked" in text or "busy" in text


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def process_identity() -> str:
    """``host:pid``: the process part of every lease holder's name."""
    return f"{socket.gethostname()}:{os.getpid()}"


def drive_identity() -> str:
    """``host:pid:token``: one holder per drive, so two drives in one process never share a lease."""
    return f"{process_identity()}:{secrets.token_hex(4)}"


def holder_is_dead(owner: str | None) -> bool:
    """True when ``owner`` (``host:pid[:token]``) is a process on this host that no longer runs."""
    if not owner:
        return True
    host, _, rest = owner.partition(":")
    pid = rest.split(":", 1)[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


# PostgreSQL's answers to a lock waited for too long, or to two writers in each other's way.
_PG_BUSY = (psycopg.errors.LockNotAvailable, psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)

DEFAULT_BUSY_TIMEOUT = 5.0  # seconds a write waits for another process's lock before StoreBusy


class Store:
    """One connection to the store. Not for the event loop: ``ThreadedStore`` runs it on threads."""

    def __init__(
        self,
        path: str | None = None,
        *,
        db: sqlite_utils.Database | None = None,
        clock: Clock = utcnow,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    ):
        self.clock = clock
        self.path = path
        self.busy_timeout = busy_timeout
        if db is None and is_postgres_url(path):
            self.engine = "postgresql"
            self.db = PostgresDatabase(path, lock_timeout=busy_timeout)
            try:
                apply_migrations(self.db)
            except BaseException:
                self.db.close()
                raise
            return
        self.engine = "sqlite"
        if db is None:
            # check_same_thread=False: ThreadedStore opens a connection per thread and closes them
            # all from the thread that shuts it down; one connection is never used by two at once.
            if path is None or path == ":memory:":
                db = sqlite_utils.Database(sqlite3.connect(":memory:", check_same_thread=False))
            else:
                db = sqlite_utils.Database(sqlite3.connect(path, timeout=busy_timeout, check_same_thread=False))
        self.db = db
        if not db.memory and path not in (None, ":memory:"):
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
        db.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        db.execute("PRAGMA foreign_keys=ON")
        apply_migrations(db)

    @property
    def in_memory(self) -> bool:
        return self.engine == "sqlite" and self.path in (None, ":memory:")

    @property
    def postgres(self) -> bool:
        return self.engine == "postgresql"

    def close(self) -> None:
        self.db.close()

    # --- transactions -------------------------------------------------------

    @contextlib.contextmanager
    def atomic(self) -> Iterator[sqlite_utils.Database]:
        """A write transaction (``BEGIN IMMEDIATE``); nested calls use savepoints.

        The lock is waited for at most ``busy_timeout``; then ``StoreBusy`` says so and
        nothing has changed (a click tells the user to try again, the worker retries)."""
        if self.postgres:
            with self._pg_atomic():
                yield self.db
            return
        conn = self.db.conn
        if conn.in_transaction:
            with self.db.atomic():
                yield self.db
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if _is_busy(exc):
                raise StoreBusy() from None
            raise
        try:
            yield self.db
        except sqlite3.OperationalError as exc:
            conn.rollback()
            if _is_busy(exc):
                raise StoreBusy() from None
            raise
        except BaseException:
            conn.rollback()
            raise
        else:
            conn.commit()

    @contextlib.contextmanager
    def _pg_atomic(self) -> Iterator[None]:
        try:
            with self.db.transaction():
                yield
        except _PG_BUSY:
            raise StoreBusy() from None

    def _lock(self, key: str) -> None:
        """Hold ``key`` until the transaction ends: a check-then-write on PostgreSQL is made under it.

        (SQLite's ``BEGIN IMMEDIATE`` already lets one writer in at a time.)"""
        if self.postgres:
            self.db.execute("SELECT pg_advisory_xact_lock(hashtext(?))", [key])

    def _insert_id(self, sql: str, args: list[Any]) -> int:
        if self.postgres:
            return int(self.db.execute(sql + " RETURNING id", args).fetchone()[0])
        return int(self.db.execute(sql, args).lastrowid)

    def _event(
        self, request_id: int | None, actor: str, kind: str, message: str, data: dict[str, Any] | None = None
    ) -> None:
        self.db.execute(
            "INSERT INTO events (at, request_id, actor, kind, message, data) VALUES (?, ?, ?, ?, ?, ?)",
            [ts(self.clock()), request_id, actor, kind, message, json.dumps(data or {}, default=str)],
        )

    def add_event(
        self, request_id: int | None, actor: str, kind: str, message: str, data: dict[str, Any] | None = None
    ) -> None:
        with self.atomic():
            self._event(request_id, actor, kind, message, data)

    # --- offers -------------------------------------------------------------

    def save_offers(self, offers: list[Offer], *, actor: str, message: str, data: dict[str, Any]) -> None:
        with self.atomic():
            for offer in offers:
                self.db["offers"].insert(offer.to_row())
            self._event(None, actor, "searched", message, data)

    def get_offer(self, offer_id: str) -> Offer | None:
        rows = list(self.db.query("SELECT * FROM offers WHERE id = ?", [offer_id]))
        return Offer.from_row(rows[0]) if rows else None

    def create_request(
        self, fields: dict[str, Any], *, actor: str, message: str, data: dict[str, Any], notify: Notice | None = None
    ) -> NumberRequest:
        now = ts(self.clock())
        row = {
            "approvals": "[]",
            "version": 0,
            "created_at": now,
            "updated_at": now,
            **fields,
        }
        for key in ("numbers", "ref", "approvals"):
            if not isinstance(row[key], str):
                row[key] = json.dumps(row[key])
        for key in ("unit_monthly_cost", "unit_setup_cost"):
            if row.get(key) is not None:
                row[key] = str(row[key])
        for key in ("expires_at", "hold_expires_at"):
            if isinstance(row.get(key), datetime):
                row[key] = ts(row[key])
        with self.atomic():
            # Checked inside the write transaction: writers queue on BEGIN IMMEDIATE, so two
            # requests of one offer cannot both pass (the unique index requests_live_offer
            # says the same to any other writer). On PostgreSQL the offer's lock does what
            # BEGIN IMMEDIATE does on SQLite.
            self._lock(f"offer:{row['offer_id']}")
            taken = self.live_request_for(row["offer_id"])
            if taken is not None:
                raise OfferTaken(taken)
            request_id = self._insert_id(
                f"INSERT INTO requests ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})", list(row.values())
            )
            self._event(request_id, actor, "requested", message, data)
            if notify is not None:
                outbox.enqueue(self, request_id, notify)
        got = self.get_request(request_id)
        assert got is not None
        return got

    def live_request_for(self, offer_id: str) -> int | None:
        """The request that holds ``offer_id`` now, if any (see ``HOLDS_OFFER``)."""
        row = self.db.execute(
            f"SELECT id FROM requests WHERE offer_id = ? AND state IN ({', '.join('?' for _ in HOLDS_OFFER)}) "
            "ORDER BY id LIMIT 1",
            [offer_id, *sorted(s.value for s in HOLDS_OFFER)],
        ).fetchone()
        return int(row[0]) if row else None

    def get_request(self, request_id: int, *, events: bool = True) -> NumberRequest | None:
        rows = list(self.db.query("SELECT * FROM requests WHERE id = ?", [request_id]))
        if not rows:
            return None
        request = NumberRequest.from_row(rows[0])
        if events:
            request.events = self.events_for(request_id)
        return request

    def events_for(self, request_id: int) -> list[Event]:
        return [
            Event.from_row(r) for r in self.db.query("SELECT * FROM events WHERE request_id = ? ORDER BY id", [request_id])
        ]

    def _encode(self, changes: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for key, value in changes.items():
            if key in ("numbers", "ref", "approvals"):
                value = json.dumps(value)
            elif isinstance(value, datetime):
                value = ts(value)
            elif isinstance(value, Decimal):
                value = str(value)
            elif isinstance(value, State):
                value = value.value
            out[key] = value
        return out

    def transition(
        self,
        request_id: int,
        expect: State,
        to: State,
        *,
        actor: str,
        kind: str,
        message: str,
        data: dict[str, Any] | None = None,
        changes: dict[str, Any] | None = None,
        operation: dict[str, Any] | None = None,
        finish_operation: int | None = None,
        also: Callable[["Store"], None] | None = None,
        notify: Notice | None = None,
    ) -> NumberRequest | None:
        """Move ``request_id`` from ``expect`` to ``to`` with its event, or return None.

        Compare-and-set: when the request is no longer in ``expect`` nothing
        changes and None is returned. ``operation`` creates the operation row
        (the intent to call the provider) in the same transaction;
        ``finish_operation`` marks one done in it; ``also(store)`` runs in it
        too (the inventory follows a purchase or release in the same commit; the budget is
        counted with every approval committed before this one); ``notify`` goes to the
        outbox in it, so the change and what Slack must show of it commit together.
        """
        check_move(expect, to)
        now = self.clock()
        sets = {"state": to.value, "updated_at": ts(now), **self._encode(changes or {})}
        assignments = ", ".join(f"{k} = ?" for k in sets)
        with self.atomic():
            cursor = self.db.execute(
                f"UPDATE requests SET {assignments}, version = version + 1 WHERE id = ? AND state = ?",
                [*sets.values(), request_id, expect.value],
            )
            if cursor.rowcount != 1:
                return None
            self._event(request_id, actor, kind, message, data)
            if operation is not None:
                self._insert_operation(request_id, operation, now)
            if finish_operation is not None:
                self.db.execute(
                    "UPDATE operations SET phase = 'done', lease_owner = NULL, lease_until = NULL, updated_at = ? "
                    "WHERE id = ?",
                    [ts(now), finish_operation],
                )
            if also is not None:
                also(self)
            if notify is not None:
                outbox.enqueue(self, request_id, notify)
        return self.get_request(request_id)

    def update_request(
        self,
        request_id: int,
        *,
        expect_version: int | None = None,
        expect_state: State | None = None,
        changes: dict[str, Any],
        event: tuple[str, str, str, dict[str, Any]] | None = None,
        notify: Notice | None = None,
    ) -> NumberRequest | None:
        """Change fields without a state move (approval counts, card location, reminders).

        With ``expect_version``/``expect_state`` it is compare-and-set as well.
        ``event`` is ``(actor, kind, message, data)``.
        """
        sets = {"updated_at": ts(self.clock()), **self._encode(changes)}
        where, args = ["id = ?"], [request_id]
        if expect_version is not None:
            where.append("version = ?")
            args.append(expect_version)
        if expect_state is not None:
            where.append("state = ?")
            args.append(expect_state.value)
        with self.atomic():
            cursor = self.db.execute(
                f"UPDATE requests SET {', '.join(f'{k} = ?' for k in sets)}, version = version + 1 "
                f"WHERE {' AND '.join(where)}",
                [*sets.values(), *args],
            )
            if cursor.rowcount != 1:
                return None
            if event is not None:
                self._event(request_id, *event)
            if notify is not None:
                outbox.enqueue(self, request_id, notify)
        return self.get_request(request_id)

    def list_requests(
        self,
        *,
        requester: str | None = None,
        states: list[State] | None = None,
        limit: int = 20,
        oldest_first: bool = False,
    ) -> list[NumberRequest]:
        where, args = [], []
        if requester is not None:
            where.append("requester = ?")
            args.append(requester)
        if states:
            where.append(f"state IN ({', '.join('?' for _ in states)})")
            args.extend(s.value for s in states)
        sql = "SELECT * FROM requests"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY id {'ASC' if oldest_first else 'DESC'} LIMIT ?"
        args.append(limit)
        return [NumberRequest.from_row(r) for r in self.db.query(sql, args)]

    def committed_this_month(self, now: datetime | None = None) -> Decimal:
        """Monthly cost of the requests (not releases) approved in this calendar month (UTC).

        Read inside a write transaction (the budget check of an approval) on PostgreSQL, the
        month's budget is locked first: a second approval waits for the first to commit and then
        counts it, as the second writer on SQLite does behind ``BEGIN IMMEDIATE``."""
        now = now or self.clock()
        if self.postgres and self.db.conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS:
            self._lock("budget")
        start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        total = Decimal("0")
        rows = self.db.execute(
            f"SELECT unit_monthly_cost, quantity FROM requests WHERE decided_at >= ? AND kind != 'release' "
            f"AND state IN ({', '.join('?' for _ in COMMITTED)})",
            [ts(start), *[s.value for s in COMMITTED]],
        )
        for unit, qty in rows:
            if unit is not None:
                total += Decimal(unit) * qty
        return total

    def due_for_expiry(self, now: datetime) -> list[NumberRequest]:
        return [
            NumberRequest.from_row(r)
            for r in self.db.query(
                "SELECT * FROM requests WHERE state = 'pending' AND expires_at <= ? ORDER BY id", [ts(now)]
            )
        ]

    def due_for_reminder(self, created_before: datetime) -> list[NumberRequest]:
        return [
            NumberRequest.from_row(r)
            for r in self.db.query(
                "SELECT * FROM requests WHERE state = 'pending' AND reminded_at IS NULL AND created_at <= ? "
                "ORDER BY id",
                [ts(created_before)],
            )
        ]

    def approved_without_operation(self) -> list[NumberRequest]:
        """Approved requests nobody has started to fulfil (e.g. a crash right after approval)."""
        return [
            NumberRequest.from_row(r) for r in self.db.query("SELECT * FROM requests WHERE state = 'approved' ORDER BY id")
        ]

    # --- inventory ----------------------------------------------------------

    def record_numbers(self, request: NumberRequest, numbers: list[str]) -> None:
        """Add what a fulfilled request obtained to the inventory (call inside its transition)."""
        now = ts(self.clock())
        for number in numbers:
            self.db.execute(
                "INSERT INTO numbers (number, provider, kind, request_id, requester, justification, approved_by, "
                "acquired_at, unit_monthly_cost, currency, ref) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    number,
                    request.provider,
                    request.kind,
                    request.id,
                    request.requester,
                    request.justification,
                    request.decided_by,
                    now,
                    str(request.unit_monthly_cost) if request.unit_monthly_cost is not None else None,
                    request.currency,
                    json.dumps(request.ref),
                ],
            )

    def mark_released(self, number_id: int, release_request_id: int) -> None:
        self.db.execute(
            "UPDATE numbers SET state = 'released', release_request_id = ?, released_at = ? WHERE id = ?",
            [release_request_id, ts(self.clock()), number_id],
        )

    def held_numbers(self, *, requester: str | None = None, state: str = "active", limit: int = 1000) -> list[HeldNumber]:
        sql, args = "SELECT * FROM numbers WHERE state = ?", [state]
        if requester is not None:
            sql += " AND requester = ?"
            args.append(requester)
        sql += " ORDER BY provider, number LIMIT ?"
        args.append(limit)
        return [HeldNumber.from_row(r) for r in self.db.query(sql, args)]

    def held_number(self, number: str) -> HeldNumber | None:
        rows = list(
            self.db.query("SELECT * FROM numbers WHERE number = ? AND state = 'active' ORDER BY id DESC LIMIT 1", [number])
        )
        return HeldNumber.from_row(rows[0]) if rows else None

    def monthly_costs(self) -> list[tuple[str, str, str, Decimal, int]]:
        """(provider, requester, currency, monthly total, count) over the active inventory."""
        rows = self.db.execute(
            "SELECT provider, requester, currency, unit_monthly_cost FROM numbers WHERE state = 'active'"
        ).fetchall()
        totals: dict[tuple[str, str, str], list[Any]] = {}
        for provider, requester, currency, unit in rows:
            slot = totals.setdefault((provider, requester, currency), [Decimal(0), 0])
            slot[0] += Decimal(unit) if unit is not None else Decimal(0)
            slot[1] += 1
        return [(p, r, c, t, n) for (p, r, c), (t, n) in sorted(totals.items())]

    def open_release_for(self, number_id: int) -> int | None:
        number_in_ref = (
            "CAST(ref AS jsonb) -> 'number_id' = to_jsonb(CAST(? AS bigint))"
            if self.postgres
            else "json_extract(ref, '$.number_id') = ?"
        )
        row = self.db.execute(
            "SELECT id FROM requests WHERE kind = 'release' AND state IN ('pending', 'approved', 'fulfilling') "
            f"AND {number_in_ref} LIMIT 1",
            [number_id],
        ).fetchone()
        return row[0] if row else None

    # --- events (audit) -----------------------------------------------------

    def iter_events(self, since: datetime, until: datetime | None = None, batch: int = 500) -> Iterator[Event]:
        """Events in ``[since, until)`` in id order, read in batches (never all at once).

        Ids and times grow together (events are only appended), so the walk starts at the
        first event in the window instead of scanning every older one."""
        first = self.db.execute("SELECT MIN(id) FROM events WHERE at >= ?", [ts(since)]).fetchone()[0]
        if first is None:
            return
        last_id = first - 1
        until_s = ts(until) if until else "9999"
        while True:
            rows = list(
                self.db.query(
                    "SELECT * FROM events WHERE id > ? AND at >= ? AND at < ? ORDER BY id LIMIT ?",
                    [last_id, ts(since), until_s, batch],
                )
            )
            if not rows:
                return
            for row in rows:
                yield Event.from_row(row)
            last_id = rows[-1]["id"]

    # --- Slack deliveries ---------------------------------------------------

    @contextlib.contextmanager
    def _waiting_at_most(self, seconds: float) -> Iterator[None]:
        """Wait for another writer's lock at most ``seconds`` here instead of ``busy_timeout``."""
        if self.postgres:
            self.db.execute(f"SET lock_timeout = {int(seconds * 1000)}")
        else:
            self.db.execute(f"PRAGMA busy_timeout={int(seconds * 1000)}")
        try:
            yield
        finally:
            if self.postgres:
                self.db.execute(f"SET lock_timeout = {int(self.busy_timeout * 1000)}")
            else:
                self.db.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")

    def take_delivery(self, key: str, taker: str, keep_seconds: float, *, wait: float = 0.2) -> bool:
        """Record that ``taker`` (``host:pid``) runs the Slack delivery ``key``; False when another has.

        The key's uniqueness decides between replicas. On SQLite (one host) a key whose taker's
        process is gone is taken over: a restarted bot runs the retry of what died with it. Keys
        older than ``keep_seconds`` are forgotten, a few at a time, as new ones come. The write waits
        for a lock at most ``wait`` seconds (then StoreBusy): it stands before a Slack ack."""
        now = self.clock()
        with self._waiting_at_most(wait), self.atomic():
            self.db.execute(
                "DELETE FROM slack_deliveries WHERE key IN "
                "(SELECT key FROM slack_deliveries WHERE taken_at < ? ORDER BY taken_at LIMIT 20)",
                [ts(now - timedelta(seconds=keep_seconds))],
            )
            inserted = self.db.execute(
                "INSERT INTO slack_deliveries (key, taken_by, taken_at) VALUES (?, ?, ?) ON CONFLICT (key) DO NOTHING",
                [key, taker, ts(now)],
            ).rowcount
            if inserted == 1:
                return True
            row = self.db.execute("SELECT taken_by FROM slack_deliveries WHERE key = ?", [key]).fetchone()
            if row is None or row[0] == taker or self.postgres or not holder_is_dead(row[0]):
                return False
            self.db.execute("UPDATE slack_deliveries SET taken_by = ?, taken_at = ? WHERE key = ?", [taker, ts(now), key])
            return True

    # --- operations ---------------------------------------------------------

    def _insert_operation(self, request_id: int, operation: dict[str, Any], now: datetime) -> None:
        self.db.execute(
            "INSERT INTO operations (request_id, provider, kind, phase, ref, next_poll_at, attempts, lease_owner, "
            "lease_until, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)",
            [
                request_id,
                operation["provider"],
                operation["kind"],
                operation.get("phase", "intent"),
                json.dumps(operation.get("ref", {})),
                ts(now),
                operation.get("lease_owner"),
                ts(operation["lease_until"]) if operation.get("lease_until") else None,
                ts(now),
                ts(now),
            ],
        )

    def get_operation(self, request_id: int, kind: str | None = None) -> Operation | None:
        sql, args = "SELECT * FROM operations WHERE request_id = ?", [request_id]
        if kind:
            sql += " AND kind = ?"
            args.append(kind)
        rows = list(self.db.query(sql + " ORDER BY id DESC LIMIT 1", args))
        return Operation.from_row(rows[0]) if rows else None

    def open_operations(self) -> list[Operation]:
        # Ordered by the partial index operations_open, so finished operations are never read.
        return [
            Operation.from_row(r)
            for r in self.db.query("SELECT * FROM operations WHERE phase != 'done' ORDER BY next_poll_at")
        ]

    def claim_operation(self, op_id: int, owner: str, lease_seconds: float) -> Operation | None:
        """Take the lease on an operation for one drive, or return None.

        Free means: nobody holds it, the lease ran out, or (on SQLite, one host) its holder's
        process is gone. A lease is never free to its own holder's name a second time: ``owner``
        names one drive (``drive_identity``), and a second drive, even in the same process, must wait.

        On PostgreSQL the row is read ``FOR UPDATE SKIP LOCKED``: of two replicas claiming at once
        one reads it and the other is told None at once; the pid check is not made, since a
        replica on another host (or in another container with the same name) cannot see the
        holder's processes: a lease there ends by its expiry, which the holder's heartbeat pushes on."""
        now = self.clock()
        with self.atomic():
            lock = " FOR UPDATE SKIP LOCKED" if self.postgres else ""
            rows = list(self.db.query(f"SELECT * FROM operations WHERE id = ? AND phase != 'done'{lock}", [op_id]))
            if not rows:
                return None
            op = Operation.from_row(rows[0])
            free = (
                op.lease_owner is None
                or (op.lease_until is not None and op.lease_until <= now)
                or (not self.postgres and holder_is_dead(op.lease_owner))
            )
            if not free:
                return None
            self.db.execute(
                "UPDATE operations SET lease_owner = ?, lease_until = ?, updated_at = ? WHERE id = ?",
                [owner, ts(now + timedelta(seconds=lease_seconds)), ts(now), op_id],
            )
        return self.get_operation_by_id(op_id)

    def renew_lease(self, op_id: int, owner: str, lease_seconds: float) -> bool:
        """Extend a lease we hold (the drive's heartbeat); False once it is no longer ours."""
        now = self.clock()
        with self.atomic():
            cursor = self.db.execute(
                "UPDATE operations SET lease_until = ? WHERE id = ? AND lease_owner = ? AND phase != 'done'",
                [ts(now + timedelta(seconds=lease_seconds)), op_id, owner],
            )
            return cursor.rowcount == 1

    def replicas_holding_leases(self) -> list[str]:
        """The processes (``host:pid``) that hold an operation's lease now: the replicas at work."""
        owners = self.db.execute(
            "SELECT DISTINCT lease_owner FROM operations WHERE phase != 'done' AND lease_owner IS NOT NULL "
            "AND lease_until > ?",
            [ts(self.clock())],
        ).fetchall()
        return sorted({owner.rsplit(":", 1)[0] if owner.count(":") >= 2 else owner for (owner,) in owners})

    def get_operation_by_id(self, op_id: int) -> Operation | None:
        rows = list(self.db.query("SELECT * FROM operations WHERE id = ?", [op_id]))
        return Operation.from_row(rows[0]) if rows else None

    def update_operation(self, op_id: int, owner: str, **changes: Any) -> bool:
        """Change an operation we hold the lease on; False if someone else took it."""
        sets = {"updated_at": ts(self.clock()), **self._encode(changes)}
        with self.atomic():
            cursor = self.db.execute(
                f"UPDATE operations SET {', '.join(f'{k} = ?' for k in sets)} WHERE id = ? AND lease_owner = ?",
                [*sets.values(), op_id, owner],
            )
            return cursor.rowcount == 1
