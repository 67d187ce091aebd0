"""The door in front of Bolt: nothing reaches a listener, the error handler or the store unverified.

Bolt reads the whole body, builds its request context (team, user, ``response_url``) and only
then checks the signature; a timestamp too large for a float makes that check raise, and Bolt's
error handler then answers the "user" an unsigned body names. So every ``POST /slack/events``
passes this ASGI layer first, which, in order and without reading more than it must:

1. refuses malformed headers (timestamp not 1-12 ASCII digits or more than 5 minutes off,
   signature not ``v0=`` and 64 lowercase hex digits): 401, body never read;
2. refuses a declared ``Content-Length`` above ``max_body`` at once (413), and stops reading a
   body without one as soon as it passes the limit (413); a body that does not arrive within
   ``body_timeout`` gets 408;
3. checks the signature (HMAC-SHA256 of ``v0:timestamp:body``): 401;
4. checks that the verified payload is for this installation (``team_id``, ``api_app_id``,
   enterprise, as ``auth.test`` and ``bots.info`` named them at start): 403.

Only then is the body handed to Bolt, which checks the signature again. A refusal is logged as
one short line (why, source address, size), at most once per ``log_every`` seconds per reason
with a count of the ones not logged: never the body, a token or a ``response_url``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

__all__ = [
    "Installation",
    "RefusalLog",
    "SlackGate",
    "identity_of",
    "installation_middleware",
    "learn_installation",
    "payload_identity",
]

log = logging.getLogger("bot.slack.gate")

MAX_BODY = 1_000_000  # Slack's payloads are far below this (a modal's state is the largest, tens of kB)
BODY_TIMEOUT = 10.0
MAX_SKEW = 300  # seconds; Slack's own rule for X-Slack-Request-Timestamp
_TIMESTAMP = re.compile(rb"[0-9]{1,12}")
_SIGNATURE = re.compile(rb"v0=[0-9a-f]{64}")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class Installation:
    """Who this bot is installed as; ``None`` fields are not checked (not learned)."""

    team_id: str | None = None
    enterprise_id: str | None = None
    app_id: str | None = None
    known: bool = False

    def mismatch(self, identity: dict[str, str | None]) -> str | None:
        """What in a verified payload's ``identity`` is not this installation's, or None."""
        if not self.known or identity.get("slack_check"):
            return None
        if self.app_id and identity.get("app_id") and identity["app_id"] != self.app_id:
            return "another app"
        if self.enterprise_id:
            # Installed org-wide: every workspace of the enterprise is this installation's.
            if identity.get("enterprise_id") != self.enterprise_id:
                return "another enterprise"
            return None
        team = identity.get("team_id")
        if self.team_id and team != self.team_id:
            return "another workspace"
        return None


async def learn_installation(client: Any) -> Installation:
    """``auth.test`` (team, enterprise) and ``bots.info`` (app id) with the bot token.

    Raises whatever the client raises: a bot that cannot tell its own workspace does not start."""
    answer = await client.auth_test()
    installation = Installation(
        team_id=answer.get("team_id"), enterprise_id=answer.get("enterprise_id") or None, known=True
    )
    if answer.get("bot_id"):
        try:
            bot = await client.bots_info(bot=answer["bot_id"])
            installation.app_id = (bot.get("bot") or {}).get("app_id")
        except Exception as exc:  # the app id is a second check; the team is the one that matters
            log.warning("bots.info failed (%s); payloads' api_app_id is not checked", type(exc).__name__)
    return installation


def payload_identity(body: bytes, content_type: str) -> dict[str, str | None]:
    """``team_id``, ``app_id`` and ``enterprise_id`` of a Slack payload in any of its three shapes."""
    data: Any = {}
    try:
        if content_type.startswith("application/json"):
            data = json.loads(body)
        else:
            form = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
            data = json.loads(form["payload"]) if "payload" in form else form
    except (ValueError, KeyError):
        return {}
    return identity_of(data)


def identity_of(data: Any) -> dict[str, str | None]:
    """``team_id``, ``app_id`` and ``enterprise_id`` of a parsed payload (Socket Mode hands it over parsed)."""
    if not isinstance(data, dict):
        return {}

    def ident(value: Any) -> str | None:
        if isinstance(value, dict):
            value = value.get("id")
        return value if isinstance(value, str) and value else None

    if data.get("type") == "url_verification" or data.get("ssl_check") == "1":
        # Slack's own checks of the Request URL (app set-up, certificate checks) name no team; Bolt answers
        # both itself, before any listener, so they reach nothing a team id would guard.
        return {"slack_check": "yes"}
    return {
        "team_id": ident(data.get("team_id")) or ident(data.get("team")),
        "app_id": ident(data.get("api_app_id")),
        "enterprise_id": ident(data.get("enterprise_id")) or ident(data.get("enterprise")),
    }


class RefusalLog:
    """One short line per refusal reason per ``every`` seconds; the rest are counted into the next line."""

    def __init__(self, every: float = 10.0, monotonic: Callable[[], float] = time.monotonic):
        self.every = every
        self.monotonic = monotonic
        self._last: dict[str, float] = {}
        self._quiet: dict[str, int] = {}

    def refused(self, reason: str, source: str, size: int | None) -> None:
        now = self.monotonic()
        last = self._last.get(reason)
        if last is not None and now - last < self.every:
            self._quiet[reason] = self._quiet.get(reason, 0) + 1
            return
        self._last[reason] = now
        quiet = self._quiet.pop(reason, 0)
        more = f" (+{quiet} more since the last line)" if quiet else ""
        log.warning(
            "refused a request from %s: %s, %s%s", source, reason, "size unknown" if size is None else f"{size} bytes", more
        )


class Refused(Exception):
    def __init__(self, status: int, reason: str, size: int | None = None):
        super().__init__(reason)
        self.status, self.reason, self.size = status, reason, size


class SlackGate:
    """ASGI middleware for ``path``: verify, bound and identify before ``inner`` (Bolt) sees anything."""

    def __init__(
        self,
        inner: Callable[[Scope, Receive, Send], Awaitable[None]],
        signing_secret: str,
        installation: Installation,
        *,
        path: str,
        max_body: int = MAX_BODY,
        body_timeout: float = BODY_TIMEOUT,
        refusals: RefusalLog | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.inner = inner
        self.secret = signing_secret.encode()
        self.installation = installation
        self.path = path
        self.max_body = max_body
        self.body_timeout = body_timeout
        self.refusals = refusals or RefusalLog()
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != "POST":
            await self.inner(scope, receive, send)
            return
        try:
            body, content_type = await self._verified(scope, receive)
        except Refused as refused:
            client = scope.get("client")
            self.refusals.refused(refused.reason, client[0] if client else "unknown", refused.size)
            await _answer(send, refused.status, refused.reason)
            return
        await self.inner(scope, _replay(body, receive), send)

    async def _verified(self, scope: Scope, receive: Receive) -> tuple[bytes, str]:
        headers: dict[bytes, bytes] = {}
        for name, value in scope.get("headers", []):
            headers.setdefault(name.lower(), value)
        timestamp = headers.get(b"x-slack-request-timestamp", b"")
        signature = headers.get(b"x-slack-signature", b"")
        declared = _declared_length(headers)
        if not timestamp or not signature:
            raise Refused(401, "not signed", declared)
        if not _TIMESTAMP.fullmatch(timestamp):
            raise Refused(401, "malformed timestamp", declared)
        if abs(self.clock() - int(timestamp)) > MAX_SKEW:
            raise Refused(401, "timestamp more than 5 minutes off", declared)
        if not _SIGNATURE.fullmatch(signature):
            raise Refused(401, "malformed signature", declared)
        if declared == -1:
            raise Refused(400, "malformed content-length", None)
        if declared is not None and declared > self.max_body:
            raise Refused(413, "body over the limit", declared)
        body = await self._read(receive)
        expected = b"v0=" + hmac.new(self.secret, b"v0:" + timestamp + b":" + body, hashlib.sha256).hexdigest().encode()
        if not hmac.compare_digest(expected, signature):
            raise Refused(401, "bad signature", len(body))
        content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
        mismatch = self.installation.mismatch(payload_identity(body, content_type))
        if mismatch:
            raise Refused(403, f"signed payload for {mismatch}", len(body))
        return body, content_type

    async def _read(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.body_timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise Refused(400, "client went away mid-body", size)
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.max_body:
                        raise Refused(413, "body over the limit", size)
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return b"".join(chunks)
        except TimeoutError:
            raise Refused(408, "body too slow", size) from None


def _declared_length(headers: dict[bytes, bytes]) -> int | None:
    """The ``Content-Length``: None when absent, -1 when not a number."""
    value = headers.get(b"content-length")
    if value is None:
        return None
    return int(value) if value.isdigit() and len(value) <= 15 else -1


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def _answer(send: Send, status: int, reason: str) -> None:
    body = json.dumps({"error": reason}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            # close: a refused body may still be on its way; the connection is not reused for it
            "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def installation_middleware(installation: Installation, refusals: RefusalLog | None = None) -> Callable[..., Any]:
    """The installation check as Bolt middleware, for Socket Mode (no HTTP request for the gate to see)."""
    refusals = refusals or RefusalLog()

    async def check(body: dict[str, Any], next: Callable[[], Awaitable[Any]]) -> Any:
        mismatch = installation.mismatch(identity_of(body or {}))
        if mismatch:
            from slack_bolt.response import BoltResponse

            refusals.refused(f"payload for {mismatch}", "socket mode", None)
            # Acked empty: a Socket Mode envelope that is not acked is sent again, three times.
            return BoltResponse(status=200, body="")
        return await next()

    return check
