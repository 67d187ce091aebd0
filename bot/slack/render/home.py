"""The App Home tab: the viewer's numbers and recent requests and, for approvers, the decision queue."""

from __future__ import annotations

from decimal import Decimal

from slack_sdk.models.blocks import Block, DividerBlock
from slack_sdk.models.views import View

from bot.domain.requests import HeldNumber, NumberRequest
from bot.domain.policy import money
from bot.slack import ids
from bot.slack.render.config import RenderConfig
from bot.slack.render.holdings import held_line
from bot.slack.render.kit import MAX_VIEW_BLOCKS, SECTION_TEXT_MAX, button, clip, context, header, inline, plural, section, who
from bot.slack.render.requests import decision_buttons, request_line

__all__ = ["home_view"]


def home_view(
    user: str,
    mine: list[NumberRequest],
    pending: list[NumberRequest] | None,
    config: RenderConfig,
    *,
    notice: str | None = None,
    numbers: list[HeldNumber] | None = None,
) -> View:
    """The Home tab: the viewer's numbers and recent requests and, for approvers (``pending`` given), the queue."""
    channel = f" in <#{config.approval_channel}>" if config.approval_channel else ""
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
            text = request_line(request) + f"\n{who(request.requester)}: " + inline(request.justification, 500)
            blocks.append(section(text, block_id=f"pending:{request.id}"))
            blocks.append(decision_buttons(request))
        if len(pending) > room:
            blocks.append(context(f"{plural(len(pending) - room, 'more request')} waiting; see `/numbers pending`."))
    return View(type="home", blocks=blocks)


