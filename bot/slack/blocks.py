"""Everything numbers-bot shows in Slack, as Block Kit built with ``slack_sdk.models``.

Pure functions: (offers / a request, settings, now) in, a ``Message`` (blocks
and fallback text) or a ``View`` out; no I/O. Building with the SDK models means
Slack's per-element limits (section text 3000, button text 75, value 2000, …)
are checked when ``to_dict()`` runs; the per-message limit (50 blocks) is not
checked by the SDK, so ``Message`` checks it, and every builder plans its block
budget so that it never trips.

Anything a user typed (justifications, deny reasons, locations, command text
echoed in errors) goes through ``mrkdwn_escape`` so that ``<!channel>``, a
``<@U…>`` ping or a disguised ``<https://evil|bank>`` link stays inert text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Sequence

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    CheckboxesElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    NumberInputElement,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.config import SANDBOX_NOTICE, Settings
from bot.domain.grammar import NUMBER_TYPE_LABELS, SEARCH_PROVIDERS, USAGE
from bot.domain.display import both, mrkdwn_escape, total_text, until
from bot.domain.models import Event, HeldNumber, NumberRequest, Offer
from bot.domain.policy import money
from bot.domain.states import DESCRIBED, State
from bot.providers.base import SearchQuery
from bot.services import MAX_JUSTIFICATION, POLICY_ACTOR, CostSummary, SearchResult
from bot.slack import ids

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
SECTION_TEXT_MAX = 3000
FIELD_TEXT_MAX = 2000
CONTEXT_TEXT_MAX = 2000
HEADER_TEXT_MAX = 150
MESSAGE_TEXT_MAX = 3000  # the fallback text; Slack allows more, notifications show far less
# Slack refuses a message whose blocks carry more than about 12,000 characters of text
# (msg_blocks_too_long; undocumented, see slackapi/bolt-js #2509): stay well below it.
BLOCK_TEXT_BUDGET = 11000

PROVIDER_NAMES = {"acs": "ACS", "plivo": "Plivo", "webex": "Webex Calling", "twilio": "Twilio", "telnyx": "Telnyx"}
# Twilio's search holds nothing: said on offers and cards so nobody counts on the number staying free.
NOT_RESERVED = "not reserved — Twilio holds no numbers; if one is taken meanwhile, the bot buys an equivalent at no more than the approved cost, or asks again"
DOING = {"purchase": "buying", "rent": "renting", "assign": "assigning", "release": "releasing"}
DONE = {"purchase": "Purchased", "rent": "Rented", "assign": "Assigned", "release": "Released"}

_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")
_ESCAPED_MENTION = re.compile(r"&lt;@([UW][A-Z0-9]{2,})&gt;")


# --- the message value ----------------------------------------------------------


@dataclass
class Message:
    """Fallback text (notifications, screen readers) and blocks for one message."""

    text: str
    blocks: list[Block] = field(default_factory=list)

    def __post_init__(self) -> None:
        # slack_sdk checks each block but not the count; Slack refuses a 51-block message.
        if len(self.blocks) > MAX_MESSAGE_BLOCKS:
            raise ValueError(f"{len(self.blocks)} blocks in one message; Slack allows {MAX_MESSAGE_BLOCKS}")

    def mrkdwn(self) -> str:
        """The first section's mrkdwn (already escaped): a one-paragraph form of the message."""
        for block in self.blocks:
            if isinstance(block, SectionBlock) and block.text is not None:
                return block.text.text
        return mrkdwn_escape(self.text)

    def payload(self) -> dict[str, Any]:
        """``text`` and ``blocks`` as the Web API and response_url take them (limits checked here)."""
        return {"text": clip(self.text, MESSAGE_TEXT_MAX), "blocks": [b.to_dict() for b in self.blocks]}


# --- text helpers -----------------------------------------------------------------


def clip(text: str, limit: int, tail: str = "…") -> str:
    """Cut mrkdwn to ``limit`` characters without splitting an ``&amp;`` entity or a ``<…>`` token."""
    if len(text) <= limit:
        return text
    cut = text[: max(0, limit - len(tail))]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    lt = cut.rfind("<")
    if lt != -1 and ">" not in cut[lt:]:
        cut = cut[:lt]
    return cut + tail


def safe(text: str) -> str:
    """Escape text for mrkdwn but keep the bot's own ``<@U…>`` mentions in messages it wrote."""
    return _ESCAPED_MENTION.sub(r"<@\1>", mrkdwn_escape(text))


def quote(text: str, limit: int) -> str:
    """User text as an inert mrkdwn block quote of at most ``limit`` characters."""
    lines = mrkdwn_escape(text.strip()).splitlines() or [""]
    return clip("\n".join("> " + line for line in lines), limit)


def who(actor: str | None) -> str:
    """A Slack user id becomes a mention; anything else (``policy``, a CLI user name) plain text."""
    if not actor:
        return "someone"
    if _SLACK_USER.match(actor):
        return f"<@{actor}>"
    if actor == POLICY_ACTOR:
        return "policy"
    return mrkdwn_escape(actor)


