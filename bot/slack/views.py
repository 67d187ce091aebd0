"""Modal submissions: the search form, the justification form, the deny reason.

What can be checked from the form alone is checked before the ack
(``bot.slack.acks``, shared with the ack process), and a bad value is shown next to its field
(``response_action: errors``). Everything that needs a provider or may be slow
(the search itself, ``prepare()`` of a request) runs after the ack, and its
outcome reaches the user where they started (response_url, else DM).
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.domain.errors import NumbersError
from bot.providers.base import SearchQuery
from bot.slack import acks, blocks, ids
from bot.slack.deps import SlackDeps
from bot.slack.failures import answered
from bot.slack.actions import request_id_of
from bot.slack.origin import Origin, tell

log = logging.getLogger(__name__)


def read_search(view: dict[str, Any], deps: SlackDeps) -> tuple[SearchQuery | None, dict[str, str]]:
    """The search form as a ``SearchQuery``, or the errors to show next to each field (``bot.slack.acks``)."""
    return acks.read_search(view, deps.settings, deps.service.providers)


def register(app: AsyncApp, deps: SlackDeps) -> None:
    @app.view(ids.VIEW_SEARCH)
    @answered(deps)
    async def search_submitted(ack, body, view) -> None:
        answer = acks.search_ack(view, deps.settings, deps.service.providers)
        await ack(**answer.answer)
        if not answer.proceed:
            return
        query = answer.query
        origin = Origin.from_metadata(body["user"]["id"], blocks.read_metadata(view.get("private_metadata")))
        assert query is not None
        try:
            result = await deps.service.search(origin.user, query)
        except NumbersError as exc:
            await tell(deps, origin, blocks.error_message(exc))
            return
        # Results from the Home tab go by DM: a Home tab has no response_url and no channel.
        await deps.reply(
            origin.user,
            blocks.offers_message(result, deps.settings, now=deps.clock()),
            response_url=origin.response_url,
            channel=origin.channel,
        )

    @app.view(ids.VIEW_REQUEST)
    @answered(deps)
    async def request_submitted(ack, body, view) -> None:
        user = body["user"]["id"]
        meta = blocks.read_metadata(view.get("private_metadata"))
        offer_id = str(meta.get("offer") or "")
        answer = acks.request_ack(view, deps.settings)
        await ack(**answer.answer)
        if not answer.proceed:
            return
        justification, quantity = acks.state_value(view, ids.INPUT_JUSTIFICATION) or "", answer.quantity
        origin = Origin.from_metadata(user, meta)
        try:
            # prepare() at the provider can be slow (Webex looks the person up): it runs after the ack.
            await deps.service.request(user, offer_id, justification, quantity=quantity)
        except NumbersError as exc:
            await tell(
                deps,
                origin,
                blocks.note(f":warning: Your request was not sent: {blocks.safe(str(exc))}"),
            )
        # Success needs no answer here: the notifier DMs the requester where the card went.

    @app.view(ids.VIEW_RELEASE)
    @answered(deps)
    async def release_submitted(ack, body, view) -> None:
        answer = acks.reason_ack(view, acks.RELEASE_REASON_HINT)
        await ack(**answer.answer)
        if not answer.proceed:
            return
        reason = acks.state_value(view, ids.INPUT_REASON) or ""
        meta = blocks.read_metadata(view.get("private_metadata"))
        origin = Origin.from_metadata(body["user"]["id"], meta)
        try:
            await deps.service.request_release(origin.user, str(meta.get("number") or ""), reason)
        except NumbersError as exc:
            await tell(deps, origin, blocks.note(f":warning: The release was not asked for: {blocks.safe(str(exc))}"))
        # Success: the notifier posts the card and DMs the requester where it went.

    @app.view(ids.VIEW_DENY)
    @answered(deps)
    async def deny_submitted(ack, body, view) -> None:
        answer = acks.reason_ack(view, acks.DENY_REASON_HINT)
        await ack(**answer.answer)
        if not answer.proceed:
            return
        reason = acks.state_value(view, ids.INPUT_REASON) or ""
        meta = blocks.read_metadata(view.get("private_metadata"))
        origin = Origin.from_metadata(body["user"]["id"], meta)
        try:
            request_id = request_id_of(str(meta.get("request") or ""))
            await deps.service.deny(request_id, origin.user, reason)
        except NumbersError as exc:
            await tell(deps, origin, blocks.error_message(exc))
            return
        if origin.home:
            await tell(deps, origin, blocks.note(f":no_entry: You denied request #{request_id}."))
