"""What numbers-bot answers Slack at once, as pure functions: the listeners and the ack process agree.

Every answer Slack waits for (3 s at most) is decided here from the payload and the settings
alone: no store, no provider, no Web API, no clock. The Bolt listeners (``bot.slack.commands``,
``actions``, ``views``) call these functions for their ``ack()``, and the ack process
(``bot.front``), which runs no Bolt, calls the same ones through ``ack_for`` and answers with
``http_answer`` exactly what Bolt would have sent for the same ``ack()`` arguments.

``Ack.answer`` holds the keyword arguments of Bolt's ``ack()`` (``{}``: an empty 200);
``Ack.proceed`` says whether work follows (False: the answer is the whole reply, as for
``/numbers help`` or a form error).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Collection

import phonenumbers

from bot.config import Settings
from bot.domain.commands import MAX_REASON, NUMBER_TYPE_LABELS, SEARCH_PROVIDERS, Command, parse, reason_problem
from bot.domain.errors import NumbersError, UsageError
from bot.domain.searchable import searchable_providers
from bot.providers.base import SearchQuery
from bot.services import MAX_JUSTIFICATION
from bot.slack import blocks, ids

__all__ = [
    "Ack",
    "UNHANDLED",
    "ack_for",
    "command_ack",
    "has_input",
    "http_answer",
    "read_search",
    "reason_ack",
    "request_ack",
    "search_ack",
    "state_value",
]


@dataclass(frozen=True)
class Ack:
    answer: dict[str, Any] = field(default_factory=dict)
    proceed: bool = True
    command: Command | None = None  # /numbers: the parsed command the work runs
    query: SearchQuery | None = None  # the search form: the query it asks for
    quantity: int | None = None  # the request form: the quantity asked for, when the form had the field


EMPTY = Ack()
UNHANDLED = None  # ``ack_for``: no listener takes this payload (Bolt answers 404 "unhandled request")


def command_ack(body: dict[str, Any], enabled: Collection[str]) -> Ack:
    """``/numbers``: usage errors and help are the answer itself; a search says what it searches."""
    try:
        command = parse(body.get("text") or "")
    except UsageError as exc:
        return Ack({"response_type": "ephemeral", **blocks.error_message(exc).payload()}, proceed=False)
    if command.verb == "help":
        return Ack({"response_type": "ephemeral", **blocks.help_message().payload()}, proceed=False)
    if command.verb == "search":
        assert command.query is not None
        try:
            names = searchable_providers(command.query, enabled)
        except NumbersError as exc:
            return Ack({"response_type": "ephemeral", **blocks.error_message(exc).payload()}, proceed=False)
        return Ack({"text": blocks.searching_text(blocks.search_title_for(command.query, names))}, command=command)
    if command.verb == "assign":
        return Ack({"text": ":mag: Looking for Webex Calling numbers you can take…"}, command=command)
    return Ack(command=command)


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


def read_search(
    view: dict[str, Any], settings: Settings, enabled: Collection[str]
) -> tuple[SearchQuery | None, dict[str, str]]:
    """The search form as a ``SearchQuery``, or the errors to show next to each field."""
    errors: dict[str, str] = {}
    provider = state_value(view, ids.INPUT_PROVIDER) or ids.ANY_PROVIDER
    if provider != ids.ANY_PROVIDER and provider not in SEARCH_PROVIDERS:
        errors[ids.INPUT_PROVIDER] = "Pick a provider from the list."
    elif provider != ids.ANY_PROVIDER and provider not in enabled:
        names = ", ".join(p for p in SEARCH_PROVIDERS if p in enabled) or "none"
        errors[ids.INPUT_PROVIDER] = f"{blocks.provider_name(provider)} is not enabled here (enabled: {names})."
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
    maximum = settings.max_quantity
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
        if not searchable_providers(query, enabled):
            errors[ids.INPUT_TYPE] = "No enabled provider sells national numbers; pick local or toll-free."
    except NumbersError as exc:
        errors[ids.INPUT_PROVIDER] = str(exc)
    return (None, errors) if errors else (query, {})


def _errors(errors: dict[str, str]) -> Ack:
    return Ack({"response_action": "errors", "errors": errors}, proceed=False)


def search_ack(view: dict[str, Any], settings: Settings, enabled: Collection[str]) -> Ack:
    query, errors = read_search(view, settings, enabled)
    return _errors(errors) if errors else Ack(query=query)


def request_limit(meta: dict[str, Any], settings: Settings) -> int:
    """The request form's quantity bound: the offer's (put in the form's metadata when it opened), capped by policy.

    The service checks the quantity against the offer again when it creates the request."""
    limit = meta.get("qmax")
    if isinstance(limit, int) and not isinstance(limit, bool) and limit >= 1:
        return min(limit, settings.max_quantity)
    return settings.max_quantity


def request_ack(view: dict[str, Any], settings: Settings) -> Ack:
    """The request form: a justification, and a quantity within the offer's bound when the form asks one."""
    justification = state_value(view, ids.INPUT_JUSTIFICATION) or ""
    errors: dict[str, str] = {}
    if not justification.strip():
        errors[ids.INPUT_JUSTIFICATION] = "Say what the numbers are for; approvers decide on it."
    elif len(justification) > MAX_JUSTIFICATION:
        errors[ids.INPUT_JUSTIFICATION] = f"At most {MAX_JUSTIFICATION} characters (this is {len(justification)})."
    quantity: int | None = None
    if has_input(view, ids.INPUT_QUANTITY):
        limit = request_limit(blocks.read_metadata(view.get("private_metadata")), settings)
        text = str(state_value(view, ids.INPUT_QUANTITY) or "").strip()
        if not re.fullmatch(r"[0-9]{1,6}", text) or not 1 <= int(text) <= limit:
            errors[ids.INPUT_QUANTITY] = f"A whole number from 1 to {limit}."
        else:
            quantity = int(text)
    return _errors(errors) if errors else Ack(quantity=quantity)


def reason_ack(view: dict[str, Any], empty_hint: str) -> Ack:
    """The deny and release forms: a reason that says something, at most ``MAX_REASON`` characters."""
    reason = state_value(view, ids.INPUT_REASON) or ""
    if not reason.strip():
        return _errors({ids.INPUT_REASON: empty_hint})
    if reason_problem(reason):
        return _errors({ids.INPUT_REASON: f"At most {MAX_REASON} characters (this is {len(reason)})."})
    return EMPTY


RELEASE_REASON_HINT = "Say why; approvers decide on it."
DENY_REASON_HINT = "Say why; the requester sees it."


def view_ack(view: dict[str, Any], settings: Settings, enabled: Collection[str]) -> Ack | None:
    callback = view.get("callback_id")
    if callback == ids.VIEW_SEARCH:
        return search_ack(view, settings, enabled)
    if callback == ids.VIEW_REQUEST:
        return request_ack(view, settings)
    if callback == ids.VIEW_RELEASE:
        return reason_ack(view, RELEASE_REASON_HINT)
    if callback == ids.VIEW_DENY:
        return reason_ack(view, DENY_REASON_HINT)
    return UNHANDLED


def ack_for(body: dict[str, Any], settings: Settings, enabled: Collection[str]) -> Ack | None:
    """The answer for any payload the listeners take, or ``UNHANDLED`` when none takes it.

    Buttons and events are acked empty (their answer comes later); view_closed, shortcuts and
    anything else have no listener here, as in the Bolt app."""
    if "command" in body:
        return command_ack(body, enabled) if body.get("command") == ids.COMMAND else UNHANDLED
    kind = body.get("type")
    if kind == "block_actions":
        actions = body.get("actions")
        action = actions[0] if isinstance(actions, list) and actions and isinstance(actions[0], dict) else {}
        return EMPTY if action.get("action_id") in ids.ACTIONS else UNHANDLED
    if kind == "view_submission":
        view = body.get("view")
        return view_ack(view, settings, enabled) if isinstance(view, dict) else UNHANDLED
    if kind == "event_callback":
        event = body.get("event")
        return EMPTY if isinstance(event, dict) and event.get("type") in ids.EVENTS else UNHANDLED
    return UNHANDLED


def http_answer(ack: Ack | None) -> tuple[int, bytes, bytes]:
    """Status, body and content type as Bolt sends them for ``ack(**ack.answer)`` (or an unhandled request)."""
    if ack is None:
        return 404, json.dumps({"error": "unhandled request"}).encode(), b"application/json;charset=utf-8"
    answer = ack.answer
    if set(answer) <= {"text"}:
        # Bolt sends a bare text (or nothing) as text/plain, anything more as JSON.
        return 200, str(answer.get("text", "")).encode(), b"text/plain;charset=utf-8"
    if "response_action" in answer:
        body = dict(answer)
    else:
        body = {"text": answer.get("text", "")}
        if answer.get("response_type"):
            body["response_type"] = answer["response_type"]
        if answer.get("blocks"):
            body["blocks"] = answer["blocks"]
    return 200, json.dumps(body).encode(), b"application/json;charset=utf-8"
