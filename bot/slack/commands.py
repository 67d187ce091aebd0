"""``/numbers``: parse, ack at once, then do the work and answer through the response_url.

The grammar is ``bot.domain.commands.parse``, the ack ``bot.slack.acks.command_ack``. Text it cannot parse, and
``help``, are answered in the ack itself: parsing is pure and instant and
nothing else happens. Everything else is acked first (Slack waits 3 s at
most; provider searches take longer) and answered when done.
"""

from __future__ import annotations

import logging

import httpx

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from bot.domain.commands import Command
from bot.domain.errors import NotAllowed, NotFound, NumbersError, UsageError
from bot.slack import acks, blocks, ids
from bot.slack.actions import open_modal
from bot.slack.audit_upload import spool_csv, upload_file
from bot.slack.deps import SlackDeps
from bot.slack.failures import answered
from bot.slack.notifier import slack_error
from bot.slack.origin import Origin, tell

log = logging.getLogger(__name__)


def register(app: AsyncApp, deps: SlackDeps) -> None:
    @app.command(ids.COMMAND)
    @answered(deps)
    async def numbers_command(ack, body) -> None:
        origin = Origin.from_command(body)
        answer = acks.command_ack(body, deps.service.providers)
        await ack(**answer.answer)
        if not answer.proceed:
            return
        assert answer.command is not None
        await run(deps, answer.command, origin, trigger_id=body.get("trigger_id"))


async def run(deps: SlackDeps, command: Command, origin: Origin, *, trigger_id: str | None) -> None:
    """Carry out one parsed command after the ack; user-facing failures are answered, not raised."""
    service, user = deps.service, origin.user
    try:
        if command.verb == "search-form":
            await open_search_form(deps, origin, trigger_id)
        elif command.verb == "search":
            assert command.query is not None
            result = await service.search(user, command.query)
            await tell(deps, origin, blocks.offers_message(result, deps.settings, now=deps.clock()))
        elif command.verb == "assign":
            result = await service.assign_search(user, command.location)
            await tell(deps, origin, blocks.offers_message(result, deps.settings, now=deps.clock()))
        elif command.verb == "mine":
            await tell(deps, origin, blocks.mine_message(await service.mine(user)))
        elif command.verb == "pending":
            await tell(deps, origin, blocks.pending_message(await service.pending(user)))
        elif command.verb == "show":
            assert command.request_id is not None
            request = await service.show(command.request_id, user)
            offer = await service.offer_or_none(request.offer_id)
            await tell(deps, origin, blocks.show_message(request, deps.settings, offer=offer, now=deps.clock()))
        elif command.verb == "cancel":
            assert command.request_id is not None
            request = await service.cancel(command.request_id, user)
            await tell(deps, origin, blocks.note(f":heavy_multiplication_x: Request #{request.id} is cancelled."))
        elif command.verb == "audit":
            await upload_audit(deps, origin, command.days or 30)
        elif command.verb == "inventory":
            numbers = await service.inventory()
            await tell(deps, origin, blocks.inventory_message(numbers, await service.costs(), deps.settings))
        elif command.verb == "costs":
            await tell(deps, origin, blocks.costs_message(await service.costs(), deps.settings))
        elif command.verb == "release":
            assert command.number is not None
            await open_release_form(deps, origin, command.number, trigger_id)
        else:  # pragma: no cover - parse() returns only the verbs above
            raise UsageError(f"`{command.verb}` is not something I can do.")
    except NumbersError as exc:
        await tell(deps, origin, blocks.error_message(exc))


async def open_search_form(deps: SlackDeps, origin: Origin, trigger_id: str | None) -> None:
    view = blocks.search_modal(list(deps.service.providers), deps.settings, private_metadata=origin.metadata())
    await open_modal(
        deps, origin, trigger_id, view.to_dict(), "search form", "Try again, or type the search: `/numbers search US tollfree`."
    )


async def open_release_form(deps: SlackDeps, origin: Origin, number: str, trigger_id: str | None) -> None:
    """The reason form for a release; who may ask is checked again when it is submitted."""
    held = await deps.service.may_release(origin.user, number)
    view = blocks.release_modal(held, private_metadata=origin.metadata(number=number))
    await open_modal(
        deps, origin, trigger_id, view.to_dict(), "release form",
        f"Try again, or from a terminal: `numbers-bot release {number} --reason …`.",
    )


async def upload_audit(deps: SlackDeps, origin: Origin, days: int) -> None:
    """The audit CSV as a file in the approver's DM with the bot, streamed (``bot.slack.audit_upload``)."""
    spooled = await spool_csv(await deps.service.audit_csv(origin.user, days))
    events = spooled.rows
    stamp = deps.clock().strftime("%Y%m%d-%H%M")
    try:
        opened = await deps.client.conversations_open(users=origin.user)
        channel = opened["channel"]["id"]
        await upload_file(
            deps.client,
            spooled,
            channel=channel,
            filename=f"numbers-audit-{days}d-{stamp}.csv",
            title=f"numbers-bot audit log, last {blocks.plural(days, 'day')}",
            initial_comment=f"The audit log of the last {blocks.plural(days, 'day')}: {blocks.plural(events, 'event')}.",
        )
    except httpx.HTTPError as exc:
        log.error("audit upload for %s failed: %s", origin.user, type(exc).__name__)
        await tell(deps, origin, blocks.note(":warning: The audit file could not be sent to Slack; try again later."))
        return
    except SlackApiError as exc:
        log.error("audit upload for %s failed: %s", origin.user, slack_error(exc))
        await tell(deps, origin, blocks.note(f":warning: Slack refused the audit file ({slack_error(exc)}); try again later."))
        return
    finally:
        spooled.file.close()
    await tell(
        deps,
        origin,
        blocks.note(
            f":page_facing_up: The audit log of the last {blocks.plural(days, 'day')} "
            f"({blocks.plural(events, 'event')}) is in our DM as a CSV file."
        ),
    )
