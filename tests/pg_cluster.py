"""A throwaway PostgreSQL server for the tests: ``initdb`` + ``pg_ctl`` on 127.0.0.1, one database per test.

``NUMBERS_TEST_POSTGRES=postgresql://…`` uses a server you already run instead (each test still
gets a database of its own). Without either, the PostgreSQL tier is skipped and says why.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg

__all__ = ["PostgresCluster", "find_server_binaries", "start_cluster"]


def find_server_binaries() -> Path | None:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres`` (Debian keeps them off PATH)."""
    on_path = shutil.which("initdb")
    candidates = [str(Path(on_path).resolve().parent)] if on_path else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for candidate in candidates:
        if all((Path(candidate) / name).exists() for name in ("initdb", "pg_ctl", "postgres")):
            return Path(candidate)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresCluster:
    def __init__(self, admin_url: str, stop=None):
        self.admin_url = admin_url
        self._stop = stop
        self._template: str | None = None

    def url_of(self, name: str) -> str:
        return self.admin_url.rsplit("/", 1)[0] + "/" + name

    def create_database(self, *, migrated: bool = False) -> str:
        """A new database, empty or (copied from a template, which is fast) with the schema; its URL."""
        name = f"t_{secrets.token_hex(6)}"
        template = ""
        if migrated:
            template = f" TEMPLATE {self._migrated_template()}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}{template}")
        return self.url_of(name)

    def _migrated_template(self) -> str:
        if self._template is None:
            from bot.store.db import Store

            name = f"template_{secrets.token_hex(6)}"
            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {name}")
            Store(self.url_of(name)).close()  # closes the pool too: a template must have no connections
            self._template = name
        return self._template

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        if self._stop is not None:
            self._stop()


def _as_server_user(argv: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root (CI's user): run them as an unprivileged one.
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "nobody", "--", *argv]


def start_cluster() -> tuple[PostgresCluster | None, str]:
    """A running cluster, or None and the reason there is none."""
    existing = os.environ.get("NUMBERS_TEST_POSTGRES")
    if existing:
        return PostgresCluster(existing), ""
    bindir = find_server_binaries()
    if bindir is None:
        return None, "no PostgreSQL server binaries (initdb, pg_ctl) here; install Debian's postgresql package"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return None, "running as root without runuser, and initdb refuses root"
    home = Path(tempfile.mkdtemp(prefix="numbers-pg-"))
    os.chmod(home, 0o755)
    if os.geteuid() == 0:
        shutil.chown(home, "nobody")
    data, port = home / "data", _free_port()
    run = dict(capture_output=True, text=True, timeout=120)
    init = subprocess.run(
        _as_server_user([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"]),
        **run,
    )
    if init.returncode != 0:
        shutil.rmtree(home, ignore_errors=True)
        return None, f"initdb failed: {init.stderr.strip()[-300:]}"
    options = f"-h 127.0.0.1 -p {port} -k {home} -c fsync=off -c synchronous_commit=off -c max_connections=300"
    start = subprocess.run(
        _as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(home / "log"), "-o", options, "-w", "start"]),
        **run,
    )
    if start.returncode != 0:
        log = (home / "log").read_text() if (home / "log").exists() else start.stderr
        shutil.rmtree(home, ignore_errors=True)
        return None, f"pg_ctl start failed: {log.strip()[-300:]}"

    def stop() -> None:
        subprocess.run(_as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]), **run)
        shutil.rmtree(home, ignore_errors=True)

    return PostgresCluster(f"postgresql://postgres@127.0.0.1:{port}/postgres", stop), ""
