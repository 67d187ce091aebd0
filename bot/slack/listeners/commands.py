"""``/numbers``: parse, ack at once, then do the work and answer through the response_url.

The grammar is ``bot.domain.grammar.parse``, the ack ``bot.slack.acks.command_ack``. Text it cannot parse, and
``help``, are answered in the ack itself: parsing is pure and instant and
nothing else happens. Everything else is acked first (Slack waits 3 s at
most; provider searches take longer) and answered when done: one service call
per verb, rendered.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.domain.errors import NumbersError, UsageError
from bot.domain.grammar import Command
from bot.slack import acks, ids
from bot.slack.adapters.audit_upload import send_to_dm, spool_csv
from bot.slack.answer import Origin, answered, open_modal, tell
from bot.slack.deps import SlackDeps
from bot.slack.render.holdings import costs_message, inventory_message
from bot.slack.render.kit import Message, plural
from bot.slack.render.modals import release_modal, search_modal
from bot.slack.render.notices import error_message, note
from bot.slack.render.offers import offers_message
from bot.slack.render.requests import mine_message, pending_message, show_message

__all__ = ["register", "run"]

log = logging.getLogger(__name__)


def register(app: AsyncApp, deps: SlackDeps) -> None:
    @app.command(ids.COMMAND)
    @answered(deps)
    async def numbers_command(ack: Any, body: dict[str, Any]) -> None:
        origin = Origin.from_command(body)
        answer = acks.command_ack(body, deps.service.providers)
        await ack(**answer.answer)
        if not answer.proceed:
            return
        assert answer.command is not None
        await run(deps, answer.command, origin, trigger_id=body.get("trigger_id"))


async def run(deps: SlackDeps, command: Command, origin: Origin, *, trigger_id: str | None) -> None:
    """Carry out one parsed command after the ack; user-facing failures are answered, not raised."""
    try:
        if command.verb == "search-form":
            await open_search_form(deps, origin, trigger_id)
        elif command.verb == "release":
            assert command.number is not None
            await open_release_form(deps, origin, command.number, trigger_id)
        elif command.verb == "audit":
            await upload_audit(deps, origin, command.days or 30)
        else:
            await tell(deps, origin, await answer(deps, command, origin.user))
    except NumbersError as exc:
        await tell(deps, origin, error_message(exc))


async def answer(deps: SlackDeps, command: Command, user: str) -> Message:
    """The one service call a verb makes, rendered."""
    service = deps.service
    if command.verb == "search":
        assert command.query is not None
        return offers_message(await service.search(user, command.query), deps.render, now=deps.clock())
    if command.verb == "assign":
        return offers_message(await service.assign_search(user, command.location), deps.render, now=deps.clock())
    if command.verb == "mine":
        return mine_message(await service.mine(user))
    if command.verb == "pending":
        return pending_message(await service.pending(user))
    if command.verb == "show":
        assert command.request_id is not None
        request, offer = await service.show_with_offer(command.request_id, user)
        return show_message(request, deps.render, offer=offer, now=deps.clock())
    if command.verb == "cancel":
        assert command.request_id is not None
        request = await service.cancel(command.request_id, user)
        return note(f":heavy_multiplication_x: Request #{request.id} is cancelled.")
    if command.verb == "inventory":
        return inventory_message(*await service.holdings())
    if command.verb == "costs":
        return costs_message(await service.costs())
    raise UsageError(f"`{command.verb}` is not something I can do.")  # pragma: no cover - parse() returns only these


async def open_search_form(deps: SlackDeps, origin: Origin, trigger_id: str | None) -> None:
    view = search_modal(list(deps.service.providers), deps.render, private_metadata=origin.metadata())
    await open_modal(
        deps, origin, trigger_id, view.to_dict(), "search form", "Try again, or type the search: `/numbers search US tollfree`."
    )


async def open_release_form(deps: SlackDeps, origin: Origin, number: str, trigger_id: str | None) -> None:
    """The reason form for a release; who may ask is checked again when it is submitted."""
    held = await deps.service.may_release(origin.user, number)
    view = release_modal(held, private_metadata=origin.metadata(number=number))
    await open_modal(
        deps, origin, trigger_id, view.to_dict(), "release form",
        f"Try again, or from a terminal: `numbers-bot release {number} --reason …`.",
    )


async def upload_audit(deps: SlackDeps, origin: Origin, days: int) -> None:
    """The audit CSV as a file in the approver's DM with the bot, streamed (``bot.slack.adapters.audit_upload``)."""
    spooled = await spool_csv(await deps.service.audit_csv(origin.user, days))
    events = spooled.rows
    stamp = deps.clock().strftime("%Y%m%d-%H%M")
    problem = await send_to_dm(
        deps.client,
        origin.user,
        spooled,
        filename=f"numbers-audit-{days}d-{stamp}.csv",
        title=f"numbers-bot audit log, last {plural(days, 'day')}",
        initial_comment=f"The audit log of the last {plural(days, 'day')}: {plural(events, 'event')}.",
    )
    if problem is not None:
        await tell(deps, origin, note(problem))
        return
    await tell(
        deps,
        origin,
        note(
            f":page_facing_up: The audit log of the last {plural(days, 'day')} "
            f"({plural(events, 'event')}) is in our DM as a CSV file."
        ),
    )
