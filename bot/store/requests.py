"""Requests, the offers they are made from, and their audit events: every state move commits here.

A move is compare-and-set (``transition``): the request changes only from the state the caller
saw, with its event, and with whatever must commit with it (the operation row that records the
intent to call a provider, the inventory, the outbox notice) in the same transaction.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Callable, Iterator

from bot.domain.errors import OfferTaken
from bot.domain.values import ts
from bot.domain.offers import Offer
from bot.domain.requests import Event, NumberRequest
from bot.domain.states import COMMITTED, HOLDS_OFFER, State, check_move
from bot.store import outbox
from bot.store.codec import encode_changes, new_request_row
from bot.store.connection import Connection
from bot.store import operations
from bot.store.outbox import Notice

__all__ = ["Requests"]


def _marks(values: list[Any] | tuple[Any, ...] | set[Any] | frozenset[Any]) -> str:
    return ", ".join("?" for _ in values)


class Requests(Connection):
    """Offers, requests and events (see the module's docstring)."""

    # --- offers -------------------------------------------------------------

    def save_offers(self, offers: list[Offer], *, actor: str, message: str, data: dict[str, Any]) -> None:
        with self.atomic():
            for offer in offers:
                self.db["offers"].insert(offer.to_row())
            self._event(None, actor, "searched", message, data)

    def get_offer(self, offer_id: str) -> Offer | None:
        rows = list(self.db.query("SELECT * FROM offers WHERE id = ?", [offer_id]))
        return Offer.from_row(rows[0]) if rows else None

    # --- requests -------------------------------------------------------------

    def create_request(
        self, fields: dict[str, Any], *, actor: str, message: str, data: dict[str, Any], notify: Notice | None = None
    ) -> NumberRequest:
        row = new_request_row(fields, self.clock())
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
                f"INSERT INTO requests ({', '.join(row)}) VALUES ({_marks(list(row))})", list(row.values())
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
            f"SELECT id FROM requests WHERE offer_id = ? AND state IN ({_marks(HOLDS_OFFER)}) ORDER BY id LIMIT 1",
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
        also: Callable[[Any], None] | None = None,
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
        sets = {"state": to.value, "updated_at": ts(now), **encode_changes(changes or {})}
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
                operations.insert_operation(self, request_id, operation, now)
            if finish_operation is not None:
                operations.finish_operation(self, finish_operation, now)
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
        sets = {"updated_at": ts(self.clock()), **encode_changes(changes)}
        where = ["id = ?"]
        args: list[Any] = [request_id]
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

    # --- reads ------------------------------------------------------------------

    def list_requests(
        self,
        *,
        requester: str | None = None,
        states: list[State] | None = None,
        limit: int = 20,
        oldest_first: bool = False,
    ) -> list[NumberRequest]:
        where: list[str] = []
        args: list[Any] = []
        if requester is not None:
            where.append("requester = ?")
            args.append(requester)
        if states:
            where.append(f"state IN ({_marks(states)})")
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
        if self._in_write_transaction():
            self._lock("budget")
        start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        total = Decimal("0")
        rows = self.db.execute(
            f"SELECT unit_monthly_cost, quantity FROM requests WHERE decided_at >= ? AND kind != 'release' "
            f"AND state IN ({_marks(COMMITTED)})",
            [ts(start), *[s.value for s in COMMITTED]],
        )
        for unit, qty in rows:
            if unit is not None:
                total += Decimal(unit) * qty
        return total

    def due_for_expiry(self, now: datetime) -> list[NumberRequest]:
        return self._requests(
            "SELECT * FROM requests WHERE state = 'pending' AND expires_at <= ? ORDER BY id", [ts(now)]
        )

    def due_for_reminder(self, created_before: datetime) -> list[NumberRequest]:
        return self._requests(
            "SELECT * FROM requests WHERE state = 'pending' AND reminded_at IS NULL AND created_at <= ? ORDER BY id",
            [ts(created_before)],
        )

    def approved_without_operation(self) -> list[NumberRequest]:
        """Approved requests nobody has started to fulfil (e.g. a crash right after approval)."""
        return self._requests("SELECT * FROM requests WHERE state = 'approved' ORDER BY id", [])

    def _requests(self, sql: str, args: list[Any]) -> list[NumberRequest]:
        return [NumberRequest.from_row(r) for r in self.db.query(sql, args)]

    # --- events (the audit log) ------------------------------------------------------

    def events_for(self, request_id: int) -> list[Event]:
        return [
            Event.from_row(r) for r in self.db.query("SELECT * FROM events WHERE request_id = ? ORDER BY id", [request_id])
        ]

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

