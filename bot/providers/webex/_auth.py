"""Webex's bearer token as an ``httpx.Auth``: the token lives only here, never in a repr or message."""

from __future__ import annotations

from bot.providers._http import BearerAuth

__all__ = ["WebexAuth"]


class WebexAuth(BearerAuth):
    """``Authorization: Bearer <access token>`` (an administrator's token for the organisation)."""
