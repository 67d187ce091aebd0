"""One connection to the store, on SQLite or PostgreSQL: opening it, its transactions, its events.

Every state change commits together with its event. On SQLite (the default, one
file) writes start with ``BEGIN IMMEDIATE`` (``Connection.atomic``) so that two
processes on one file queue on the busy timeout instead of failing with
``database is locked`` when a read transaction tries to become a write.

On PostgreSQL (``postgresql://…``, for two or more replicas) the same SQL runs
through ``bot.store.postgres``; the differences are kept to a few places: a
compare-and-set ``UPDATE … WHERE state = ?`` is already safe under READ
COMMITTED (the second writer waits, re-reads the row and matches nothing), a
check-then-insert takes a transaction-scoped advisory lock on what it checks
(``_lock``), a claim reads its row ``FOR UPDATE SKIP LOCKED``, and a lease is
free only by its expiry (a pid means nothing on another host).

The store's parts (``requests``, ``operations``, ``inventory``) are written
against this class; ``bot.store.db.Store`` puts them together.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import sqlite3
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

import psycopg
import psycopg.errors
import sqlite_utils

from bot.domain.errors import StoreBusy
from bot.domain.values import ts
from bot.store.migrations import apply_migrations
from bot.store.postgres import PostgresDatabase, is_postgres_url

__all__ = [
    "Clock", "Connection", "DEFAULT_BUSY_TIMEOUT", "drive_identity", "holder_is_dead", "process_identity", "utcnow",
]

Clock = Callable[[], datetime]

DEFAULT_BUSY_TIMEOUT = 5.0  # seconds a write waits for another process's lock before StoreBusy

# PostgreSQL's answers to a lock waited for too long, or to two writers in each other's way.
_PG_BUSY = (psycopg.errors.LockNotAvailable, psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)


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


def _open_sqlite(path: str | None, busy_timeout: float) -> sqlite_utils.Database:
    # check_same_thread=False: ThreadedStore opens a connection per thread and closes them
    # all from the thread that shuts it down; one connection is never used by two at once.
    if path is None or path == ":memory:":
        return sqlite_utils.Database(sqlite3.connect(":memory:", check_same_thread=False))
    return sqlite_utils.Database(sqlite3.connect(path, timeout=busy_timeout, check_same_thread=False))


class Connection:
    """One connection to the store. Not for the event loop: ``ThreadedStore`` runs it on threads."""

    db: Any  # sqlite_utils.Database, or PostgresDatabase (the same calls)

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
            self.db = PostgresDatabase(str(path), lock_timeout=busy_timeout)
            try:
                apply_migrations(self.db)
            except BaseException:
                self.db.close()
                raise
            return
        self.engine = "sqlite"
        if db is None:
            db = _open_sqlite(path, busy_timeout)
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
    def atomic(self) -> Iterator[Any]:
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

    def _in_write_transaction(self) -> bool:
        """On PostgreSQL: is a transaction open on this connection now?"""
        return bool(self.postgres and self.db.conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS)

    def _insert_id(self, sql: str, args: list[Any]) -> int:
        if self.postgres:
            return int(self.db.execute(sql + " RETURNING id", args).fetchone()[0])
        return int(self.db.execute(sql, args).lastrowid)

    @contextlib.contextmanager
    def _waiting_at_most(self, seconds: float) -> Iterator[None]:
        """Wait for another writer's lock at most ``seconds`` here instead of ``busy_timeout``."""
        self._set_lock_wait(seconds)
        try:
            yield
        finally:
            self._set_lock_wait(self.busy_timeout)

    def _set_lock_wait(self, seconds: float) -> None:
        if self.postgres:
            self.db.execute(f"SET lock_timeout = {int(seconds * 1000)}")
        else:
            self.db.execute(f"PRAGMA busy_timeout={int(seconds * 1000)}")

    # --- events (the audit log) -----------------------------------------------

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
