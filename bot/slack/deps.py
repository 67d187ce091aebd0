"""What every listener needs, and the one way numbers-bot answers a single user.

``SlackDeps.reply`` tells one user something only they should see. It tries, in
order: the ``response_url`` of the command or click (works in any channel, even
ones the bot is not in, for 30 minutes and 5 posts), an ephemeral message in the
channel, and finally a DM — so an answer is never silently lost because one
route was closed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.config import Settings
from bot.services import NumbersService
from bot.domain.errors import DeliveryDeferred
from bot.slack.api_errors import slack_error
from bot.slack.render.config import RenderConfig
from bot.slack.render.kit import Message

log = logging.getLogger(__name__)


@dataclass
class SlackDeps:
    service: NumbersService
    settings: Settings
    client: AsyncWebClient
    clock: Callable[[], datetime]
    render: RenderConfig  # what rendering reads of the settings (``render_config``)
    in_flight: Any = None  # bot.bootstrap.InFlight: listeners' post-ack work, waited for on stop
    pacer: Any = None  # bot.slack.adapters.pacing.SlackPacer shared with the notifier: DMs paced per channel

    async def _post(self, **kwargs: Any) -> Any:
        if self.pacer is None:
            return await self.client.chat_postMessage(**kwargs)
        channel = kwargs.pop("channel")
        return await self.pacer.call("chat.postMessage", self.client.chat_postMessage, channel=channel, **kwargs)

    async def reply(
        self,
        user: str,
        message: Message,
        *,
        response_url: str | None = None,
        channel: str | None = None,
    ) -> str:
        """Send ``message`` to ``user`` alone; returns the route that worked (for logs and tests)."""
        payload = message.payload()
        if response_url:
            try:
                answer = await AsyncWebhookClient(response_url).send_dict(
                    {**payload, "response_type": "ephemeral", "replace_original": False}
                )
                if answer.status_code == 200:
                    return "response_url"
                log.info("response_url answered %s; trying the next route", answer.status_code)
            except Exception as exc:  # an expired or unreachable response_url: fall through to the Web API
                log.info("response_url failed (%s); trying the next route", type(exc).__name__)
        if channel:
            try:
                await self.client.chat_postEphemeral(channel=channel, user=user, **payload)
                return "ephemeral"
            except SlackApiError as exc:
                log.info("chat.postEphemeral in %s failed (%s); sending a DM", channel, slack_error(exc))
        try:
            try:
                await self._post(channel=user, **payload)
            except SlackApiError as exc:
                if slack_error(exc) not in ("msg_blocks_too_long", "invalid_blocks", "msg_too_long"):
                    raise
                # Refused as too long or invalid: the text alone still answers the user.
                log.warning("Slack refused the DM to %s (%s); sending it as text only", user, slack_error(exc))
                await self._post(channel=user, text=payload["text"], blocks=[])
            return "dm"
        except (SlackApiError, DeliveryDeferred) as exc:
            why = slack_error(exc) if isinstance(exc, SlackApiError) else str(exc)
            log.error("could not reach user %s by any route: %s", user, why)
            return "lost"
