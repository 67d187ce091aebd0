"""What rendering reads from the settings, and nothing more: built once at the composition root.

Render functions take this small frozen value instead of ``Settings`` so that
what a message depends on is visible in its signature, and so that rendering
never reaches configuration, secrets or the services.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

__all__ = ["RenderConfig"]


@dataclass(frozen=True)
class RenderConfig:
    approval_channel: str | None = None  # where the cards are; the Home tab points there
    required_approvals: int = 1  # "1 of 2 approvals" on a card when more than one is needed
    request_ttl: float = 24 * 3600  # "no decision within 24 h"
    auto_approve_below: Decimal = Decimal("0")  # "approved by policy (below $5.00/month)"
    approver_users: tuple[str, ...] = ()  # mentioned in thread replies approvers must act on
    approver_groups: tuple[str, ...] = ()
    max_quantity: int = 10  # the most numbers one request may ask for (NUMBERS_MAX_QUANTITY)
    sandbox_notice: str | None = None  # set when the providers are simulated: every message says so
