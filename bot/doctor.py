"""``numbers-bot doctor``: one line per check, ok or failed and why; secrets masked."""

from __future__ import annotations

from dataclasses import dataclass

from typing import Any

from slack_sdk.errors import SlackApiError

from bot.bootstrap import build_providers, open_configured_store, slack_client
from bot.config import SANDBOX_NOTICE, Settings
from bot.domain.errors import ConfigError, NumbersError
from bot.store.db import Store


@dataclass
class Check:
    name: str
    ok: bool
    detail: str

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


def mask(secret: str | None) -> str:
    if not secret:
        return "not set"
    return f"set ({secret[:4]}…, {len(secret)} characters)" if len(secret) > 12 else "set"


DOCTOR_SLACK_TIMEOUT = 10  # seconds for one Web API call: doctor answers in seconds, not minutes


async def run_checks(settings: Settings) -> list[Check]:
    """Every check, on the parts ``serve`` would run (``bot.bootstrap``): the same Slack client,
    the same provider adapters, the store opened once."""
    client = slack_client(settings, timeout=DOCTOR_SLACK_TIMEOUT) if settings.slack_bot_token else None
    checks: list[Check] = []
    checks.append(_settings_check(settings))
    checks.append(await _slack_check(client))
    checks.extend(await slack_access_checks(settings, client))
    checks.extend(await _provider_checks(settings))
    checks.extend(_store_checks(settings))
    return checks


def _settings_check(settings: Settings) -> Check:
    try:
        settings.require_slack()
    except NumbersError as exc:
        return Check("settings", False, str(exc).replace("\n", "; "))
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    mode = "Socket Mode" if settings.slack_app_token else f"HTTP on port {settings.port}"
    return Check(
        "settings",
        True,
        f"{mode}; bot token {mask(token)}; approvers {len(settings.approver_ids)}; "
        f"channel {settings.approval_channel}; {settings.required_approvals} approval(s) needed",
    )


async def _slack_check(client: Any) -> Check:
    if client is None:
        return Check("slack", False, "SLACK_BOT_TOKEN is not set")
    try:
        answer = await client.auth_test()
    except SlackApiError as exc:
        return Check("slack", False, f"auth.test said {exc.response.get('error', 'an error')}")
    except Exception as exc:  # network: say what, not the token
        return Check("slack", False, f"auth.test could not be reached ({type(exc).__name__})")
    return Check("slack", True, f"auth.test ok: bot {answer.get('user')} in team {answer.get('team')}")


async def _provider_checks(settings: Settings) -> list[Check]:
    problems = settings.provider_problems()
    if problems:
        return [Check("providers", False, "; ".join(problems))]
    if not settings.sandbox and not settings.configured_providers():
        return [
            Check(
                "providers",
                False,
                "none configured, so `serve` will not start: set ACS_CONNECTION_STRING, PLIVO_AUTH_ID and "
                "PLIVO_AUTH_TOKEN, or WEBEX_ACCESS_TOKEN (or NUMBERS_SANDBOX=1 for simulated providers)",
            )
        ]
    providers, sandbox = build_providers(settings)
    checks = []
    label = " (sandbox)" if sandbox is not None else ""
    if sandbox is not None:
        checks.append(Check("providers", True, f"NUMBERS_SANDBOX=1: simulated providers — {SANDBOX_NOTICE.lower()}"))
    for name, provider in providers.items():
        try:
            detail = await provider.check()
            checks.append(Check(f"{name}{label}", True, detail))
        except NumbersError as exc:
            checks.append(Check(f"{name}{label}", False, str(exc)))
        except Exception as exc:
            checks.append(Check(f"{name}{label}", False, f"unexpected {type(exc).__name__}"))
        finally:
            await provider.aclose()
    return checks


def _store_checks(settings: Settings) -> list[Check]:
    """The store and its outbox, on one opening of ``NUMBERS_DB`` (as ``serve`` opens it)."""
    from bot.store.postgres import shown

    where = shown(settings.db_path)
    engine = "postgresql" if settings.uses_postgres else "sqlite"
    try:
        store = open_configured_store(settings)
    except Exception as exc:
        detail = f"{engine}: {exc}" if isinstance(exc, ConfigError) else (
            f"{engine} {where}: unreachable ({type(exc).__name__}: {_first_line(exc)})"
        )
        # The store check says what is wrong with it; the outbox only that it could not be read.
        return [Check("store", False, detail), Check("outbox", False, f"{where}: could not be read ({type(exc).__name__})")]
    try:
        return [store_check(store, settings), outbox_check(store)]
    finally:
        store.close()


