"""Modal submissions: the search form, the justification form, the deny reason.

What can be checked from the form alone (and the local store) is checked
before the ack, and a bad value is shown next to its field
(``response_action: errors``). Everything that needs a provider or may be slow
(the search itself, ``prepare()`` of a request) runs after the ack, and its
outcome reaches the user where they started (response_url, else DM).
"""

from __future__ import annotations

import logging
import re
from typing import Any

import phonenumbers
from slack_bolt.async_app import AsyncApp

from bot.domain.grammar import MAX_REASON, NUMBER_TYPE_LABELS, SEARCH_PROVIDERS, reason_problem
from bot.domain.errors import NumbersError
from bot.providers.base import SearchQuery
from bot.services import MAX_JUSTIFICATION
from bot.slack import ids
from bot.slack.render.kit import provider_name, safe
from bot.slack.render.modals import read_metadata, request_quantity_limit
from bot.slack.render.notices import error_message, note
from bot.slack.render.offers import offers_message
from bot.slack.deps import SlackDeps
from bot.slack.failures import answered
from bot.slack.actions import request_id_of
from bot.slack.origin import Origin, tell

log = logging.getLogger(__name__)


def _values(view: Any) -> dict[str, Any]:
    state = view.get("state") if isinstance(view, dict) else None
    values = state.get("values") if isinstance(state, dict) else None
    return values if isinstance(values, dict) else {}


def state_value(view: dict[str, Any], block_id: str) -> Any:
    """The submitted value of the input ``block_id`` (block and action ids are the same here)."""
    block = _values(view).get(block_id)
    element = block.get(block_id) if isinstance(block, dict) else None
    if not isinstance(element, dict):
        return None
    kind = element.get("type")
    if kind in ("static_select", "radio_buttons"):
        option = element.get("selected_option")
        value = option.get("value") if isinstance(option, dict) else None
    elif kind == "checkboxes":
        options = element.get("selected_options")
        return [str(o.get("value")) for o in options if isinstance(o, dict)] if isinstance(options, list) else []
    else:
        value = element.get("value")
    # Slack sends strings; anything else came from somewhere else and is read as text, never trusted as a type.
    return None if value is None else str(value)


def has_input(view: dict[str, Any], block_id: str) -> bool:
    return block_id in _values(view)


def read_search(view: dict[str, Any], deps: SlackDeps) -> tuple[SearchQuery | None, dict[str, str]]:
    """The search form as a ``SearchQuery``, or the errors to show next to each field."""
    errors: dict[str, str] = {}
    provider = state_value(view, ids.INPUT_PROVIDER) or ids.ANY_PROVIDER
    if provider != ids.ANY_PROVIDER and provider not in SEARCH_PROVIDERS:
        errors[ids.INPUT_PROVIDER] = "Pick a provider from the list."
    elif provider != ids.ANY_PROVIDER and provider not in deps.service.providers:
        enabled = ", ".join(p for p in SEARCH_PROVIDERS if p in deps.service.providers) or "none"
        errors[ids.INPUT_PROVIDER] = f"{provider_name(provider)} is not enabled here (enabled: {enabled})."
    country = (state_value(view, ids.INPUT_COUNTRY) or "").strip().upper()
    if not re.fullmatch(r"[A-Z]{2}", country) or country not in phonenumbers.SUPPORTED_REGIONS:
        errors[ids.INPUT_COUNTRY] = "Give a two-letter country code (ISO 3166), e.g. US, GB, DE."
    number_type = state_value(view, ids.INPUT_TYPE) or "local"
    if number_type not in NUMBER_TYPE_LABELS:
        errors[ids.INPUT_TYPE] = "Pick local, toll-free or national."
    prefix_text = re.sub(r"[\s()+-]", "", state_value(view, ids.INPUT_PREFIX) or "")
    if prefix_text and not re.fullmatch(r"[0-9]{1,6}", prefix_text):  # ASCII: \d is any Unicode digit
        errors[ids.INPUT_PREFIX] = "Digits only, at most 6 (an area code like 206 or a prefix like 833)."
    capabilities = state_value(view, ids.INPUT_CAPABILITIES) or []
    quantity_text = str(state_value(view, ids.INPUT_QUANTITY) or "1").strip()
    maximum = deps.settings.max_quantity
    if not re.fullmatch(r"[0-9]{1,6}", quantity_text) or not 1 <= int(quantity_text) <= maximum:
        errors[ids.INPUT_QUANTITY] = f"A whole number from 1 to {maximum} (NUMBERS_MAX_QUANTITY)."
    if errors:
        return None, errors
    query = SearchQuery(
        country=country,
        number_type=number_type,
        prefix=prefix_text or None,
        quantity=int(quantity_text),
        sms="sms" in capabilities,
        voice="voice" in capabilities,
        provider=None if provider == ids.ANY_PROVIDER else provider,
    )
    try:
        if not deps.service.searchable_providers(query):
            errors[ids.INPUT_TYPE] = "No enabled provider sells national numbers; pick local or toll-free."
    except NumbersError as exc:
        errors[ids.INPUT_PROVIDER] = str(exc)
    return (None, errors) if errors else (query, {})


