"""Answering the user where they acted: where a request came from, the routes back, and failures.

* ``Origin``: where a command, click or form came from, so the answer goes back
  to the same place. A click on the App Home has no channel and no
  ``response_url``: the answer there is a notice at the top of a re-published
  Home tab (``publish_home``). Everything else is answered with
  ``SlackDeps.reply`` (response_url → ephemeral → DM).
* ``open_modal``: a form, or words saying why Slack did not open it.
* ``answered``: unexpected errors in listeners, logged without secrets or
  payloads, and answered to the user. Bolt has its own error path, but with
  ``process_before_response=False`` a listener that fails within a few
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
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from slack_sdk.errors import SlackApiError

from bot.slack.api_errors import slack_error
from bot.slack.deps import SlackDeps
from bot.slack.render import home, modals, notices
from bot.slack.render.kit import Message

__all__ = ["HOME_PENDING_LIMIT", "Origin", "answered", "describe", "open_modal", "publish_home", "report", "tell", "user_of"]

log = logging.getLogger("bot.slack")

Listener = Callable[..., Awaitable[None]]

HOME_PENDING_LIMIT = 60  # more than fit in 100 blocks, so the view can say how many more there are


@dataclass(frozen=True)
class Origin:
    user: str
    response_url: str | None = None
    channel: str | None = None
    home: bool = False  # clicked on the App Home tab
    ephemeral: bool = False  # clicked in an ephemeral message (a search result, `pending`)
    card: bool = False  # clicked on an approval card

    @classmethod
    def from_command(cls, body: dict[str, Any]) -> "Origin":
        return cls(user=body["user_id"], response_url=body.get("response_url"), channel=body.get("channel_id"))

    @classmethod
    def from_action(cls, body: dict[str, Any], approval_channel: str | None = None) -> "Origin":
        container = body.get("container") or {}
        view = body.get("view") or {}
        channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
        home = container.get("type") == "view" and view.get("type") == "home"
        ephemeral = bool(container.get("is_ephemeral"))
        card = (
            container.get("type") == "message" and not ephemeral and channel is not None and channel == approval_channel
        )
        return cls(
            user=body["user"]["id"],
            response_url=body.get("response_url"),
            channel=channel,
            home=home,
            ephemeral=ephemeral,
            card=card,
        )

    @classmethod
    def from_metadata(cls, user: str, meta: dict[str, Any]) -> "Origin":
        return cls(
            user=user,
            response_url=meta.get("response_url"),
            channel=meta.get("channel"),
            home=bool(meta.get("home")),
        )

    def metadata(self, **values: Any) -> str:
        """``private_metadata`` for a modal opened from here, so its submission can answer here."""
        return modals.metadata(
            response_url=self.response_url, channel=self.channel, home=True if self.home else None, **values
        )


async def tell(deps: SlackDeps, origin: Origin, message: Message, *, home_notice: str | None = None) -> None:
    """Answer the user where they acted: a Home notice for Home clicks, else ``deps.reply``."""
    if origin.home:
        await publish_home(deps, origin.user, notice=home_notice or message.mrkdwn())
        return
    await deps.reply(origin.user, message, response_url=origin.response_url, channel=origin.channel)


async def publish_home(deps: SlackDeps, user: str, *, notice: str | None = None) -> None:
    """The Home tab for ``user``: on ``app_home_opened`` and after an action taken there (so its queue
    never offers a button for a request that was just decided). Approver status is looked up each time."""
    lists = await deps.service.home_lists(user, pending_limit=HOME_PENDING_LIMIT, mine_limit=10)
    view = home.home_view(user, lists.mine, lists.pending, deps.render, notice=notice, numbers=lists.numbers)
    try:
        await deps.client.views_publish(user_id=user, view=view.to_dict())
    except SlackApiError as exc:
        log.error("views.publish for %s failed: %s", user, slack_error(exc))


async def open_modal(
    deps: SlackDeps, origin: Origin, trigger_id: str | None, view: dict[str, Any], what: str, retry: str
) -> None:
    """Open a form; when Slack refuses (an expired trigger_id), tell the user ``retry`` instead of failing silently."""
    try:
        await deps.client.views_open(trigger_id=trigger_id, view=view)
    except SlackApiError as exc:
        # trigger_id lives 3 s and works once; when Slack says it expired, the user only has to click again.
        log.warning("views.open (%s) failed: %s", what, slack_error(exc))
        await tell(deps, origin, notices.note(f":warning: Slack did not open the {what} ({slack_error(exc)}). {retry}"))


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
            notices.note(
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
        return Origin.from_action(body, deps.render.approval_channel)
    if body.get("type") == "view_submission":
        meta = modals.read_metadata((body.get("view") or {}).get("private_metadata"))
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
