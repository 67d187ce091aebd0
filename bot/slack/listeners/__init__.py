"""What Slack sends us: each listener acks, parses, makes one service call and renders the answer."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.slack.deps import SlackDeps
from bot.slack.listeners import actions, commands, home, views

__all__ = ["register"]


def register(app: AsyncApp, deps: SlackDeps) -> None:
    """Every listener on ``app``."""
    commands.register(app, deps)
    actions.register(app, deps)
    views.register(app, deps)
    home.register(app, deps)
