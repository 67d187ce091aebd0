"""The numbers the team holds and what they cost: ``/numbers inventory`` and ``/numbers costs``."""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol

from slack_sdk.models.blocks import Block, DividerBlock

from bot.domain.requests import HeldNumber
from bot.domain.policy import money
from bot.slack.render.kit import (
    MAX_MESSAGE_BLOCKS,
    SECTION_TEXT_MAX,
    Message,
    clip,
    context,
    header,
    inline,
    number,
    plural,
    provider_name,
    section,
    who,
)

__all__ = ["CostTotals", "costs_lines", "costs_message", "held_line", "inventory_message"]


class CostTotals(Protocol):
    """What the cost lines read of ``bot.services.CostSummary``."""

    budget: Decimal | None
    committed_this_month: Decimal

    @property
    def total(self) -> Decimal: ...

    @property
    def budget_left(self) -> Decimal | None: ...

    def by_provider(self) -> dict[str, Decimal]: ...

    def by_requester(self) -> dict[str, Decimal]: ...


def held_line(held: HeldNumber) -> str:
    return (
        f"{number(held.number)} · {provider_name(held.provider)} · {money(held.unit_monthly_cost, held.currency)}/month · "
        f"{who(held.requester)}, #{held.request_id}, approved by {who(held.approved_by)} on {held.acquired_at:%Y-%m-%d}: "
        + inline(held.justification, 200)
    )


def costs_lines(summary: CostTotals) -> list[str]:
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


def costs_message(summary: CostTotals) -> Message:
    return Message(
        text=f"Monthly cost of the numbers held: {money(summary.total)}",
        blocks=[header("What the numbers cost"), section(clip("\n".join(costs_lines(summary)), SECTION_TEXT_MAX))],
    )


def inventory_message(numbers: list[HeldNumber], summary: CostTotals) -> Message:
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
    blocks += [DividerBlock(), section(clip("\n".join(costs_lines(summary)), SECTION_TEXT_MAX))]
    blocks.append(context("Ask to give one back with `/numbers release <number>`."))
    return Message(text=f"{plural(len(numbers), 'number')} held, {money(summary.total)}/month", blocks=blocks)


