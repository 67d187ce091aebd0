"""Requests in Slack: the approval card, its status line and decision buttons, ``mine``, ``pending`` and ``show``."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Sequence

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement, ConfirmObject, PlainTextObject, SectionBlock

from bot.domain.kinds import Kind
from bot.domain.display import total_text
from bot.domain.grammar import NUMBER_TYPE_LABELS
from bot.domain.offers import Offer
from bot.domain.requests import Event, NumberRequest
from bot.domain.policy import POLICY_ACTOR, money
from bot.domain.states import DESCRIBED, State
from bot.slack import ids
from bot.slack.render.config import RenderConfig
from bot.slack.render.kit import (
    FIELD_TEXT_MAX,
    MAX_MESSAGE_BLOCKS,
    SECTION_TEXT_MAX,
    Message,
    button,
    clip,
    context,
    escape,
    header,
    human_duration,
    inline,
    md,
    number,
    numbers_list,
    plural,
    provider_name,
    quote,
    sandboxed,
    section,
    slack_date,
    who,
)
from bot.slack.render.offers import NOT_RESERVED, conditions_lines, needs_not_resell_agreement

__all__ = [
    "DOING", "DONE", "approve_question", "approvers_text", "card_message", "decision_buttons", "event_line",
    "mine_message", "pending_message", "request_line", "request_sections", "requests_message", "show_message",
    "status_text", "what_text",
]

DOING = {Kind.PURCHASE: "buying", Kind.RENT: "renting", Kind.ASSIGN: "assigning", Kind.RELEASE: "releasing"}
DONE = {Kind.PURCHASE: "Purchased", Kind.RENT: "Rented", Kind.ASSIGN: "Assigned", Kind.RELEASE: "Released"}


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(timezone.utc)


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


def approve_question(request: NumberRequest) -> str:
    """What Approve will do, as the confirm dialog asks it ("Buy 2 numbers at ACS for $4.00/month?")."""
    count = f"{request.quantity} number{'s' if request.quantity != 1 else ''}"
    where = provider_name(request.provider)
    if request.kind == Kind.RELEASE:
        numbers = ", ".join(request.numbers) or count
        saves = request.monthly_total
        tail = f"; it saves {money(saves, request.currency)}/month" if saves is not None else ""
        return f"Release {numbers} at {where}{tail}? The number goes back to the provider and stops working."
    monthly = request.monthly_total
    cost = f" for {money(monthly, request.currency)}/month" if monthly is not None else ""
    setup = request.setup_total
    if setup:
        cost += f" plus {money(setup, request.currency)} setup"
    verb = "Assign" if request.kind == Kind.ASSIGN else ("Rent" if request.kind == Kind.RENT else "Buy")
    return f"{verb} {count} at {where}{cost}?"


def approve_confirm(request: NumberRequest, extra: Sequence[str] = ()) -> ConfirmObject:
    """Slack's confirm dialog on Approve; ``extra`` sentences are added (a provider's own terms)."""
    text = " ".join([approve_question(request), *extra])
    return ConfirmObject(
        title=PlainTextObject(text="Approve and spend?" if request.kind != Kind.RELEASE else "Approve the release?"),
        text=PlainTextObject(text=clip(text, 300)),
        confirm=PlainTextObject(text="Approve"),
        deny=PlainTextObject(text="Not yet"),
    )


def spends(request: NumberRequest) -> bool:
    """Approve starts a paid purchase or rent, or a release: both get the confirm dialog."""
    return request.kind == Kind.RELEASE or bool(request.monthly_total) or bool(request.setup_total)


def not_resell_confirm(request: NumberRequest) -> ConfirmObject | None:
    """The Approve button's confirm dialog for an ACS purchase that needs the do-not-resell agreement:
    what approving spends, and that it agrees, for the organisation, not to resell."""
    if request.kind != Kind.PURCHASE or not needs_not_resell_agreement(request.ref):
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


# --- requests ---------------------------------------------------------------------------


def what_text(request: NumberRequest) -> str:
    if request.kind == Kind.RELEASE:
        return f"release of {', '.join(request.numbers) or plural(request.quantity, 'number')} at {provider_name(request.provider)}"
    noun = "number" if request.kind != Kind.ASSIGN else "Webex number"
    return f"{plural(request.quantity, noun)} from {provider_name(request.provider)}"


def request_line(request: NumberRequest) -> str:
    """One line per request for lists: id, what, cost, state."""
    bits = [f"*#{request.id}*", what_text(request), total_text(request.unit_monthly_cost, request.quantity, request.currency)]
    if request.state == State.FULFILLED and request.numbers:
        bits.append(", ".join(number(n) for n in request.numbers[:5]) + (" …" if len(request.numbers) > 5 else ""))
    bits.append(f"_{DESCRIBED[request.state]}_")
    return " · ".join(bits)


def status_text(request: NumberRequest, config: RenderConfig) -> str:
    """The card's status line; it changes as the request moves on."""
    state = request.state
    outcome = escape(request.outcome or "")
    if state == State.PENDING:
        text = ":hourglass: *Waiting for approval*"
        if config.required_approvals > 1:
            text += f" — {len(request.approvals)} of {config.required_approvals} approvals"
            if request.approvals:
                text += " (" + ", ".join(who(a) for a in request.approvals) + ")"
        return text
    if state in (State.APPROVED, State.FULFILLING):
        return f":white_check_mark: *Approved by {approvers_text(request)}* — {DOING.get(request.kind, 'working on it')}…"
    if state == State.FULFILLED:
        shown = ", ".join(number(n) for n in request.numbers[:10]) or "(no numbers reported)"
        if len(request.numbers) > 10:
            shown += f" and {len(request.numbers) - 10} more"
        cost = total_text(request.unit_monthly_cost, request.quantity, request.currency)
        done = DONE.get(request.kind, "Done")
        if request.kind == Kind.RELEASE:
            return f":tada: *{done}* {shown} (saves {cost})"
        if request.kind == Kind.ASSIGN:
            return f":tada: *{done}* {shown} to {who(request.requester)} ({cost})"
        return f":tada: *{done}* {shown} ({cost})"
    if state == State.DENIED:
        return f":no_entry: *Denied by {who(request.decided_by)}*: {outcome}"
    if state == State.CANCELLED:
        return ":heavy_multiplication_x: *Cancelled* by the requester"
    if state == State.EXPIRED:
        return f":hourglass_flowing_sand: *Expired*: no decision within {human_duration(config.request_ttl)}"
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
    if offer is not None and offer.kind == Kind.RENT:
        d = offer.details
        bits = [f"{plural(request.quantity, 'number')} from the group"]
        if d.get("prefix"):
            bits.append(f"prefix {escape(str(d['prefix']))}")
        if d.get("region"):
            bits.append(escape(str(d["region"])))
        return " · ".join(bits)
    return "picked by the provider when fulfilled"


