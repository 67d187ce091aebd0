"""PostgreSQL under the store: the few sqlite-utils calls the ``Store`` makes, on a psycopg connection.

The ``Store`` writes its SQL once, with ``?`` placeholders and TEXT columns (times as ISO
strings, money as decimal strings, JSON as text), so the rows read back are the same on
both engines. ``PostgresDatabase`` gives it ``execute``/``query``/``table_names`` and
``db[table].insert``/``.count`` over one connection borrowed from a pool shared by every
store of the process on that URL; a broken connection (a server restart, a failover) is
handed back and a fresh one taken before the next statement outside a transaction.
"""

from __future__ import annotations

import contextlib
import re
import threading
from typing import Any, Iterator, Sequence

import psycopg
import psycopg.conninfo
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

__all__ = ["PostgresDatabase", "is_postgres_url", "password_in", "shown", "to_pyformat", "MIGRATION_LOCK"]

# pg_advisory_lock key the migrations are applied under ("numbers" in ASCII): one replica migrates, the rest wait.
MIGRATION_LOCK = 0x6E756D62657273
CONNECT_TIMEOUT = 5  # seconds
POOL_SIZE = 24  # connections per URL per process: a ThreadedStore's threads, the origin store, the CLI


def is_postgres_url(target: str | None) -> bool:
    return bool(target) and str(target).startswith(("postgresql://", "postgres://"))


def password_in(url: str) -> str | None:
    try:
        password = psycopg.conninfo.conninfo_to_dict(url).get("password")
        return str(password) if password else None
    except psycopg.ProgrammingError:
        return None


def shown(target: str) -> str:
    """``target`` fit for a log line or ``doctor``: a URL's password replaced by ``***``."""
    if not is_postgres_url(target):
        return target
    shown = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", target)
    return re.sub(r"(password=)[^&]*", r"\1***", shown)


_translated: dict[str, str] = {}


def to_pyformat(sql: str) -> str:
    """``?`` placeholders to psycopg's ``%s`` (a literal ``%`` doubled); quoted text is left alone."""
    done = _translated.get(sql)
    if done is not None:
        return done
    out, quoted = [], False
    for ch in sql:
        if ch == "'":
            quoted = not quoted
        if ch == "%":
            out.append("%%")
        elif ch == "?" and not quoted:
            out.append("%s")
        else:
            out.append(ch)
    done = _translated[sql] = "".join(out)
    return done


class _SharedPools:
    """One ``ConnectionPool`` per URL, closed when the last store using it closes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pools: dict[str, tuple[ConnectionPool, int]] = {}

    def acquire(self, url: str) -> ConnectionPool:
        with self._lock:
            pool, users = self._pools.get(url, (None, 0))
            if pool is None:
                pool = ConnectionPool(
                    url,
                    min_size=1,
                    max_size=POOL_SIZE,
                    kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT},
                    timeout=CONNECT_TIMEOUT * 2,  # a server that cannot be reached is an error, soon
                    open=True,
                    name="numbers-store",
                )
            self._pools[url] = (pool, users + 1)
            return pool

    def release(self, url: str) -> None:
        with self._lock:
            pool, users = self._pools[url]
            if users > 1:
                self._pools[url] = (pool, users - 1)
                return
            del self._pools[url]
        pool.close()


POOLS = _SharedPools()


class _Table:
    def __init__(self, db: "PostgresDatabase", name: str):
        self.db, self.name = db, name

    def insert(self, row: dict[str, Any]) -> None:
        self.db.execute(
            f"INSERT INTO {self.name} ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})", list(row.values())
        )

    @property
    def count(self) -> int:
        row = self.db.execute(f"SELECT COUNT(*) FROM {self.name}").fetchone()
        return int(row[0]) if row else 0


class PostgresDatabase:
    """The subset of ``sqlite_utils.Database`` the store uses, on PostgreSQL."""

    engine = "postgresql"
    memory = False

    def __init__(self, url: str, *, lock_timeout: float):
        self.url = url
        self.lock_timeout = lock_timeout
        self._pool = POOLS.acquire(url)
        self._conn: psycopg.Connection | None = None
        try:
            self._conn = self._borrow()
        except BaseException:
            POOLS.release(url)
            raise

    def _borrow(self) -> psycopg.Connection:
        conn = self._pool.getconn()
        # A lock wait longer than this is StoreBusy, as SQLite's busy timeout is.
        conn.execute(f"SET lock_timeout = {int(self.lock_timeout * 1000)}")
        return conn

    @property
    def conn(self) -> psycopg.Connection:
        conn = self._conn
        if conn is None:
            raise psycopg.InterfaceError("the store is closed")
        if conn.broken:
            self._pool.putconn(conn)  # the pool discards a broken connection
            self._conn = conn = self._borrow()
        return conn

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> psycopg.Cursor:
        if params:
            return self.conn.execute(to_pyformat(sql), list(params))
        return self.conn.execute(sql)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self.conn.cursor() as cursor:
            cursor.executemany(to_pyformat(sql), [list(r) for r in rows])

    def query(self, sql: str, params: Sequence[Any] | None = None) -> Iterator[dict[str, Any]]:
        with self.conn.cursor(row_factory=dict_row) as cursor:
            cursor.execute(to_pyformat(sql) if params else sql, list(params) if params else None)
            rows = cursor.fetchall()
        yield from rows

    def __getitem__(self, name: str) -> _Table:
        return _Table(self, name)

    def table_names(self) -> list[str]:
        return [
            r[0] for r in self.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()").fetchall()
        ]

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """A transaction; nested ones are savepoints."""
        with self.conn.transaction():
            yield

    @contextlib.contextmanager
    def advisory_lock(self, key: int) -> Iterator[None]:
        """A session-wide lock every process on the database queues on (the migrations take it)."""
        self.execute("SET lock_timeout = 0")  # however long another replica takes to migrate
        try:
            self.execute("SELECT pg_advisory_lock(?)", [key])
        finally:
            self.execute(f"SET lock_timeout = {int(self.lock_timeout * 1000)}")
        try:
            yield
        finally:
            self.execute("SELECT pg_advisory_unlock(?)", [key])

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        self._pool.putconn(conn)
        POOLS.release(self.url)
