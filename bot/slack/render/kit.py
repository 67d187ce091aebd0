"""The render kit: Slack's limits, the ``Message`` value, escaping, and the small block builders.

This is the ONE place where text is escaped for mrkdwn. Anything a user or a
provider wrote (justifications, deny reasons, locations, regions, provider error
texts, command text echoed in errors) reaches a message only through
``escape``, ``inline``, ``quote``, ``safe`` or ``who`` here, so that
``<!channel>``, a ``<@U…>`` ping or a disguised ``<https://evil|bank>`` link stays
inert text. The other render modules never escape by hand.

Building with ``slack_sdk.models`` means Slack's per-element limits (section
text 3000, button text 75, value 2000, …) are checked when ``to_dict()`` runs;
the per-message limit (50 blocks) is not checked by the SDK, so ``Message``
checks it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Sequence

from slack_sdk.models.blocks import (
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    Option,
    PlainTextObject,
    SectionBlock,
)

from bot.domain.display import both
from bot.domain.policy import POLICY_ACTOR
from bot.slack.render.config import RenderConfig

__all__ = [
    "BLOCK_TEXT_BUDGET", "CONTEXT_TEXT_MAX", "FIELD_TEXT_MAX", "HEADER_TEXT_MAX", "MAX_MESSAGE_BLOCKS",
    "MAX_VIEW_BLOCKS", "MESSAGE_TEXT_MAX", "PROVIDER_NAMES", "SECTION_TEXT_MAX", "Message", "action_ids",
    "as_text", "button", "capabilities", "clip", "context", "escape", "header", "human_duration", "inline",
    "md", "number", "numbers_list", "option", "plain", "plural", "provider_name", "quote", "safe", "sandboxed",
    "section", "slack_date", "who",
]

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

_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")
_ESCAPED_MENTION = re.compile(r"&lt;@([UW][A-Z0-9]{2,})&gt;")
# C0/C1 controls but tab and newline, and the bidi embeddings, overrides and isolates.
_INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


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
        return escape(self.text)

    def payload(self) -> dict[str, Any]:
        """``text`` and ``blocks`` as the Web API and response_url take them (limits checked here)."""
        return {"text": clip(self.text, MESSAGE_TEXT_MAX), "blocks": [b.to_dict() for b in self.blocks]}


def sandboxed(message: Message, config: RenderConfig) -> Message:
    """``message`` marked as coming from the simulated providers, when they are in use: nothing was bought."""
    if not config.sandbox_notice:
        return message
    return Message(
        text=message.text,
        blocks=[*message.blocks, context(f":test_tube: *{config.sandbox_notice}*: numbers-bot runs on simulated providers here.")],
    )


# --- escaping: user and provider text made inert --------------------------------


def escape(text: str) -> str:
    """Escape text for Slack mrkdwn: ``<!channel>`` and ``<https://x|y>`` stay inert; control characters
    (a NUL, a terminal escape) and bidi overrides (which can make text read backwards) are dropped."""
    return _INVISIBLE.sub("", text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def inline(text: str, limit: int) -> str:
    """User text on one line (newlines and runs of spaces folded), escaped and cut to ``limit``."""
    return clip(escape(" ".join(text.split())), limit)


def safe(text: str) -> str:
    """Escape text for mrkdwn but keep the bot's own ``<@U…>`` mentions in messages it wrote.

    What the user typed is quoted in backticks in the bot's messages (``I don't understand `…```):
    a mention in there stays text."""
    parts = escape(text).split("`")
    return "`".join(_ESCAPED_MENTION.sub(r"<@\1>", part) if i % 2 == 0 else part for i, part in enumerate(parts))


def quote(text: str, limit: int) -> str:
    """User text as an inert mrkdwn block quote of at most ``limit`` characters."""
    lines = escape(text.strip()).splitlines() or [""]
    return clip("\n".join("> " + line for line in lines), limit)


def who(actor: str | None) -> str:
    """A Slack user id becomes a mention; anything else (``policy``, a CLI user name) plain text."""
    if not actor:
        return "someone"
    if _SLACK_USER.match(actor):
        return f"<@{actor}>"
    if actor == POLICY_ACTOR:
        return "policy"
    return inline(actor, 80)


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


# --- words ----------------------------------------------------------------------


def provider_name(name: str) -> str:
    return PROVIDER_NAMES.get(name, escape(name))


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


def number(n: str) -> str:
    """A phone number as a person dials it and as systems store it; a provider's odd text stays inert."""
    return escape(both(n))


def numbers_list(numbers: Sequence[str], limit: int = 10) -> str:
    lines = [f"• {number(n)}" for n in numbers[:limit]]
    if len(numbers) > limit:
        lines.append(f"• … and {len(numbers) - limit} more")
    return "\n".join(lines)


def slack_date(when: datetime, fmt: str = "{date_short_pretty} {time}") -> str:
    """A time each reader sees in their own time zone (Slack's date formatting); the UTC
    fallback shows where the formatting is not supported (notifications, old clients)."""
    fallback = when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(when.timestamp())}^{fmt}|{fallback}>"


# --- blocks ---------------------------------------------------------------------


def md(text: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=text)


def plain(text: str) -> PlainTextObject:
    return PlainTextObject(text=text, emoji=True)


def option(label: str, value: str) -> Option:
    return Option(text=plain(label), value=value)


def section(text: str, *, accessory: Any = None, block_id: str | None = None) -> SectionBlock:
    return SectionBlock(text=md(clip(text, SECTION_TEXT_MAX)), accessory=accessory, block_id=block_id)


def context(*texts: str) -> ContextBlock:
    return ContextBlock(elements=[md(clip(t, CONTEXT_TEXT_MAX)) for t in texts if t][:10])


def header(text: str) -> HeaderBlock:
    return HeaderBlock(text=PlainTextObject(text=clip(text, HEADER_TEXT_MAX), emoji=True))


def button(text: str, action_id: str, value: str, style: str | None = None) -> ButtonElement:
    return ButtonElement(text=PlainTextObject(text=text, emoji=True), action_id=action_id, value=value, style=style)


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
