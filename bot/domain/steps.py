"""What a provider is asked to do for a request (``Job``), and what it says back (a ``Step``).

A provider's answer to a submit, a poll or a recovery is one of four steps:
``Done`` (the numbers), ``InProgress`` (poll again with ``ref``), ``Failed``
(the provider's own reason) or ``ProviderPending`` (the provider follows up,
e.g. Plivo's regulated countries).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.domain.kinds import Kind

__all__ = [
    "Requester",
    "Job",
    "submit_audit_data",
    "Done",
    "InProgress",
    "Failed",
    "ProviderPending",
    "Step",
]


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
    kind: Kind
    ref: dict[str, Any]  # offer ref merged with what prepare() returned
    quantity: int
    numbers: list[str]
    requester: Requester
    approved_by: list[str] = field(default_factory=list)  # who approved the request (or the policy)


def submit_audit_data(job: Job) -> dict[str, Any]:
    """What the audit event of a submit records beyond the text: an agreement the submit gives,
    and who gave it (the approvers; approving such a request is agreeing)."""
    if job.kind == Kind.PURCHASE and (job.ref or {}).get("agree_to_not_resell") is True:
        return {"agreed_to_not_resell": True, "agreed_by": list(job.approved_by)}
    return {}


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
