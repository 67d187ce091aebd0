"""Time-driven moves: pending requests expire and approvers are reminded; provider holds made at
request time follow their request (extended while it waits, let go when it ends)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bot.domain.errors import NumbersError
from bot.domain.kinds import Change, Kind
from bot.domain.requests import NumberRequest
from bot.domain.states import State
from bot.ports import abandon_hold, extend_hold, extends_holds
from bot.services.core import WORKER_ACTOR, ServiceCore
from bot.store.outbox import Notice

__all__ = ["HoldKeeping", "Housekeeping", "HOLD_EXTEND_MARGIN", "HOLD_CHECK_EVERY"]

log = logging.getLogger(__name__)

# A provider hold made at request time (Telnyx) is extended once it has less than this left.
HOLD_EXTEND_MARGIN = 5 * 60
HOLD_CHECK_EVERY = 30  # seconds between looks for holds to extend (the margin leaves ten such looks)


class HoldKeeping(ServiceCore):
    """Provider holds made at request time (Telnyx reservations) follow the request.

    While a request waits for approval its hold is extended before it lapses;
    when the request is denied, cancelled or expires the hold is let go. failures are logged and audited, never raised: a
    hold that could not be extended is found out at purchase, where the worker
    searches again (the search-again rule, ``bot/domain/holds.py``).
    """

    _holds_checked_at: datetime | None = None

    async def extend_holds(self) -> list[NumberRequest]:
        """Extend every pending request's hold that ends within ``HOLD_EXTEND_MARGIN``.

        Called on every worker pass; looks at the store at most every ``HOLD_CHECK_EVERY``
        seconds, and not at all when no enabled provider keeps such holds."""
        now = self.clock()
        if not any(extends_holds(p) for p in self.providers.values()):
            return []
        if self._holds_checked_at is not None and (now - self._holds_checked_at).total_seconds() < HOLD_CHECK_EVERY:
            return []
        self._holds_checked_at = now
        extended = []
        for request in await self.store.list_requests(states=[State.PENDING], limit=1000, oldest_first=True):
            provider = self.providers.get(request.provider)
            if provider is None or not extends_holds(provider) or request.hold_expires_at is None:
                continue
            if (request.hold_expires_at - now).total_seconds() > HOLD_EXTEND_MARGIN:
                continue
            try:
                until = await extend_hold(provider, request.ref)
            except NumbersError as exc:
                log.warning("could not extend the hold of request %s: %s", request.id, exc)
                await self.store.add_event(request.id, WORKER_ACTOR, "hold_not_extended", f"the hold could not be extended: {exc}")
                continue
            if until is None:
                continue
            moved = await self.store.update_request(
                request.id,
                expect_state=State.PENDING,
                changes={"hold_expires_at": until},
                event=(WORKER_ACTOR, "hold_extended", f"{request.provider} hold extended to {until.isoformat()}", {}),
                notify=Notice(Change.HOLD_EXTENDED),
            )
            if moved is not None:
                extended.append(moved)
                await self.tell(moved, Change.HOLD_EXTENDED)
        return extended

    async def let_hold_go(self, request: NumberRequest) -> None:
        provider = self.providers.get(request.provider)
        if provider is None or request.kind == Kind.RELEASE:
            return
        try:
            note = await abandon_hold(provider, request.ref)
        except NumbersError as exc:
            note = f"the hold could not be let go: {exc}"
        if note:
            await self.store.add_event(request.id, WORKER_ACTOR, "hold_abandoned", note)


class Housekeeping(HoldKeeping):
    async def expire_due(self) -> list[NumberRequest]:
        expired = []
        for request in await self.store.due_for_expiry(self.clock()):
            moved = await self._expire(request)
            if moved is not None:
                expired.append(moved)
                await self.tell(moved, Change.EXPIRED)
                await self.let_hold_go(moved)
        return expired

    async def _expire(self, request: NumberRequest) -> NumberRequest | None:
        return await self.store.transition(
            request.id,
            State.PENDING,
            State.EXPIRED,
            actor=WORKER_ACTOR,
            kind="expired",
            message="expired: no decision within NUMBERS_REQUEST_TTL",
            notify=Notice(Change.EXPIRED),
        )

    async def remind_due(self) -> list[NumberRequest]:
        reminded = []
        cutoff = self.clock() - timedelta(seconds=self.remind_after)
        for request in await self.store.due_for_reminder(cutoff):
            # Compare-and-set on the version read: of two replicas reminding at once, one does.
            moved = await self.store.update_request(
                request.id,
                expect_version=request.version,
                expect_state=State.PENDING,
                changes={"reminded_at": self.clock()},
                event=(WORKER_ACTOR, "reminded", "approvers reminded", {}),
                notify=Notice(Change.REMINDER),
            )
            if moved is not None:
                reminded.append(moved)
                await self.tell(moved, Change.REMINDER)
        return reminded
