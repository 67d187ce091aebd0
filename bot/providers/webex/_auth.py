"""Webex's bearer token as an ``httpx.Auth``: the token lives only here, never in a repr or message."""

from __future__ import annotations

from typing import Generator

import httpx

__all__ = ["WebexAuth"]


class WebexAuth(httpx.Auth):
    """``Authorization: Bearer <token>`` on every request."""

    def __init__(self, access_token: str):
        self._header = f"Bearer {access_token}"

    def __repr__(self) -> str:
        return "WebexAuth(access_token=<hidden>)"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request
