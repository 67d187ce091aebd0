"""Who is an approver and what is a user's e-mail, asked of Slack (the service's ``Directory`` port).

``NUMBERS_APPROVERS`` names users (``U…``/``W…``) and user groups (``S…``). Group
membership is read with ``usergroups.users.list`` and cached for ``ttl``
seconds: approvals are checked at click time, and a click should not cost one
API call per group, but someone removed from a group must lose the right
within a minute.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.policy import Policy
from bot.slack.notifier import slack_error

log = logging.getLogger(__name__)

GROUP_TTL = 60.0


class SlackDirectory:
    def __init__(
        self,
        client: AsyncWebClient,
        policy: Policy,
        *,
        ttl: float = GROUP_TTL,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.client = client
        self.users = policy.approver_users
        self.groups = policy.approver_groups
        self.ttl = ttl
        self.monotonic = monotonic
        self._members: dict[str, tuple[float, frozenset[str]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def is_approver(self, user_id: str) -> bool:
        if user_id in self.users:
            return True
        for group in sorted(self.groups):
            if user_id in await self.members(group):
                return True
        return False

    async def members(self, group: str) -> frozenset[str]:
        cached = self._members.get(group)
        if cached is not None and self.monotonic() - cached[0] < self.ttl:
            return cached[1]
        # One lookup per group at a time: a burst of clicks shares the answer.
        lock = self._locks.setdefault(group, asyncio.Lock())
        async with lock:
            cached = self._members.get(group)
            if cached is not None and self.monotonic() - cached[0] < self.ttl:
                return cached[1]
            try:
                response = await self.client.usergroups_users_list(usergroup=group)
            except SlackApiError as exc:
                error = slack_error(exc)
                if cached is not None:
                    # Slack is briefly unavailable: the last known list is better than locking every approver out.
                    log.warning("usergroups.users.list %s failed (%s); using the list from before", group, error)
                    return cached[1]
                log.warning("usergroups.users.list %s failed (%s); treating the group as empty", group, error)
                return frozenset()
            members = frozenset(response.get("users") or [])
            self._members[group] = (self.monotonic(), members)
            return members

    async def email(self, user_id: str) -> str | None:
        """The e-mail on the user's Slack profile (scope ``users:read.email``), or None."""
        try:
            response = await self.client.users_info(user=user_id)
        except SlackApiError as exc:
            error = slack_error(exc)
            log.warning("users.info %s failed (%s); no e-mail for the request", user_id, error)
            return None
        profile = (response.get("user") or {}).get("profile") or {}
        email = profile.get("email")
        return email or None
