"""Buttons: Request (on an offer), Approve / Deny (on a card, the `pending` list, the Home tab), Search (Home).

Every listener acks first. Whether the clicker may act is decided on the
server at click time by the service (``approve``, ``may_deny`` before the deny
reason form opens); hiding buttons is never the check. A refused click is
audited, answered only to the clicker, and changes nothing.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.domain.errors import NotFound, NumbersError
from bot.slack import ids
from bot.slack.answer import Origin, answered, open_modal, tell
from bot.slack.deps import SlackDeps
from bot.slack.payloads import clicked, request_id_of
from bot.slack.render.kit import plural
from bot.slack.render.modals import deny_modal, request_modal, request_quantity_limit, search_modal
from bot.slack.render.notices import error_message, note

__all__ = ["register"]


def approved_text(request_id: int, complete: bool, approvals: int, required: int) -> str:
    if complete:
        return f":white_check_mark: You approved request #{request_id}; the bot is on it."
    return (
        f":ballot_box_with_check: Your approval of request #{request_id} is counted "
        f"({approvals} of {required}); {plural(required - approvals, 'more approver')} needed."
    )


def register(app: AsyncApp, deps: SlackDeps) -> None:
    register_request(app, deps)
    register_decisions(app, deps)
    register_home_search(app, deps)


def register_request(app: AsyncApp, deps: SlackDeps) -> None:
    @app.action(ids.ACTION_REQUEST)
    @answered(deps)
    async def request_clicked(ack: Any, body: dict[str, Any]) -> None:
        await ack()
        origin = Origin.from_action(body, deps.render.approval_channel)
        try:
            offer = await deps.service.offer(clicked(body))
        except NumbersError as exc:
            await tell(deps, origin, error_message(exc))
            return
        # The quantity bound travels in the form, so its submission is checked without the store.
        meta = origin.metadata(offer=offer.id, qmax=request_quantity_limit(offer, deps.render))
        view = request_modal(offer, deps.render, private_metadata=meta, now=deps.clock())
        await open_modal(deps, origin, body.get("trigger_id"), view.to_dict(), "request form", "Click *Request* again.")


async def clicked_request(deps: SlackDeps, body: dict[str, Any], origin: Origin, verb: str) -> int | None:
    """The request a decision button names, or None when it names none (refusal audited and told)."""
    try:
        return request_id_of(clicked(body))
    except NotFound as exc:
        await deps.service.note_refusal(None, origin.user, verb, exc)
        await tell(deps, origin, error_message(exc))
        return None


def register_decisions(app: AsyncApp, deps: SlackDeps) -> None:
    @app.action(ids.ACTION_APPROVE)
    @answered(deps)
    async def approve_clicked(ack: Any, body: dict[str, Any]) -> None:
        await ack()
        origin = Origin.from_action(body, deps.render.approval_channel)
        request_id = await clicked_request(deps, body, origin, "approve")
        if request_id is None:
            return
        try:
            result = await deps.service.approve(request_id, origin.user)
        except NumbersError as exc:
            await tell(deps, origin, error_message(exc))
            return
        # On the card itself the updated card is the answer, unless more approvals are needed.
        if origin.home or not origin.card or not result.complete:
            text = approved_text(request_id, result.complete, result.approvals, result.required)
            await tell(deps, origin, note(text))

    @app.action(ids.ACTION_DENY)
    @answered(deps)
    async def deny_clicked(ack: Any, body: dict[str, Any]) -> None:
        await ack()
        origin = Origin.from_action(body, deps.render.approval_channel)
        request_id = await clicked_request(deps, body, origin, "deny")
        if request_id is None:
            return
        try:
            request = await deps.service.may_deny(request_id, origin.user)
        except NumbersError as exc:
            await tell(deps, origin, error_message(exc))
            return
        view = deny_modal(request, private_metadata=origin.metadata(request=request.id))
        await open_modal(deps, origin, body.get("trigger_id"), view.to_dict(), "deny form", "Click *Deny* again.")


def register_home_search(app: AsyncApp, deps: SlackDeps) -> None:
    @app.action(ids.ACTION_HOME_SEARCH)
    @answered(deps)
    async def home_search_clicked(ack: Any, body: dict[str, Any]) -> None:
        await ack()
        origin = Origin.from_action(body, deps.render.approval_channel)
        view = search_modal(list(deps.service.providers), deps.render, private_metadata=origin.metadata())
        await open_modal(deps, origin, body.get("trigger_id"), view.to_dict(), "search form", "Click *Search numbers* again.")
