"""Who is an approver and what is a user's e-mail, asked of Slack (the service's ``Directory`` port).

``NUMBERS_APPROVERS`` names users (``U…``/``W…``) and user groups (``S…``). Group
membership is read with ``usergroups.users.list`` and used for at most ``ttl``
seconds (``NUMBERS_APPROVER_CACHE_SECONDS``): approvals are checked at click
time, a click should not cost one API call per group, and someone removed from
a group must lose the right within that time.

Fail closed: when a list is older than ``ttl`` and Slack cannot give a fresh one,
the check raises ``DirectoryUnavailable`` (the click is refused and audited)
instead of trusting the old list, which may still name someone who was removed.
A failed lookup is remembered for ``failure_ttl`` seconds, so a broken group does
not cost one Slack call per click.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.errors import DirectoryUnavailable
from bot.domain.policy import Policy
from bot.slack.api_errors import slack_error

log = logging.getLogger(__name__)

GROUP_TTL = 60.0
FAILURE_TTL = 10.0
UNAVAILABLE = "Could not check your approver group with Slack; try again in a minute."


class SlackDirectory:
    def __init__(
        self,
        client: AsyncWebClient,
        policy: Policy,
        *,
        ttl: float = GROUP_TTL,
        failure_ttl: float = FAILURE_TTL,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.client = client
        self.users = policy.approver_users
        self.groups = policy.approver_groups
        self.ttl = ttl
        self.failure_ttl = failure_ttl
        self.monotonic = monotonic
        self._members: dict[str, tuple[float, frozenset[str]]] = {}
        self._failed: dict[str, float] = {}  # group → when its lookup last failed
        self._locks: dict[str, asyncio.Lock] = {}

    async def is_approver(self, user_id: str) -> bool:
        """True or False from lists no older than ``ttl``; ``DirectoryUnavailable`` when a
        group that might name the user cannot be read."""
        if user_id in self.users:
            return True
        unreadable = None
        for group in sorted(self.groups):
            try:
                if user_id in await self.members(group):
                    return True
            except DirectoryUnavailable as exc:
                unreadable = exc
        if unreadable is not None:
            raise unreadable
        return False

    def _fresh(self, group: str) -> frozenset[str] | None:
        cached = self._members.get(group)
        if cached is not None and self.monotonic() - cached[0] < self.ttl:
            return cached[1]
        return None

    async def members(self, group: str) -> frozenset[str]:
        fresh = self._fresh(group)
        if fresh is not None:
            return fresh
        # One lookup per group at a time: a burst of clicks shares the answer.
        lock = self._locks.setdefault(group, asyncio.Lock())
        async with lock:
            fresh = self._fresh(group)
            if fresh is not None:
                return fresh
            failed_at = self._failed.get(group)
            if failed_at is not None and self.monotonic() - failed_at < self.failure_ttl:
                raise DirectoryUnavailable(UNAVAILABLE)
            try:
                response = await self.client.usergroups_users_list(usergroup=group)
            except (SlackApiError, aiohttp.ClientError, asyncio.TimeoutError) as exc:
                self._failed[group] = self.monotonic()
                why = slack_error(exc) if isinstance(exc, SlackApiError) else type(exc).__name__
                log.warning(
                    "usergroups.users.list %s failed (%s); its members' decisions are refused until it answers", group, why
                )
                raise DirectoryUnavailable(UNAVAILABLE) from None
            members = frozenset(response.get("users") or [])
            self._members[group] = (self.monotonic(), members)
            self._failed.pop(group, None)
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
