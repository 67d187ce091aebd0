"""The one place provider adapters are built from settings: real clients, or the same clients on
the sandbox's simulated services.

One function per provider says how its adapter is made: on the sandbox (its ASGI app as the
transport, the sandbox's credentials) or for real (the credentials in the settings; None when
they are not set). The composition root asks ``build_providers(settings)`` for them all.
"""

from __future__ import annotations

from typing import Any, Callable

import httpx

from bot.config import Settings
from bot.domain.errors import ConfigError
from bot.ports import Provider
from bot.sandbox import SandboxServices

__all__ = ["build_providers"]

Options = dict[str, Any]


def build_providers(
    settings: Settings, *, sandbox: SandboxServices | None = None, options: Options | None = None
) -> tuple[dict[str, Provider], SandboxServices | None]:
    """Real clients for the providers with credentials; the sandbox services when none have any
    (or ``NUMBERS_SANDBOX=1``). A provider whose settings are only partly set raises ``ConfigError``.
    The same client code runs either way: only the transport differs. ``options`` go to every
    adapter's constructor (tests pass a ``sleep`` that does not wait)."""
    problems = settings.provider_problems()
    if problems:
        raise ConfigError(problems)
    common: Options = {"timeout": settings.provider_timeout, **(options or {})}
    if settings.uses_sandbox or sandbox is not None:
        if sandbox is None:
            sandbox = SandboxServices.create(settings.sandbox_state_path, latency=settings.sandbox_latency)
    providers: dict[str, Provider] = {}
    for name, build in _BUILDERS.items():
        provider = build(settings, sandbox, common)
        if provider is not None:
            providers[name] = provider
    return providers, sandbox


def _on(app: Any) -> httpx.AsyncBaseTransport:
    return httpx.ASGITransport(app=app)


def _acs(settings: Settings, sandbox: SandboxServices | None, common: Options) -> Provider | None:
    from bot.providers.acs import AcsProvider

    own = {"poll_interval": settings.poll_interval, "api_version": settings.acs_api_version, **common}
    if sandbox is not None:
        from bot.sandbox.acs import SANDBOX_ACS_ACCESS_KEY, SANDBOX_ACS_ENDPOINT

        return AcsProvider(SANDBOX_ACS_ENDPOINT, SANDBOX_ACS_ACCESS_KEY, transport=_on(sandbox.acs), **own)
    if settings.acs_connection_string:
        return AcsProvider.from_connection_string(settings.acs_connection_string.get_secret_value(), **own)
    return None


def _plivo(settings: Settings, sandbox: SandboxServices | None, common: Options) -> Provider | None:
    from bot.providers.plivo_numbers import plivo_provider

    own = {"app_id": settings.plivo_app_id, "api": settings.plivo_api, **common}
    if sandbox is not None:
        from bot.sandbox.plivo import SANDBOX_PLIVO_API_URL, SANDBOX_PLIVO_AUTH_ID, SANDBOX_PLIVO_AUTH_TOKEN

        return plivo_provider(
            SANDBOX_PLIVO_AUTH_ID, SANDBOX_PLIVO_AUTH_TOKEN, api_url=SANDBOX_PLIVO_API_URL,
            transport=_on(sandbox.plivo), **own,
        )
    if settings.plivo_auth_id and settings.plivo_auth_token:
        return plivo_provider(
            settings.plivo_auth_id, settings.plivo_auth_token.get_secret_value(), api_url=settings.plivo_api_url, **own
        )
    return None


def _webex(settings: Settings, sandbox: SandboxServices | None, common: Options) -> Provider | None:
    from bot.providers.webex import WebexProvider

    own = {"org_id": settings.webex_org_id, "location_id": settings.webex_location_id, **common}
    if sandbox is not None:
        from bot.sandbox.webex import SANDBOX_WEBEX_API_URL, SANDBOX_WEBEX_TOKEN

        return WebexProvider(SANDBOX_WEBEX_TOKEN, api_url=SANDBOX_WEBEX_API_URL, transport=_on(sandbox.webex), **own)
    if settings.webex_access_token:
        return WebexProvider(settings.webex_access_token.get_secret_value(), api_url=settings.webex_api_url, **own)
    return None


def _twilio(settings: Settings, sandbox: SandboxServices | None, common: Options) -> Provider | None:
    from bot.providers.twilio import TwilioProvider

    own = {
        "address_sid": settings.twilio_address_sid, "bundle_sid": settings.twilio_bundle_sid,
        "poll_interval": settings.poll_interval, **common,
    }
    if sandbox is not None:
        if sandbox.twilio is None:
            return None
        from bot.sandbox.twilio import SANDBOX_TWILIO_ACCOUNT_SID, SANDBOX_TWILIO_API_URL, SANDBOX_TWILIO_AUTH_TOKEN

        return TwilioProvider(
            SANDBOX_TWILIO_ACCOUNT_SID, SANDBOX_TWILIO_AUTH_TOKEN, api_url=SANDBOX_TWILIO_API_URL,
            transport=_on(sandbox.twilio), **own,
        )
    if settings.twilio_account_sid and settings.twilio_auth_token:
        return TwilioProvider(
            settings.twilio_account_sid, settings.twilio_auth_token.get_secret_value(),
            api_url=settings.twilio_api_url, **own,
        )
    return None


def _telnyx(settings: Settings, sandbox: SandboxServices | None, common: Options) -> Provider | None:
    from bot.providers.telnyx import TelnyxProvider

    own = {
        "connection_id": settings.telnyx_connection_id, "messaging_profile_id": settings.telnyx_messaging_profile_id,
        "poll_interval": settings.poll_interval, **common,
    }
    if sandbox is not None:
        if sandbox.telnyx is None:
            return None
        from bot.sandbox.telnyx import SANDBOX_TELNYX_API_KEY, SANDBOX_TELNYX_API_URL

        return TelnyxProvider(SANDBOX_TELNYX_API_KEY, api_url=SANDBOX_TELNYX_API_URL, transport=_on(sandbox.telnyx), **own)
    if settings.telnyx_api_key:
        return TelnyxProvider(settings.telnyx_api_key.get_secret_value(), api_url=settings.telnyx_api_url, **own)
    return None


_BUILDERS: dict[str, Callable[[Settings, SandboxServices | None, Options], Provider | None]] = {
    "acs": _acs, "plivo": _plivo, "webex": _webex, "twilio": _twilio, "telnyx": _telnyx,
}
