"""The App Home tab: the viewer's recent requests and, for approvers, the pending queue.

Published on ``app_home_opened`` and again after an action taken from the
Home tab (so the queue there never offers a button for a request that was
just decided). Approver status is looked up each time, like a click.
"""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from bot.domain.errors import NotAllowed
from bot.slack import ids
from bot.slack.render.home import home_view
from bot.slack.deps import SlackDeps
from bot.slack.failures import answered
from bot.slack.notifier import slack_error

log = logging.getLogger(__name__)

HOME_PENDING_LIMIT = 60  # more than fit in 100 blocks, so the view can say how many more there are


async def publish_home(deps: SlackDeps, user: str, *, notice: str | None = None) -> None:
    service = deps.service
    try:
        pending = await service.pending(user, limit=HOME_PENDING_LIMIT)
    except NotAllowed:
        pending = None  # not an approver: no queue
    view = home_view(
        user, await service.mine(user, limit=10), pending, deps.render, notice=notice, numbers=await service.inventory(user)
    )
    try:
        await deps.client.views_publish(user_id=user, view=view.to_dict())
    except SlackApiError as exc:
        log.error("views.publish for %s failed: %s", user, slack_error(exc))


def register(app: AsyncApp, deps: SlackDeps) -> None:
    @app.event(ids.EVENT_HOME_OPENED)
    @answered(deps)
    async def home_opened(event, body) -> None:
        # Bolt acks events before this runs. Opening the Messages tab fires the same event.
        user = event.get("user")
        if event.get("tab", "home") != "home" or not isinstance(user, str) or not user:
            return
        await publish_home(deps, user)
