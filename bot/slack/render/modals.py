"""The forms: search, request (the justification), deny and release reasons; and their ``private_metadata``."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Sequence

from slack_sdk.models.blocks import (
    Block,
    CheckboxesElement,
    InputBlock,
    NumberInputElement,
    PlainTextInputElement,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.domain.kinds import Kind
from bot.domain.grammar import MAX_REASON, NUMBER_TYPE_LABELS, SEARCH_PROVIDERS
from bot.domain.offers import Offer
from bot.domain.requests import HeldNumber, NumberRequest
from bot.domain.policy import money
from bot.slack import ids
from bot.slack.render.config import RenderConfig
from bot.slack.render.kit import context, number, option as _option, plain as _plain, provider_name, quote, section, who
from bot.slack.render.offers import offer_text
from bot.slack.render.requests import request_line

__all__ = [
    "deny_modal", "metadata", "read_metadata", "release_modal", "request_modal", "request_quantity_limit", "search_modal",
]


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(timezone.utc)


def metadata(**values: Any) -> str:
    """``private_metadata`` (≤ 3000 chars): what the submission handler needs to answer the user."""
    text = json.dumps({k: v for k, v in values.items() if v is not None}, separators=(",", ":"))
    if len(text) > 3000:
        values.pop("response_url", None)
        text = json.dumps({k: v for k, v in values.items() if v is not None}, separators=(",", ":"))
    return text


def read_metadata(text: str | None) -> dict[str, Any]:
    try:
        data = json.loads(text or "{}")
    except (TypeError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def search_modal(providers: Sequence[str], config: RenderConfig, *, private_metadata: str = "") -> View:
    searchable = [p for p in SEARCH_PROVIDERS if p in providers]
    provider_options = [_option("All enabled providers", ids.ANY_PROVIDER)] + [
        _option(provider_name(p), p) for p in searchable
    ]
    type_options = [_option(label, value) for value, label in NUMBER_TYPE_LABELS.items()]
    capability_options = [_option("SMS", "sms"), _option("Voice", "voice")]
    blocks: list[Block] = [
        InputBlock(
            block_id=ids.INPUT_PROVIDER,
            label=_plain("Provider"),
            element=StaticSelectElement(
                action_id=ids.INPUT_PROVIDER, options=provider_options, initial_option=provider_options[0]
            ),
        ),
        InputBlock(
            block_id=ids.INPUT_COUNTRY,
            label=_plain("Country"),
            hint=_plain("Two-letter ISO code, e.g. US, GB, DE"),
            element=PlainTextInputElement(action_id=ids.INPUT_COUNTRY, initial_value="US", min_length=2, max_length=2),
        ),
        InputBlock(
            block_id=ids.INPUT_TYPE,
            label=_plain("Number type"),
            element=StaticSelectElement(action_id=ids.INPUT_TYPE, options=type_options, initial_option=type_options[0]),
        ),
        InputBlock(
            block_id=ids.INPUT_PREFIX,
            label=_plain("Area code or prefix"),
            optional=True,
            hint=_plain("Digits only, e.g. 833 or 206"),
            element=PlainTextInputElement(action_id=ids.INPUT_PREFIX, max_length=6),
        ),
        InputBlock(
            block_id=ids.INPUT_CAPABILITIES,
            label=_plain("Capabilities"),
            optional=True,
            element=CheckboxesElement(action_id=ids.INPUT_CAPABILITIES, options=capability_options),
        ),
        InputBlock(
            block_id=ids.INPUT_QUANTITY,
            label=_plain("How many numbers"),
            element=NumberInputElement(
                action_id=ids.INPUT_QUANTITY,
                is_decimal_allowed=False,
                initial_value=1,
                min_value=1,
                max_value=config.max_quantity,
            ),
        ),
    ]
    return View(
        type="modal",
        callback_id=ids.VIEW_SEARCH,
        title=_plain("Search numbers"),
        submit=_plain("Search"),
        close=_plain("Cancel"),
        private_metadata=private_metadata,
        blocks=blocks,
    )


def request_quantity_limit(offer: Offer, config: RenderConfig) -> int:
    return max(1, min(offer.max_quantity, config.max_quantity))


def request_modal(offer: Offer, config: RenderConfig, *, private_metadata: str = "", now: datetime | None = None) -> View:
    now = _now(now)
    blocks: list[Block] = [section(offer_text(offer, now=now))]
    if offer.kind == Kind.PURCHASE and offer.expires_at is not None and offer.expires_at <= now:
        blocks.append(
            context(
                ":warning: This hold has expired. If the request is approved the bot searches again and buys "
                "the same quantity at no more than this price, or asks for a fresh approval."
            )
        )
    if offer.kind == Kind.RENT:
        limit = request_quantity_limit(offer, config)
        blocks.append(
            InputBlock(
                block_id=ids.INPUT_QUANTITY,
                label=_plain("How many numbers"),
                hint=_plain(f"1 to {limit}"),
                element=NumberInputElement(
                    action_id=ids.INPUT_QUANTITY,
                    is_decimal_allowed=False,
                    initial_value=min(max(offer.quantity, 1), limit),
                    min_value=1,
                    max_value=limit,
                ),
            )
        )
    blocks.append(
        InputBlock(
            block_id=ids.INPUT_JUSTIFICATION,
            label=_plain("Why do you need it?"),
            hint=_plain("Approvers read this on the card. Say what the numbers are for."),
            element=PlainTextInputElement(
                action_id=ids.INPUT_JUSTIFICATION, multiline=True, min_length=1, max_length=MAX_REASON
            ),
        )
    )
    return View(
        type="modal",
        callback_id=ids.VIEW_REQUEST,
        title=_plain("Request a number" if offer.kind == Kind.ASSIGN else "Request numbers"),
        submit=_plain("Send for approval"),
        close=_plain("Cancel"),
        private_metadata=private_metadata,
        blocks=blocks,
    )


def reason_input(label: str, hint: str) -> InputBlock:
    """The required free-text reason of the deny and release forms."""
    return InputBlock(
        block_id=ids.INPUT_REASON,
        label=_plain(label),
        hint=_plain(hint),
        element=PlainTextInputElement(
            action_id=ids.INPUT_REASON, multiline=True, min_length=1, max_length=MAX_REASON
        ),
    )


def deny_modal(request: NumberRequest, *, private_metadata: str = "") -> View:
    blocks: list[Block] = [
        section(request_line(request) + f"\nRequested by {who(request.requester)}:\n" + quote(request.justification, 1500)),
        reason_input("Why is it denied?", "The requester sees this."),
    ]
    return View(
        type="modal",
        callback_id=ids.VIEW_DENY,
        title=_plain("Deny request"),
        submit=_plain("Deny"),
        close=_plain("Cancel"),
        private_metadata=private_metadata,
        blocks=blocks,
    )


def release_modal(held: HeldNumber, *, private_metadata: str = "") -> View:
    about = (
        f"*{number(held.number)}* at {provider_name(held.provider)} · "
        f"{money(held.unit_monthly_cost, held.currency)}/month\n"
        f"Asked for by {who(held.requester)} (request #{held.request_id}, {held.acquired_at:%Y-%m-%d}):\n"
        + quote(held.justification, 1500)
    )
    return View(
        type="modal",
        callback_id=ids.VIEW_RELEASE,
        title=_plain("Release a number"),
        submit=_plain("Ask to release"),
        close=_plain("Cancel"),
        private_metadata=private_metadata,
        blocks=[
            section(about),
            reason_input("Why can it go?", "Approvers decide on it; the number stops costing money once released."),
        ],
    )


