"""Short answers, errors, help, and the DMs and thread replies that follow a request through its life."""

from __future__ import annotations

from slack_sdk.models.blocks import Block

from bot.domain.display import total_text
from bot.domain.grammar import USAGE
from bot.domain.requests import NumberRequest
from bot.domain.policy import money
from bot.domain.states import DESCRIBED, State
from bot.slack.render.config import RenderConfig
from bot.slack.render.kit import (
    MESSAGE_TEXT_MAX,
    Message,
    clip,
    context,
    escape,
    human_duration,
    provider_name,
    safe,
    sandboxed,
    section,
    slack_date,
    who,
)
from bot.slack.render.requests import DOING, status_text, what_text

__all__ = ["approver_mentions", "dm_message", "error_message", "help_message", "note", "refused_message", "thread_message"]


def note(text: str) -> Message:
    """A one-section answer; ``text`` is mrkdwn the bot wrote."""
    return Message(text=clip(text, MESSAGE_TEXT_MAX), blocks=[section(text)])


def error_message(exc: Exception, *, usage: str | None = None) -> Message:
    """What went wrong, in the error's own words (escaped: they may quote the user's input)."""
    text = f":warning: {safe(str(exc))}"
    usage = usage if usage is not None else getattr(exc, "usage", None)
    blocks: list[Block] = [section(text)]
    if usage:
        blocks.append(section(escape(usage)))
    # The fallback text is mrkdwn too (notifications, screen readers): escaped like the blocks.
    return Message(text=clip(safe(str(exc)), MESSAGE_TEXT_MAX), blocks=blocks)


def refused_message(what: str, exc: Exception) -> Message:
    """``what`` did not happen, and why in the error's own words (escaped, the bot's mentions kept)."""
    return note(f":warning: {what}: {safe(str(exc))}")


def help_message() -> Message:
    return Message(
        text="How to use /numbers",
        blocks=[
            section(escape(USAGE)),
            context(
                "Offers come cheapest first; *Request* asks for a justification, then an approver decides on the "
                "card. You get a DM at every step."
            ),
        ],
    )


def approver_mentions(config: RenderConfig) -> str:
    users = [f"<@{u}>" for u in sorted(config.approver_users)]
    groups = [f"<!subteam^{g}>" for g in sorted(config.approver_groups)]
    return " ".join(users + groups)


def _created_body(request: NumberRequest, rid: str, config: RenderConfig, channel: str | None, link: str | None) -> str:
    if request.state == State.PENDING:
        body = f":incoming_envelope: Your {rid} is waiting for approval"
        if channel:
            body += f" in <#{channel}>" + (f" — <{link}|see the card>" if link else "")
        body += "."
        if channel is None:
            body += " The approval card could not be posted; approvers can still see it with `/numbers pending`."
        return body
    if request.state in (State.APPROVED, State.FULFILLING):
        return (
            f":white_check_mark: Your {rid} was approved by policy (below {money(config.auto_approve_below)}/month); "
            f"{DOING.get(request.kind, 'working on it')} now."
        )
    return f"Your {rid} is {DESCRIBED[request.state]}."


def _step_body(request: NumberRequest, what: str, rid: str, config: RenderConfig, actor: str | None, extra: str) -> str:
    """The DM for every step after "created"; ``extra`` is already escaped (else the request's outcome is)."""
    said = extra or escape(request.outcome or "")
    where = provider_name(request.provider)
    doing = DOING.get(request.kind, "working on it")
    bodies = {
        "approved": f":white_check_mark: Your {rid} was approved by {who(actor or request.decided_by)}; {doing} now. I'll tell you when it is done.",
        "denied": f":no_entry: Your {rid} was denied by {who(actor or request.decided_by)}: {said}",
        "failed": f":x: Your {rid} failed: {said}",
        "expired": (
            f":hourglass_flowing_sand: Your {rid} expired: nobody decided within "
            f"{human_duration(config.request_ttl)}. Search again if you still need numbers."
        ),
        "provider_pending": (
            f":hourglass_flowing_sand: Your {rid} was ordered; {where} is following up before the numbers are yours: {said}"
        ),
        "needs_attention": (
            f":warning: Your {rid} needs a person to check it at {where}: "
            f"{said}. The approvers have been told; nothing is retried blindly."
        ),
        "reapproval": f":repeat: Your {rid} needs a fresh approval: {said}",
        "numbers_changed": f":repeat: Your {rid}: {said}",
    }
    if what == "fulfilled":
        body = f":tada: Your {rid} is done. {status_text(request, config).split(' ', 1)[1]}"
        return body + (f"\n{extra}" if extra else "")
    return bodies.get(what) or f"Your {rid} is {DESCRIBED[request.state]}."


def dm_message(
    request: NumberRequest,
    what: str,
    config: RenderConfig,
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
    if what == "created":
        body = _created_body(request, rid, config, channel, link)
    else:
        body = _step_body(request, what, rid, config, actor, escape(text) if text else "")
    if link and what != "created":
        body += f" <{link}|See the card.>"
    return sandboxed(note(body), config)


def thread_message(request: NumberRequest, what: str, config: RenderConfig, *, text: str | None = None) -> Message:
    """A reply under the card for what approvers must act on."""
    mentions = approver_mentions(config)
    extra = escape(text) if text else escape(request.outcome or "")
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


