"""The inventory: the numbers obtained through the bot, who asked for them, and their release.

A fulfilled request adds its numbers (``record_numbers``) and a fulfilled release marks one
released (``mark_released``), both inside the request's final ``transition``, so the inventory
never disagrees with the requests.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from bot.domain.values import ts
from bot.domain.requests import HeldNumber, NumberRequest
from bot.store.codec import held_number_values
from bot.store.connection import Connection

__all__ = ["HELD_COLUMNS", "Inventory", "SUFFIX_DIGITS"]

HELD_COLUMNS = (
    "number", "provider", "kind", "request_id", "requester", "justification", "approved_by", "acquired_at",
    "unit_monthly_cost", "currency", "ref",
)
# How many trailing digits ``held_numbers_ending`` compares: every written form of a number (national,
# with a trunk prefix, international without the +) ends with the same subscriber digits.
SUFFIX_DIGITS = 4


class Inventory(Connection):
    """Held numbers (see the module's docstring)."""

    def record_numbers(self, request: NumberRequest, numbers: list[str]) -> None:
        """Add what a fulfilled request obtained to the inventory (call inside its transition)."""
        now = self.clock()
        sql = f"INSERT INTO numbers ({', '.join(HELD_COLUMNS)}) VALUES ({', '.join('?' for _ in HELD_COLUMNS)})"
        for number in numbers:
            self.db.execute(sql, held_number_values(request, number, now))

    def mark_released(self, number_id: int, release_request_id: int) -> None:
        self.db.execute(
            "UPDATE numbers SET state = 'released', release_request_id = ?, released_at = ? WHERE id = ?",
            [release_request_id, ts(self.clock()), number_id],
        )

    def held_numbers(self, *, requester: str | None = None, state: str = "active", limit: int = 1000) -> list[HeldNumber]:
        sql = "SELECT * FROM numbers WHERE state = ?"
        args: list[Any] = [state]
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

    def held_numbers_ending(self, typed: str, *, limit: int = 100) -> list[str]:
        """The distinct active numbers (E.164) that end with the last digits of ``typed``.

        What a number typed without its country code can be: the countries to read it in are
        those of these numbers, so a release reads a handful of rows, not the whole inventory."""
        digits = re.sub(r"[^0-9]", "", typed or "")
        if not digits:
            return []
        rows = self.db.execute(
            "SELECT DISTINCT number FROM numbers WHERE state = 'active' AND number LIKE ? ORDER BY number LIMIT ?",
            ["%" + digits[-SUFFIX_DIGITS:], limit],
        ).fetchall()
        return [row[0] for row in rows]

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
