"""An approval channel the bot cannot use, made visible: the card goes to the approvers by DM.

When a card cannot be posted in ``NUMBERS_APPROVAL_CHANNEL`` (the bot was removed,
the channel is archived or gone) or cannot be edited there any more, each
approver gets the card in a DM so the request can still be decided. Once per
channel per hour the DM also says what to fix ("invite @numbers-bot to #…"), and
the problem is written to the audit log (kind ``slack_channel_problem``).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any, Awaitable, Callable, Protocol

from slack_sdk.errors import SlackApiError

from bot.domain.requests import NumberRequest
from bot.domain.values import ts

__all__ = ["CHANNEL_ERRORS", "ChannelTrouble", "fix_for"]

log = logging.getLogger(__name__)

CHANNEL_ERRORS = frozenset(
    {"not_in_channel", "channel_not_found", "is_archived", "no_permission", "edit_window_closed", "restricted_action"}
)
ONCE_PER = timedelta(hours=1)
ACTOR = "numbers-bot"
KIND = "slack_channel_problem"


def fix_for(error: str, channel: str) -> str:
    """What an admin does about ``error`` in ``channel``, in one sentence."""
    where = f"<#{channel}>"
    return {
        "not_in_channel": f"invite @numbers-bot to {where} (`/invite @numbers-bot` there).",
        "channel_not_found": (
            f"NUMBERS_APPROVAL_CHANNEL ({channel}) is a channel the bot cannot see: invite @numbers-bot "
            "if it is private, or set the setting to the right channel id."
        ),
        "is_archived": f"{where} is archived: unarchive it or set NUMBERS_APPROVAL_CHANNEL to another channel.",
        "no_permission": f"the bot may not post or edit in {where}: allow apps to post there, or choose another channel.",
        "restricted_action": f"the workspace restricts posting in {where}: allow @numbers-bot to post there.",
        "edit_window_closed": (
            f"the workspace's message edit window has closed for this card in {where}, so it cannot change any more; "
            "its current state is here."
        ),
    }.get(error, f"check that @numbers-bot can post in {where}.")


class Poster(Protocol):
    """What ``ChannelTrouble`` uses of the notifier that owns it (``SlackNotifier``)."""

    settings: Any  # reads approver_ids
    store: Any  # a ThreadedStore, or None before one is bound

    def clock(self) -> datetime: ...

    async def post(self, channel: str, message: dict[str, Any], **extra: Any) -> Any: ...


class ChannelTrouble:
    def __init__(self, notifier: Poster, approvers: Callable[[], Awaitable[set[str]]] | None):
        self.notifier = notifier
        self.approvers = approvers

    async def _who(self) -> set[str]:
        users = {u for u in self.notifier.settings.approver_ids if u[:1] in ("U", "W")}
        if self.approvers is not None:
            try:
                users |= await self.approvers()
            except Exception as exc:  # a group that cannot be read: the listed users still hear
                log.warning("could not list every approver for the channel problem: %s", type(exc).__name__)
        return users

    async def _first_this_hour(self, channel: str, error: str, request: NumberRequest) -> bool:
        """Record the problem unless it was recorded for ``channel`` within the hour; True when recorded now."""
        store = self.notifier.store
        if store is None:
            return True
        since = ts(self.notifier.clock() - ONCE_PER)
        message = f"cannot use the approval channel {channel} ({error}); the card went to the approvers by DM"
        data = json.dumps({"channel": channel, "error": error}, default=str)

        def record(s: Any) -> bool:
            with s.atomic():
                channel_of = "CAST(data AS jsonb) ->> 'channel'" if s.postgres else "json_extract(data, '$.channel')"
                seen = s.db.execute(
                    f"SELECT 1 FROM events WHERE kind = ? AND at >= ? AND {channel_of} = ? LIMIT 1",
                    [KIND, since, channel],
                ).fetchone()
                if seen:
                    return False
                s.db.execute(
                    "INSERT INTO events (at, request_id, actor, kind, message, data) VALUES (?, ?, ?, ?, ?, ?)",
                    [ts(self.notifier.clock()), request.id, ACTOR, KIND, message, data],
                )
                return True

        return await store.run(record)

    async def report(self, request: NumberRequest, channel: str, error: str, card: dict[str, Any]) -> None:
        log.error("cannot use the approval channel %s for request %s: %s", channel, request.id, error)
        first = await self._first_this_hour(channel, error, request)
        note = f":warning: The approval card for request #{request.id} could not go to <#{channel}> ({error}). "
        fix = f"To fix: {fix_for(error, channel)}"
        header = {"type": "section", "text": {"type": "mrkdwn", "text": note + (fix if first else "")}}
        message = {"text": f"Request #{request.id}: {card.get('text') or ''}", "blocks": [header, *card.get("blocks", [])]}
        for user in sorted(await self._who()):
            try:
                await self.notifier.post(user, message)
            except SlackApiError as exc:
                log.error("could not DM approver %s the card of request %s: %s", user, request.id, exc.response.get("error"))
