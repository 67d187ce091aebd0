"""Bad configuration fails closed and says why: no silent sandbox in ``serve``, no half-set provider
dropped without a word, no traceback for a bad store."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
import sys

import pytest

from bot.domain.errors import ConfigError
from bot.server import create_asgi_app
from bot.store.check import open_store
from bot.store.migrations import MIGRATIONS
from tests.conftest import clean_env
from tests.slack_harness import APPROVAL_CHANNEL, BOT_TOKEN, SIGNING_SECRET

SLACK = {
    "SLACK_BOT_TOKEN": BOT_TOKEN,
    "SLACK_SIGNING_SECRET": SIGNING_SECRET,
    "NUMBERS_APPROVAL_CHANNEL": APPROVAL_CHANNEL,
    "NUMBERS_APPROVERS": "UAPPROVER1",
}
PLIVO_ID = "MA" + "B" * 18
AS_ROOT = hasattr(__import__("os"), "geteuid") and __import__("os").geteuid() == 0


def run_cli(tmp_path, *args, **env_overrides):
    env = clean_env()
    env.update(NUMBERS_DB=str(tmp_path / "numbers.db"), NUMBERS_APPROVERS="UAPPROVER1", USER="UREQUESTER")
    env.update({k: str(v) for k, v in env_overrides.items()})
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)


# --- serve never runs on simulated providers by accident -------------------------------------------


def test_serve_refuses_to_start_without_providers(settings_env):
    with pytest.raises(ConfigError) as caught:
        create_asgi_app(settings_env(**SLACK))
    [problem] = caught.value.problems
    assert problem.startswith("no provider is configured") and "NUMBERS_SANDBOX=1" in problem


def test_serve_starts_on_the_sandbox_only_when_asked(settings_env):
    app, components = create_asgi_app(settings_env(**SLACK, NUMBERS_SANDBOX=True))
    try:
        assert components.sandbox is not None
    finally:
        asyncio.run(components.aclose())


def test_serve_from_the_command_line_says_why_it_does_not_start(tmp_path):
    proc = run_cli(tmp_path, "serve", **SLACK, PORT=1)  # would fail to bind: it must stop before that
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[:2] == [
        "numbers-bot cannot start:",
        "  no provider is configured: set ACS_CONNECTION_STRING, PLIVO_AUTH_ID and PLIVO_AUTH_TOKEN, "
        "WEBEX_ACCESS_TOKEN, TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN, or TELNYX_API_KEY; "
        "or set NUMBERS_SANDBOX=1 to run on simulated providers (nothing is bought)",
    ]
    assert "Traceback" not in proc.stderr


# --- a provider set only in part stops start-up, naming what is missing -----------------------------

HALF_SET = [
    ({"PLIVO_AUTH_ID": PLIVO_ID}, "PLIVO_AUTH_TOKEN is not set, but PLIVO_AUTH_ID is"),
    ({"PLIVO_AUTH_TOKEN": "plivo-token-0123456789"}, "PLIVO_AUTH_ID is not set, but PLIVO_AUTH_TOKEN is"),
    ({"PLIVO_APP_ID": "12345"}, "PLIVO_AUTH_ID and PLIVO_AUTH_TOKEN are not set, but PLIVO_APP_ID is"),
    ({"WEBEX_ORG_ID": "Y2lzY29zcGFyazovL3VzL09SR0FOSVpBVElPTi8x"}, "WEBEX_ACCESS_TOKEN is not set, but WEBEX_ORG_ID is"),
    ({"WEBEX_LOCATION_ID": "loc1"}, "WEBEX_ACCESS_TOKEN is not set, but WEBEX_LOCATION_ID is"),
    # A complete provider beside a half-set one: the half-set one is still not dropped silently.
    ({"ACS_CONNECTION_STRING": "endpoint=https://x.communication.azure.com/;accesskey=a2V5", "PLIVO_AUTH_ID": PLIVO_ID}, "PLIVO_AUTH_TOKEN is not set"),
    # Asking for the sandbox does not hide it either.
    ({"NUMBERS_SANDBOX": True, "PLIVO_AUTH_ID": PLIVO_ID}, "PLIVO_AUTH_TOKEN is not set"),
]


@pytest.mark.parametrize("env, words", HALF_SET, ids=[", ".join(e) for e, _ in HALF_SET])
def test_half_set_provider_settings_stop_start_up(settings_env, env, words):
    with pytest.raises(ConfigError) as caught:
        create_asgi_app(settings_env(**SLACK, **env))
    assert len(caught.value.problems) == 1 and words in caught.value.problems[0]


@pytest.mark.parametrize("env, words", HALF_SET[:2], ids=["plivo id only", "plivo token only"])
def test_half_set_provider_settings_stop_the_cli_and_doctor_reports_them(tmp_path, env, words):
    proc = run_cli(tmp_path, "search", "US", "tollfree", **env)
    assert proc.returncode == 2 and words in proc.stderr and "Traceback" not in proc.stderr
    doctor = run_cli(tmp_path, "doctor", **env)
    assert doctor.returncode == 1
    assert any(line.startswith("FAILED  providers:") and words in line for line in doctor.stdout.splitlines()), doctor.stdout


def test_the_cli_keeps_the_sandbox_and_says_so_once(tmp_path):
    proc = run_cli(tmp_path, "mine")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("sandbox — nothing is bought") == 1


# --- a bad store is one line naming NUMBERS_DB -------------------------------------------------------


def make_store(path) -> None:
    store = open_store(str(path))
    store.db.execute("CREATE TABLE IF NOT EXISTS filler (x TEXT)")
    for i in range(400):
        store.db.execute("INSERT INTO filler VALUES (?)", ["x" * 200 + str(i)])
    store.db.conn.commit()
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()


def bad_directory(tmp_path):
    (tmp_path / "numbers.db").mkdir()


def missing_directory(tmp_path):
    return str(tmp_path / "nowhere" / "numbers.db")


def text_file(tmp_path):
    (tmp_path / "numbers.db").write_text("name,number\nalice,+14155550100\n")


def another_apps_database(tmp_path):
    conn = sqlite3.connect(tmp_path / "numbers.db")
    conn.execute("CREATE TABLE contacts (name TEXT, phone TEXT)")
    conn.commit()
    conn.close()


def future_schema(tmp_path):
    make_store(tmp_path / "numbers.db")
    conn = sqlite3.connect(tmp_path / "numbers.db")
    conn.execute("INSERT INTO schema_migrations VALUES (?, '2030-01-01')", [max(MIGRATIONS) + 3])
    conn.commit()
    conn.close()


def truncated(tmp_path):
    make_store(tmp_path / "numbers.db")
    data = (tmp_path / "numbers.db").read_bytes()
    (tmp_path / "numbers.db").write_bytes(data[: len(data) // 3])


def read_only_file(tmp_path):
    make_store(tmp_path / "numbers.db")
    (tmp_path / "numbers.db").chmod(0o444)


def unreadable_file(tmp_path):
    make_store(tmp_path / "numbers.db")
    (tmp_path / "numbers.db").chmod(0o000)


BAD_STORES = [
    (bad_directory, "cannot open: it is a directory"),
    (missing_directory, "cannot open: the directory"),
    (text_file, "not a numbers-bot store: the file is not an SQLite database"),
    (another_apps_database, "not a numbers-bot store (its tables: contacts)"),
    (future_schema, f"schema v{max(MIGRATIONS) + 3} is newer than this version of numbers-bot"),
    (truncated, "corrupted"),
    pytest.param(read_only_file, "read-only", marks=pytest.mark.skipif(AS_ROOT, reason="root ignores file permissions")),
    pytest.param(unreadable_file, "cannot open: permission denied", marks=pytest.mark.skipif(AS_ROOT, reason="root ignores file permissions")),
]


@pytest.mark.parametrize("spoil, words", BAD_STORES)
def test_a_bad_store_is_one_line_naming_numbers_db(tmp_path, spoil, words):
    path = spoil(tmp_path) or str(tmp_path / "numbers.db")
    with pytest.raises(ConfigError) as caught:
        open_store(path)
    [line] = caught.value.problems
    assert line.startswith(f"NUMBERS_DB={path}: ") and words in line, line
    proc = run_cli(tmp_path, "mine", NUMBERS_DB=path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"  NUMBERS_DB={path}: " in proc.stderr and words in proc.stderr
    doctor = run_cli(tmp_path, "doctor", "--json", NUMBERS_DB=path)
    import json

    [store_check] = [c for c in json.loads(doctor.stdout)["checks"] if c["name"] == "store"]
    assert store_check["ok"] is False and words in store_check["detail"]


def test_doctor_finds_a_corrupted_page_that_opening_does_not(tmp_path):
    path = tmp_path / "numbers.db"
    make_store(path)
    data = bytearray(path.read_bytes())
    page = sqlite3.connect(path).execute("PRAGMA page_size").fetchone()[0]
    # Scribble over the filler table's pages (the last ones written), leaving the schema page intact.
    for start in range(len(data) - 8 * page, len(data), page):
        for offset in range(start + 8, start + 600):
            data[offset] = 0x5A
    path.write_bytes(bytes(data))
    open_store(str(path)).close()  # opening reads only the schema: it cannot see the damage
    doctor = run_cli(tmp_path, "doctor", NUMBERS_DB=str(path))
    line = next(line for line in doctor.stdout.splitlines() if line.split()[1:2] == ["store:"])
    assert line.startswith("FAILED  store:") and "corrupted: quick_check found" in line, doctor.stdout


def test_doctor_passes_a_healthy_store(tmp_path):
    path = tmp_path / "numbers.db"
    make_store(path)
    shutil.copy(path, tmp_path / "copy.db")
    doctor = run_cli(tmp_path, "doctor", NUMBERS_DB=str(tmp_path / "copy.db"), NUMBERS_SANDBOX=1)
    assert f"ok      store: sqlite {tmp_path / 'copy.db'}: quick_check ok, schema v{max(MIGRATIONS)}" in doctor.stdout


def test_serve_with_a_token_slack_refuses_says_so_in_one_line(tmp_path):
    """auth.test before the port is bound: a revoked or mistyped token is one line, not a uvicorn traceback."""
    import asyncio as aio

    from tests.slack_harness import RecordingSlack

    async def run() -> subprocess.CompletedProcess:
        slack = await RecordingSlack(token="xoxb-the-right-one").start()
        try:
            return await aio.to_thread(
                run_cli, tmp_path, "serve", **SLACK, SLACK_API_URL=slack.api_url, NUMBERS_SANDBOX=1, PORT=1
            )
        finally:
            await slack.stop()

    proc = aio.run(run())
    assert proc.returncode == 2, proc.stderr
    assert "  SLACK_BOT_TOKEN: Slack's auth.test said invalid_auth; the bot cannot tell its workspace" in proc.stderr
    assert "Traceback" not in proc.stderr and BOT_TOKEN not in proc.stderr
