"""Use cases: every state move of a request starts here.

The Slack listeners, the CLI and the worker all call these. They talk to the
outside only through the ports (``bot/ports.py``) and the ``Store``:

* ``searching`` — search the providers, keep the offers;
* ``deciding`` — request an offer, approve (by people or by policy), deny, cancel;
* ``inventory`` — the numbers held, their costs, asking to release one;
* ``reports`` — a user's requests, the pending queue, one request, the audit CSV;
* ``housekeeping`` — expiry, reminders, provider holds made at request time;
* ``fulfilling`` — carrying an approved request through its provider operation
  (the worker says when, ``Fulfilment`` says how).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.errors import NotAllowed
from bot.domain.offers import Offer
from bot.domain.requests import HeldNumber, NumberRequest
from bot.ports import Directory, Notifier
from bot.services.core import (
    INLINE_DELIVERY_WAIT,
    MAX_JUSTIFICATION,
    POLICY_ACTOR,
    WORKER_ACTOR,
    SilentNotifier,
    StaticDirectory,
    new_offer_id,
)
from bot.services.deciding import ApproveResult, Deciding
from bot.services.housekeeping import HOLD_CHECK_EVERY, HOLD_EXTEND_MARGIN, HoldKeeping
from bot.services.inventory import CostSummary, Inventory
from bot.services.reports import Reports
from bot.services.searching import NO_NATIONAL, Searching, SearchResult, search_failure, sort_key

__all__ = [
    "NumbersService",
    "HomeLists",
    "ApproveResult",
    "CostSummary",
    "SearchResult",
    "Directory",
    "Notifier",
    "StaticDirectory",
    "SilentNotifier",
    "HoldKeeping",
    "new_offer_id",
    "search_failure",
    "sort_key",
    "MAX_JUSTIFICATION",
    "POLICY_ACTOR",
    "WORKER_ACTOR",
    "INLINE_DELIVERY_WAIT",
    "HOLD_EXTEND_MARGIN",
    "HOLD_CHECK_EVERY",
    "NO_NATIONAL",
]


class NumbersService(Searching, Deciding, Inventory, Reports):
    """Every use case, over one store, one set of providers, one policy and the ports."""

    # --- for the Slack listeners: one call per answer -----------------------------

    async def home_lists(self, user: str, *, pending_limit: int, mine_limit: int) -> HomeLists:
        """What the App Home shows ``user``: their requests and numbers and, for approvers, the queue."""
        try:
            pending: list[NumberRequest] | None = await self.pending(user, limit=pending_limit)
        except NotAllowed:
            pending = None  # not an approver: no queue
        return HomeLists(mine=await self.mine(user, limit=mine_limit), pending=pending, numbers=await self.inventory(user))

    async def show_with_offer(self, request_id: int, user: str) -> tuple[NumberRequest, Offer | None]:
        """``show`` and the offer the request came from (the card's number type), for ``/numbers show``."""
        request = await self.show(request_id, user)
        return request, await self.offer_or_none(request.offer_id)

    async def holdings(self) -> tuple[list[HeldNumber], CostSummary]:
        """Every number held and the cost summary, for ``/numbers inventory``."""
        return await self.inventory(), await self.costs()


@dataclass
class HomeLists:
    """What the App Home shows one user (``NumbersService.home_lists``)."""

    mine: list[NumberRequest]
    pending: list[NumberRequest] | None  # None: the viewer is not an approver
    numbers: list[HeldNumber]
