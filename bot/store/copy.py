"""``numbers-bot store copy --to …``: an existing store, row for row, into an empty one.

The way from one SQLite file to PostgreSQL (or back): requests, their events, operations
in flight, offers and the inventory keep their ids, so audit exports, Slack cards and
operations still name the same rows. The target must be empty (nothing is merged or
overwritten); everything is written in one transaction, and the counts of the two stores
are compared before it commits.
"""

from __future__ import annotations

from typing import Any, Iterator

from bot.domain.errors import UsageError
from bot.store.db import Store
from bot.store.migrations import current_version
from bot.store.postgres import shown

__all__ = ["TABLES", "copy_store"]

# In an order the foreign keys accept: offers before requests, requests before what points at them.
TABLES = ("offers", "requests", "operations", "events", "numbers")
BATCH = 1000


def _rows(source: Store, table: str) -> Iterator[list[dict]]:
    last = None
    key = "id"
    while True:
        args: list[Any] = [] if last is None else [last]
        where = "" if last is None else f" WHERE {key} > ?"
        rows = list(source.db.query(f"SELECT * FROM {table}{where} ORDER BY {key} LIMIT ?", [*args, BATCH]))
        if not rows:
            return
        yield rows
        last = rows[-1][key]


def counts(store: Store) -> dict[str, int]:
    return {table: store.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] for table in TABLES}


def copy_store(source: Store, target: Store) -> dict[str, int]:
    """Copy every row of ``TABLES``; return the counts, which both stores then agree on."""
    if current_version(source.db) != current_version(target.db):
        raise UsageError(
            f"the stores are at schema v{current_version(source.db)} and v{current_version(target.db)}; "
            "open both with this version of numbers-bot first"
        )
    filled = {table: n for table, n in counts(target).items() if n}
    if filled:
        listed = ", ".join(f"{n} {table}" for table, n in filled.items())
        raise UsageError(f"{shown(str(target.path))} is not empty ({listed}); copy only into an empty store")
    with target.atomic():
        for table in TABLES:
            for rows in _rows(source, table):
                columns = list(rows[0])
                sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
                values = [[row[c] for c in columns] for row in rows]
                if target.postgres:
                    target.db.executemany(sql, values)  # pipelined: one round trip per batch, not per row
                else:
                    target.db.conn.executemany(sql, values)
            if target.postgres and table != "offers":
                # Rows came with their ids: the next id PostgreSQL gives must come after them.
                target.db.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"GREATEST((SELECT MAX(id) FROM {table}), 1), (SELECT MAX(id) FROM {table}) IS NOT NULL)"
                )
        copied, expected = counts(target), counts(source)
        if copied != expected:
            raise UsageError(
                f"the copy does not match the source ({copied} against {expected}); nothing was kept. "
                "Did the bot write to the source meanwhile? Stop it and copy again"
            )
    return copied
