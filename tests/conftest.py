"""Fixtures shared by the core tests: a store in memory, a clock tests can move, settings."""

from __future__ import annotations

import os

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.config import load_settings
from bot.store.db import Store

SHARED = Path(__file__).resolve().parents[2] / "shared"
SETTING_PREFIXES = ("NUMBERS_", "SLACK_", "ACS_", "PLIVO_", "WEBEX_", "TWILIO_", "TELNYX_", "DATABASE_URL")


def clean_env() -> dict[str, str]:
    """This process's environment without any of the bot's settings, for a child process under test."""
    return {k: v for k, v in os.environ.items() if not k.startswith(SETTING_PREFIXES)}


class MovableClock:
    """``clock()`` returns now plus whatever the test advanced."""

    def __init__(self, start: datetime | None = None):
        self.now = start or datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture(scope="session")
def pg_cluster():
    """A throwaway PostgreSQL server for the session (see tests/pg_cluster.py), or a skip saying why not."""
    from tests.pg_cluster import start_cluster

    cluster, reason = start_cluster()
    if cluster is None:
        pytest.skip(f"PostgreSQL tier skipped: {reason}")
    yield cluster
    cluster.stop()


@pytest.fixture
def pg_url(pg_cluster):
    """An empty database of its own on the test server."""
    url = pg_cluster.create_database()
    yield url
    pg_cluster.drop_database(url)


ENGINES = ["sqlite", "postgresql"]


@pytest.fixture(params=ENGINES)
def store_target(request, tmp_path) -> str:
    """Where a store lives, once per engine: a new SQLite file, or a new PostgreSQL database (empty)."""
    if request.param == "sqlite":
        return str(tmp_path / "numbers.db")
    return request.getfixturevalue("pg_url")


@pytest.fixture(params=ENGINES)
def fresh_store(request, clock) -> Store:
    """A store with the schema and nothing else, once per engine (SQLite in memory)."""
    if request.param == "sqlite":
        store = Store(":memory:", clock=clock)
        yield store
        store.close()
        return
    cluster = request.getfixturevalue("pg_cluster")
    url = cluster.create_database(migrated=True)
    store = Store(url, clock=clock)
    yield store
    store.close()
    cluster.drop_database(url)


@pytest.fixture
def settings_env(monkeypatch, tmp_path):
    """Settings with no provider credentials and a temporary store; nothing from the real environment."""
    for name in list(os.environ):
        if name.startswith(SETTING_PREFIXES):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env is read

    def make(**overrides):
        # The flow tests written for Plivo's number-group API keep it; tests of the current
        # phone-number API (the default) ask for PLIVO_API="numbers".
        base = {
            "NUMBERS_DB": str(tmp_path / "numbers.db"),
            "NUMBERS_APPROVERS": "UAPPROVER1,UAPPROVER2",
            "PLIVO_API": "groups",
        }
        base.update(overrides)
        return load_settings(**base)

    return make


# --- a whole bot without Slack: service + worker + sandbox providers ------------

from dataclasses import dataclass, field  # noqa: E402

from bot.bootstrap import Components, build  # noqa: E402
from bot.sandbox import SandboxServices  # noqa: E402
from bot.sandbox.common import Clock  # noqa: E402
from bot.services import StaticDirectory  # noqa: E402

REQUESTER, APPROVER, APPROVER2, OUTSIDER = "UREQUESTER", "UAPPROVER1", "UAPPROVER2", "UOUTSIDER"
EMAILS = {REQUESTER: "alice@example.com", APPROVER: "admin@example.com", OUTSIDER: "nobody@example.com"}


class RecordingNotifier:
    def __init__(self):
        self.seen: list[tuple[int, str, str | None]] = []

    async def notify(self, request, what, *, actor=None, text=None):
        self.seen.append((request.id, what, text))

    def whats(self, request_id):
        return [w for rid, w, _ in self.seen if rid == request_id]


@dataclass
class BotEnv:
    c: Components
    clock: Clock
    sandbox: SandboxServices
    notes: RecordingNotifier
    extra: dict = field(default_factory=dict)

    @property
    def svc(self):
        return self.c.service

    @property
    def store(self):
        return self.c.store

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    async def settle(self, request_id: int, timeout: float = 30.0):
        return await self.c.worker.drain(request_id, timeout=timeout)


async def no_wait(seconds: float) -> None:
    """Providers' back-off sleeps, recorded and skipped so fault tests run fast."""
    no_wait.waits.append(seconds)


no_wait.waits = []


def make_env(settings, *, sandbox=None, clock=None, notes=None, store=None, provider_options=None) -> BotEnv:
    clock = clock or Clock()
    if sandbox is None and settings.uses_sandbox:
        sandbox = SandboxServices.create(None, clock=clock)
    notes = notes or RecordingNotifier()
    c = build(
        settings,
        sandbox=sandbox,
        clock=clock.now,
        notifier=notes,
        directory=StaticDirectory(settings.approver_ids, EMAILS),
        store=store,
        provider_options=provider_options,
    )
    return BotEnv(c, clock, sandbox, notes)


@pytest.fixture
async def bot(settings_env):
    settings = settings_env(NUMBERS_SANDBOX=True, NUMBERS_POLL_INTERVAL=0.01)
    env = make_env(settings)
    yield env
    await env.c.aclose()


@pytest.fixture
async def bot_factory(settings_env):
    """``bot_factory(NUMBERS_REQUIRED_APPROVALS=2, ...)``: a bot with other settings."""
    made = []

    def factory(**overrides):
        settings = settings_env(**{"NUMBERS_SANDBOX": True, "NUMBERS_POLL_INTERVAL": 0.01, **overrides})
        env = make_env(settings)
        made.append(env)
        return env

    yield factory
    for env in made:
        await env.c.aclose()
