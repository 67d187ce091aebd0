"""A simulated Plivo account with both its APIs: the legacy number groups (``_plivo_groups``) and
the current phone numbers (``plivo_numbers``); the account's credentials and catalogue are in
``_plivo_account``. Routes and knobs are in those modules' docstrings.
"""

from __future__ import annotations

from bot.sandbox._plivo_account import SANDBOX_PLIVO_API_URL, SANDBOX_PLIVO_AUTH_ID, SANDBOX_PLIVO_AUTH_TOKEN
from bot.sandbox.common import Clock, SandboxApp, SandboxState
from bot.sandbox.plivo_numbers import PlivoNumbersSandbox

__all__ = ["SANDBOX_PLIVO_API_URL", "SANDBOX_PLIVO_AUTH_ID", "SANDBOX_PLIVO_AUTH_TOKEN", "create_plivo_sandbox"]


def create_plivo_sandbox(
    state: SandboxState | None = None,
    clock: Clock | None = None,
    *,
    auth_id: str = SANDBOX_PLIVO_AUTH_ID,
    auth_token: str = SANDBOX_PLIVO_AUTH_TOKEN,
) -> SandboxApp:
    """A simulated Plivo account with both APIs."""
    return PlivoNumbersSandbox(state, clock, auth_id=auth_id, auth_token=auth_token)
