"""Settings: every variable read, one clear line per problem, secrets hidden."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.config import load_settings
from bot.domain.errors import ConfigError


def test_defaults(settings_env):
    s = settings_env()
    assert s.required_approvals == 1
    assert s.max_quantity == 10
    assert s.auto_approve_below == Decimal("0")
    assert s.monthly_budget is None
    assert s.request_ttl == 24 * 3600
    assert s.remind_after == 4 * 3600
    assert s.port == 3000
    assert s.slack_api_url == "https://slack.com/api/"
    assert s.uses_sandbox  # no provider credentials


def test_reads_environment_and_durations(settings_env, monkeypatch):
    monkeypatch.setenv("NUMBERS_REQUEST_TTL", "2h")
    monkeypatch.setenv("NUMBERS_REMIND_AFTER", "30m")
    monkeypatch.setenv("NUMBERS_MONTHLY_BUDGET", "250.50")
    monkeypatch.setenv("NUMBERS_AUTO_APPROVE_BELOW", "5")
    monkeypatch.setenv("NUMBERS_APPROVERS", "U012ABC, S0GROUP1")
    monkeypatch.setenv("PLIVO_AUTH_ID", "MA" + "A" * 18)
    monkeypatch.setenv("PLIVO_AUTH_TOKEN", "tok")
    s = load_settings()
    assert s.request_ttl == 7200 and s.remind_after == 1800
    assert s.monthly_budget == Decimal("250.50")
    assert s.approver_ids == {"U012ABC", "S0GROUP1"}
    assert s.policy.approver_groups == {"S0GROUP1"}
    assert not s.uses_sandbox


def test_reads_dotenv_file(settings_env, tmp_path):
    (tmp_path / ".env").write_text("NUMBERS_MAX_QUANTITY=3\nNUMBERS_REQUIRED_APPROVALS=2\n")
    s = load_settings()
    assert s.max_quantity == 3 and s.required_approvals == 2


def test_one_line_per_problem_naming_the_variable(settings_env, monkeypatch):
    monkeypatch.setenv("NUMBERS_REQUIRED_APPROVALS", "many")
    monkeypatch.setenv("NUMBERS_REQUEST_TTL", "soon")
    monkeypatch.setenv("NUMBERS_APPROVERS", "alice,U012ABC")
    monkeypatch.setenv("PLIVO_AUTH_ID", "nope")
    monkeypatch.setenv("ACS_CONNECTION_STRING", "secret-value-without-shape")
    with pytest.raises(ConfigError) as info:
        load_settings()
    problems = info.value.problems
    names = sorted(p.split(":")[0] for p in problems)
    assert names == sorted(
        ["NUMBERS_REQUIRED_APPROVALS", "NUMBERS_REQUEST_TTL", "NUMBERS_APPROVERS", "PLIVO_AUTH_ID", "ACS_CONNECTION_STRING"]
    )
    assert "secret-value-without-shape" not in str(info.value)


def test_missing_slack_settings_name_each_variable(settings_env):
    s = settings_env(NUMBERS_APPROVERS="")
    with pytest.raises(ConfigError) as info:
        s.require_slack()
    text = str(info.value)
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "NUMBERS_APPROVAL_CHANNEL", "NUMBERS_APPROVERS"):
        assert name in text
    assert "Signing Secret" in text  # says where to get it


def test_socket_mode_needs_no_signing_secret(settings_env):
    s = settings_env(SLACK_BOT_TOKEN="xoxb-1", SLACK_APP_TOKEN="xapp-1", NUMBERS_APPROVAL_CHANNEL="C1")
    s.require_slack()


def test_secrets_are_hidden_in_repr(settings_env):
    s = settings_env(SLACK_BOT_TOKEN="xoxb-very-secret", PLIVO_AUTH_TOKEN="plivo-secret")
    assert "xoxb-very-secret" not in repr(s) and "plivo-secret" not in repr(s)
    assert "xoxb-very-secret" in s.secrets()


def test_database_url_names_the_store_only_when_numbers_db_is_unset(settings_env, monkeypatch):
    settings_env()  # clears the bot's variables and DATABASE_URL
    monkeypatch.setenv("DATABASE_URL", "postgres://bot:s3cret-pw@db.internal:5432/numbers")
    s = load_settings()
    assert s.db_path == "postgres://bot:s3cret-pw@db.internal:5432/numbers" and s.uses_postgres
    assert "s3cret-pw" in s.secrets()  # so the log filter masks it
    assert s.sandbox_state_path is None  # replicas share no file
    assert "s3cret-pw" not in repr(s)
    monkeypatch.setenv("NUMBERS_DB", "/data/numbers.db")
    s = load_settings()
    assert s.db_path == "/data/numbers.db" and not s.uses_postgres
    assert s.lease_seconds == 120
