"""The ack process of ``numbers-bot serve`` (HTTP mode): verify, answer, hand over; nothing else.

A lean ASGI app, no Bolt on this path: every ``POST /slack/events`` passes the same gate as the
in-process app (``bot.slack.gate``: header, size and time bounds, the signature with Slack's
5-minute tolerance, the installation), then

* ``url_verification`` and ``ssl_check`` are answered here;
* a payload a listener takes gets its answer from the pure functions of ``bot.slack.acks`` (the
  listeners ack through the same ones); when work follows, the raw body and the headers Bolt
  needs are written to the inbox (``bot.inbox``) *before* the answer, and the work process is
  nudged (``bot.supervisor``);
* anything else gets Bolt's own ``404 unhandled request``.

If the inbox cannot take the request the answer is ``503`` (Slack retries, the user sees an
error): a request is never acked and then lost. The work process (``bot.workproc``) runs the
listeners, the fulfilment worker and the outbox. Why two processes: README, "Acks".
"""

from __future__ import annotations

import gc
import os
import json
import logging
import time
import urllib.parse
from typing import Any, Awaitable, Callable

from bot.config import Settings
from bot.inbox import Inbox
from bot.slack import acks
from bot.slack.gate import Installation, SlackGate

__all__ = ["EVENTS_PATH", "HANDED_OVER_HEADERS", "create_front_app", "enabled_provider_names", "tune_gc"]

log = logging.getLogger("bot.front")

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
# What Bolt and the listeners read from the headers: the body's type, and Slack's retry marks
# (``SeenDeliveries``); the signature was checked here and is not checked again.
HANDED_OVER_HEADERS = (b"content-type", b"x-slack-request-timestamp", b"x-slack-retry-num", b"x-slack-retry-reason")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def enabled_provider_names(settings: Settings) -> frozenset[str]:
    """The providers ``bot.app.build_providers`` enables for ``settings``, from the settings alone."""
    if settings.uses_sandbox:
        return frozenset({"acs", "plivo", "webex", "twilio", "telnyx"})
    names = set()
    if settings.acs_connection_string:
        names.add("acs")
    if settings.plivo_auth_id and settings.plivo_auth_token:
        names.add("plivo")
    if settings.webex_access_token:
        names.add("webex")
    if settings.twilio_account_sid and settings.twilio_auth_token:
        names.add("twilio")
    if settings.telnyx_api_key:
        names.add("telnyx")
    return frozenset(names)


def parse_body(body: bytes, content_type: str) -> dict[str, Any] | None:
    """A Slack body in any of its shapes (JSON, form, form with a JSON ``payload``) as Bolt reads it."""
    try:
        if content_type.startswith("application/json"):
            data = json.loads(body)
        else:
            form = dict(urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True))
            data = json.loads(form["payload"]) if "payload" in form else form
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


async def _send(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", content_type)]})
    await send({"type": "http.response.body", "body": body})


class FrontHandler:
    """What runs behind the gate: the answer, and the hand-over when work follows."""

    def __init__(self, settings: Settings, inbox: Inbox, nudge: Callable[[], None], enabled: frozenset[str]):
        self.settings = settings
        self.inbox = inbox
        self.nudge = nudge
        self.enabled = enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != EVENTS_PATH or scope["method"] != "POST":
            await _send(send, 404, b'{"error": "not found"}', b"application/json")
            return
        message = await receive()  # the gate has read the whole body and replays it as one message
        raw: bytes = message.get("body", b"")
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"] if name in HANDED_OVER_HEADERS}
        payload = parse_body(raw, headers.get("content-type", "").lower())
        if payload is None:
            await _send(send, 400, b'{"error": "invalid request"}', b"application/json")
            return
        if payload.get("type") == "url_verification":
            await _send(send, 200, json.dumps({"challenge": payload.get("challenge")}).encode(), b"application/json;charset=utf-8")
            return
        if payload.get("ssl_check") == "1":
            await _send(send, 200, b"", b"text/plain;charset=utf-8")
            return
        answer = acks.ack_for(payload, self.settings, self.enabled)
        if answer is not None and answer.proceed and not self.hand_over(raw, headers):
            await _send(send, 503, b'{"error": "busy, try again"}', b"application/json")
            return
        await _send(send, *acks.http_answer(answer))

    def hand_over(self, raw: bytes, headers: dict[str, str]) -> bool:
        """Into the inbox (before the answer), then a nudge; False when the inbox refused it."""
        try:
            self.inbox.put(raw, headers, time.time())
        except Exception as exc:  # noqa: BLE001 - a full disk or a broken file: refuse, never ack and lose
            log.error("the inbox refused a request (%s); answered 503", type(exc).__name__)
            return False
        self.nudge()
        return True


def create_front_app(
    settings: Settings,
    installation: Installation,
    inbox: Inbox,
    *,
    nudge: Callable[[], None] = lambda: None,
    on_start: Callable[[], Awaitable[None]] | None = None,
    on_stop: Callable[[], Awaitable[None]] | None = None,
    gate_options: dict[str, Any] | None = None,
) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The ack process's ASGI app: ``/healthz``, and the gate then ``FrontHandler`` on ``/slack/events``.

    ``on_start``/``on_stop`` run in the lifespan (``serve`` starts and stops the work process there)."""
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
    handler = FrontHandler(settings, inbox, nudge, enabled_provider_names(settings))
    gate = SlackGate(handler, secret, installation, path=EVENTS_PATH, **(gate_options or {}))

    async def lifespan(receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    if on_start is not None:
                        await on_start()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": f"{type(exc).__name__}: {exc}"})
                    return
                tune_gc()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if on_stop is not None:
                    await on_stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] == "http" and scope["path"] == HEALTH_PATH and scope["method"] in ("GET", "HEAD"):
            await _send(send, 200, b"ok\n", b"text/plain; charset=utf-8")
            return
        await gate(scope, receive, send)

    return app


def tune_gc() -> None:
    """After start-up: what start-up made lives for ever, so move it out of the collector's sight.

    ``gc.freeze()`` puts every object alive now into a permanent generation that no collection
    scans again; the front makes almost nothing that outlives a request, so later collections
    only walk the few young objects of requests in progress (README, "Acks": measured)."""
    gc.collect()
    gc.freeze()


def serve_split(settings: Settings) -> None:
    """``numbers-bot serve`` in HTTP mode: this process acks on ``$PORT``, a child does the work."""
    import asyncio

    import uvicorn

    from bot.inbox import claim_slot, default_inbox_path
    from bot.server import _learn, uvicorn_config
    from bot.slack.app import slack_client
    from bot.supervisor import WorkProcess

    # Ask Slack who we are before binding the port: a refused token is one line from the CLI.
    installation = asyncio.run(_learn(slack_client(settings)))
    path, lock_fd = claim_slot(default_inbox_path(settings).resolve())
    inbox = Inbox(path, checkpoints=False)
    work = WorkProcess(path, lock_fd)
    app = create_front_app(settings, installation, inbox, nudge=work.nudge, on_start=work.start, on_stop=work.stop)
    config = uvicorn_config(app, host="0.0.0.0", port=settings.port, log_level=settings.log_level.lower())
    log.info("numbers-bot: HTTP on port %s, path %s; acks here, work in a child process; inbox %s", settings.port, EVENTS_PATH, path.name)
    try:
        uvicorn.Server(config).run()
    finally:
        inbox.close()
        os.close(lock_fd)
