"""What a search found: offers with their Request buttons, costs, holds and the provider's conditions."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Protocol, Sequence

from slack_sdk.models.blocks import Block

from bot.domain.kinds import Kind
from bot.domain.grammar import NUMBER_TYPE_LABELS
from bot.domain.offers import Offer
from bot.domain.display import until
from bot.domain.policy import money
from bot.domain.offers import SearchQuery
from bot.slack import ids
from bot.slack.render.config import RenderConfig
from bot.slack.render.kit import (
    BLOCK_TEXT_BUDGET,
    MAX_MESSAGE_BLOCKS,
    Message,
    as_text,
    button,
    capabilities,
    clip,
    context,
    escape,
    number,
    numbers_list,
    plural,
    provider_name,
    sandboxed,
    section,
)

__all__ = [
    "NOT_RESELL_LINE", "NOT_RESERVED", "SearchOutcome", "conditions_lines", "cost_text", "needs_not_resell_agreement",
    "offer_text", "offers_message", "search_title", "search_title_for", "searching_text",
]

# Twilio's search holds nothing: said on offers and cards so nobody counts on the number staying free.
NOT_RESERVED = "not reserved — Twilio holds no numbers; if one is taken meanwhile, the bot buys an equivalent at no more than the approved cost, or asks again"
NOT_RESELL_LINE = (
    ":warning: *Do-not-resell agreement required* — ACS sells these numbers only to an organisation "
    "that agrees not to resell them; approving gives that agreement."
)


class SearchOutcome(Protocol):
    """What ``offers_message`` reads of a search's result (``bot.services.SearchResult``)."""

    query: SearchQuery
    offers: list[Offer]
    problems: list[str]
    providers: list[str]

    @property
    def every_provider_failed(self) -> bool: ...


def needs_not_resell_agreement(ref: dict[str, Any] | None) -> bool:
    """An ACS search that the service sells only with ``agreeToNotResell: true``."""
    return bool((ref or {}).get("agree_to_not_resell"))


def conditions_lines(provider: str, ref: dict[str, Any] | None) -> list[str]:
    """What the provider requires before it sells: the ACS do-not-resell agreement, a Plivo restriction."""
    ref = ref or {}
    lines = [NOT_RESELL_LINE] if needs_not_resell_agreement(ref) else []
    text = ref.get("restriction_text") or ref.get("restriction")
    if text:
        lines.append(f":warning: *{provider_name(provider)} restriction* — {escape(clip(str(text), 500))}")
    return lines


def unquoted_cost(provider: str) -> str:
    # Twilio's search carries no price; its Pricing API may be closed to the account: never show $0.
    return "see Twilio pricing" if provider == "twilio" else f"cost not quoted by {provider_name(provider)}"


def cost_text(unit: Decimal | None, quantity: int, setup: Decimal | None, currency: str, provider: str) -> str:
    if unit is None:
        text = unquoted_cost(provider)
    elif quantity > 1:
        text = f"*{money(unit, currency)}/month* each — {money(unit * quantity, currency)}/month for {quantity}"
    else:
        text = f"*{money(unit, currency)}/month*"
    if setup is not None and setup > 0:
        text += f" · setup {money(setup * quantity, currency)}"
    return text


def hold_line(offer: Offer, now: datetime) -> str | None:
    """How long the provider keeps the numbers for us, or that nobody holds them."""
    if offer.expires_at is not None:
        return f":hourglass_flowing_sand: {until(offer.expires_at, now)}"
    if offer.provider == "twilio":
        return f"_{NOT_RESERVED}._"
    if offer.provider == "telnyx":
        return "_Held for 30 minutes once you request it, and kept held while the request waits._"
    return None


def _purchase_text(offer: Offer, kind: str, now: datetime) -> tuple[list[str], list[str]]:
    d = offer.details
    head = [f"{escape(offer.query.country)} {kind}", plural(offer.quantity, "number"), capabilities(offer.sms, offer.voice)]
    lines = [numbers_list(offer.numbers)]
    lines.append(cost_text(offer.unit_monthly_cost, offer.quantity, offer.unit_setup_cost, offer.currency, offer.provider))
    hold = hold_line(offer, now)
    if hold:
        lines.append(hold)
    if d.get("region") and offer.provider == "plivo":
        lines.insert(0, escape(str(d["region"])))
    lines += conditions_lines(offer.provider, offer.ref)
    return head, lines


def _rent_text(offer: Offer, kind: str) -> tuple[list[str], list[str]]:
    d = offer.details
    head = [f"{escape(str(d.get('country') or offer.query.country))} {kind}"]
    if d.get("prefix"):
        head.append(f"prefix {escape(str(d['prefix']))}")
    if d.get("region"):
        head.append(escape(str(d["region"])))
    head += [f"{escape(str(d.get('stock', offer.max_quantity)))} in stock", capabilities(offer.sms, offer.voice)]
    lines = [
        cost_text(offer.unit_monthly_cost, offer.quantity, offer.unit_setup_cost, offer.currency, offer.provider),
        "_Numbers are picked from the group when rented; you say how many when you request._",
    ]
    return head, lines


