"""What the Slack side reads from ``Settings`` for rendering: one ``RenderConfig``, made at the composition root."""

from __future__ import annotations

from bot.config import SANDBOX_NOTICE, Settings
from bot.slack.render.config import RenderConfig

__all__ = ["render_config"]


def render_config(settings: Settings) -> RenderConfig:
    """The few settings rendering reads, taken once where the Slack side is put together."""
    policy = settings.policy
    return RenderConfig(
        approval_channel=settings.approval_channel,
        required_approvals=settings.required_approvals,
        request_ttl=settings.request_ttl,
        auto_approve_below=settings.auto_approve_below,
        approver_users=tuple(sorted(policy.approver_users)),
        approver_groups=tuple(sorted(policy.approver_groups)),
        max_quantity=settings.max_quantity,
        sandbox_notice=SANDBOX_NOTICE if settings.uses_sandbox else None,
    )
