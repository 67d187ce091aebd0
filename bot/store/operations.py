"""Operations in flight at a provider, the leases that let one drive at a time work on one, and
the claims on Slack deliveries (the same idea: one taker per key, taken over when its holder died).

An operation row is the intent to call a provider, written in the same transaction as the
request's move (``insert_operation``, called by ``Requests.transition``); its ``phase`` and
``ref`` then follow what the provider said, changed only by the lease's holder.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from bot.domain.values import ts
from bot.domain.requests import Operation
from bot.store.codec import encode_changes
from bot.store.connection import Connection, holder_is_dead

__all__ = ["Operations", "finish_operation", "insert_operation"]


def insert_operation(conn: Connection, request_id: int, operation: dict[str, Any], now: datetime) -> None:
    """The operation row of a request's move (inside that move's transaction)."""
    conn.db.execute(
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


def finish_operation(conn: Connection, op_id: int, now: datetime) -> None:
    """Mark an operation done and let its lease go (inside the request's final move)."""
    conn.db.execute(
        "UPDATE operations SET phase = 'done', lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE id = ?",
        [ts(now), op_id],
    )


class Operations(Connection):
    """Operations and their leases; Slack delivery claims."""

    def get_operation(self, request_id: int, kind: str | None = None) -> Operation | None:
        sql = "SELECT * FROM operations WHERE request_id = ?"
        args: list[Any] = [request_id]
        if kind:
            sql += " AND kind = ?"
            args.append(kind)
        rows = list(self.db.query(sql + " ORDER BY id DESC LIMIT 1", args))
        return Operation.from_row(rows[0]) if rows else None

    def get_operation_by_id(self, op_id: int) -> Operation | None:
        rows = list(self.db.query("SELECT * FROM operations WHERE id = ?", [op_id]))
        return Operation.from_row(rows[0]) if rows else None

    def open_operations(self) -> list[Operation]:
        # Ordered by the partial index operations_open, so finished operations are never read.
        return [
            Operation.from_row(r)
            for r in self.db.query("SELECT * FROM operations WHERE phase != 'done' ORDER BY next_poll_at")
        ]

    def update_operation(self, op_id: int, owner: str, **changes: Any) -> bool:
        """Change an operation we hold the lease on; False if someone else took it."""
        sets = {"updated_at": ts(self.clock()), **encode_changes(changes)}
        with self.atomic():
            cursor = self.db.execute(
                f"UPDATE operations SET {', '.join(f'{k} = ?' for k in sets)} WHERE id = ? AND lease_owner = ?",
                [*sets.values(), op_id, owner],
            )
            return bool(cursor.rowcount == 1)

    # --- leases ---------------------------------------------------------------------

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
            return bool(cursor.rowcount == 1)

    def replicas_holding_leases(self) -> list[str]:
        """The processes (``host:pid``) that hold an operation's lease now: the replicas at work."""
        owners = self.db.execute(
            "SELECT DISTINCT lease_owner FROM operations WHERE phase != 'done' AND lease_owner IS NOT NULL "
            "AND lease_until > ?",
            [ts(self.clock())],
        ).fetchall()
        return sorted({owner.rsplit(":", 1)[0] if owner.count(":") >= 2 else owner for (owner,) in owners})

    # --- Slack deliveries ---------------------------------------------------------------

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
