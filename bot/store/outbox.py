"""The outbox: what Slack must show, kept in the store until Slack has it.

A state change that people must hear about passes a ``Notice`` to
``Store.transition``/``update_request``/``create_request``; the notice is
written to the ``outbox`` table in the same transaction as the change, with the
request as the change left it. Whoever commits the change, the server or the
CLI, the running server's ``OutboxSender`` delivers it: a change is never
committed without its notification, and a notification never exists for a
change that was rolled back.

Inspect it with ``sqlite3 numbers.db "SELECT id, request_id, what, attempts,
next_at, last_error FROM outbox WHERE delivered_at IS NULL"`` or ``numbers-bot
doctor`` (undelivered rows and the age of the oldest).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.domain.kinds import Change
from bot.domain.values import parse_ts, ts
from bot.domain.requests import NumberRequest
from bot.store.connection import Connection, holder_is_dead

__all__ = [
    "Notice", "OutboxItem", "enqueue", "pending_for", "due_requests", "delivered", "deferred", "backlog",
    "delivered_since", "claim", "release",
]


@dataclass(frozen=True)
class Notice:
    """What a change tells people: ``what`` (``created``, ``approved``…), who did it, and a note."""

    what: Change
    actor: str | None = None
    text: str | None = None


@dataclass
class OutboxItem:
    id: int
    request: NumberRequest
    what: Change
    actor: str | None
    text: str | None
    done: set[str] = field(default_factory=set)
    attempts: int = 0
    created_at: datetime | None = None
    next_at: datetime | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "OutboxItem":
        return cls(
            id=row["id"],
            request=NumberRequest.from_row(json.loads(row["snapshot"])),
            what=Change(row["what"]),
            actor=row["actor"],
            text=row["text"],
            done=set(json.loads(row["done"] or "[]")),
            attempts=row["attempts"],
            created_at=parse_ts(row["created_at"]),
            next_at=parse_ts(row["next_at"]),
        )


def enqueue(store: Connection, request_id: int, notice: Notice) -> int:
    """Write ``notice`` for ``request_id``; call inside the transaction of the change."""
    rows = list(store.db.query("SELECT * FROM requests WHERE id = ?", [request_id]))
    now = ts(store.clock())
    return store._insert_id(
        "INSERT INTO outbox (request_id, what, actor, text, snapshot, created_at, next_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [request_id, notice.what, notice.actor, notice.text, json.dumps(rows[0], default=str), now, now],
    )


def pending_for(store: Connection, request_id: int) -> list[OutboxItem]:
    """The request's undelivered notifications, oldest first (they are delivered in this order)."""
    rows = store.db.query(
        "SELECT * FROM outbox WHERE request_id = ? AND delivered_at IS NULL ORDER BY id", [request_id]
    )
    return [OutboxItem.from_row(r) for r in rows]


def due_requests(store: Connection, now: datetime, limit: int = 100) -> list[int]:
    """Requests whose oldest undelivered notification is due now."""
    rows = store.db.execute(
        "SELECT request_id, MIN(next_at) AS due FROM outbox WHERE delivered_at IS NULL "
        "GROUP BY request_id HAVING MIN(next_at) <= ? ORDER BY MIN(id) LIMIT ?",
        [ts(now), limit],
    ).fetchall()
    return [int(r[0]) for r in rows]


def delivered(store: Connection, item_id: int, done: set[str]) -> None:
    with store.atomic():
        store.db.execute(
            "UPDATE outbox SET delivered_at = ?, done = ?, last_error = NULL WHERE id = ?",
            [ts(store.clock()), json.dumps(sorted(done)), item_id],
        )


def deferred(store: Connection, item_id: int, done: set[str], error: str, delay: float) -> None:
    """Keep the parts delivered so far and try again after ``delay`` seconds."""
    with store.atomic():
        store.db.execute(
            "UPDATE outbox SET done = ?, attempts = attempts + 1, last_error = ?, next_at = ? WHERE id = ?",
            [json.dumps(sorted(done)), error[:200], ts(store.clock() + timedelta(seconds=delay)), item_id],
        )


def backlog(store: Connection) -> tuple[int, datetime | None, str | None]:
    """How many notifications wait, when the oldest was written, and the last error seen."""
    row = store.db.execute(
        "SELECT COUNT(*), MIN(created_at) FROM outbox WHERE delivered_at IS NULL"
    ).fetchone()
    error = store.db.execute(
        "SELECT last_error FROM outbox WHERE delivered_at IS NULL AND last_error IS NOT NULL ORDER BY id DESC LIMIT 1"
    ).fetchone()
    return int(row[0]), parse_ts(row[1]), (error[0] if error else None)


def delivered_since(store: Connection, item_ids: list[int]) -> bool:
    """True when every one of ``item_ids`` has been delivered."""
    if not item_ids:
        return True
    marks = ", ".join("?" for _ in item_ids)
    row = store.db.execute(
        f"SELECT COUNT(*) FROM outbox WHERE id IN ({marks}) AND delivered_at IS NULL", item_ids
    ).fetchone()
    return int(row[0]) == 0


def claim(store: Connection, request_id: int, owner: str, seconds: float) -> bool:
    """Lease the request's undelivered rows to ``owner`` (one delivering process at a time);
    False when another owner's lease is still running."""
    now = store.clock()
    with store.atomic():
        # PostgreSQL reads committed rows without locking them: two replicas must not both see
        # the rows free. (SQLite's BEGIN IMMEDIATE already lets one writer in at a time.)
        store._lock(f"outbox:{request_id}")
        held = store.db.execute(
            "SELECT lease_owner FROM outbox WHERE request_id = ? AND delivered_at IS NULL AND lease_owner IS NOT NULL "
            "AND lease_owner != ? AND lease_until > ? LIMIT 1",
            [request_id, owner, ts(now)],
        ).fetchone()
        if held and not holder_is_dead(held[0]):  # a process on this host that is gone holds nothing
            return False
        store.db.execute(
            "UPDATE outbox SET lease_owner = ?, lease_until = ? WHERE request_id = ? AND delivered_at IS NULL",
            [owner, ts(now + timedelta(seconds=seconds)), request_id],
        )
    return True


def release(store: Connection, request_id: int, owner: str) -> None:
    with store.atomic():
        store.db.execute(
            "UPDATE outbox SET lease_owner = NULL, lease_until = NULL WHERE request_id = ? AND lease_owner = ?",
            [request_id, owner],
        )