def store_check(store: Store, settings: Settings) -> Check:
    """The database: engine, reachable, schema version (and SQLite's quick_check), and the
    replicas holding leases now. Named "store" whatever the engine; the detail says which."""
    from bot.store.check import integrity
    from bot.store.migrations import MIGRATIONS
    from bot.store.postgres import shown

    where = shown(settings.db_path)
    engine = "postgresql" if store.postgres else "sqlite"
    if store.postgres:
        # Opening a PostgreSQL store applies the migrations, so the table is there.
        version = _scalar(store, "SELECT MAX(version) FROM schema_migrations") or 0
        ok = version == max(MIGRATIONS)
        state = f"schema v{version}" + ("" if ok else f" (this version of numbers-bot expects v{max(MIGRATIONS)})")
    else:
        ok, state = integrity(store)
        if not ok:
            return Check("store", False, f"{engine} NUMBERS_DB={settings.db_path}: {state}")
    count = _scalar(store, "SELECT COUNT(*) FROM requests")
    replicas = store.replicas_holding_leases()
    extra = "" if store.postgres else f", journal {_scalar(store, 'PRAGMA journal_mode')}"
    seen = f"{len(replicas)} replica(s) holding leases now" + (f" ({', '.join(replicas)})" if replicas else "")
    return Check("store", ok, f"{engine} {where}: {state}, {count} request(s), {seen}{extra}")


def _scalar(store: Store, sql: str) -> Any:
    row = store.db.execute(sql).fetchone()
    return row[0] if row else None


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:200]


OUTBOX_STALE = 300.0  # seconds: an older undelivered notification means no server delivers, or Slack refuses


async def slack_access_checks(settings: Settings, client: Any) -> list[Check]:
    """The token has every scope of manifest.yml (``x-oauth-scopes`` of ``auth.test``), and the
    bot is a member of ``NUMBERS_APPROVAL_CHANNEL`` (``conversations.info``)."""
    if client is None:
        return []
    from bot.slack.adapters.channel_trouble import fix_for
    from bot.slack.ids import BOT_SCOPES

    checks = []
    try:
        answer = await client.auth_test()
        headers = {k.lower(): v for k, v in (answer.headers or {}).items()}
        raw = headers.get("x-oauth-scopes") or ""
        raw = raw[0] if isinstance(raw, list) else raw
        granted = {x.strip() for x in str(raw).split(",") if x.strip()}
        missing = [scope for scope in BOT_SCOPES if scope not in granted]
        if missing:
            checks.append(Check("slack scopes", False, f"the token lacks {', '.join(missing)}: add them (manifest.yml) and reinstall the app"))
        else:
            checks.append(Check("slack scopes", True, f"the token has all {len(BOT_SCOPES)} scopes of the manifest"))
    except Exception:
        pass  # the "slack" check above already says why auth.test failed
    channel = settings.approval_channel
    if channel:
        try:
            info = (await client.conversations_info(channel=channel)).get("channel") or {}
            if info.get("is_archived"):
                checks.append(Check("approval channel", False, fix_for("is_archived", channel)))
            elif not info.get("is_member"):
                checks.append(Check("approval channel", False, f"the bot is not a member of {channel}: {fix_for('not_in_channel', channel)}"))
            else:
                checks.append(Check("approval channel", True, f"the bot is a member of {channel}"))
        except SlackApiError as exc:
            error = exc.response.get("error", "an error") if exc.response is not None else "an error"
            checks.append(Check("approval channel", False, f"conversations.info said {error}: {fix_for(error, channel)}"))
        except Exception as exc:
            checks.append(Check("approval channel", False, f"conversations.info could not be reached ({type(exc).__name__})"))
    return checks


def outbox_check(store: Store) -> Check:
    """Notifications not yet delivered to Slack, and how old the oldest is."""
    from datetime import datetime, timezone

    from bot.store import outbox

    count, oldest, error = outbox.backlog(store)
    if count == 0:
        return Check("outbox", True, "every notification is delivered to Slack")
    age = (datetime.now(timezone.utc) - oldest).total_seconds() if oldest else 0.0
    detail = f"{count} notification(s) waiting for Slack, the oldest {age:.0f}s old"
    if error:
        detail += f" (last error: {error})"
    if age > OUTBOX_STALE:
        return Check("outbox", False, detail + "; is `numbers-bot serve` running and can it reach Slack?")
    return Check("outbox", True, detail)
