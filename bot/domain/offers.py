"""What a search finds and what a user is shown: the query, a provider's draft, the offer kept.

``OfferDraft`` is what a provider adapter returns from ``search``; ``Offer`` is
the same with an id, the query and who searched, as the store keeps it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from bot.domain.kinds import Kind
from bot.domain.values import dec, parse_ts, ts

__all__ = ["NUMBER_TYPES", "SearchQuery", "OfferDraft", "Offer"]

NUMBER_TYPES = ("local", "tollfree", "national")


@dataclass(frozen=True)
class SearchQuery:
    """A parsed search: ``search US tollfree 833 x2 sms via acs``."""

    country: str  # ISO 3166 alpha-2, upper case
    number_type: str = "local"  # local | tollfree | national
    prefix: str | None = None  # area code or prefix, digits only
    quantity: int = 1
    sms: bool = False
    voice: bool = False
    provider: str | None = None  # "via acs": only this provider
    location: str | None = None  # Webex location name or id (assign)
    # Whose search it is, when a provider offers per person (Webex: the person's location). Not stored.
    requester_email: str | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "country": self.country,
            "number_type": self.number_type,
            "prefix": self.prefix,
            "quantity": self.quantity,
            "sms": self.sms,
            "voice": self.voice,
            "provider": self.provider,
            "location": self.location,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SearchQuery":
        known: dict[str, Any] = {k: d.get(k) for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)


@dataclass
class OfferDraft:
    """One thing a user can ask for, as a provider found it.

    ``kind`` is what fulfilling it does: ``purchase`` (ACS; Plivo's PhoneNumber
    API, one number per offer), ``rent`` (a Plivo number group) or ``assign``
    (Webex). ``numbers`` are E.164 strings (empty for a Plivo group, whose
    numbers are only known after renting). Costs are per number;
    ``unit_monthly_cost`` is None when the provider did not say (ACS ``cost: null``).
    ``ref`` holds the provider's ids needed to fulfil it (``search_id`` and
    ``agree_to_not_resell``, ``group_id``, ``number``/``location_id``, Plivo's
    ``restriction_text``); ``details`` what a user is shown
    (region, prefix, stock, location name, telephony type, …).
    """

    provider: str
    kind: Kind
    numbers: list[str]
    unit_monthly_cost: Decimal | None
    currency: str = "USD"
    unit_setup_cost: Decimal | None = None
    quantity: int = 1
    max_quantity: int = 1
    sms: bool = False
    voice: bool = False
    expires_at: datetime | None = None
    ref: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Offer:
    """An offer shown to a user: a provider's draft, with an id and who searched."""

    id: str
    provider: str
    kind: Kind  # purchase | rent | assign
    numbers: list[str]
    unit_monthly_cost: Decimal | None
    currency: str
    unit_setup_cost: Decimal | None
    quantity: int
    max_quantity: int
    sms: bool
    voice: bool
    expires_at: datetime | None
    ref: dict[str, Any]
    details: dict[str, Any]
    query: SearchQuery
    searched_by: str
    created_at: datetime

    @classmethod
    def from_draft(cls, id: str, draft: OfferDraft, query: SearchQuery, user: str, now: datetime) -> "Offer":
        return cls(
            id=id,
            provider=draft.provider,
            kind=draft.kind,
            numbers=list(draft.numbers),
            unit_monthly_cost=draft.unit_monthly_cost,
            currency=draft.currency,
            unit_setup_cost=draft.unit_setup_cost,
            quantity=draft.quantity,
            max_quantity=draft.max_quantity,
            sms=draft.sms,
            voice=draft.voice,
            expires_at=draft.expires_at,
            ref=dict(draft.ref),
            details=dict(draft.details),
            query=query,
            searched_by=user,
            created_at=now,
        )

    def draft(self) -> OfferDraft:
        return OfferDraft(
            provider=self.provider,
            kind=self.kind,
            numbers=list(self.numbers),
            unit_monthly_cost=self.unit_monthly_cost,
            currency=self.currency,
            unit_setup_cost=self.unit_setup_cost,
            quantity=self.quantity,
            max_quantity=self.max_quantity,
            sms=self.sms,
            voice=self.voice,
            expires_at=self.expires_at,
            ref=dict(self.ref),
            details=dict(self.details),
        )

    def monthly_total(self, quantity: int | None = None) -> Decimal | None:
        if self.unit_monthly_cost is None:
            return None
        return self.unit_monthly_cost * (quantity if quantity is not None else self.quantity)

    def to_row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "provider": self.provider,
            "kind": self.kind,
            "numbers": json.dumps(self.numbers),
            "unit_monthly_cost": str(self.unit_monthly_cost) if self.unit_monthly_cost is not None else None,
            "currency": self.currency,
            "unit_setup_cost": str(self.unit_setup_cost) if self.unit_setup_cost is not None else None,
            "quantity": self.quantity,
            "max_quantity": self.max_quantity,
            "sms": int(self.sms),
            "voice": int(self.voice),
            "expires_at": ts(self.expires_at),
            "ref": json.dumps(self.ref),
            "details": json.dumps(self.details),
            "query": json.dumps(self.query.to_dict()),
            "searched_by": self.searched_by,
            "created_at": ts(self.created_at),
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Offer":
        return cls(
            id=row["id"],
            provider=row["provider"],
            kind=Kind(row["kind"]),
            numbers=json.loads(row["numbers"]),
            unit_monthly_cost=dec(row["unit_monthly_cost"]),
            currency=row["currency"],
            unit_setup_cost=dec(row["unit_setup_cost"]),
            quantity=row["quantity"],
            max_quantity=row["max_quantity"],
            sms=bool(row["sms"]),
            voice=bool(row["voice"]),
            expires_at=parse_ts(row["expires_at"]),
            ref=json.loads(row["ref"]),
            details=json.loads(row["details"]),
            query=SearchQuery.from_dict(json.loads(row["query"])),
            searched_by=row["searched_by"],
            created_at=parse_ts(row["created_at"]),  # type: ignore[arg-type]
        )

    def to_json(self) -> dict[str, Any]:
        total = self.monthly_total()
        return {
            "id": self.id,
            "provider": self.provider,
            "kind": self.kind,
            "numbers": self.numbers,
            "quantity": self.quantity,
            "max_quantity": self.max_quantity,
            "monthly_cost": str(self.unit_monthly_cost) if self.unit_monthly_cost is not None else None,
            "monthly_total": str(total) if total is not None else None,
            "setup_cost": str(self.unit_setup_cost) if self.unit_setup_cost is not None else None,
            "currency": self.currency,
            "sms": self.sms,
            "voice": self.voice,
            "expires_at": ts(self.expires_at),
            "details": self.details,
        }
