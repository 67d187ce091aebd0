"""Modal submissions: the search form, the justification form, the deny and release reasons.

What can be checked from the form alone is checked before the ack, and a bad
value is shown next to its field (``response_action: errors``); the search
form's fields are read by the same readers as ``/numbers search``
(``bot.domain.grammar.search_fields``). Everything that needs a provider or
may be slow (the search itself, ``prepare()`` of a request) runs after the
ack, and its outcome reaches the user where they started (response_url, else DM).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.domain.errors import NumbersError
from bot.domain.grammar import MAX_REASON, reason_problem, search_fields
from bot.domain.offers import SearchQuery
from bot.slack import ids
from bot.slack.answer import Origin, answered, tell
from bot.slack.deps import SlackDeps
from bot.slack.listeners.payloads import has_input, request_id_of, state_value
from bot.slack.render.modals import read_metadata, request_quantity_limit
from bot.slack.render.notices import error_message, note, refused_message
from bot.slack.render.offers import offers_message

__all__ = ["read_search", "register"]

log = logging.getLogger(__name__)

# The search form's inputs by the grammar's field names (``search_fields``).
SEARCH_INPUTS = {
    "country": ids.INPUT_COUNTRY,
    "number_type": ids.INPUT_TYPE,
    "prefix": ids.INPUT_PREFIX,
    "quantity": ids.INPUT_QUANTITY,
    "provider": ids.INPUT_PROVIDER,
}


def read_search(view: dict[str, Any], deps: Any) -> tuple[SearchQuery | None, dict[str, str]]:
    """The search form as a ``SearchQuery``, or the errors to show next to each field."""
    provider = state_value(view, ids.INPUT_PROVIDER) or ids.ANY_PROVIDER
    capabilities = state_value(view, ids.INPUT_CAPABILITIES) or []
    query, problems = search_fields(
        country=state_value(view, ids.INPUT_COUNTRY) or "",
        number_type=state_value(view, ids.INPUT_TYPE) or "local",
        # Slack's text input: "(206)", "+1 833" and "833-" mean the digits.
        prefix=re.sub(r"[\s()+-]", "", state_value(view, ids.INPUT_PREFIX) or ""),
        quantity=str(state_value(view, ids.INPUT_QUANTITY) or "1").strip(),
        sms="sms" in capabilities,
        voice="voice" in capabilities,
        provider=None if provider == ids.ANY_PROVIDER else provider,
        max_quantity=deps.render.max_quantity,
    )
    errors = {SEARCH_INPUTS[name]: text for name, text in problems.items()}
    if query is None:
        return None, errors
    try:
        if not deps.service.searchable_providers(query):
            errors[ids.INPUT_TYPE] = "No enabled provider sells national numbers; pick local or toll-free."
    except NumbersError as exc:
        errors[ids.INPUT_PROVIDER] = str(exc)
    return (None, errors) if errors else (query, {})


def read_request_form(view: dict[str, Any], limit: int | None) -> tuple[str, int | None, dict[str, str]]:
    """The justification and, when the form asks for it, the quantity (1 to ``limit``); or the field errors."""
    justification = state_value(view, ids.INPUT_JUSTIFICATION) or ""
    errors: dict[str, str] = {}
    if not justification.strip():
        errors[ids.INPUT_JUSTIFICATION] = "Say what the numbers are for; approvers decide on it."
    elif len(justification) > MAX_REASON:
        errors[ids.INPUT_JUSTIFICATION] = f"At most {MAX_REASON} characters (this is {len(justification)})."
    quantity: int | None = None
    if limit is not None:
        text = str(state_value(view, ids.INPUT_QUANTITY) or "").strip()
        if not re.fullmatch(r"[0-9]{1,6}", text) or not 1 <= int(text) <= limit:
            errors[ids.INPUT_QUANTITY] = f"A whole number from 1 to {limit}."
        else:
            quantity = int(text)
    return justification, quantity, errors


def reason_errors(reason: str, empty: str) -> dict[str, str]:
    """The deny or release reason's field error, if any; ``empty`` says why it is needed."""
    if not reason.strip():
        return {ids.INPUT_REASON: empty}
    if reason_problem(reason):
        return {ids.INPUT_REASON: f"At most {MAX_REASON} characters (this is {len(reason)})."}
    return {}


def register(app: AsyncApp, deps: SlackDeps) -> None:
    register_search(app, deps)
    register_request(app, deps)
    register_release(app, deps)
    register_deny(app, deps)


def register_search(app: AsyncApp, deps: SlackDeps) -> None:
    @app.view(ids.VIEW_SEARCH)
    @answered(deps)
    async def search_submitted(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        query, errors = read_search(view, deps)
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        await ack()
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
        limit: int | None = None
        if has_input(view, ids.INPUT_QUANTITY):
            offer = await deps.service.offer_or_none(offer_id)
            limit = request_quantity_limit(offer, deps.render) if offer else deps.render.max_quantity
        justification, quantity, errors = read_request_form(view, limit)
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        origin = Origin.from_metadata(user, meta)
        try:
            # prepare() at the provider can be slow (Webex looks the person up): it runs after the ack.
            await deps.service.request(user, offer_id, justification, quantity=quantity)
        except NumbersError as exc:
            await tell(deps, origin, refused_message("Your request was not sent", exc))
        # Success needs no answer here: the notifier DMs the requester where the card went.


def register_release(app: AsyncApp, deps: SlackDeps) -> None:
    @app.view(ids.VIEW_RELEASE)
    @answered(deps)
    async def release_submitted(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        reason = state_value(view, ids.INPUT_REASON) or ""
        errors = reason_errors(reason, "Say why; approvers decide on it.")
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        meta = read_metadata(view.get("private_metadata"))
        origin = Origin.from_metadata(body["user"]["id"], meta)
        try:
            await deps.service.request_release(origin.user, str(meta.get("number") or ""), reason)
        except NumbersError as exc:
            await tell(deps, origin, refused_message("The release was not asked for", exc))
        # Success: the notifier posts the card and DMs the requester where it went.


def register_deny(app: AsyncApp, deps: SlackDeps) -> None:
    @app.view(ids.VIEW_DENY)
    @answered(deps)
    async def deny_submitted(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        reason = state_value(view, ids.INPUT_REASON) or ""
        errors = reason_errors(reason, "Say why; the requester sees it.")
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        meta = read_metadata(view.get("private_metadata"))
        origin = Origin.from_metadata(body["user"]["id"], meta)
        try:
            request_id = request_id_of(str(meta.get("request") or ""))
            await deps.service.deny(request_id, origin.user, reason)
        except NumbersError as exc:
            await tell(deps, origin, error_message(exc))
            return
        if origin.home:
            await tell(deps, origin, note(f":no_entry: You denied request #{request_id}."))
