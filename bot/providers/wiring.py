"""Twilio and Telnyx clients from settings: real ones, or ones that talk to the sandbox.

Kept apart from ``bot.app.build_providers`` so the composition root only asks
for "the Twilio and Telnyx providers these settings enable" in one line.
"""

from __future__ import annotations

from typing import Any

import httpx

from bot.config import Settings
from bot.ports import Provider

__all__ = ["twilio_and_telnyx"]


def twilio_and_telnyx(settings: Settings, *, sandbox: Any = None, common: dict[str, Any]) -> dict[str, Provider]:
    """The Twilio and Telnyx providers: with ``sandbox`` (``SandboxServices``) both, on its
    simulated services; otherwise those whose credentials are set."""
    from bot.providers.telnyx import TelnyxProvider
    from bot.providers.twilio import TwilioProvider

    poll = {"poll_interval": settings.poll_interval}
    providers: dict[str, Provider] = {}
    if sandbox is not None:
        from bot.sandbox.telnyx import SANDBOX_TELNYX_API_KEY, SANDBOX_TELNYX_API_URL
        from bot.sandbox.twilio import SANDBOX_TWILIO_ACCOUNT_SID, SANDBOX_TWILIO_API_URL, SANDBOX_TWILIO_AUTH_TOKEN

        if sandbox.twilio is not None:
            providers["twilio"] = TwilioProvider(
                SANDBOX_TWILIO_ACCOUNT_SID,
                SANDBOX_TWILIO_AUTH_TOKEN,
                api_url=SANDBOX_TWILIO_API_URL,
                address_sid=settings.twilio_address_sid,
                bundle_sid=settings.twilio_bundle_sid,
                transport=httpx.ASGITransport(app=sandbox.twilio),
                **poll,
                **common,
            )
        if sandbox.telnyx is not None:
            providers["telnyx"] = TelnyxProvider(
                SANDBOX_TELNYX_API_KEY,
                api_url=SANDBOX_TELNYX_API_URL,
                connection_id=settings.telnyx_connection_id,
                messaging_profile_id=settings.telnyx_messaging_profile_id,
                transport=httpx.ASGITransport(app=sandbox.telnyx),
                **poll,
                **common,
            )
        return providers
    if settings.twilio_account_sid and settings.twilio_auth_token:
        providers["twilio"] = TwilioProvider(
            settings.twilio_account_sid,
            settings.twilio_auth_token.get_secret_value(),
            api_url=settings.twilio_api_url,
            address_sid=settings.twilio_address_sid,
            bundle_sid=settings.twilio_bundle_sid,
            **poll,
            **common,
        )
    if settings.telnyx_api_key:
        providers["telnyx"] = TelnyxProvider(
            settings.telnyx_api_key.get_secret_value(),
            api_url=settings.telnyx_api_url,
            connection_id=settings.telnyx_connection_id,
            messaging_profile_id=settings.telnyx_messaging_profile_id,
            **poll,
            **common,
        )
    return providers
