"""The hand-over from the ack process to the work process: a small SQLite file of verified requests.

The ack process (``bot.front``) writes each verified Slack request it will answer ``200`` to here
*before* it answers; the work process (``bot.workproc``) reads the rows in order, runs each through
the Bolt app, and deletes a row once its listener has run. A row therefore outlives a crash of
either process: the work process replays what it finds when it starts.

It is never the main store: its own file (WAL, ``synchronous=OFF``, which loses nothing when a
*process* dies, only when the machine does), touched by one front and its work process only, so
another process holding the main store's write lock cannot stall an ack. One insert is a few tens
of microseconds (README, "Acks"), so the front writes on its event loop.

Several ``serve`` processes may share a directory (replicas of one PostgreSQL store on one host):
each takes the first *slot* (``numbers.inbox.db``, ``numbers.inbox-1.db``, ...) whose lock file no
live process holds (``claim_slot``), so no two work processes ever drain one inbox, and a
restarted process takes the slot a crashed one left, with its rows.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.config import Settings

__all__ = ["Inbox", "InboxRow", "SLOTS", "claim_slot", "default_inbox_path"]

SLOTS = 32
BUSY_TIMEOUT_MS = 2000  # the work process's delete holds the file's write lock for microseconds

_SCHEMA = """
CREATE TABLE IF NOT EXISTS inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received REAL NOT NULL,
    headers TEXT NOT NULL,
    body BLOB NOT NULL
)
"""


@dataclass(frozen=True)
class InboxRow:
    id: int
    received: float  # epoch seconds when the front took it
    headers: dict[str, str]
    body: bytes


def default_inbox_path(settings: Settings) -> Path:
    """``NUMBERS_INBOX``; else next to the SQLite store (``numbers.db`` -> ``numbers.inbox.db``), else here."""
    if settings.inbox_path:
        return Path(settings.inbox_path)
    if settings.uses_postgres or settings.db_path == ":memory:":
        return Path("numbers.inbox.db")
    return Path(settings.db_path).with_suffix(".inbox.db")


def claim_slot(base: Path, slots: int = SLOTS) -> tuple[Path, int]:
    """The first inbox slot under ``base`` no live process holds, and the open descriptor of its lock.

    The lock is ``flock``: it ends when every process holding the descriptor ends, so a child given
    the descriptor keeps the slot for as long as it lives too."""
    for n in range(slots):
        path = base if n == 0 else base.with_name(f"{base.stem}-{n}{base.suffix}")
        fd = os.open(f"{path}.lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        return path, fd
    raise RuntimeError(f"all {slots} inbox slots next to {base} are held by running processes")


class Inbox:
    """One inbox file: ``put`` (the front), ``after`` and ``delete`` (the work process)."""

    def __init__(self, path: Path | str, *, checkpoints: bool = True):
        """``checkpoints=False`` for the front: its inserts never copy the WAL back into the file (a
        checkpoint took up to 8 ms in an insert); the work process's connection does that after its deletes."""
        self.path = str(path)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=OFF")
        if not checkpoints:
            self._db.execute("PRAGMA wal_autocheckpoint=0")
        self._db.execute(_SCHEMA)

    def put(self, body: bytes, headers: dict[str, str], received: float | None = None) -> int:
        """Record one verified request; returns its row id. Raises ``sqlite3.Error`` when it cannot."""
        cursor = self._db.execute(
            "INSERT INTO inbox (received, headers, body) VALUES (?, ?, ?)",
            (time.time() if received is None else received, json.dumps(headers), body),
        )
        return int(cursor.lastrowid or 0)

    def after(self, last_id: int, limit: int = 200) -> list[InboxRow]:
        """Rows with an id above ``last_id``, oldest first."""
        rows = self._db.execute(
            "SELECT id, received, headers, body FROM inbox WHERE id > ? ORDER BY id LIMIT ?", (last_id, limit)
        ).fetchall()
        return [InboxRow(r[0], r[1], _headers(r[2]), bytes(r[3])) for r in rows]

    def delete(self, row_id: int) -> None:
        self._db.execute("DELETE FROM inbox WHERE id = ?", (row_id,))

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM inbox").fetchone()[0])

    def close(self) -> None:
        self._db.close()


def _headers(text: str) -> dict[str, str]:
    try:
        value: Any = json.loads(text)
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}
