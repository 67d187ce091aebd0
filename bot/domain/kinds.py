"""The words requests, operations and notifications are made of, as enums.

``StrEnum`` members are their stored text (``Kind.PURCHASE == "purchase"``), so
rows, audit events and outbox entries read and compare the same as before.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Kind", "Phase", "Change"]


class Kind(StrEnum):
    """What fulfilling a request does at its provider."""

    PURCHASE = "purchase"  # buy numbers (ACS, Plivo's PhoneNumber API, Twilio, Telnyx)
    RENT = "rent"  # rent from a Plivo number group
    ASSIGN = "assign"  # make a Webex number someone's primary number
    RELEASE = "release"  # give a held number back

    @property
    def past(self) -> str:
        """``purchased``, ``rented``, … for the audit log and the cards."""
        return {"purchase": "purchased", "rent": "rented", "assign": "assigned", "release": "released"}[self.value]


class Phase(StrEnum):
    """Where a provider operation stands (the ``operations`` table)."""

    INTENT = "intent"  # recorded before the spending call is sent; after a crash, ask the provider
    POLLING = "polling"  # the provider accepted it; its ref says how to poll
    DONE = "done"  # the provider's last word is recorded


class Change(StrEnum):
    """What happened to a request, as the outbox keeps it and the notifier tells it."""

    CREATED = "created"
    APPROVAL = "approval"  # one approval counted, more needed
    APPROVED = "approved"
    DENIED = "denied"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REMINDER = "reminder"
    HOLD_EXTENDED = "hold_extended"
    REAPPROVAL = "reapproval"  # the hold ran out and the new search needs a fresh approval
    NUMBERS_CHANGED = "numbers_changed"  # the hold ran out and the new search got other numbers
    FULFILLING = "fulfilling"
    FULFILLED = "fulfilled"
    FAILED = "failed"
    PROVIDER_PENDING = "provider_pending"
    NEEDS_ATTENTION = "needs_attention"
