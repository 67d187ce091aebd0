"""Unexpected errors in listeners: logged without secrets or payloads, and answered to the user.

Every listener is wrapped in ``answered(deps)``. Bolt has its own error path,
but with ``process_before_response=False`` a listener that fails within a few
milliseconds of acking makes Bolt replace the ack it already had with a 404
("didn't call ack()") — Slack would show the user a timeout instead of our
words. So errors are caught here, where the ack has certainly been sent, and
Bolt's ``@app.error`` only sees what fails outside a listener.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
from typing import Any, Awaitable, Callable

from bot.slack.render.modals import read_metadata
from bot.slack.render.notices import note
from bot.slack.deps import SlackDeps
from bot.slack.origin import Origin

log = logging.getLogger("bot.slack")

Listener = Callable[..., Awaitable[None]]


def answered(deps: SlackDeps) -> Callable[[Listener], Listener]:
    def decorate(listener: Listener) -> Listener:
        @functools.wraps(listener)  # Bolt reads the wrapped function's argument names to inject them
        async def guarded(**kwargs: Any) -> None:
            if deps.in_flight is not None:
                deps.in_flight.track(asyncio.current_task())  # the post-ack task: stop waits for it
            try:
                await listener(**kwargs)
            except Exception as exc:
                ack = kwargs.get("ack")
                if ack is not None and getattr(ack, "response", None) is None:
                    # Failed before acking: ack now so that Slack does not show a timeout on top.
                    await ack()
                await report(deps, exc, kwargs.get("body") or {})

        return guarded

    return decorate


async def report(deps: SlackDeps, error: BaseException, body: dict[str, Any]) -> str:
    """Log ``error`` with a short reference and tell the user that reference; returns it."""
    ref = secrets.token_hex(3)
    log.error("listener failed [ref %s] on %s: %s", ref, describe(body), type(error).__name__, exc_info=error)
    user = user_of(body)
    if not isinstance(user, str):
        return ref
    try:
        origin = origin_of(body, user, deps)
    except Exception:  # a body odd enough to have failed the listener may fail here too: DM the user instead
        origin = Origin(user=user)
    try:
        await deps.reply(
            user,
            note(
                f":boom: Something went wrong on my side (ref `{ref}`). It is logged; try again, and if it keeps "
                "happening tell whoever runs numbers-bot the ref."
            ),
            response_url=origin.response_url,
            channel=origin.channel,
        )
    except Exception:
        log.exception("could not tell %s about error ref %s", user, ref)
    return ref


def user_of(body: dict[str, Any]) -> str | None:
    if body.get("user_id"):
        return body["user_id"]
    user = body.get("user")
    if isinstance(user, dict) and user.get("id"):
        return user["id"]
    event = body.get("event")
    return event.get("user") if isinstance(event, dict) else None


def origin_of(body: dict[str, Any], user: str, deps: SlackDeps) -> Origin:
    if body.get("command"):
        return Origin.from_command(body)
    if body.get("type") == "block_actions":
        return Origin.from_action(body, deps.settings.approval_channel)
    if body.get("type") == "view_submission":
        meta = read_metadata((body.get("view") or {}).get("private_metadata"))
        return Origin.from_metadata(user, meta)
    return Origin(user=user)


def describe(body: dict[str, Any]) -> str:
    """What kind of request failed, for the log: never the body itself (it carries tokens and user text).

    Reads the body defensively: it runs on the error path, for bodies that may have failed for their shape."""

    def field(node: Any, key: str) -> str:
        value = node.get(key) if isinstance(node, dict) else None
        return str(value)[:80]

    if body.get("command"):
        return f"command {field(body, 'command')}"
    kind = body.get("type") or "request"
    if kind == "block_actions":
        actions = body.get("actions")
        return f"block_actions {field(actions[0] if isinstance(actions, list) and actions else None, 'action_id')}"
    if kind == "view_submission":
        return f"view_submission {field(body.get('view'), 'callback_id')}"
    if kind == "event_callback":
        return f"event {field(body.get('event'), 'type')}"
    return str(kind)[:80]
