"""Reading: a user's requests, the approvers' queue, one request, the audit log as CSV."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import Any, Iterator

from bot.domain.errors import NotAllowed
from bot.domain.requests import NumberRequest
from bot.domain.states import State
from bot.services.core import ServiceCore

__all__ = ["Reports"]


class Reports(ServiceCore):
    async def mine(self, user: str, limit: int = 20) -> list[NumberRequest]:
        return await self.store.list_requests(requester=user, limit=limit)

    async def pending(self, user: str, limit: int = 50) -> list[NumberRequest]:
        if not await self.is_approver(user):
            raise NotAllowed("Only approvers can see the pending queue.")
        return await self.store.list_requests(states=[State.PENDING], limit=limit, oldest_first=True)

    async def show(self, request_id: int, user: str) -> NumberRequest:
        request = await self.get(request_id)
        if request.requester != user and not await self.is_approver(user):
            raise NotAllowed(f"Request #{request_id} is not yours; only its requester and approvers can see it.")
        return request

    async def audit_csv(self, user: str, days: int = 30) -> Iterator[str]:
        """CSV lines of every event in the last ``days`` days, streamed from the store."""
        if not await self.is_approver(user):
            await self.store.add_event(None, user, "refused", "audit refused: not an approver", {"action": "audit"})
            raise NotAllowed("Only approvers can export the audit log.")
        since = self.clock() - timedelta(days=days)
        await self.store.add_event(None, user, "audited", f"exported the audit log of the last {days} day(s)")

        def lines() -> Iterator[str]:
            buf = io.StringIO()
            writer = csv.writer(buf)
            writer.writerow(["id", "at", "request_id", "actor", "kind", "message", "data"])
            for e in self.store.origin.iter_events(since):
                writer.writerow([e.id, e.at.isoformat(), e.request_id or "", e.actor, e.kind, e.message, _json(e.data)])
                if buf.tell() > 64 * 1024:
                    yield buf.getvalue()
                    buf.seek(0)
                    buf.truncate()
            yield buf.getvalue()

        return lines()


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, default=str) if data else ""
