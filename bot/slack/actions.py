"""Buttons: Request (on an offer), Approve / Deny (on a card, the `pending` list, the Home tab), Search (Home).

Every listener acks first. Whether the clicker may act is decided on the
server at click time by the service (``approve``) or the same policy rule
(``deny``, before its reason modal opens); hiding buttons is never the check.
A refused click is audited, answered only to the clicker, and changes nothing.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from bot.domain import policy as rules
from bot.domain.errors import Conflict, NotAllowed, NotFound, NumbersError
from bot.slack import blocks, ids
from bot.slack.deps import SlackDeps
from bot.slack.failures import answered
from bot.slack.notifier import slack_error
from bot.slack.origin import Origin, tell

log = logging.getLogger(__name__)

_REQUEST_ID = re.compile(r"^[0-9]{1,12}$")  # ASCII: int() would read any Unicode digit


def clicked(body: dict[str, Any]) -> str:
    actions = body.get("actions") or [{}]
    return str(actions[0].get("value") or "")


def request_id_of(value: str) -> int:
    """A button value that should name a request; anything else is refused in words."""
    if not _REQUEST_ID.match(value.strip()):
        # Echo only harmless characters: a forged value like ``<!channel>`` must not come back as live mrkdwn.
        shown = re.sub(r"[^0-9A-Za-z ._;:=+-]", "?", value[:40])
        raise NotFound(f"That button does not name a request (`{shown}`).")
    return int(value)


def register(app: AsyncApp, deps: SlackDeps) -> None:
    @app.action(ids.ACTION_REQUEST)
    @answered(deps)
    async def request_clicked(ack, body) -> None:
        await ack()
        origin = Origin.from_action(body, deps.settings.approval_channel)
        try:
            offer = await deps.service.offer(clicked(body))
        except NumbersError as exc:
            await tell(deps, origin, blocks.error_message(exc))
            return
        # The quantity bound travels in the form, so its submission is checked without the store.
        meta = origin.metadata(offer=offer.id, qmax=blocks.request_quantity_limit(offer, deps.settings))
        view = blocks.request_modal(offer, deps.settings, private_metadata=meta, now=deps.clock())
        await open_modal(deps, origin, body.get("trigger_id"), view.to_dict(), "request form", "Click *Request* again.")

    @app.action(ids.ACTION_APPROVE)
    @answered(deps)
    async def approve_clicked(ack, body) -> None:
        await ack()
        origin = Origin.from_action(body, deps.settings.approval_channel)
        value = clicked(body)
        try:
            request_id = request_id_of(value)
        except NotFound as exc:
            await deps.service.note_refusal(None, origin.user, "approve", exc)
            await tell(deps, origin, blocks.error_message(exc))
            return
        try:
            result = await deps.service.approve(request_id, origin.user)
        except NumbersError as exc:
            await tell(deps, origin, blocks.error_message(exc))
            return
        if result.complete:
            text = f":white_check_mark: You approved request #{request_id}; the bot is on it."
        else:
            more = result.required - result.approvals
            text = (
                f":ballot_box_with_check: Your approval of request #{request_id} is counted "
                f"({result.approvals} of {result.required}); {blocks.plural(more, 'more approver')} needed."
            )
        # On the card itself the updated card is the answer, unless more approvals are needed.
        if origin.home or not origin.card or not result.complete:
            await tell(deps, origin, blocks.note(text))

    @app.action(ids.ACTION_DENY)
    @answered(deps)
    async def deny_clicked(ack, body) -> None:
        await ack()
        origin = Origin.from_action(body, deps.settings.approval_channel)
        try:
            request_id = request_id_of(clicked(body))
        except NotFound as exc:
            await deps.service.note_refusal(None, origin.user, "deny", exc)
            await tell(deps, origin, blocks.error_message(exc))
            return
        try:
            request = await deps.service.may_deny(request_id, origin.user)
        except NumbersError as exc:
            await tell(deps, origin, blocks.error_message(exc))
            return
        view = blocks.deny_modal(request, private_metadata=origin.metadata(request=request.id))
        await open_modal(deps, origin, body.get("trigger_id"), view.to_dict(), "deny form", "Click *Deny* again.")

    @app.action(ids.ACTION_HOME_SEARCH)
    @answered(deps)
    async def home_search_clicked(ack, body) -> None:
        await ack()
        origin = Origin.from_action(body, deps.settings.approval_channel)
        view = blocks.search_modal(list(deps.service.providers), deps.settings, private_metadata=origin.metadata())
        await open_modal(deps, origin, body.get("trigger_id"), view.to_dict(), "search form", "Click *Search numbers* again.")


async def open_modal(
    deps: SlackDeps, origin: Origin, trigger_id: str | None, view: dict[str, Any], what: str, retry: str
) -> None:
    """Open a form; when Slack refuses (an expired trigger_id), tell the user ``retry`` instead of failing silently."""
    try:
        await deps.client.views_open(trigger_id=trigger_id, view=view)
    except SlackApiError as exc:
        # trigger_id lives 3 s and works once; when Slack says it expired, the user only has to click again.
        log.warning("views.open (%s) failed: %s", what, slack_error(exc))
        await tell(
            deps, origin, blocks.note(f":warning: Slack did not open the {what} ({slack_error(exc)}). {retry}")
        )
