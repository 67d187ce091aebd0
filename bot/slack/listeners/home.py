"""``app_home_opened``: publish the Home tab (``bot.slack.answer.publish_home``)."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.slack import ids
from bot.slack.answer import answered, publish_home
from bot.slack.deps import SlackDeps

__all__ = ["register"]


def register(app: AsyncApp, deps: SlackDeps) -> None:
    @app.event(ids.EVENT_HOME_OPENED)
    @answered(deps)
    async def home_opened(event: dict[str, Any], body: dict[str, Any]) -> None:
        # Bolt acks events before this runs. Opening the Messages tab fires the same event.
        user = event.get("user")
        if event.get("tab", "home") != "home" or not isinstance(user, str) or not user:
            return
        await publish_home(deps, user)
