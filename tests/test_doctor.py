"""`numbers-bot doctor`: one line per check, ok or failed and why, secrets masked."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import clean_env
from tests.test_sandbox_server import free_port


def doctor(tmp_path, **env_overrides):
    env = clean_env()
    env.update({"NUMBERS_DB": str(tmp_path / "n.db"), **env_overrides})
    if env["NUMBERS_DB"] == "":
        del env["NUMBERS_DB"]
    return subprocess.run([sys.executable, "-m", "bot.cli", "doctor"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)


def test_doctor_reports_each_check(tmp_path):
    proc = doctor(tmp_path, NUMBERS_SANDBOX="1")
    lines = proc.stdout.splitlines()
    assert proc.returncode == 1
    assert any(line.startswith("FAILED  settings:") and "SLACK_BOT_TOKEN is not set" in line for line in lines)
    assert any(line.startswith("FAILED  slack:") for line in lines)
    for name in ("providers", "acs (sandbox)", "plivo (sandbox)", "webex (sandbox)", "store"):
        assert any(line.startswith(f"ok      {name}:") for line in lines), (name, proc.stdout)
    assert "nothing is bought" in proc.stdout


def test_doctor_without_providers_says_serve_will_not_start(tmp_path):
    proc = doctor(tmp_path)
    assert proc.returncode == 1
    assert "FAILED  providers: none configured, so `serve` will not start" in proc.stdout
    assert "(sandbox)" not in proc.stdout


def test_doctor_masks_secrets(tmp_path):
    secret_bot = "xoxb-1234567890-very-secret-token"
    secret_plivo = "plivo-token-very-secret-0123456789"
    proc = doctor(
        tmp_path,
        SLACK_BOT_TOKEN=secret_bot,
        SLACK_SIGNING_SECRET="signing-secret-value-0123",
        SLACK_API_URL=f"http://127.0.0.1:{free_port()}/api/",  # nothing listens there
        NUMBERS_APPROVAL_CHANNEL="C0APPROVALS",
        NUMBERS_APPROVERS="U012ABC",
        PLIVO_AUTH_ID="MA" + "B" * 18,
        PLIVO_AUTH_TOKEN=secret_plivo,
        PLIVO_API_URL=f"http://127.0.0.1:{free_port()}",
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1
    assert "ok      settings: HTTP on port 3000; bot token set (xoxb…" in out
    assert "FAILED  slack: auth.test could not be reached" in out
    assert "FAILED  plivo:" in out
    for secret in (secret_bot, secret_plivo, "signing-secret-value-0123"):
        assert secret not in out


def test_doctor_checks_a_postgresql_store_named_by_database_url(tmp_path, pg_url, clock):
    """Engine, reachable, schema version and the replicas holding leases; the password never shown."""
    from bot.store.db import Store
    from bot.store.migrations import MIGRATIONS
    from tests.test_store_engines import _fulfilling

    with_password = pg_url.replace("postgresql://postgres@", "postgresql://postgres:hunter2-secret-pw@")
    store = Store(pg_url)  # the tests' server trusts 127.0.0.1, so the password is only carried
    for holder in ("replica-a:11:aa", "replica-b:22:bb", "replica-b:22:cc"):
        op = _fulfilling(store, store.clock)
        store.claim_operation(op.id, holder, 600)
    store.close()
    env = {"DATABASE_URL": with_password}
    env["NUMBERS_DB"] = ""  # unset below: DATABASE_URL speaks only when NUMBERS_DB is not set
    proc = doctor(tmp_path, **env)
    out = proc.stdout + proc.stderr
    assert "hunter2-secret-pw" not in out
    line = next(line for line in proc.stdout.splitlines() if "store: postgresql" in line)
    assert line.startswith("ok      store: postgresql postgresql://postgres:***@127.0.0.1:")
    assert f"schema v{max(MIGRATIONS)}" in line and "3 request(s)" in line
    assert "2 replica(s) holding leases now (replica-a:11, replica-b:22)" in line


def test_doctor_says_when_the_postgresql_server_cannot_be_reached(tmp_path):
    proc = doctor(tmp_path, NUMBERS_DB=f"postgresql://postgres:pw-not-shown@127.0.0.1:{free_port()}/numbers")
    line = next(line for line in proc.stdout.splitlines() if "store: postgresql" in line)
    assert line.startswith("FAILED  store: postgresql postgresql://postgres:***@127.0.0.1:")
    assert "unreachable" in line
    assert "pw-not-shown" not in proc.stdout + proc.stderr


def test_doctor_asks_slack_with_the_client_serve_runs(tmp_path):
    """doctor's Slack client is the one ``serve`` runs (``bot.bootstrap.slack_client``): the same
    ``SLACK_API_URL`` handling (here without its trailing slash) and the same retries, so one 429
    from Slack is waited out as ``serve`` would, not reported as a broken token."""
    import asyncio

    from tests.slack_harness import APPROVAL_CHANNEL, BOT_TOKEN, SIGNING_SECRET, RecordingSlack

    async def run():
        slack = await RecordingSlack(token=BOT_TOKEN).start()
        slack.fault("auth.test", status=429, headers={"Retry-After": "0"})
        try:
            proc = await asyncio.to_thread(
                doctor,
                tmp_path,
                SLACK_BOT_TOKEN=BOT_TOKEN,
                SLACK_SIGNING_SECRET=SIGNING_SECRET,
                SLACK_API_URL=slack.api_url.rstrip("/"),
                NUMBERS_APPROVAL_CHANNEL=APPROVAL_CHANNEL,
                NUMBERS_APPROVERS="UAPPROVER1",
                NUMBERS_SANDBOX="1",
            )
            return proc, [c.method for c in slack.calls]
        finally:
            await slack.stop()

    proc, methods = asyncio.run(run())
    lines = proc.stdout.splitlines()
    assert any(line.startswith("ok      slack: auth.test ok") for line in lines), proc.stdout
    assert any(line.startswith("ok      slack scopes:") for line in lines), proc.stdout
    assert methods.count("auth.test") >= 3  # the refused one, its retry, and the scopes check
    assert any(line.startswith("ok      store:") for line in lines) and any(line.startswith("ok      outbox:") for line in lines)