def _assign_text(offer: Offer) -> list[str]:
    d = offer.details
    head = [number(offer.numbers[0]) if offer.numbers else "number"]
    if d.get("location_name"):
        head.append(f"location {escape(str(d['location_name']))}")
    if d.get("extension"):
        head.append(f"ext. {escape(str(d['extension']))}")
    if d.get("telephony_type"):
        head.append(escape(str(d["telephony_type"])).replace("_", " ").lower())
    return head


def offer_text(offer: Offer, *, now: datetime | None = None) -> str:
    """What an offer is, in mrkdwn: provider, numbers or group, capabilities, costs, hold."""
    # The query's type, not the provider's spelling of it (ACS says geographic/tollFree).
    kind = NUMBER_TYPE_LABELS.get(offer.query.number_type, escape(offer.query.number_type))
    head = [f"*{provider_name(offer.provider)}*"]
    if offer.kind == Kind.PURCHASE:
        more, lines = _purchase_text(offer, kind, now or datetime.now(timezone.utc))
    elif offer.kind == Kind.RENT:
        more, lines = _rent_text(offer, kind)
    else:  # assign
        more, lines = _assign_text(offer), ["Owned by the organisation: becomes your primary work number."]
    return " · ".join(head + more) + "\n" + "\n".join(lines)


def search_title_for(q: SearchQuery, providers: Sequence[str]) -> str:
    """``US toll-free 833 ×2 with SMS at ACS, Plivo``: what was searched, for titles and fallback text."""
    if q.provider == "webex" or list(providers) == ["webex"]:
        where = f" in {escape(q.location)}" if q.location else ""
        return f"Webex Calling numbers you can take as your primary number{where}"
    bits = [escape(q.country), NUMBER_TYPE_LABELS.get(q.number_type, escape(q.number_type))]
    if q.prefix:
        bits.append(escape(q.prefix))
    if q.quantity > 1:
        bits.append(f"×{q.quantity}")
    wants = [w for w, on in (("SMS", q.sms), ("voice", q.voice)) if on]
    if wants:
        bits.append("with " + " + ".join(wants))
    at = ", ".join(provider_name(p) for p in providers)
    return f"{' '.join(bits)} at {at}" if at else " ".join(bits)


def search_title(result: SearchOutcome) -> str:
    return search_title_for(result.query, result.providers)


def searching_text(title: str) -> str:
    return f":mag: Searching {title}…"


def _problems(result: SearchOutcome) -> list[Block]:
    """What went wrong per provider, and "nothing found" when nothing did and nothing was found."""
    blocks: list[Block] = []
    if result.every_provider_failed:
        blocks.append(
            section(
                ":x: *No provider could be searched* — this is not an empty result:\n"
                + "\n".join(escape(p) for p in result.problems)
            )
        )
    elif result.problems:
        blocks.append(section(":warning: " + "\n".join(escape(p) for p in result.problems)))
    if not result.offers and not result.every_provider_failed:
        blocks.append(
            section(
                "Nothing found. Try another area code or prefix, another number type (`local`, `tollfree`, "
                "`national`), fewer numbers, or leave out `sms`/`voice`."
            )
        )
    return blocks


def _offer_blocks(offers: Sequence[Offer], blocks: list[Block], now: datetime | None) -> list[Block]:
    """One block per offer while the message stays within Slack's limits (block count and
    BLOCK_TEXT_BUDGET characters of text); one slot is kept for the "N more" note, one for the sandbox notice."""
    room = MAX_MESSAGE_BLOCKS - len(blocks) - 2
    spent = sum(len(as_text([b.to_dict()])) for b in blocks) + 300  # the note and slack
    shown: list[Block] = []
    for offer in offers[:room]:
        block = section(
            offer_text(offer, now=now),
            accessory=button("Request", ids.ACTION_REQUEST, offer.id, "primary"),
            block_id=f"offer:{offer.id}",
        )
        size = len(as_text([block.to_dict()]))
        if spent + size > BLOCK_TEXT_BUDGET:
            break
        spent += size
        shown.append(block)
    return shown


def offers_message(result: SearchOutcome, config: RenderConfig, *, now: datetime | None = None) -> Message:
    """The ephemeral answer to a search: cheapest first, each offer with a Request button."""
    offers = result.offers
    title = search_title(result)
    blocks: list[Block] = [section(f"*{plural(len(offers), 'offer')}* — {title}" + (" — cheapest first" if len(offers) > 1 else ""))]
    blocks += _problems(result)
    shown = _offer_blocks(offers, blocks, now)
    blocks += shown
    if len(offers) > len(shown):
        blocks.append(
            context(
                f"{plural(len(offers) - len(shown), 'more offer')} — narrow the search with an area code or prefix, a number type, "
                "or `via acs`, `via plivo`, `via twilio` or `via telnyx`."
            )
        )
    if offers:
        cheapest = offers[0]
        price = money(cheapest.unit_monthly_cost, cheapest.currency) if cheapest.unit_monthly_cost is not None else "unknown"
        text = f"{plural(len(offers), 'offer')} for {title}; cheapest {price}/month at {provider_name(cheapest.provider)}"
    elif result.every_provider_failed:
        text = f"The search for {title} failed: " + "; ".join(escape(p) for p in result.problems)
    else:
        text = f"No offers for {title}"
    return sandboxed(Message(text=text, blocks=blocks), config)