def register(app: AsyncApp, deps: SlackDeps) -> None:
    @app.view(ids.VIEW_SEARCH)
    @answered(deps)
    async def search_submitted(ack, body, view) -> None:
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

    @app.view(ids.VIEW_REQUEST)
    @answered(deps)
    async def request_submitted(ack, body, view) -> None:
        user = body["user"]["id"]
        meta = read_metadata(view.get("private_metadata"))
        offer_id = str(meta.get("offer") or "")
        justification = state_value(view, ids.INPUT_JUSTIFICATION) or ""
        errors: dict[str, str] = {}
        if not justification.strip():
            errors[ids.INPUT_JUSTIFICATION] = "Say what the numbers are for; approvers decide on it."
        elif len(justification) > MAX_JUSTIFICATION:
            errors[ids.INPUT_JUSTIFICATION] = f"At most {MAX_JUSTIFICATION} characters (this is {len(justification)})."
        quantity: int | None = None
        if has_input(view, ids.INPUT_QUANTITY):
            offer = await deps.service.offer_or_none(offer_id)
            limit = request_quantity_limit(offer, deps.render) if offer else deps.settings.max_quantity
            text = str(state_value(view, ids.INPUT_QUANTITY) or "").strip()
            if not re.fullmatch(r"[0-9]{1,6}", text) or not 1 <= int(text) <= limit:
                errors[ids.INPUT_QUANTITY] = f"A whole number from 1 to {limit}."
            else:
                quantity = int(text)
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        origin = Origin.from_metadata(user, meta)
        try:
            # prepare() at the provider can be slow (Webex looks the person up): it runs after the ack.
            await deps.service.request(user, offer_id, justification, quantity=quantity)
        except NumbersError as exc:
            await tell(
                deps,
                origin,
                note(f":warning: Your request was not sent: {safe(str(exc))}"),
            )
        # Success needs no answer here: the notifier DMs the requester where the card went.

    @app.view(ids.VIEW_RELEASE)
    @answered(deps)
    async def release_submitted(ack, body, view) -> None:
        reason = state_value(view, ids.INPUT_REASON) or ""
        if not reason.strip():
            await ack(response_action="errors", errors={ids.INPUT_REASON: "Say why; approvers decide on it."})
            return
        if reason_problem(reason):
            await ack(response_action="errors", errors={ids.INPUT_REASON: f"At most {MAX_REASON} characters (this is {len(reason)})."})
            return
        await ack()
        meta = read_metadata(view.get("private_metadata"))
        origin = Origin.from_metadata(body["user"]["id"], meta)
        try:
            await deps.service.request_release(origin.user, str(meta.get("number") or ""), reason)
        except NumbersError as exc:
            await tell(deps, origin, note(f":warning: The release was not asked for: {safe(str(exc))}"))
        # Success: the notifier posts the card and DMs the requester where it went.

    @app.view(ids.VIEW_DENY)
    @answered(deps)
    async def deny_submitted(ack, body, view) -> None:
        reason = state_value(view, ids.INPUT_REASON) or ""
        if not reason.strip():
            await ack(response_action="errors", errors={ids.INPUT_REASON: "Say why; the requester sees it."})
            return
        if reason_problem(reason):
            await ack(response_action="errors", errors={ids.INPUT_REASON: f"At most {MAX_REASON} characters (this is {len(reason)})."})
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
