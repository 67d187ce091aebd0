"""Where a request stands and what happened to it: requests, their events, the provider
operations in flight, and the numbers held (the inventory).

Plain dataclasses built from and saved to store rows; no I/O here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from bot.domain.kinds import Kind, Phase
from bot.domain.states import State
from bot.domain.values import dec, parse_ts, ts

__all__ = ["Event", "NumberRequest", "Operation", "HeldNumber"]


@dataclass
class Event:
    id: int
    at: datetime
    request_id: int | None
    actor: str
    kind: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Event":
        return cls(
            id=row["id"],
            at=parse_ts(row["at"]),  # type: ignore[arg-type]
            request_id=row["request_id"],
            actor=row["actor"],
            kind=row["kind"],
            message=row["message"],
            data=json.loads(row["data"] or "{}"),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": ts(self.at),
            "request_id": self.request_id,
            "actor": self.actor,
            "kind": self.kind,
            "message": self.message,
            "data": self.data,
        }


@dataclass
class NumberRequest:
    """A request for numbers (or a Webex assignment) and where it stands."""

    id: int
    offer_id: str
    provider: str
    kind: Kind
    state: State
    requester: str
    requester_email: str | None
    quantity: int
    numbers: list[str]  # offered numbers while pending; the numbers obtained once fulfilled
    unit_monthly_cost: Decimal | None
    unit_setup_cost: Decimal | None
    currency: str
    justification: str
    ref: dict[str, Any]  # offer ref + what prepare() added (e.g. Webex person id)
    approvals: list[str]  # distinct approvers so far
    created_at: datetime
    updated_at: datetime
    expires_at: datetime  # when a pending request expires (TTL)
    hold_expires_at: datetime | None
    decided_by: str | None = None
    decided_at: datetime | None = None
    outcome: str | None = None  # last words about it: provider's reason, details, note
    reminded_at: datetime | None = None
    card_channel: str | None = None
    card_ts: str | None = None
    version: int = 0
    events: list[Event] = field(default_factory=list)

    @property
    def monthly_total(self) -> Decimal | None:
        if self.unit_monthly_cost is None:
            return None
        return self.unit_monthly_cost * self.quantity

    @property
    def setup_total(self) -> Decimal | None:
        if self.unit_setup_cost is None:
            return None
        return self.unit_setup_cost * self.quantity

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "NumberRequest":
        return cls(
            id=row["id"],
            offer_id=row["offer_id"],
            provider=row["provider"],
            kind=Kind(row["kind"]),
            state=State(row["state"]),
            requester=row["requester"],
            requester_email=row["requester_email"],
            quantity=row["quantity"],
            numbers=json.loads(row["numbers"]),
            unit_monthly_cost=dec(row["unit_monthly_cost"]),
            unit_setup_cost=dec(row["unit_setup_cost"]),
            currency=row["currency"],
            justification=row["justification"],
            ref=json.loads(row["ref"]),
            approvals=json.loads(row["approvals"]),
            created_at=parse_ts(row["created_at"]),  # type: ignore[arg-type]
            updated_at=parse_ts(row["updated_at"]),  # type: ignore[arg-type]
            expires_at=parse_ts(row["expires_at"]),  # type: ignore[arg-type]
            hold_expires_at=parse_ts(row["hold_expires_at"]),
            decided_by=row["decided_by"],
            decided_at=parse_ts(row["decided_at"]),
            outcome=row["outcome"],
            reminded_at=parse_ts(row["reminded_at"]),
            card_channel=row["card_channel"],
            card_ts=row["card_ts"],
            version=row["version"],
        )

    def to_json(self) -> dict[str, Any]:
        mt, st = self.monthly_total, self.setup_total
        return {
            "id": self.id,
            "offer_id": self.offer_id,
            "provider": self.provider,
            "kind": self.kind,
            "state": self.state.value,
            "requester": self.requester,
            "quantity": self.quantity,
            "numbers": self.numbers,
            "monthly_cost": str(self.unit_monthly_cost) if self.unit_monthly_cost is not None else None,
            "monthly_total": str(mt) if mt is not None else None,
            "setup_total": str(st) if st is not None else None,
            "currency": self.currency,
            "justification": self.justification,
            "approvals": self.approvals,
            "decided_by": self.decided_by,
            "outcome": self.outcome,
            "created_at": ts(self.created_at),
            "updated_at": ts(self.updated_at),
            "expires_at": ts(self.expires_at),
            "hold_expires_at": ts(self.hold_expires_at),
            "events": [e.to_json() for e in self.events],
        }


@dataclass
class Operation:
    """A provider call in flight for a request.

    ``phase``: ``intent`` (recorded before the spending call is sent: after a
    crash in this phase the provider must be asked, see ``Provider.recover``),
    ``polling`` (the provider accepted; ``ref`` says how to poll), ``done``.
    ``lease_owner``/``lease_until`` keep two processes from driving one
    operation at once.
    """

    id: int
    request_id: int
    provider: str
    kind: Kind
    phase: Phase
    ref: dict[str, Any]
    next_poll_at: datetime
    attempts: int
    lease_owner: str | None
    lease_until: datetime | None
    created_at: datetime
    updated_at: datetime
    last_status: str | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Operation":
        return cls(
            id=row["id"],
            request_id=row["request_id"],
            provider=row["provider"],
            kind=Kind(row["kind"]),
            phase=Phase(row["phase"]),
            ref=json.loads(row["ref"] or "{}"),
            next_poll_at=parse_ts(row["next_poll_at"]),  # type: ignore[arg-type]
            attempts=row["attempts"],
            lease_owner=row["lease_owner"],
            lease_until=parse_ts(row["lease_until"]),
            created_at=parse_ts(row["created_at"]),  # type: ignore[arg-type]
            updated_at=parse_ts(row["updated_at"]),  # type: ignore[arg-type]
            last_status=row["last_status"],
        )


@dataclass
class HeldNumber:
    """A number the team holds through the bot (the inventory)."""

    id: int
    number: str
    provider: str
    kind: Kind  # how it came: purchase | rent | assign
    request_id: int
    requester: str
    justification: str
    approved_by: str | None
    acquired_at: datetime
    unit_monthly_cost: Decimal | None
    currency: str
    ref: dict[str, Any]
    state: str  # active | released
    release_request_id: int | None
    released_at: datetime | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "HeldNumber":
        return cls(
            id=row["id"],
            number=row["number"],
            provider=row["provider"],
            kind=Kind(row["kind"]),
            request_id=row["request_id"],
            requester=row["requester"],
            justification=row["justification"],
            approved_by=row["approved_by"],
            acquired_at=parse_ts(row["acquired_at"]),  # type: ignore[arg-type]
            unit_monthly_cost=dec(row["unit_monthly_cost"]),
            currency=row["currency"],
            ref=json.loads(row["ref"] or "{}"),
            state=row["state"],
            release_request_id=row["release_request_id"],
            released_at=parse_ts(row["released_at"]),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "number": self.number,
            "provider": self.provider,
            "kind": self.kind,
            "request_id": self.request_id,
            "requester": self.requester,
            "justification": self.justification,
            "approved_by": self.approved_by,
            "acquired_at": ts(self.acquired_at),
            "monthly_cost": str(self.unit_monthly_cost) if self.unit_monthly_cost is not None else None,
            "currency": self.currency,
            "state": self.state,
            "release_request_id": self.release_request_id,
            "released_at": ts(self.released_at),
        }
