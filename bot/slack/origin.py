"""Where a command, click or form came from, so the answer goes back to the same place.

A click on the App Home has no channel and no ``response_url``: the answer
there is a notice at the top of a re-published Home tab. Everything else is
answered with ``SlackDeps.reply`` (response_url → ephemeral → DM).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.slack.render.kit import Message
from bot.slack.render.modals import metadata
from bot.slack.deps import SlackDeps


@dataclass(frozen=True)
class Origin:
    user: str
    response_url: str | None = None
    channel: str | None = None
    home: bool = False  # clicked on the App Home tab
    ephemeral: bool = False  # clicked in an ephemeral message (a search result, `pending`)
    card: bool = False  # clicked on an approval card

    @classmethod
    def from_command(cls, body: dict[str, Any]) -> "Origin":
        return cls(user=body["user_id"], response_url=body.get("response_url"), channel=body.get("channel_id"))

    @classmethod
    def from_action(cls, body: dict[str, Any], approval_channel: str | None = None) -> "Origin":
        container = body.get("container") or {}
        view = body.get("view") or {}
        channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
        home = container.get("type") == "view" and view.get("type") == "home"
        ephemeral = bool(container.get("is_ephemeral"))
        card = (
            container.get("type") == "message" and not ephemeral and channel is not None and channel == approval_channel
        )
        return cls(
            user=body["user"]["id"],
            response_url=body.get("response_url"),
            channel=channel,
            home=home,
            ephemeral=ephemeral,
            card=card,
        )

    @classmethod
    def from_metadata(cls, user: str, meta: dict[str, Any]) -> "Origin":
        return cls(
            user=user,
            response_url=meta.get("response_url"),
            channel=meta.get("channel"),
            home=bool(meta.get("home")),
        )

    def metadata(self, **values: Any) -> str:
        """``private_metadata`` for a modal opened from here, so its submission can answer here."""
        return metadata(
            response_url=self.response_url, channel=self.channel, home=True if self.home else None, **values
        )


async def tell(deps: SlackDeps, origin: Origin, message: Message, *, home_notice: str | None = None) -> None:
    """Answer the user where they acted: a Home notice for Home clicks, else ``deps.reply``."""
    if origin.home:
        from bot.slack.home import publish_home

        await publish_home(deps, origin.user, notice=home_notice or message.mrkdwn())
        return
    await deps.reply(origin.user, message, response_url=origin.response_url, channel=origin.channel)