def request_sections(
    request: NumberRequest, config: RenderConfig, *, offer: Offer | None = None, now: datetime | None = None
) -> list[Block]:
    """The body shared by the approval card and ``show``: who, what, cost, hold, why."""
    now = _now(now)
    kind = ""
    if offer is not None:
        kind = " " + NUMBER_TYPE_LABELS.get(offer.query.number_type, "")
    if request.unit_monthly_cost is None:
        cost = "see Twilio pricing" if request.provider == "twilio" else f"not quoted by {provider_name(request.provider)}"
    elif request.kind == Kind.RELEASE:
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
    elif request.provider == "twilio" and request.kind == Kind.PURCHASE and request.state in (State.PENDING, State.APPROVED):
        fields.append(md(clip(f"*Hold*\n{NOT_RESERVED}", FIELD_TEXT_MAX)))
    blocks: list[Block] = [
        SectionBlock(fields=fields, block_id=f"about:{request.id}"),
        section("*Justification*\n" + quote(request.justification, SECTION_TEXT_MAX - 40)),
    ]
    conditions = conditions_lines(request.provider, request.ref) if request.kind == Kind.PURCHASE else []
    if conditions:
        blocks.append(section("\n".join(conditions), block_id=f"conditions:{request.id}"))
    return blocks


def card_message(
    request: NumberRequest, config: RenderConfig, *, offer: Offer | None = None, now: datetime | None = None
) -> Message:
    """The approval card in ``NUMBERS_APPROVAL_CHANNEL``; buttons only while a decision is possible."""
    now = _now(now)
    blocks: list[Block] = [header(f"Request #{request.id} · {what_text(request)}")]
    blocks += request_sections(request, config, offer=offer, now=now)
    blocks.append(section(status_text(request, config), block_id=f"status:{request.id}"))
    notes = []
    if request.outcome and request.state in (State.PENDING, State.APPROVED, State.FULFILLING, State.FULFILLED):
        notes.append(escape(request.outcome))
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
    return sandboxed(Message(text=text, blocks=blocks), config)


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
        why = inline(request.justification, 300)
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
    # One line per event, bounded: one long deny reason must not push the rest of the history out.
    return f"{slack_date(event.at)} {who(event.actor)} *{event.kind}*: {inline(event.message, 600)}"


def show_message(
    request: NumberRequest, config: RenderConfig, *, offer: Offer | None = None, now: datetime | None = None
) -> Message:
    blocks: list[Block] = [header(f"Request #{request.id} · {what_text(request)}")]
    blocks += request_sections(request, config, offer=offer, now=now)
    blocks.append(section(status_text(request, config)))
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


