"""Settings, from the environment or a ``.env`` file (pydantic-settings).

``load_settings()`` reads them all; a wrong value stops the program with one
line per problem naming the variable. Which settings are *required* depends on
the command (``serve`` needs Slack's, the CLI does not), so that is checked by
``require_slack``.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.domain.errors import ConfigError
from bot.domain.policy import Policy

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$", re.I)
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> float:
    """``90``, ``90s``, ``30m``, ``4h``, ``1d`` → seconds."""
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        m = _DURATION.match(str(value))
        if not m:
            raise ValueError("a duration like 90s, 30m, 4h or 1d")
        seconds = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if seconds <= 0:
        raise ValueError("a duration above zero")
    return seconds


# Where each setting comes from, for messages about missing ones.
WHERE = {
    "SLACK_BOT_TOKEN": "Slack app → OAuth & Permissions → Bot User OAuth Token (xoxb-…)",
    "SLACK_SIGNING_SECRET": "Slack app → Basic Information → App Credentials → Signing Secret",
    "SLACK_APP_TOKEN": "Slack app → Basic Information → App-Level Tokens, scope connections:write (xapp-…)",
    "NUMBERS_APPROVAL_CHANNEL": "the channel id (C…) where approval cards go; invite the bot there",
    "NUMBERS_APPROVERS": "comma-separated Slack user ids (U…) and user-group ids (S…)",
}


# Each provider's settings: those it cannot work without, and those that only mean something with them.
# A provider with some but not all of its required settings stops start-up (never silently dropped).
PROVIDER_SETTINGS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "acs": (("ACS_CONNECTION_STRING",), ()),
    "plivo": (("PLIVO_AUTH_ID", "PLIVO_AUTH_TOKEN"), ("PLIVO_APP_ID",)),
    "webex": (("WEBEX_ACCESS_TOKEN",), ("WEBEX_ORG_ID", "WEBEX_LOCATION_ID")),
    "twilio": (("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"), ("TWILIO_ADDRESS_SID", "TWILIO_BUNDLE_SID")),
    "telnyx": (("TELNYX_API_KEY",), ("TELNYX_CONNECTION_ID", "TELNYX_MESSAGING_PROFILE_ID")),
}
PROVIDER_LABELS = {"acs": "ACS", "plivo": "Plivo", "webex": "Webex", "twilio": "Twilio", "telnyx": "Telnyx"}

SANDBOX_NOTICE = "Sandbox — nothing is bought"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True)

    # Slack
    slack_bot_token: SecretStr | None = Field(None, alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(None, alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(None, alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field("https://slack.com/api/", alias="SLACK_API_URL")
    port: int = Field(3000, alias="PORT", ge=1, le=65535)

    # Product
    approval_channel: str | None = Field(None, alias="NUMBERS_APPROVAL_CHANNEL")
    approvers: str = Field("", alias="NUMBERS_APPROVERS")
    allow_self_approval: bool = Field(False, alias="NUMBERS_ALLOW_SELF_APPROVAL")
    required_approvals: int = Field(1, alias="NUMBERS_REQUIRED_APPROVALS", ge=1, le=10)
    max_quantity: int = Field(10, alias="NUMBERS_MAX_QUANTITY", ge=1, le=1000)
    auto_approve_below: Decimal = Field(Decimal("0"), alias="NUMBERS_AUTO_APPROVE_BELOW", ge=0)
    monthly_budget: Decimal | None = Field(None, alias="NUMBERS_MONTHLY_BUDGET", ge=0)
    request_ttl: float = Field(24 * 3600, alias="NUMBERS_REQUEST_TTL")
    remind_after: float = Field(4 * 3600, alias="NUMBERS_REMIND_AFTER")
    db_path: str = Field("./numbers.db", alias="NUMBERS_DB")
    # The convention of Procfile hosts (Heroku, Render, Railway): used when NUMBERS_DB is not set.
    database_url: SecretStr | None = Field(None, alias="DATABASE_URL")
    db_busy_timeout: float = Field(5.0, alias="NUMBERS_DB_BUSY_TIMEOUT", gt=0, le=120)
    # The hand-over file between the ack process and the work process (bot.inbox); default next to NUMBERS_DB.
    inbox_path: str | None = Field(None, alias="NUMBERS_INBOX")
    # A replica that dies holds its operations this long at most; then another takes them over.
    lease_seconds: float = Field(120.0, alias="NUMBERS_LEASE_SECONDS", ge=2, le=3600)
    approver_cache_seconds: float = Field(60.0, alias="NUMBERS_APPROVER_CACHE_SECONDS", ge=0, le=3600)
    sandbox: bool = Field(False, alias="NUMBERS_SANDBOX")
    sandbox_db: str | None = Field(None, alias="NUMBERS_SANDBOX_DB")
    sandbox_latency: float = Field(0.0, alias="NUMBERS_SANDBOX_LATENCY", ge=0, le=60)
    poll_interval: float = Field(2.0, alias="NUMBERS_POLL_INTERVAL", gt=0, le=60)
    provider_timeout: float = Field(30.0, alias="NUMBERS_PROVIDER_TIMEOUT", gt=0, le=300)
    log_level: str = Field("INFO", alias="LOG_LEVEL")

    # Providers
    acs_connection_string: SecretStr | None = Field(None, alias="ACS_CONNECTION_STRING")
    acs_api_version: str = Field(
        "2025-06-01", alias="ACS_API_VERSION", pattern=r"^\d{4}-\d{2}-\d{2}(-preview\d*)?$"
    )
    plivo_auth_id: str | None = Field(None, alias="PLIVO_AUTH_ID")
    plivo_auth_token: SecretStr | None = Field(None, alias="PLIVO_AUTH_TOKEN")
    plivo_app_id: str | None = Field(None, alias="PLIVO_APP_ID")
    plivo_api_url: str = Field("https://api.plivo.com", alias="PLIVO_API_URL")
    # numbers: the current PhoneNumber API; groups: the AvailableNumberGroup API of the seeds (deprecated 2015).
    plivo_api: Literal["numbers", "groups"] = Field("numbers", alias="PLIVO_API")
    webex_access_token: SecretStr | None = Field(None, alias="WEBEX_ACCESS_TOKEN")
    webex_org_id: str | None = Field(None, alias="WEBEX_ORG_ID")
    webex_location_id: str | None = Field(None, alias="WEBEX_LOCATION_ID", max_length=36)
    webex_api_url: str = Field("https://webexapis.com/v1", alias="WEBEX_API_URL")
    twilio_account_sid: str | None = Field(None, alias="TWILIO_ACCOUNT_SID")
    twilio_auth_token: SecretStr | None = Field(None, alias="TWILIO_AUTH_TOKEN")
    twilio_api_url: str = Field("https://api.twilio.com", alias="TWILIO_API_URL")
    twilio_address_sid: str | None = Field(None, alias="TWILIO_ADDRESS_SID")
    twilio_bundle_sid: str | None = Field(None, alias="TWILIO_BUNDLE_SID")
    telnyx_api_key: SecretStr | None = Field(None, alias="TELNYX_API_KEY")
    telnyx_api_url: str = Field("https://api.telnyx.com", alias="TELNYX_API_URL")
    telnyx_connection_id: str | None = Field(None, alias="TELNYX_CONNECTION_ID")
    telnyx_messaging_profile_id: str | None = Field(None, alias="TELNYX_MESSAGING_PROFILE_ID")

    @model_validator(mode="after")
    def _database_url(self) -> "Settings":
        if "db_path" not in self.model_fields_set and self.database_url and self.database_url.get_secret_value():
            self.db_path = self.database_url.get_secret_value()
        return self

    def __repr_args__(self):  # the store's URL may carry a password: shown masked, as SecretStr fields are
        for name, value in super().__repr_args__():
            if name == "db_path" and self.uses_postgres:
                from bot.store.postgres import shown

                value = shown(value)
            yield name, value

    @property
    def uses_postgres(self) -> bool:
        return self.db_path.startswith(("postgresql://", "postgres://"))

    @field_validator("request_ttl", "remind_after", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> float:
        return parse_duration(v)

    @field_validator("monthly_budget", mode="before")
    @classmethod
    def _blank_budget(cls, v: Any) -> Any:
        return None if v in ("", None) else v

    @field_validator("auto_approve_below", mode="before")
    @classmethod
    def _decimal(cls, v: Any) -> Any:
        if v in ("", None):
            return Decimal("0")
        try:
            return Decimal(str(v))
        except InvalidOperation:
            raise ValueError("an amount in USD, like 5 or 2.50") from None

    @field_validator("approvers")
    @classmethod
    def _approvers(cls, v: str) -> str:
        ids = [a.strip() for a in v.split(",") if a.strip()]
        bad = [a for a in ids if not re.fullmatch(r"[UWS][A-Z0-9]{2,}", a)]
        if bad:
            raise ValueError(f"Slack user ids (U…/W…) or user-group ids (S…); not {', '.join(bad)}")
        return ",".join(ids)

    @field_validator("approval_channel")
    @classmethod
    def _channel(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        v = v.strip().lstrip("#")
        return v

    @field_validator("plivo_auth_id")
    @classmethod
    def _plivo_id(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        if not re.fullmatch(r"(MA|SA)[A-Z0-9]{18}", v):
            raise ValueError("a Plivo auth id: 20 characters starting MA or SA")
        return v

    @field_validator("twilio_account_sid")
    @classmethod
    def _twilio_sid(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        v = v.strip()
        if not re.fullmatch(r"AC[0-9a-fA-F]{32}", v):
            raise ValueError("a Twilio Account SID: AC followed by 32 hexadecimal characters (Twilio console → Account Info)")
        return v

    @field_validator("twilio_address_sid", "twilio_bundle_sid", "telnyx_connection_id", "telnyx_messaging_profile_id")
    @classmethod
    def _optional_id(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        v = v.strip()
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", v):
            raise ValueError("an id of letters, digits, - and _ (at most 64 characters)")
        return v

    @field_validator("acs_connection_string")
    @classmethod
    def _acs(cls, v: SecretStr | None) -> SecretStr | None:
        if v is None or not v.get_secret_value():
            return None
        text = v.get_secret_value().lower()
        if "endpoint=" not in text or "accesskey=" not in text:
            raise ValueError("endpoint=https://<resource>.communication.azure.com/;accesskey=<key>")
        return v

    # --- derived -----------------------------------------------------------

    @property
    def approver_ids(self) -> frozenset[str]:
        return frozenset(a for a in self.approvers.split(",") if a)

    @property
    def policy(self) -> Policy:
        return Policy(
            approvers=self.approver_ids,
            allow_self_approval=self.allow_self_approval,
            required_approvals=self.required_approvals,
            max_quantity=self.max_quantity,
            auto_approve_below=self.auto_approve_below,
            monthly_budget=self.monthly_budget,
        )

    @property
    def has_provider_credentials(self) -> bool:
        return bool(self.configured_providers())

    def _is_set(self, env: str) -> bool:
        name = next(n for n, f in type(self).model_fields.items() if f.alias == env)
        value = getattr(self, name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        return bool(value)

    def configured_providers(self) -> list[str]:
        """Providers whose required settings are all set."""
        return [p for p, (required, _) in PROVIDER_SETTINGS.items() if all(self._is_set(e) for e in required)]

    def provider_problems(self) -> list[str]:
        """One line per provider whose settings are only partly set, naming what is missing."""
        problems = []
        for provider, (required, optional) in PROVIDER_SETTINGS.items():
            present = [e for e in required + optional if self._is_set(e)]
            missing = [e for e in required if not self._is_set(e)]
            if present and missing:
                label = PROVIDER_LABELS.get(provider, provider)
                problems.append(
                    f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set, but "
                    f"{', '.join(present)} {'is' if len(present) == 1 else 'are'}: {label} needs "
                    f"{' and '.join(required)} (or none of its settings)"
                )
        return problems

    def require_providers(self) -> None:
        """For ``serve``: every provider fully set, and at least one unless the sandbox was asked for."""
        problems = self.provider_problems()
        if problems:
            raise ConfigError(problems)
        if not self.sandbox and not self.configured_providers():
            raise ConfigError(
                [
                    "no provider is configured: set ACS_CONNECTION_STRING, PLIVO_AUTH_ID and PLIVO_AUTH_TOKEN, "
                    "WEBEX_ACCESS_TOKEN, TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN, or TELNYX_API_KEY; "
                    "or set NUMBERS_SANDBOX=1 to run on simulated providers (nothing is bought)"
                ]
            )

    @property
    def uses_sandbox(self) -> bool:
        return self.sandbox or not self.has_provider_credentials

    @property
    def sandbox_state_path(self) -> str | None:
        if self.sandbox_db:
            return self.sandbox_db
        if self.db_path == ":memory:" or self.uses_postgres:
            return None  # replicas share no file: NUMBERS_SANDBOX_DB names one when wanted
        return str(Path(self.db_path).with_suffix(".sandbox.db"))

    def secrets(self) -> list[str]:
        """Every secret value, so tests and log filters can check none leaks."""
        out = []
        for v in (
            self.slack_bot_token,
            self.slack_signing_secret,
            self.slack_app_token,
            self.acs_connection_string,
            self.plivo_auth_token,
            self.webex_access_token,
            self.twilio_auth_token,
            self.telnyx_api_key,
        ):
            if v is not None and v.get_secret_value():
                out.append(v.get_secret_value())
        if self.acs_connection_string:
            # The access key on its own, as it would appear outside the connection string.
            m = re.search(r"accesskey=([^;]+)", self.acs_connection_string.get_secret_value(), re.I)
            if m:
                out.append(m.group(1))
        if self.uses_postgres:
            from bot.store.postgres import password_in

            password = password_in(self.db_path)
            if password:
                out.append(password)
        return out

    def require_slack(self) -> None:
        """Stop with one line per missing Slack setting, saying where to get it."""
        missing = []
        if not self.slack_bot_token:
            missing.append("SLACK_BOT_TOKEN")
        if not self.slack_app_token and not self.slack_signing_secret:
            missing.append("SLACK_SIGNING_SECRET")
        if not self.approval_channel:
            missing.append("NUMBERS_APPROVAL_CHANNEL")
        if not self.approver_ids:
            missing.append("NUMBERS_APPROVERS")
        if missing:
            raise ConfigError([f"{name} is not set: {WHERE[name]}" for name in missing])


def load_settings(**overrides: Any) -> Settings:
    """Read settings; raise ``ConfigError`` with one line per bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = err.get("loc") or ("?",)
            name = str(loc[0])
            field = Settings.model_fields.get(name)
            env = field.alias if field is not None and field.alias else name.upper()
            msg = err.get("msg", "invalid")
            msg = msg.removeprefix("Value error, ")
            problems.append(f"{env}: {msg}")
        raise ConfigError(problems) from None
