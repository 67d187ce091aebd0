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
