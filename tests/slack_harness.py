"""Offline Slack for the Slack-side tests: a recording Web API server, a request signer and payload
builders in Slack's real shapes, and the real ASGI app under a real uvicorn on 127.0.0.1.

* ``RecordingSlack``: an aiohttp server on an ephemeral port that the bot reaches through
  ``SLACK_API_URL``. It records every Web API call (method, params from the query string, form or
  JSON body, headers), answers realistic bodies (``chat.postMessage`` → ``{ok, channel, ts}``, …),
  serves the upload URLs of ``files_upload_v2`` and the ``response_url`` of commands and clicks, and
  injects faults per method (``slack.fault("chat.update", status=429, headers={"Retry-After": "1"})``,
  ``slack.fault("views.open", error="expired_trigger_id")``).
* ``SlackSigner`` signs requests as Slack does: ``v0=hex(HMAC-SHA256(secret, "v0:ts:body"))``.
* ``slash_command`` / ``block_actions`` / ``view_submission`` / ``app_home_opened`` build the bodies
  Slack sends (form-encoded command; ``payload=`` JSON for interactivity; JSON event callback).
* ``SlackBot`` runs ``bot.server.create_asgi_app`` under uvicorn in the test's event loop, with the
  sandbox providers in memory and a temporary SQLite store, and drives it over real HTTP.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import math
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Callable

import httpx
import pytest
import uvicorn
from aiohttp import web

from bot.sandbox import SandboxServices
from bot.sandbox.common import Clock
from bot.server import create_asgi_app, uvicorn_config
from bot.slack.render.kit import as_text

BOT_TOKEN = "xoxb-1111-2222-slackharnesstoken"
APP_TOKEN = "xapp-1-A0NUMBERS-3333-slackharnessapptoken"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TEAM_ID = "T0NUMBERS"
APP_ID = "A0NUMBERS"
BOT_USER = "UBOTNUMBERS"
APPROVAL_CHANNEL = "CAPPROVALS"
GENERAL = "CGENERAL01"

REQUESTER, APPROVER, APPROVER2, OUTSIDER, GROUP_MEMBER = "UREQUESTER", "UAPPROVER1", "UAPPROVER2", "UOUTSIDER", "UGROUPIE1"
APPROVER_GROUP = "SAPPROVERS"
EMAILS = {REQUESTER: "alice@example.com", APPROVER: "admin@example.com", OUTSIDER: "nobody@example.com"}


# --- the recording Web API server ---------------------------------------------------------


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    at: float
    status: int = 200
    answer: dict[str, Any] = field(default_factory=dict)

    def text(self) -> str:
        """What a person reads in a posted message: fallback text plus the blocks rendered as text."""
        blocks = self.blocks()
        return as_text(blocks) if blocks else str(self.params.get("text", ""))

    def blocks(self) -> list[dict[str, Any]]:
        raw = self.params.get("blocks")
        if isinstance(raw, str):
            raw = json.loads(raw)
        return raw or []

    def view(self) -> dict[str, Any]:
        raw = self.params.get("view")
        return json.loads(raw) if isinstance(raw, str) else (raw or {})


# The bot scopes of manifest.yml (tests/test_slack_manifest.py checks they agree).
BOT_SCOPES = {
    "commands", "chat:write", "im:write", "users:read", "users:read.email", "usergroups:read", "files:write",
    "channels:read", "groups:read",
}


class RateLimits:
    """Slack's limits, scaled by ``speed`` so a test of minutes runs in seconds: ``chat.postMessage``
    about one per second per channel with a short burst; ``chat.update`` (Tier 3) ``per_minute`` calls a
    minute. A call over the limit gets HTTP 429 with ``Retry-After``, as from Slack."""

    def __init__(self, *, speed: float = 1.0, burst: int = 3, per_minute: int = 50):
        self.speed = speed
        self.burst = burst
        self.per_minute = per_minute
        self._buckets: dict[str, tuple[float, float]] = {}
        self.refused = 0

    def take(self, method: str, channel: str) -> float:
        if method == "chat.postMessage":
            key, rate, size = f"post:{channel}", 1.0 * self.speed, float(self.burst)
        elif method == "chat.update":
            key, rate, size = "update", self.per_minute / 60.0 * self.speed, self.per_minute / 10.0
        else:
            return 0.0
        now = time.monotonic()
        tokens, at = self._buckets.get(key, (size, now))
        tokens = min(size, tokens + (now - at) * rate)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        self.refused += 1
        return (1 - tokens) / rate


@dataclass
class Fault:
    method: str
    status: int = 200
    error: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1


class RecordingSlack:
    """A local stand-in for ``https://slack.com/api/`` that records and answers like Slack."""

    def __init__(
        self,
        *,
        token: str = BOT_TOKEN,
        emails: dict[str, str] | None = None,
        groups: dict[str, list[str]] | None = None,
    ):
        self.token = token
        self.emails = dict(EMAILS if emails is None else emails)
        self.groups = {APPROVER_GROUP: [GROUP_MEMBER]} if groups is None else groups
        self.calls: list[Call] = []
        self.responses: list[tuple[str, dict[str, Any]]] = []  # (response_url key, JSON posted)
        self.uploads: dict[str, bytes] = {}
        self.upload_lengths: dict[str, str | None] = {}  # the Content-Length each upload declared
        self.upload_digest = False  # True: record uploads as b"<length>:<sha256>" instead of their bytes
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}  # (channel, ts) → the message as it stands
        self.faults: list[Fault] = []
        self.response_url_status = 200
        self._ts = itertools.count(1)
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.base = ""
        self._changed = asyncio.Event()
        self.app_token = APP_TOKEN
        self.sockets: list[web.WebSocketResponse] = []  # Socket Mode connections from the bot
        self.socket_replies: dict[str, dict[str, Any]] = {}  # envelope_id → what the bot acked with
        self.scopes: set[str] = set(BOT_SCOPES)  # what auth.test's x-oauth-scopes header says the token has
        self.left: dict[str, str] = {}  # channel → the error posting there gives (the bot was removed, …)
        self.down_until = 0.0  # monotonic time until which every method answers 503 (an outage)
        self.limits: RateLimits | None = None  # Slack's rate limits, when the test wants them enforced
        self.block_text_max = 12000  # msg_blocks_too_long above this many characters of block text

    # --- lifecycle ---------------------------------------------------------------

    async def start(self) -> "RecordingSlack":
        app = web.Application()
        # slack_sdk sends most methods as POST and a few (users.info, …) as GET with a query string.
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_get("/socket", self._socket)
        app.router.add_post("/response/{key}", self._response)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return f"{self.base}/api/"

    def response_url(self, name: str = "r") -> str:
        return f"{self.base}/response/{name}-{next(self._ids)}"

    # --- test controls ---------------------------------------------------------------

    def fault(self, method: str, *, status: int = 200, error: str | None = None, headers: dict[str, str] | None = None, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` fail: HTTP ``status`` (e.g. 429 + Retry-After) or ``ok: false, error``."""
        self.faults.append(Fault(method, status, error, dict(headers or {}), times))

    def of(self, method: str, **match: Any) -> list[Call]:
        """Successful and failed calls of ``method`` whose params contain ``match``."""
        return [c for c in self.calls if c.method == method and all(c.params.get(k) == v for k, v in match.items())]

    def posted_to(self, channel: str) -> list[Call]:
        return [c for c in self.of("chat.postMessage") if c.params.get("channel") == channel and c.status == 200]

    def dms(self, user: str) -> list[Call]:
        """Messages posted to a user id (the app's DM with them)."""
        return self.posted_to(user)

    def response_posts(self, url: str | None = None) -> list[dict[str, Any]]:
        key = url.rsplit("/", 1)[-1] if url else None
        return [body for k, body in self.responses if key is None or k == key]

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
        """Wait until ``predicate()`` is truthy (re-checked on every recorded call), and return it."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            left = deadline - time.monotonic()
            if left <= 0:
                methods = [c.method for c in self.calls]
                raise AssertionError(f"timed out waiting for {what or predicate}; calls so far: {methods}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=min(left, 0.05))
            except asyncio.TimeoutError:
                pass

    # --- handlers -------------------------------------------------------------------

    def _next_ts(self) -> str:
        n = next(self._ts)
        return f"{1764000000 + n}.{n:06d}"

    @staticmethod
    def _dm_channel(channel: str) -> str:
        # Posting to a user id goes to the app's DM with them, whose id starts with D.
        return "D" + channel[1:] if channel[:1] in ("U", "W") else channel

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            body = await request.json()
            params.update(body or {})
        elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
        return params

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        headers = {k.lower(): v for k, v in request.headers.items()}
        call = Call(method, params, headers, time.monotonic())
        self.calls.append(call)
        try:
            status, answer, extra = self._answer(method, params, headers)
        except Exception as exc:  # a harness bug must show up as a failing call, not a hang
            status, answer, extra = 200, {"ok": False, "error": f"harness_error: {exc!r}"}, {}
        call.status, call.answer = status, answer
        self._changed.set()
        return web.json_response(answer, status=status, headers=extra)

    def outage(self, seconds: float) -> None:
        """Every method answers HTTP 503 for the next ``seconds``."""
        self.down_until = time.monotonic() + seconds

    def remove_bot_from(self, channel: str, error: str = "not_in_channel") -> None:
        self.left[channel] = error

    def _answer(self, method: str, params: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, Any], dict[str, str]]:
        if time.monotonic() < self.down_until:
            return 503, {"ok": False, "error": "service_unavailable"}, {}
        if self.limits is not None:
            wait = self.limits.take(method, str(params.get("channel", "")))
            if wait > 0:
                return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(max(1, math.ceil(wait)))}
        if method in ("chat.postMessage", "chat.update") and params.get("channel") in self.left:
            return 200, {"ok": False, "error": self.left[params["channel"]]}, {}
        if method in ("chat.postMessage", "chat.update"):
            raw = params.get("blocks") or []
            if isinstance(raw, str):
                raw = json.loads(raw)
            if len(as_text(raw)) > self.block_text_max:
                return 200, {"ok": False, "error": "msg_blocks_too_long"}, {}
        for fault in self.faults:
            if fault.method == method and fault.times != 0:
                fault.times -= 1
                if fault.status != 200:
                    return fault.status, {"ok": False, "error": fault.error or "ratelimited"}, fault.headers
                return 200, {"ok": False, "error": fault.error}, fault.headers
        # apps.connections.open is the one method called with the app-level token (Socket Mode).
        token = self.app_token if method == "apps.connections.open" else self.token
        if headers.get("authorization") != f"Bearer {token}":
            return 200, {"ok": False, "error": "not_authed" if "authorization" not in headers else "invalid_auth"}, {}
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return 200, {"ok": False, "error": "unknown_method"}, {}
        if method == "auth.test":  # Slack names the token's scopes in a header of every answer
            return 200, handler(params), {"x-oauth-scopes": ",".join(sorted(self.scopes))}
        return 200, handler(params), {}

    def _m_auth_test(self, p: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://numbers-test.slack.com/",
            "team": "Numbers Test",
            "user": "numbers-bot",
            "team_id": TEAM_ID,
            "user_id": BOT_USER,
            "bot_id": "BNUMBERS01",
            "is_enterprise_install": False,
        }

    def _m_bots_info(self, p: dict[str, Any]) -> dict[str, Any]:
        if p.get("bot") != "BNUMBERS01":
            return {"ok": False, "error": "bot_not_found"}
        return {"ok": True, "bot": {"id": "BNUMBERS01", "deleted": False, "name": "numbers-bot", "app_id": APP_ID, "user_id": BOT_USER}}

    def _m_apps_connections_open(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": self.base.replace("http://", "ws://") + "/socket"}

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        """Socket Mode as Slack runs it: say hello, push envelopes, read the acks (``envelope_id`` + payload)."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets.append(ws)
        self._changed.set()
        await ws.send_json({"type": "hello", "num_connections": 1, "connection_info": {"app_id": APP_ID}})
        async for message in ws:
            if message.type == web.WSMsgType.TEXT:
                reply = json.loads(message.data)
                if reply.get("envelope_id"):
                    self.socket_replies[reply["envelope_id"]] = reply.get("payload") or {}
                    self._changed.set()
        return ws

    async def push(self, kind: str, payload: dict[str, Any]) -> str:
        """Send one envelope (``slash_commands``, ``interactive``, ``events_api``) to the connected bot."""
        envelope_id = f"env-{next(self._ids)}"
        await self.sockets[-1].send_json(
            {"envelope_id": envelope_id, "payload": payload, "type": kind, "accepts_response_payload": kind != "events_api", "retry_attempt": 0, "retry_reason": ""}
        )
        return envelope_id

    def _m_chat_postMessage(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        channel, ts = self._dm_channel(p["channel"]), self._next_ts()
        message = {"type": "message", "user": BOT_USER, "ts": ts, "text": p.get("text", ""), "blocks": p.get("blocks", [])}
        if p.get("thread_ts"):
            message["thread_ts"] = p["thread_ts"]
        self.messages[(channel, ts)] = message
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _m_chat_update(self, p: dict[str, Any]) -> dict[str, Any]:
        key = (p.get("channel"), p.get("ts"))
        if key not in self.messages:
            return {"ok": False, "error": "message_not_found"}
        self.messages[key].update({"text": p.get("text", ""), "blocks": p.get("blocks", [])})
        return {"ok": True, "channel": key[0], "ts": key[1], "text": p.get("text", "")}

    def _m_chat_postEphemeral(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "message_ts": self._next_ts()}

    def _m_chat_getPermalink(self, p: dict[str, Any]) -> dict[str, Any]:
        channel, ts = p.get("channel"), str(p.get("message_ts", ""))
        return {
            "ok": True,
            "channel": channel,
            "permalink": f"https://numbers-test.slack.com/archives/{channel}/p{ts.replace('.', '')}",
        }

    def _view(self, p: dict[str, Any]) -> dict[str, Any]:
        view = p.get("view")
        view = json.loads(view) if isinstance(view, str) else dict(view or {})
        return {"ok": True, "view": {**view, "id": f"V{next(self._ids):08d}", "team_id": TEAM_ID, "app_id": APP_ID}}

    def _m_views_open(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("trigger_id"):
            return {"ok": False, "error": "invalid_arguments"}
        return self._view(p)

    def _m_views_update(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._view(p)

    def _m_views_publish(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("user_id"):
            return {"ok": False, "error": "invalid_arguments"}
        return self._view(p)

    def _m_users_info(self, p: dict[str, Any]) -> dict[str, Any]:
        user = p.get("user", "")
        if not str(user).startswith(("U", "W")):
            return {"ok": False, "error": "user_not_found"}
        profile: dict[str, Any] = {"real_name": user.title(), "display_name": user.lower()}
        if user in self.emails:
            profile["email"] = self.emails[user]
        return {"ok": True, "user": {"id": user, "team_id": TEAM_ID, "name": user.lower(), "profile": profile}}

    def _m_usergroups_users_list(self, p: dict[str, Any]) -> dict[str, Any]:
        group = p.get("usergroup")
        if group not in self.groups:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(self.groups[group])}

    def _m_conversations_info(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = str(p.get("channel", ""))
        if self.left.get(channel) == "channel_not_found" or not channel.startswith(("C", "G")):
            return {"ok": False, "error": "channel_not_found"}
        archived = self.left.get(channel) == "is_archived"
        return {"ok": True, "channel": {"id": channel, "name": channel.lower(), "is_member": channel not in self.left, "is_archived": archived}}

    def _m_conversations_open(self, p: dict[str, Any]) -> dict[str, Any]:
        users = str(p.get("users", ""))
        if not users:
            return {"ok": False, "error": "users_list_not_supplied"}
        return {"ok": True, "channel": {"id": self._dm_channel(users.split(",")[0])}}

    def _m_files_getUploadURLExternal(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("filename") or not str(p.get("length", "")).isdigit():
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F{next(self._ids):08d}"
        return {"ok": True, "upload_url": f"{self.base}/upload/{file_id}", "file_id": file_id}

    def _m_files_completeUploadExternal(self, p: dict[str, Any]) -> dict[str, Any]:
        files = json.loads(p.get("files") or "[]")
        missing = [f["id"] for f in files if f["id"] not in self.uploads]
        if not files or missing:
            return {"ok": False, "error": "file_not_found"}
        return {"ok": True, "files": [{"id": f["id"], "title": f.get("title")} for f in files]}

    async def _upload(self, request: web.Request) -> web.Response:
        if self.upload_digest:
            # Large uploads: keep a length and a SHA-256, not the bytes (memory tests measure the bot, not us).
            digest, size = hashlib.sha256(), 0
            async for chunk in request.content.iter_chunked(65536):
                digest.update(chunk)
                size += len(chunk)
            self.uploads[request.match_info["file_id"]] = f"{size}:{digest.hexdigest()}".encode()
        else:
            self.uploads[request.match_info["file_id"]] = await request.read()
        self.upload_lengths[request.match_info["file_id"]] = request.headers.get("Content-Length")
        self._changed.set()
        return web.Response(text=f"OK - {len(self.uploads[request.match_info['file_id']])}")

    async def _response(self, request: web.Request) -> web.Response:
        if self.response_url_status != 200:
            return web.Response(status=self.response_url_status, text="expired_url")
        self.responses.append((request.match_info["key"], await request.json()))
        self._changed.set()
        return web.Response(text="ok")


# --- signing and payloads -------------------------------------------------------------------


class SlackSigner:
    def __init__(self, secret: str = SIGNING_SECRET):
        self.secret = secret

    def signature(self, body: bytes, timestamp: int) -> str:
        base = b"v0:" + str(timestamp).encode() + b":" + body
        return "v0=" + hmac.new(self.secret.encode(), base, hashlib.sha256).hexdigest()

    def headers(self, body: bytes, content_type: str, *, timestamp: int | None = None) -> dict[str, str]:
        timestamp = int(time.time()) if timestamp is None else timestamp
        return {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": str(timestamp),
            "X-Slack-Signature": self.signature(body, timestamp),
        }


FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


def _trigger() -> str:
    return f"{int(time.time())}.{TEAM_ID}.{hashlib.md5(str(time.monotonic_ns()).encode()).hexdigest()}"


def slash_command(text: str, *, user: str, channel: str = GENERAL, response_url: str, trigger_id: str | None = None) -> bytes:
    return urllib.parse.urlencode(
        {
            "token": "verificationTokenNotUsed",
            "team_id": TEAM_ID,
            "team_domain": "numbers-test",
            "channel_id": channel,
            "channel_name": "general",
            "user_id": user,
            "user_name": user.lower(),
            "command": "/numbers",
            "text": text,
            "api_app_id": APP_ID,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger_id or _trigger(),
        }
    ).encode()


def _user(user: str) -> dict[str, Any]:
    return {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM_ID}


def block_actions(
    action_id: str,
    value: str,
    *,
    user: str,
    where: str = "message",  # message | ephemeral | home
    channel: str = GENERAL,
    message_ts: str = "1764000000.000001",
    response_url: str | None = None,
    block_id: str = "b1",
) -> bytes:
    action = {
        "action_id": action_id,
        "block_id": block_id,
        "text": {"type": "plain_text", "text": "Button", "emoji": True},
        "value": value,
        "type": "button",
        "action_ts": f"{time.time():.6f}",
    }
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": _user(user),
        "api_app_id": APP_ID,
        "token": "verificationTokenNotUsed",
        "trigger_id": _trigger(),
        "team": {"id": TEAM_ID, "domain": "numbers-test"},
        "enterprise": None,
        "is_enterprise_install": False,
        "actions": [action],
    }
    if where == "home":
        payload["container"] = {"type": "view", "view_id": "VHOME0001"}
        payload["view"] = {
            "id": "VHOME0001",
            "team_id": TEAM_ID,
            "type": "home",
            "blocks": [],
            "private_metadata": "",
            "callback_id": "",
            "state": {"values": {}},
            "hash": "1764000000.abcdef",
            "app_id": APP_ID,
            "bot_id": "BNUMBERS01",
        }
    else:
        ephemeral = where == "ephemeral"
        payload["container"] = {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "is_ephemeral": ephemeral,
        }
        payload["channel"] = {"id": channel, "name": "general"}
        if not ephemeral:
            payload["message"] = {"type": "message", "user": BOT_USER, "ts": message_ts, "text": "card", "blocks": []}
        payload["response_url"] = response_url or f"https://hooks.slack.invalid/actions/{TEAM_ID}/1/x"
        payload["state"] = {"values": {}}
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()


def text_value(value: str) -> dict[str, Any]:
    return {"type": "plain_text_input", "value": value}


def number_value(value: str | int) -> dict[str, Any]:
    return {"type": "number_input", "value": str(value)}


def select_value(value: str, label: str | None = None) -> dict[str, Any]:
    return {
        "type": "static_select",
        "selected_option": {"text": {"type": "plain_text", "text": label or value, "emoji": True}, "value": value},
    }


def checkboxes_value(*values: str) -> dict[str, Any]:
    return {
        "type": "checkboxes",
        "selected_options": [{"text": {"type": "plain_text", "text": v, "emoji": True}, "value": v} for v in values],
    }


def view_submission(callback_id: str, values: dict[str, dict[str, Any]], *, user: str, private_metadata: str = "") -> bytes:
    """``values``: {block_id: element value}; block and action ids are the same in numbers-bot's modals."""
    view = {
        "id": "VMODAL0001",
        "team_id": TEAM_ID,
        "type": "modal",
        "blocks": [],
        "private_metadata": private_metadata,
        "callback_id": callback_id,
        "state": {"values": {block: {block: element} for block, element in values.items()}},
        "hash": "1764000000.zyx",
        "title": {"type": "plain_text", "text": "numbers-bot"},
        "clear_on_close": False,
        "notify_on_close": False,
        "close": None,
        "submit": {"type": "plain_text", "text": "Submit"},
        "previous_view_id": None,
        "root_view_id": "VMODAL0001",
        "app_id": APP_ID,
        "external_id": "",
        "app_installed_team_id": TEAM_ID,
        "bot_id": "BNUMBERS01",
    }
    payload = {
        "type": "view_submission",
        "team": {"id": TEAM_ID, "domain": "numbers-test"},
        "user": _user(user),
        "api_app_id": APP_ID,
        "token": "verificationTokenNotUsed",
        "trigger_id": _trigger(),
        "view": view,
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()


def app_home_opened(user: str, tab: str = "home") -> bytes:
    return json.dumps(
        {
            "token": "verificationTokenNotUsed",
            "team_id": TEAM_ID,
            "api_app_id": APP_ID,
            "event": {"type": "app_home_opened", "user": user, "channel": "D" + user[1:], "tab": tab, "event_ts": f"{time.time():.6f}"},
            "type": "event_callback",
            "event_id": f"Ev{time.monotonic_ns()}",
            "event_time": int(time.time()),
            "authorizations": [{"team_id": TEAM_ID, "user_id": BOT_USER, "is_bot": True}],
        }
    ).encode()


# --- the running bot ------------------------------------------------------------------------


# Bolt runs a listener's work after the ack in a task of this coroutine (slack_bolt.listener.asyncio_runner).
LISTENER_TASK = "run_ack_function_asynchronously"


class SlackBot:
    """The real ASGI app under uvicorn on 127.0.0.1, driven with signed Slack requests."""

    def __init__(self, settings: Any, slack: RecordingSlack, sandbox: SandboxServices, clock: Clock, *, limits: dict[str, Any] | None = None, **overrides: Any):
        self.settings = settings
        self.slack = slack
        self.sandbox = sandbox
        self.clock = clock
        self.signer = SlackSigner(SIGNING_SECRET)
        self.app, self.components = create_asgi_app(settings, sandbox=sandbox, clock=clock.now, **overrides)
        self.limits = limits or {}  # header_timeout=, max_connections= (bot.http_limits)
        self.server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.url = ""
        self.http = httpx.AsyncClient(timeout=30)

    @property
    def store(self) -> Any:
        return self.components.store

    @property
    def service(self) -> Any:
        return self.components.service

    async def start(self) -> "SlackBot":
        config = uvicorn_config(self.app, host="127.0.0.1", port=0, log_level="warning", **self.limits)
        self.server = uvicorn.Server(config)
        self._task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if self._task.done():
                self._task.result()  # raise why it could not start
            await asyncio.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        await self.http.aclose()
        if self.server is not None and self._task is not None:
            self.server.should_exit = True
            await asyncio.wait_for(self._task, timeout=15)

    # --- sending what Slack sends ---------------------------------------------------------

    async def post(self, body: bytes, content_type: str = FORM, *, headers: dict[str, str] | None = None, path: str = "/slack/events") -> httpx.Response:
        return await self.http.post(self.url + path, content=body, headers=headers or self.signer.headers(body, content_type))

    async def command(self, text: str, *, user: str = REQUESTER, channel: str = GENERAL) -> tuple[httpx.Response, str]:
        response_url = self.slack.response_url("cmd")
        response = await self.post(slash_command(text, user=user, channel=channel, response_url=response_url))
        return response, response_url

    async def click(self, action_id: str, value: str, *, user: str, where: str = "message", channel: str = GENERAL, message_ts: str = "1764000000.000001") -> tuple[httpx.Response, str]:
        response_url = self.slack.response_url("act")
        body = block_actions(action_id, value, user=user, where=where, channel=channel, message_ts=message_ts, response_url=response_url)
        return await self.post(body), response_url

    async def submit(self, callback_id: str, values: dict[str, dict[str, Any]], *, user: str, private_metadata: str = "") -> httpx.Response:
        return await self.post(view_submission(callback_id, values, user=user, private_metadata=private_metadata))

    async def open_home(self, user: str) -> httpx.Response:
        return await self.post(app_home_opened(user), JSON)

    # --- waiting for what the bot does ------------------------------------------------------

    async def response_to(self, url: str, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        return await self.slack.wait_for(lambda: len(self.slack.response_posts(url)) >= count and self.slack.response_posts(url), timeout, f"{count} post(s) to {url}")

    async def settled(self, timeout: float = 10.0) -> None:
        """Wait until the bot has no work under way: every Bolt listener's post-ack task has ended
        and the worker runs no drive. What it has not done by then, it was never going to do."""
        deadline = time.monotonic() + timeout
        while True:
            listeners = [
                t for t in asyncio.all_tasks()
                if not t.done() and getattr(t.get_coro(), "__qualname__", "").endswith(LISTENER_TASK)
            ]
            if not listeners and not self.components.worker._tasks:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the bot still had work under way after {timeout}s: {listeners}")
            await asyncio.sleep(0.01)

    async def state_of(self, request_id: int, states: set[str], timeout: float = 15.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            request = (await self.service.get(request_id))
            if request.state.value in states:
                return request
            if time.monotonic() > deadline:
                raise AssertionError(f"request {request_id} is {request.state.value}, not in {states}")
            await asyncio.sleep(0.02)


def bot_settings(settings_env: Callable[..., Any], slack: RecordingSlack, **overrides: Any) -> Any:
    env = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "NUMBERS_APPROVAL_CHANNEL": APPROVAL_CHANNEL,
        "NUMBERS_APPROVERS": f"{APPROVER},{APPROVER2},{APPROVER_GROUP}",
        "NUMBERS_SANDBOX": True,
        "NUMBERS_POLL_INTERVAL": 0.05,
    }
    env.update(overrides)
    return settings_env(**env)


async def start_bot(settings_env: Callable[..., Any], *, latency: float = 0.0, slack: RecordingSlack | None = None, **overrides: Any) -> SlackBot:
    slack = slack or await RecordingSlack().start()
    settings = bot_settings(settings_env, slack, **overrides)
    clock = Clock()
    sandbox = SandboxServices.create(None, clock=clock, latency=latency)
    return await SlackBot(settings, slack, sandbox, clock).start()


@pytest.fixture
async def slack_bot(settings_env):
    """A running bot with default settings (sandbox providers, one approval)."""
    bot = await start_bot(settings_env)
    yield bot
    await bot.stop()
    await bot.slack.stop()


@pytest.fixture
async def slack_bot_factory(settings_env):
    """``await slack_bot_factory(NUMBERS_REQUIRED_APPROVALS=2, latency=2.0)``: a bot with other settings."""
    made: list[SlackBot] = []

    async def factory(*, latency: float = 0.0, **overrides: Any) -> SlackBot:
        bot = await start_bot(settings_env, latency=latency, **overrides)
        made.append(bot)
        return bot

    yield factory
    for bot in made:
        await bot.stop()
        await bot.slack.stop()


# --- reading what the bot posted ------------------------------------------------------------


def offers_in(post: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(provider name as shown, offer id, section text) of every offer with a Request button."""
    found = []
    for block in post.get("blocks", []):
        accessory = block.get("accessory") or {}
        if accessory.get("action_id") == "numbers_offer_request":
            text = block["text"]["text"]
            found.append((text.split("*")[1], accessory["value"], text))
    return found


def has_buttons(blocks: list[dict[str, Any]]) -> bool:
    return any(b.get("type") == "actions" for b in blocks)


def card_text(slack: RecordingSlack, ts: str, channel: str = APPROVAL_CHANNEL) -> str:
    return as_text(slack.messages[(channel, ts)]["blocks"])
