"""What is wrong with a store file, in one line that names ``NUMBERS_DB``, instead of a traceback.

``open_store`` is how the bot, the CLI and ``doctor`` open the store: it looks at the file before
SQLite does (missing directory, a directory, unreadable, read-only, not SQLite at all, another
application's database, a schema newer than this code) and turns any SQLite error while opening
into ``ConfigError`` with one of those words. ``integrity`` is ``doctor``'s deeper look: SQLite's
``quick_check`` and the schema version against the migrations this code knows.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from bot.domain.errors import ConfigError
from bot.store.postgres import is_postgres_url
from bot.store.db import Store
from bot.store.migrations import MIGRATIONS, current_version

__all__ = [
    "SQLITE_HEADER", "integrity", "newest_known_version", "open_store", "problem_before_open",
]

SQLITE_HEADER = b"SQLite format 3\x00"


def newest_known_version() -> int:
    return max(MIGRATIONS)


def _fail(path: str, what: str) -> ConfigError:
    return ConfigError([f"NUMBERS_DB={path}: {what}"])


def problem_before_open(path: str) -> str | None:
    """What can be told about ``path`` without letting SQLite create or change anything."""
    if path == ":memory:" or is_postgres_url(path):
        return None  # a server's database: opening it says what is wrong
    file = Path(path)
    if file.is_dir():
        return "cannot open: it is a directory, not a file"
    folder = file.parent if str(file.parent) else Path(".")
    if not folder.is_dir():
        return f"cannot open: the directory {folder} does not exist"
    if not file.exists():
        if not os.access(folder, os.W_OK | os.X_OK):
            return f"read-only: cannot create the store in {folder}"
        return None
    if not os.access(file, os.R_OK):
        return "cannot open: permission denied (not readable by this user)"
    with open(file, "rb") as fh:
        head = fh.read(len(SQLITE_HEADER))
    if head and head != SQLITE_HEADER:
        return "not a numbers-bot store: the file is not an SQLite database"
    if not os.access(file, os.W_OK) or not os.access(folder, os.W_OK | os.X_OK):
        # WAL mode writes -wal and -shm files beside the store: the directory must be writable too.
        return "read-only: numbers-bot must write the file and its directory"
    return _schema_problem(path)


def _schema_problem(path: str) -> str | None:
    """A look through a read-only connection: whose database is this, and which schema version."""
    try:
        conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        return f"cannot open: {exc}"
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables:
            return None  # an empty file: a new store
        if "schema_migrations" not in tables:
            shown = ", ".join(sorted(tables)[:5])
            return f"not a numbers-bot store (its tables: {shown}); point NUMBERS_DB at another file"
        version = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] or 0
        if version > newest_known_version():
            return (
                f"schema v{version} is newer than this version of numbers-bot (it knows up to "
                f"v{newest_known_version()}); upgrade numbers-bot, or point NUMBERS_DB at another file"
            )
    except sqlite3.DatabaseError as exc:
        return f"corrupted: SQLite says {exc}"
    finally:
        conn.close()
    return None


def open_store(path: str, **options: Any) -> Store:
    """``Store(path)``, or ``ConfigError`` with one line naming ``NUMBERS_DB`` and what is wrong."""
    problem = problem_before_open(path)
    if problem:
        raise _fail(path, problem)
    try:
        return Store(path, **options)
    except sqlite3.DatabaseError as exc:
        text = str(exc)
        if "readonly" in text or "read-only" in text:
            raise _fail(path, f"read-only: SQLite says {text}") from None
        if "unable to open" in text:
            raise _fail(path, f"cannot open: SQLite says {text}") from None
        raise _fail(path, f"corrupted: SQLite says {text}") from None


def integrity(store: Store) -> tuple[bool, str]:
    """``PRAGMA quick_check`` and the schema version: (ok, what doctor says)."""
    try:
        rows = [row[0] for row in store.db.execute("PRAGMA quick_check(5)").fetchall()]
    except sqlite3.DatabaseError as exc:
        return False, f"corrupted: SQLite says {exc}"
    if rows != ["ok"]:
        return False, "corrupted: quick_check found " + "; ".join(str(r)[:120] for r in rows)
    version = current_version(store.db)
    if version != newest_known_version():
        return False, f"schema v{version}, but this version of numbers-bot expects v{newest_known_version()}"
    return True, f"quick_check ok, schema v{version}"
