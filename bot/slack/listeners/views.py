"""Modal submissions: the search form, the justification form, the deny and release reasons.

What can be checked from the form alone is checked before the ack
(``bot.slack.acks``, shared with the ack process), and a bad value is shown next to its field (``response_action: errors``); the search
form's fields are read by the same readers as ``/numbers search``
(``bot.domain.grammar.search_fields``). Everything that needs a provider or
may be slow (the search itself, ``prepare()`` of a request) runs after the
ack, and its outcome reaches the user where they started (response_url, else DM).
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.domain.errors import NumbersError
from bot.slack import acks, ids
from bot.slack.answer import Origin, answered, tell
from bot.slack.deps import SlackDeps
from bot.slack.payloads import request_id_of, state_value
from bot.slack.render.modals import read_metadata
from bot.slack.render.notices import error_message, note, refused_message
from bot.slack.render.offers import offers_message

__all__ = ["register"]

log = logging.getLogger(__name__)

def register(app: AsyncApp, deps: SlackDeps) -> None:
    register_search(app, deps)
    register_request(app, deps)
    register_release(app, deps)
    register_deny(app, deps)


def register_search(app: AsyncApp, deps: SlackDeps) -> None:
    @app.view(ids.VIEW_SEARCH)
    @answered(deps)
    async def search_submitted(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        answer = acks.search_ack(view, deps.render, deps.service.providers)
        await ack(**answer.answer)
        if not answer.proceed:
            return
        query = answer.query
        origin = Origin.from_metadata(body["user"]["id"], read_metadata(view.get("private_metadata")))
        assert query is not None
        try:
            result = await deps.service.search(origin.user, query)
        except NumbersError as exc:
            await tell(deps, origin, error_message(exc))
            return
        # Results from the Home tab go by DM: a Home tab has no response_url and no channel.
        await deps.reply(
            origin.user,
            offers_message(result, deps.render, now=deps.clock()),
            response_url=origin.response_url,
            channel=origin.channel,
        )


def register_request(app: AsyncApp, deps: SlackDeps) -> None:
    @app.view(ids.VIEW_REQUEST)
    @answered(deps)
    async def request_submitted(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        user = body["user"]["id"]
        meta = read_metadata(view.get("private_metadata"))
        offer_id = str(meta.get("offer") or "")
        answer = acks.request_ack(view, deps.render)
        await ack(**answer.answer)
        if not answer.proceed:
            return
        justification, quantity = state_value(view, ids.INPUT_JUSTIFICATION) or "", answer.quantity
        origin = Origin.from_metadata(user, meta)
        try:
            # prepare() at the provider can be slow (Webex looks the person up): it runs after the ack.
            await deps.service.request(user, offer_id, justification, quantity=quantity)
        except NumbersError as exc:
            await tell(deps, origin, refused_message("Your request was not sent", exc))
        # Success needs no answer here: the notifier DMs the requester where the card went.


async def reason_form(
    ack: Any, body: dict[str, Any], view: dict[str, Any], hint: str
) -> tuple[str, dict[str, Any], Origin] | None:
    """Ack a deny or release form; its reason, metadata and origin when work follows, else None."""
    answer = acks.reason_ack(view, hint)
    await ack(**answer.answer)
    if not answer.proceed:
        return None
    meta = read_metadata(view.get("private_metadata"))
    return state_value(view, ids.INPUT_REASON) or "", meta, Origin.from_metadata(body["user"]["id"], meta)


def register_release(app: AsyncApp, deps: SlackDeps) -> None:
    @app.view(ids.VIEW_RELEASE)
    @answered(deps)
    async def release_submitted(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        form = await reason_form(ack, body, view, acks.RELEASE_REASON_HINT)
        if form is None:
            return
        reason, meta, origin = form
        try:
            await deps.service.request_release(origin.user, str(meta.get("number") or ""), reason)
        except NumbersError as exc:
            await tell(deps, origin, refused_message("The release was not asked for", exc))
        # Success: the notifier posts the card and DMs the requester where it went.


def register_deny(app: AsyncApp, deps: SlackDeps) -> None:
    @app.view(ids.VIEW_DENY)
    @answered(deps)
    async def deny_submitted(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        form = await reason_form(ack, body, view, acks.DENY_REASON_HINT)
        if form is None:
            return
        reason, meta, origin = form
        try:
            request_id = request_id_of(str(meta.get("request") or ""))
            await deps.service.deny(request_id, origin.user, reason)
        except NumbersError as exc:
            await tell(deps, origin, error_message(exc))
            return
        if origin.home:
            await tell(deps, origin, note(f":no_entry: You denied request #{request_id}."))
