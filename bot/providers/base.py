"""What every provider adapter implements, and the values that cross that line.

A provider adapter turns one provider's HTTP API into four moves:

* ``search(query)`` → offers (``OfferDraft``); reads, retried on transient faults.
* ``prepare(offer, quantity, requester)`` → extra reference data checked *before*
  an approval is asked for (Webex looks up the requester's person by e-mail);
  raises a ``NumbersError`` a user can read when the request cannot work.
* ``submit(job)`` → the one call that spends money or changes an assignment.
  Never retried blindly. Returns a ``Step``; raises ``ProviderError`` when the
  provider definitely refused, ``OutcomeUnknown`` when it cannot be told.
* ``poll(job, ref)`` → the next ``Step`` of an operation in flight (reads).
* ``recover(job)`` → after a crash between recording the intent to submit and
  recording the answer: ``None`` when the provider certainly has not acted (safe
  to submit), a ``Step`` when it has (carry on from there); raises
  ``OutcomeUnknown`` when the provider cannot say (the request then goes to
  ``needs_attention``, never a second submit).
* ``release(number, ref)`` → give a held number back (``ref``: the held number's provider ref;
  Webex reads ``ref["person_id"]``, the person the number comes off). Sent once, like ``submit``.
* ``check()`` → a harmless call for ``numbers-bot doctor``; returns a short text.

Optional, for providers whose hold is made at request time (Telnyx reserves in
``prepare``): ``extend_hold(ref)`` → the hold's new end while the request waits
for approval, and ``abandon(ref)`` → let the hold go when the request is denied,
cancelled or expires (returns a note for the audit log, or None). Call them
through ``extend_hold`` and ``abandon_hold`` below, which do nothing for
providers without them.

Money is ``Decimal`` end to end; times are aware UTC datetimes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Mapping, Protocol, runtime_checkable

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
        return cls(**{k: d.get(k) for k in cls.__dataclass_fields__ if k in d})


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
    kind: str
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


@dataclass(frozen=True)
class Requester:
    user_id: str
    email: str | None = None
    name: str | None = None


@dataclass
class Job:
    """What the worker asks a provider to do for one approved request."""

    request_id: int
    provider: str
    kind: str  # purchase | rent | assign | release
    ref: dict[str, Any]  # offer ref merged with what prepare() returned
    quantity: int
    numbers: list[str]
    requester: Requester
    approved_by: list[str] = field(default_factory=list)  # who approved the request (or the policy)


def submit_audit_data(job: Job) -> dict[str, Any]:
    """What the audit event of a submit records beyond the text: an agreement the submit gives,
    and who gave it (the approvers; approving such a request is agreeing)."""
    if job.kind == "purchase" and (job.ref or {}).get("agree_to_not_resell") is True:
        return {"agreed_to_not_resell": True, "agreed_by": list(job.approved_by)}
    return {}


# --- Steps: what a provider says about a job ---------------------------------


@dataclass
class Done:
    numbers: list[str]
    note: str | None = None  # e.g. "2 of 3 numbers rented; 1 failed: …"
    failed_numbers: list[str] = field(default_factory=list)


@dataclass
class InProgress:
    ref: dict[str, Any]  # what poll() needs, e.g. {"operation_id": …, "location": …}
    retry_after: float | None = None  # seconds, when the provider said


@dataclass
class Failed:
    reason: str  # the provider's own words where it gave any


@dataclass
class ProviderPending:
    details: str  # e.g. Plivo's regulated-country "details" text


Step = Done | InProgress | Failed | ProviderPending


@runtime_checkable
class Provider(Protocol):
    name: str

    async def search(self, query: SearchQuery) -> list[OfferDraft]: ...

    async def prepare(self, offer: OfferDraft, quantity: int, requester: Requester) -> dict[str, Any]: ...

    async def submit(self, job: Job) -> Step: ...

    async def poll(self, job: Job, ref: dict[str, Any]) -> Step: ...

    async def recover(self, job: Job) -> Step | None: ...

    async def release(self, number: str, ref: Mapping[str, Any]) -> Step: ...

    async def check(self) -> str: ...

    async def aclose(self) -> None: ...


async def extend_hold(provider: Provider, ref: dict[str, Any]) -> datetime | None:
    """The hold's new end, or None when the provider keeps no hold it can extend."""
    extend = getattr(provider, "extend_hold", None)
    return await extend(ref) if extend is not None else None


def extends_holds(provider: Provider) -> bool:
    return getattr(provider, "extend_hold", None) is not None


async def abandon_hold(provider: Provider, ref: dict[str, Any]) -> str | None:
    """Let the request's hold go; a note for the audit log, or None when there was nothing to do."""
    abandon = getattr(provider, "abandon", None)
    return await abandon(ref) if abandon is not None else None