def provider_name(name: str) -> str:
    return PROVIDER_NAMES.get(name, name)


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def human_duration(seconds: float) -> str:
    if seconds >= 2 * 86400 and seconds % 86400 == 0:  # "24 h" reads better than "1 day" for the default TTL
        return plural(int(seconds // 86400), "day")
    if seconds >= 3600:
        hours = seconds / 3600
        return f"{hours:g} h"
    if seconds >= 60:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def capabilities(sms: bool, voice: bool) -> str:
    if sms and voice:
        return "SMS + voice"
    if sms:
        return "SMS"
    if voice:
        return "voice"
    return "no SMS or voice listed"


def numbers_list(numbers: Sequence[str], limit: int = 10) -> str:
    lines = [f"• {both(n)}" for n in numbers[:limit]]
    if len(numbers) > limit:
        lines.append(f"• … and {len(numbers) - limit} more")
    return "\n".join(lines)


def slack_date(when: datetime, fmt: str = "{date_short_pretty} {time}") -> str:
    """A time each reader sees in their own time zone (Slack's date formatting); the UTC
    fallback shows where the formatting is not supported (notifications, old clients)."""
    fallback = when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(when.timestamp())}^{fmt}|{fallback}>"


def hold_text(ends: datetime, now: datetime) -> str:
    """The hold's end in the reader's time, and "expired" once it has."""
    left = (ends - now).total_seconds()
    if left <= 0:
        return f"expired {slack_date(ends)}"
    more = f"{int(left // 60)} min more" if left >= 60 else f"{int(left)} s more"
    return f"held until {slack_date(ends)} ({more})"


def approvers_text(request: NumberRequest) -> str:
    """Everyone who approved, in order (the policy when it approved on its own)."""
    if request.decided_by == POLICY_ACTOR:
        return "policy"
    names = list(request.approvals) or ([request.decided_by] if request.decided_by else [])
    return ", ".join(who(a) for a in names) or "an approver"


def md(text: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=text)


def section(text: str, *, accessory: Any = None, block_id: str | None = None) -> SectionBlock:
    return SectionBlock(text=md(clip(text, SECTION_TEXT_MAX)), accessory=accessory, block_id=block_id)


def context(*texts: str) -> ContextBlock:
    return ContextBlock(elements=[md(clip(t, CONTEXT_TEXT_MAX)) for t in texts if t][:10])


def header(text: str) -> HeaderBlock:
    return HeaderBlock(text=PlainTextObject(text=clip(text, HEADER_TEXT_MAX), emoji=True))


def button(text: str, action_id: str, value: str, style: str | None = None) -> ButtonElement:
    return ButtonElement(text=PlainTextObject(text=text, emoji=True), action_id=action_id, value=value, style=style)


NOT_RESELL_LINE = (
    ":warning: *Do-not-resell agreement required* — ACS sells these numbers only to an organisation "
    "that agrees not to resell them; approving gives that agreement."
)


def needs_not_resell_agreement(ref: dict[str, Any] | None) -> bool:
    """An ACS search that the service sells only with ``agreeToNotResell: true``."""
    return bool((ref or {}).get("agree_to_not_resell"))


def conditions_lines(provider: str, ref: dict[str, Any] | None) -> list[str]:
    """What the provider requires before it sells: the ACS do-not-resell agreement, a Plivo restriction."""
    ref = ref or {}
    lines = [NOT_RESELL_LINE] if needs_not_resell_agreement(ref) else []
    text = ref.get("restriction_text") or ref.get("restriction")
    if text:
        lines.append(f":warning: *{provider_name(provider)} restriction* — {mrkdwn_escape(clip(str(text), 500))}")
    return lines


def approve_question(request: NumberRequest) -> str:
    """What Approve will do, as the confirm dialog asks it ("Buy 2 numbers at ACS for $4.00/month?")."""
    count = f"{request.quantity} number{'s' if request.quantity != 1 else ''}"
    where = provider_name(request.provider)
    if request.kind == "release":
        numbers = ", ".join(request.numbers) or count
        saves = request.monthly_total
        tail = f"; it saves {money(saves, request.currency)}/month" if saves is not None else ""
        return f"Release {numbers} at {where}{tail}? The number goes back to the provider and stops working."
    monthly = request.monthly_total
    cost = f" for {money(monthly, request.currency)}/month" if monthly is not None else ""
    setup = request.setup_total
    if setup:
        cost += f" plus {money(setup, request.currency)} setup"
    verb = "Assign" if request.kind == "assign" else ("Rent" if request.kind == "rent" else "Buy")
    return f"{verb} {count} at {where}{cost}?"


def approve_confirm(request: NumberRequest, extra: Sequence[str] = ()) -> ConfirmObject:
    """Slack's confirm dialog on Approve; ``extra`` sentences are added (a provider's own terms)."""
    text = " ".join([approve_question(request), *extra])
    return ConfirmObject(
        title=PlainTextObject(text="Approve and spend?" if request.kind != "release" else "Approve the release?"),
        text=PlainTextObject(text=clip(text, 300)),
        confirm=PlainTextObject(text="Approve"),
        deny=PlainTextObject(text="Not yet"),
    )


def spends(request: NumberRequest) -> bool:
    """Approve starts a paid purchase or rent, or a release: both get the confirm dialog."""
    return request.kind == "release" or bool(request.monthly_total) or bool(request.setup_total)


def not_resell_confirm(request: NumberRequest) -> ConfirmObject | None:
    """The Approve button's confirm dialog for an ACS purchase that needs the do-not-resell agreement:
    what approving spends, and that it agrees, for the organisation, not to resell."""
    if request.kind != "purchase" or not needs_not_resell_agreement(request.ref):
        return None
    text = (
        f"{approve_question(request)} Approving request #{request.id} agrees, for the organisation, not to "
        "resell these numbers. Azure Communication Services requires this agreement to sell them."
    )
    return ConfirmObject(
        title=PlainTextObject(text="Agree not to resell?"),
        text=PlainTextObject(text=clip(text, 300)),
        confirm=PlainTextObject(text="Approve and agree"),
        deny=PlainTextObject(text="Cancel"),
    )


def decision_buttons(request: NumberRequest, extra: Sequence[str] = ()) -> ActionsBlock:
    confirm = not_resell_confirm(request)
    if confirm is None and spends(request):
        confirm = approve_confirm(request, extra)
    approve = ButtonElement(
        text=PlainTextObject(text="Approve", emoji=True),
        action_id=ids.ACTION_APPROVE,
        value=str(request.id),
        style="primary",
        confirm=confirm,
    )
    return ActionsBlock(
        block_id=f"decide:{request.id}",
        elements=[approve, button("Deny", ids.ACTION_DENY, str(request.id), "danger")],
    )


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(timezone.utc)


# --- offers ---------------------------------------------------------------------------


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


def offer_text(offer: Offer, *, now: datetime | None = None) -> str:
    """What an offer is, in mrkdwn: provider, numbers or group, capabilities, costs, hold."""
    d = offer.details
    # The query's type, not the provider's spelling of it (ACS says geographic/tollFree).
    kind = NUMBER_TYPE_LABELS.get(offer.query.number_type, offer.query.number_type)
    head = [f"*{provider_name(offer.provider)}*"]
    lines: list[str] = []
    if offer.kind == "purchase":
        head += [f"{offer.query.country} {kind}", plural(offer.quantity, "number"), capabilities(offer.sms, offer.voice)]
        lines.append(numbers_list(offer.numbers))
        lines.append(cost_text(offer.unit_monthly_cost, offer.quantity, offer.unit_setup_cost, offer.currency, offer.provider))
        if offer.expires_at is not None:
            lines.append(f":hourglass_flowing_sand: {until(offer.expires_at, _now(now))}")
        elif offer.provider == "twilio":
            lines.append(f"_{NOT_RESERVED}._")
        elif offer.provider == "telnyx":
            lines.append("_Held for 30 minutes once you request it, and kept held while the request waits._")
        if d.get("region") and offer.provider == "plivo":
            lines.insert(0, mrkdwn_escape(str(d["region"])))
        lines += conditions_lines(offer.provider, offer.ref)
    elif offer.kind == "rent":
        head.append(f"{d.get('country') or offer.query.country} {kind}")
        if d.get("prefix"):
            head.append(f"prefix {mrkdwn_escape(str(d['prefix']))}")
        if d.get("region"):
            head.append(mrkdwn_escape(str(d["region"])))
        head += [f"{d.get('stock', offer.max_quantity)} in stock", capabilities(offer.sms, offer.voice)]
        lines.append(cost_text(offer.unit_monthly_cost, offer.quantity, offer.unit_setup_cost, offer.currency, offer.provider))
        lines.append("_Numbers are picked from the group when rented; you say how many when you request._")
    else:  # assign
        head.append(both(offer.numbers[0]) if offer.numbers else "number")
        if d.get("location_name"):
            head.append(f"location {mrkdwn_escape(str(d['location_name']))}")
        if d.get("extension"):
            head.append(f"ext. {mrkdwn_escape(str(d['extension']))}")
        if d.get("telephony_type"):
            head.append(mrkdwn_escape(str(d["telephony_type"])).replace("_", " ").lower())
        lines.append("Owned by the organisation: becomes your primary work number.")
    return " · ".join(head) + "\n" + "\n".join(lines)


def search_title_for(q: SearchQuery, providers: Sequence[str]) -> str:
    """``US toll-free 833 ×2 with SMS at ACS, Plivo``: what was searched, for titles and fallback text."""
    if q.provider == "webex" or list(providers) == ["webex"]:
        where = f" in {mrkdwn_escape(q.location)}" if q.location else ""
        return f"Webex Calling numbers you can take as your primary number{where}"
    bits = [q.country, NUMBER_TYPE_LABELS.get(q.number_type, q.number_type)]
    if q.prefix:
        bits.append(q.prefix)
    if q.quantity > 1:
        bits.append(f"×{q.quantity}")
    wants = [w for w, on in (("SMS", q.sms), ("voice", q.voice)) if on]
    if wants:
        bits.append("with " + " + ".join(wants))
    at = ", ".join(provider_name(p) for p in providers)
    return f"{' '.join(bits)} at {at}" if at else " ".join(bits)


def search_title(result: SearchResult) -> str:
    return search_title_for(result.query, result.providers)


def sandboxed(message: Message, settings: Settings) -> Message:
    """``message`` marked as coming from the simulated providers, when they are in use: nothing was bought."""
    if not settings.uses_sandbox:
        return message
    return Message(
        text=message.text,
        blocks=[*message.blocks, context(f":test_tube: *{SANDBOX_NOTICE}*: numbers-bot runs on simulated providers here.")],
    )


def offers_message(result: SearchResult, settings: Settings, *, now: datetime | None = None) -> Message:
    """The ephemeral answer to a search: cheapest first, each offer with a Request button."""
    offers = result.offers
    title = search_title(result)
    blocks: list[Block] = [section(f"*{plural(len(offers), 'offer')}* — {title}" + (" — cheapest first" if len(offers) > 1 else ""))]
    if result.every_provider_failed:
        blocks.append(
            section(
                ":x: *No provider could be searched* — this is not an empty result:\n"
                + "\n".join(mrkdwn_escape(p) for p in result.problems)
            )
        )
    elif result.problems:
        blocks.append(section(":warning: " + "\n".join(mrkdwn_escape(p) for p in result.problems)))
    if not offers and not result.every_provider_failed:
        blocks.append(
            section(
                "Nothing found. Try another area code or prefix, another number type (`local`, `tollfree`, "
                "`national`), fewer numbers, or leave out `sms`/`voice`."
            )
        )
    # One block per offer while the message stays within Slack's limits (block count and
    # BLOCK_TEXT_BUDGET characters of text); keep one slot for the "N more" note and one for the sandbox notice.
    room = MAX_MESSAGE_BLOCKS - len(blocks) - 2
    spent = sum(len(as_text([b.to_dict()])) for b in blocks) + 300  # the note and slack
    shown = []
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
        shown.append(offer)
        blocks.append(block)
    if len(offers) > len(shown):
        hidden = len(offers) - len(shown)
        blocks.append(
            context(
                f"{plural(hidden, 'more offer')} — narrow the search with an area code or prefix, a number type, "
                "or `via acs`, `via plivo`, `via twilio` or `via telnyx`."
            )
        )
    if offers:
        cheapest = offers[0]
        price = money(cheapest.unit_monthly_cost, cheapest.currency) if cheapest.unit_monthly_cost is not None else "unknown"
        text = f"{plural(len(offers), 'offer')} for {title}; cheapest {price}/month at {provider_name(cheapest.provider)}"
    elif result.every_provider_failed:
        text = f"The search for {title} failed: " + "; ".join(result.problems)
    else:
        text = f"No offers for {title}"
    return sandboxed(Message(text=text, blocks=blocks), settings)


# --- requests ---------------------------------------------------------------------------


def what_text(request: NumberRequest) -> str:
    if request.kind == "release":
        return f"release of {', '.join(request.numbers) or plural(request.quantity, 'number')} at {provider_name(request.provider)}"
    noun = "number" if request.kind != "assign" else "Webex number"
    return f"{plural(request.quantity, noun)} from {provider_name(request.provider)}"


def request_line(request: NumberRequest) -> str:
    """One line per request for lists: id, what, cost, state."""
    bits = [f"*#{request.id}*", what_text(request), total_text(request.unit_monthly_cost, request.quantity, request.currency)]
    if request.state == State.FULFILLED and request.numbers:
        bits.append(", ".join(both(n) for n in request.numbers[:5]) + (" …" if len(request.numbers) > 5 else ""))
    bits.append(f"_{DESCRIBED[request.state]}_")
    return " · ".join(bits)


def status_text(request: NumberRequest, settings: Settings) -> str:
    """The card's status line; it changes as the request moves on."""
    state = request.state
    outcome = mrkdwn_escape(request.outcome or "")
    if state == State.PENDING:
        text = ":hourglass: *Waiting for approval*"
        if settings.required_approvals > 1:
            text += f" — {len(request.approvals)} of {settings.required_approvals} approvals"
            if request.approvals:
                text += " (" + ", ".join(who(a) for a in request.approvals) + ")"
        return text
    if state in (State.APPROVED, State.FULFILLING):
        return f":white_check_mark: *Approved by {approvers_text(request)}* — {DOING.get(request.kind, 'working on it')}…"
    if state == State.FULFILLED:
        shown = ", ".join(both(n) for n in request.numbers[:10]) or "(no numbers reported)"
        if len(request.numbers) > 10:
            shown += f" and {len(request.numbers) - 10} more"
        cost = total_text(request.unit_monthly_cost, request.quantity, request.currency)
        done = DONE.get(request.kind, "Done")
        if request.kind == "release":
            return f":tada: *{done}* {shown} (saves {cost})"
        if request.kind == "assign":
            return f":tada: *{done}* {shown} to {who(request.requester)} ({cost})"
        return f":tada: *{done}* {shown} ({cost})"
    if state == State.DENIED:
        return f":no_entry: *Denied by {who(request.decided_by)}*: {outcome}"
    if state == State.CANCELLED:
        return ":heavy_multiplication_x: *Cancelled* by the requester"
    if state == State.EXPIRED:
        return f":hourglass_flowing_sand: *Expired*: no decision within {human_duration(settings.request_ttl)}"
    if state == State.FAILED:
        return f":x: *Failed*: {outcome or 'the provider gave no reason'}"
    if state == State.PROVIDER_PENDING:
        return f":hourglass_flowing_sand: *Waiting on {provider_name(request.provider)}*: {outcome}"
    if state == State.NEEDS_ATTENTION:
        return (
            f":warning: *Needs attention*: {outcome} — someone must check at {provider_name(request.provider)} "
            "whether it happened; the bot will not retry on its own."
        )
    return f"*{DESCRIBED[state]}*"  # pragma: no cover - every State is handled above


def _offer_detail(request: NumberRequest, offer: Offer | None) -> str:
    if request.numbers:
        return numbers_list(request.numbers)
    if offer is not None and offer.kind == "rent":
        d = offer.details
        bits = [f"{plural(request.quantity, 'number')} from the group"]
        if d.get("prefix"):
            bits.append(f"prefix {mrkdwn_escape(str(d['prefix']))}")
        if d.get("region"):
            bits.append(mrkdwn_escape(str(d["region"])))
        return " · ".join(bits)
    return "picked by the provider when fulfilled"


def request_sections(
    request: NumberRequest, settings: Settings, *, offer: Offer | None = None, now: datetime | None = None
) -> list[Block]:
    """The body shared by the approval card and ``show``: who, what, cost, hold, why."""
    now = _now(now)
    kind = ""
    if offer is not None:
        kind = " " + NUMBER_TYPE_LABELS.get(offer.query.number_type, "")
    if request.unit_monthly_cost is None:
        cost = "see Twilio pricing" if request.provider == "twilio" else f"not quoted by {provider_name(request.provider)}"
    elif request.kind == "release":
        cost = f"saves *{money(request.monthly_total, request.currency)}/month*"
    elif request.quantity > 1:
        cost = (
            f"{money(request.unit_monthly_cost, request.currency)}/month each\n"
            f"*{money(request.monthly_total, request.currency)}/month* in total"
        )
    else:
        cost = f"*{money(request.unit_monthly_cost, request.currency)}/month*"
    if request.unit_setup_cost is not None and request.unit_setup_cost > 0:
        cost += f"\nsetup {money(request.setup_total, request.currency)} once"
    fields = [
        md(f"*Requester*\n{who(request.requester)}"),
        md(f"*Provider*\n{provider_name(request.provider)}{kind.rstrip()}"),
        md(clip(f"*Cost*\n{cost}", FIELD_TEXT_MAX)),
        md(clip(f"*Numbers*\n{_offer_detail(request, offer)}", FIELD_TEXT_MAX)),
    ]
    if request.hold_expires_at is not None and request.state in (State.PENDING, State.APPROVED):
        fields.append(md(f"*Hold*\n{hold_text(request.hold_expires_at, now)}"))
    elif request.provider == "twilio" and request.kind == "purchase" and request.state in (State.PENDING, State.APPROVED):
        fields.append(md(clip(f"*Hold*\n{NOT_RESERVED}", FIELD_TEXT_MAX)))
    blocks: list[Block] = [
        SectionBlock(fields=fields, block_id=f"about:{request.id}"),
        section("*Justification*\n" + quote(request.justification, SECTION_TEXT_MAX - 40)),
    ]
    conditions = conditions_lines(request.provider, request.ref) if request.kind == "purchase" else []
    if conditions:
        blocks.append(section("\n".join(conditions), block_id=f"conditions:{request.id}"))
    return blocks


def card_message(
    request: NumberRequest, settings: Settings, *, offer: Offer | None = None, now: datetime | None = None
) -> Message:
    """The approval card in ``NUMBERS_APPROVAL_CHANNEL``; buttons only while a decision is possible."""
    now = _now(now)
    blocks: list[Block] = [header(f"Request #{request.id} · {what_text(request)}")]
    blocks += request_sections(request, settings, offer=offer, now=now)
    blocks.append(section(status_text(request, settings), block_id=f"status:{request.id}"))
    notes = []
    if request.outcome and request.state in (State.PENDING, State.APPROVED, State.FULFILLING, State.FULFILLED):
        notes.append(mrkdwn_escape(request.outcome))
    if request.state == State.PENDING:
        notes.append(f"Expires undecided {slack_date(request.expires_at)}")
    elif request.decided_by and request.state not in (State.DENIED, State.APPROVED, State.FULFILLING):
        notes.append(f"Approved by {approvers_text(request)}")
    if notes:
        blocks.append(context(*notes))
    if request.state == State.PENDING:
        blocks.append(decision_buttons(request))
    text = f"Request #{request.id} from {who(request.requester)}: {what_text(request)}, " + total_text(
        request.unit_monthly_cost, request.quantity, request.currency
    ) + f" — {DESCRIBED[request.state]}"
    return sandboxed(Message(text=text, blocks=blocks), settings)


def requests_message(
    requests: list[NumberRequest], *, title: str, empty: str, buttons: bool = False, requester: bool = True
) -> Message:
    """``mine`` and ``pending``: one section per request (plus Approve/Deny for approvers)."""
    blocks: list[Block] = [section(f"*{title}*")]
    if not requests:
        blocks.append(section(empty))
        return Message(text=f"{title}: none", blocks=blocks)
    per = 2 if buttons else 1
    room = (MAX_MESSAGE_BLOCKS - len(blocks) - 1) // per
    for request in requests[:room]:
        why = clip(mrkdwn_escape(" ".join(request.justification.split())), 300)
        text = request_line(request) + (f"\n{who(request.requester)}: {why}" if requester else f"\n_{why}_")
        blocks.append(section(text, block_id=f"req:{request.id}"))
        if buttons:
            blocks.append(decision_buttons(request))
    if len(requests) > room:
        blocks.append(context(f"{plural(len(requests) - room, 'more request')} not shown; see the App Home or `/numbers show <id>`."))
    return Message(text=f"{title}: {len(requests)}", blocks=blocks)


def mine_message(requests: list[NumberRequest]) -> Message:
    return requests_message(
        requests,
        title="Your requests (newest first)",
        empty="You have no requests yet. Start with `/numbers search US tollfree` or just `/numbers`.",
        requester=False,
    )


def pending_message(requests: list[NumberRequest]) -> Message:
    return requests_message(
        requests,
        title=f"{plural(len(requests), 'request')} waiting for a decision (oldest first)",
        empty="Nothing is waiting for a decision.",
        buttons=True,
    )


def event_line(event: Event) -> str:
    return f"{slack_date(event.at)} {who(event.actor)} *{event.kind}*: {mrkdwn_escape(event.message)}"


def show_message(
    request: NumberRequest, settings: Settings, *, offer: Offer | None = None, now: datetime | None = None
) -> Message:
    blocks: list[Block] = [header(f"Request #{request.id} · {what_text(request)}")]
    blocks += request_sections(request, settings, offer=offer, now=now)
    blocks.append(section(status_text(request, settings)))
    events = request.events[-40:]
    lines = [event_line(e) for e in events]
    history = "*History*\n" + "\n".join(lines)
    if len(history) > SECTION_TEXT_MAX:
        # Keep the newest lines: they say where it stands.
        while lines and len("*History*\n…\n" + "\n".join(lines)) > SECTION_TEXT_MAX:
            lines.pop(0)
        history = "*History*\n…\n" + "\n".join(lines)
    blocks.append(section(history))
    return Message(text=f"Request #{request.id}: {DESCRIBED[request.state]}", blocks=blocks)


# --- short answers ------------------------------------------------------------------------


def note(text: str) -> Message:
    """A one-section answer; ``text`` is mrkdwn the bot wrote."""
    return Message(text=clip(text, MESSAGE_TEXT_MAX), blocks=[section(text)])


def error_message(exc: Exception, *, usage: str | None = None) -> Message:
    """What went wrong, in the error's own words (escaped: they may quote the user's input)."""
    text = f":warning: {safe(str(exc))}"
    usage = usage if usage is not None else getattr(exc, "usage", None)
    blocks: list[Block] = [section(text)]
    if usage:
        blocks.append(section(mrkdwn_escape(usage)))
    # The fallback text is mrkdwn too (notifications, screen readers): escaped like the blocks.
    return Message(text=clip(safe(str(exc)), MESSAGE_TEXT_MAX), blocks=blocks)


def help_message() -> Message:
    return Message(
        text="How to use /numbers",
        blocks=[
            section(mrkdwn_escape(USAGE)),
            context(
                "Offers come cheapest first; *Request* asks for a justification, then an approver decides on the "
                "card. You get a DM at every step."
            ),
        ],
    )


def searching_text(title: str) -> str:
    return f":mag: Searching {title}…"


# --- direct messages and thread replies --------------------------------------------------


def approver_mentions(settings: Settings) -> str:
    policy = settings.policy
    users = [f"<@{u}>" for u in sorted(policy.approver_users)]
    groups = [f"<!subteam^{g}>" for g in sorted(policy.approver_groups)]
    return " ".join(users + groups)


def dm_message(
    request: NumberRequest,
    what: str,
    settings: Settings,
    *,
    actor: str | None = None,
    text: str | None = None,
    channel: str | None = None,
    link: str | None = None,
) -> Message:
    """The requester's DM for one step of their request.

    ``channel`` is where the card is (None when it could not be posted), ``link`` its permalink.
    """
    rid = f"request #{request.id} ({what_text(request)}, {total_text(request.unit_monthly_cost, request.quantity, request.currency)})"
    extra = mrkdwn_escape(text) if text else ""
    if what == "created":
        if request.state == State.PENDING:
            body = f":incoming_envelope: Your {rid} is waiting for approval"
            if channel:
                body += f" in <#{channel}>" + (f" — <{link}|see the card>" if link else "")
            body += "."
            if channel is None:
                body += " The approval card could not be posted; approvers can still see it with `/numbers pending`."
        elif request.state in (State.APPROVED, State.FULFILLING):
            body = f":white_check_mark: Your {rid} was approved by policy (below {money(settings.auto_approve_below)}/month); {DOING.get(request.kind, 'working on it')} now."
        else:
            body = f"Your {rid} is {DESCRIBED[request.state]}."
    elif what == "approved":
        body = f":white_check_mark: Your {rid} was approved by {who(actor or request.decided_by)}; {DOING.get(request.kind, 'working on it')} now. I'll tell you when it is done."
    elif what == "denied":
        body = f":no_entry: Your {rid} was denied by {who(actor or request.decided_by)}: {extra or mrkdwn_escape(request.outcome or '')}"
    elif what == "fulfilled":
        body = f":tada: Your {rid} is done. {status_text(request, settings).split(' ', 1)[1]}"
        if extra:
            body += f"\n{extra}"
    elif what == "failed":
        body = f":x: Your {rid} failed: {extra or mrkdwn_escape(request.outcome or '')}"
    elif what == "expired":
        body = (
            f":hourglass_flowing_sand: Your {rid} expired: nobody decided within "
            f"{human_duration(settings.request_ttl)}. Search again if you still need numbers."
        )
    elif what == "provider_pending":
        body = (
            f":hourglass_flowing_sand: Your {rid} was ordered; {provider_name(request.provider)} is following up "
            f"before the numbers are yours: {extra or mrkdwn_escape(request.outcome or '')}"
        )
    elif what == "needs_attention":
        body = (
            f":warning: Your {rid} needs a person to check it at {provider_name(request.provider)}: "
            f"{extra or mrkdwn_escape(request.outcome or '')}. The approvers have been told; nothing is retried blindly."
        )
    elif what == "reapproval":
        body = f":repeat: Your {rid} needs a fresh approval: {extra or mrkdwn_escape(request.outcome or '')}"
    elif what == "numbers_changed":
        body = f":repeat: Your {rid}: {extra or mrkdwn_escape(request.outcome or '')}"
    else:
        body = f"Your {rid} is {DESCRIBED[request.state]}."
    if link and what != "created":
        body += f" <{link}|See the card.>"
    return sandboxed(note(body), settings)


def thread_message(request: NumberRequest, what: str, settings: Settings, *, text: str | None = None) -> Message:
    """A reply under the card for what approvers must act on."""
    mentions = approver_mentions(settings)
    extra = mrkdwn_escape(text) if text else mrkdwn_escape(request.outcome or "")
    if what == "needs_attention":
        body = (
            f":warning: {mentions} request #{request.id} needs a person: {extra}. Check at "
            f"{provider_name(request.provider)} whether it happened before doing anything; the bot will not retry it."
        )
    elif what == "reminder":
        body = (
            f":bell: {mentions} request #{request.id} from {who(request.requester)} is still waiting for a decision; "
            f"it expires {slack_date(request.expires_at)}."
        )
    else:  # reapproval
        body = f":repeat: {mentions} request #{request.id} needs a fresh approval: {extra}"
    return note(body.replace("  ", " "))


# --- modals --------------------------------------------------------------------------------


def _plain(text: str) -> PlainTextObject:
    return PlainTextObject(text=text, emoji=True)


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


def _option(label: str, value: str) -> Option:
    return Option(text=_plain(label), value=value)


def search_modal(providers: Sequence[str], settings: Settings, *, private_metadata: str = "") -> View:
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
                max_value=settings.max_quantity,
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


def request_quantity_limit(offer: Offer, settings: Settings) -> int:
    return max(1, min(offer.max_quantity, settings.max_quantity))


def request_modal(offer: Offer, settings: Settings, *, private_metadata: str = "", now: datetime | None = None) -> View:
    now = _now(now)
    blocks: list[Block] = [section(offer_text(offer, now=now))]
    if offer.kind == "purchase" and offer.expires_at is not None and offer.expires_at <= now:
        blocks.append(
            context(
                ":warning: This hold has expired. If the request is approved the bot searches again and buys "
                "the same quantity at no more than this price, or asks for a fresh approval."
            )
        )
    if offer.kind == "rent":
        limit = request_quantity_limit(offer, settings)
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
                action_id=ids.INPUT_JUSTIFICATION, multiline=True, min_length=1, max_length=MAX_JUSTIFICATION
            ),
        )
    )
    return View(
        type="modal",
        callback_id=ids.VIEW_REQUEST,
        title=_plain("Request a number" if offer.kind == "assign" else "Request numbers"),
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
            action_id=ids.INPUT_REASON, multiline=True, min_length=1, max_length=MAX_JUSTIFICATION
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
        f"*{both(held.number)}* at {provider_name(held.provider)} · "
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


def held_line(held: HeldNumber) -> str:
    return (
        f"{both(held.number)} · {provider_name(held.provider)} · {money(held.unit_monthly_cost, held.currency)}/month · "
        f"{who(held.requester)}, #{held.request_id}, approved by {who(held.approved_by)} on {held.acquired_at:%Y-%m-%d}: "
        + clip(mrkdwn_escape(" ".join(held.justification.split())), 200)
    )


def costs_lines(summary: CostSummary, settings: Settings) -> list[str]:
    lines = [f"*Monthly total: {money(summary.total)}*"]
    by_provider = summary.by_provider()
    if by_provider:
        lines.append("By provider: " + ", ".join(f"{provider_name(p)} {money(t)}" for p, t in by_provider.items()))
        lines.append("By requester: " + ", ".join(f"{who(r)} {money(t)}" for r, t in summary.by_requester().items()))
    if summary.budget is not None:
        lines.append(
            f"Budget this month: {money(summary.budget)} · committed {money(summary.committed_this_month)} · "
            f"*left {money(summary.budget_left)}*"
        )
    return lines


def costs_message(summary: CostSummary, settings: Settings) -> Message:
    return Message(
        text=f"Monthly cost of the numbers held: {money(summary.total)}",
        blocks=[header("What the numbers cost"), section(clip("\n".join(costs_lines(summary, settings)), SECTION_TEXT_MAX))],
    )


def inventory_message(numbers: list[HeldNumber], summary: CostSummary, settings: Settings) -> Message:
    """Every number held through the bot, in as few sections as fit, then the totals."""
    blocks: list[Block] = [header(f"Numbers the team holds ({len(numbers)})")]
    if not numbers:
        blocks.append(section("None yet: numbers bought, rented or assigned through numbers-bot are listed here."))
    chunk: list[str] = []
    shown = 0
    for held in numbers:
        line = "• " + held_line(held)
        if chunk and len("\n".join(chunk + [line])) > SECTION_TEXT_MAX - 100:
            blocks.append(section("\n".join(chunk)))
            chunk = []
            if len(blocks) >= MAX_MESSAGE_BLOCKS - 4:
                break
        chunk.append(line)
        shown += 1
    if chunk and len(blocks) < MAX_MESSAGE_BLOCKS - 3:
        blocks.append(section("\n".join(chunk)))
    else:
        shown -= len(chunk)
    if shown < len(numbers):
        blocks.append(context(f"{plural(len(numbers) - shown, 'more number')} not shown; `numbers-bot inventory --json` lists all."))
    blocks += [DividerBlock(), section(clip("\n".join(costs_lines(summary, settings)), SECTION_TEXT_MAX))]
    blocks.append(context("Ask to give one back with `/numbers release <number>`."))
    return Message(text=f"{plural(len(numbers), 'number')} held, {money(summary.total)}/month", blocks=blocks)


# --- App Home -----------------------------------------------------------------------------


def home_view(
    user: str,
    mine: list[NumberRequest],
    pending: list[NumberRequest] | None,
    settings: Settings,
    *,
    notice: str | None = None,
    numbers: list[HeldNumber] | None = None,
) -> View:
    """The Home tab: the viewer's numbers and recent requests and, for approvers (``pending`` given), the queue."""
    channel = f" in <#{settings.approval_channel}>" if settings.approval_channel else ""
    blocks: list[Block] = [
        header("Phone numbers"),
        section(
            f"Search the providers and ask for numbers; approvers decide on the cards{channel} or here.",
            accessory=button("Search numbers", ids.ACTION_HOME_SEARCH, "search", "primary"),
        ),
    ]
    if notice:
        blocks.append(section(notice))
    if numbers:
        total = sum((n.unit_monthly_cost or Decimal(0) for n in numbers), Decimal(0))
        blocks += [DividerBlock(), header(f"Your numbers ({len(numbers)}, {money(total)}/month)")]
        lines = ["• " + held_line(n) for n in numbers[:15]]
        if len(numbers) > 15:
            lines.append(f"… and {len(numbers) - 15} more (`/numbers inventory`)")
        blocks.append(section(clip("\n".join(lines), SECTION_TEXT_MAX)))
    blocks += [DividerBlock(), header("Your requests")]
    recent = mine[:10]
    if recent:
        blocks += [section(request_line(r), block_id=f"mine:{r.id}") for r in recent]
    else:
        blocks.append(section("None yet. Click *Search numbers* or type `/numbers` anywhere."))
    if pending is not None:
        blocks += [DividerBlock(), header(f"Waiting for a decision ({len(pending)})")]
        if not pending:
            blocks.append(section("Nothing is waiting for a decision."))
        room = (MAX_VIEW_BLOCKS - len(blocks) - 1) // 2
        for request in pending[:room]:
            text = request_line(request) + f"\n{who(request.requester)}: " + clip(
                mrkdwn_escape(" ".join(request.justification.split())), 500
            )
            blocks.append(section(text, block_id=f"pending:{request.id}"))
            blocks.append(decision_buttons(request))
        if len(pending) > room:
            blocks.append(context(f"{plural(len(pending) - room, 'more request')} waiting; see `/numbers pending`."))
    return View(type="home", blocks=blocks)


# --- reading blocks back as text (logs, tests, the README) ---------------------------------


def as_text(blocks: Sequence[dict[str, Any]]) -> str:
    """A plain rendering of block dicts: what a person would read, buttons in [brackets]."""
    out: list[str] = []
    for b in blocks:
        kind = b.get("type")
        if kind in ("section", "header"):
            if b.get("text"):
                out.append(b["text"]["text"])
            for f in b.get("fields") or []:
                out.append(f["text"])
            acc = b.get("accessory")
            if acc and acc.get("type") == "button":
                out.append(f"[{acc['text']['text']}]")
        elif kind == "context":
            out.append(" ".join(e.get("text", "") for e in b.get("elements", [])))
        elif kind == "actions":
            out.append(" ".join(f"[{e['text']['text']}]" for e in b.get("elements", []) if e.get("type") == "button"))
        elif kind == "divider":
            out.append("---")
        elif kind == "input":
            out.append(f"<{b['label']['text']}>")
    return "\n".join(out)


def action_ids(blocks: Sequence[dict[str, Any]]) -> set[str]:
    """Every action_id of the buttons in ``blocks`` (accessories and actions blocks)."""
    found: set[str] = set()
    for b in blocks:
        acc = b.get("accessory")
        if acc and acc.get("action_id") and acc.get("type") == "button":
            found.add(acc["action_id"])
        for e in b.get("elements") or []:
            if isinstance(e, dict) and e.get("type") == "button" and e.get("action_id"):
                found.add(e["action_id"])
    return found
