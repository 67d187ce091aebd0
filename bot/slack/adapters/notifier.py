"""The service's ``Notifier`` port in Slack: the approval card, DMs and thread replies.

* ``created`` posts the approval card in ``NUMBERS_APPROVAL_CHANNEL`` and saves
  where it is (``card_channel``/``card_ts``) on the request; the requester gets
  a DM with a link to it.
* Every other step re-renders the card in place (``chat.update``) from the
  request as the store has it *now*. Updates for one request are serialised
  and always read the freshest state, so a slow "approved" update can never
  land after "fulfilled" and leave the card showing an old state.
* The requester gets a DM at every outcome; approvers get a thread reply under
  the card when they must act (needs attention, reminder, fresh approval).

The ``OutboxSender`` (bot/delivery.py) calls ``deliver`` with one outbox row.
What Slack may take later (5xx, ``internal_error``, a rate limit it keeps
answering, a dropped connection) raises ``DeliveryDeferred`` with the parts sent
so far kept in the row, so a retry sends no part twice. A permanent refusal is
handled here: a message too long or invalid goes again as text only; an approval
channel the bot cannot post to (or a card it cannot edit) sends the card to the
approvers by DM with what to fix (``ChannelTrouble``); anything else is logged.
Calls go through ``SlackPacer``: paced per channel, ``Retry-After`` honoured.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable

import aiohttp

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings
from bot.domain.errors import DeliveryDeferred
from bot.domain.kinds import Change
from bot.domain.offers import Offer
from bot.domain.requests import NumberRequest
from bot.domain.states import TERMINAL
from bot.slack.render.kit import clip
from bot.slack.render.notices import dm_message, thread_message
from bot.slack.render.requests import card_message
from bot.slack.adapters.channel_trouble import CHANNEL_ERRORS, ChannelTrouble
from bot.slack.adapters.pacing import SlackPacer
from bot.slack.api_errors import slack_error
from bot.slack.configure import render_config
from bot.slack.render.config import RenderConfig
from bot.store.outbox import OutboxItem
from bot.store.threaded import ThreadedStore

log = logging.getLogger(__name__)

DM_ON = frozenset(
    {
        Change.APPROVED, Change.DENIED, Change.FULFILLED, Change.FAILED, Change.EXPIRED, Change.PROVIDER_PENDING,
        Change.NEEDS_ATTENTION, Change.REAPPROVAL, Change.NUMBERS_CHANGED,
    }
)
THREAD_ON = frozenset({Change.NEEDS_ATTENTION, Change.REMINDER, Change.REAPPROVAL})
CARD_UNCHANGED = frozenset({Change.REMINDER})
# ``ok: false`` errors that Slack documents as transient on its side (HTTP 200, so slack_sdk's retry handlers,
# which look at 429/5xx, let them through). The card update that shows the outcome is the last one: lost
# there, the card would keep "buying…" and live buttons for good.
TRANSIENT_ERRORS = frozenset({"internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited"})
# The message itself was refused: sent again as text only, so the reader still gets the answer.
TOO_BIG_ERRORS = frozenset({"msg_blocks_too_long", "invalid_blocks", "msg_too_long", "invalid_blocks_format"})
CARD_GONE = frozenset({"message_not_found", "cant_update_message"})


class SlackNotifier:
    def __init__(
        self,
        client: AsyncWebClient,
        settings: Settings,
        *,
        clock: Callable[[], datetime] | None = None,
        pacer: SlackPacer | None = None,
        approvers: Callable[[], Awaitable[set[str]]] | None = None,
        render: RenderConfig | None = None,
        store: ThreadedStore | None = None,
    ):
        self.client = client
        self.settings = settings
        self.render = render or render_config(settings)
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.pacer = pacer or SlackPacer()
        # The store cards are re-read from and their ts recorded in (``bot.bootstrap.build`` passes it);
        # without one the card shows the request as handed over.
        self.store = store
        self.trouble = ChannelTrouble(self, approvers)
        # The card as last shown, per request still moving: an identical update is skipped
        # ("approved" then "fulfilling" look the same), since chat.update is rate-limited.
        self._shown: dict[int, dict[str, Any]] = {}

    async def _slack(self, method: str, call: Callable[..., Any], **kwargs: Any) -> Any:
        """One Web API call, paced; ``DeliveryDeferred`` for what may work later, ``SlackApiError`` otherwise."""
        channel = kwargs.pop("channel", None)
        try:
            return await self.pacer.call(method, call, channel=channel, **kwargs)
        except SlackApiError as exc:
            error = slack_error(exc)
            status = exc.response.status_code if exc.response is not None else 0
            if error in TRANSIENT_ERRORS or status >= 500 or status == 429:
                raise DeliveryDeferred(f"{method}: {error}") from None
            raise
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise DeliveryDeferred(f"{method}: {type(exc).__name__}") from None

    async def post(self, channel: str, message: dict[str, Any], **extra: Any) -> Any:
        """``chat.postMessage``; a message Slack refuses as too long or invalid goes again as text only."""
        try:
            return await self._slack("chat.postMessage", self.client.chat_postMessage, channel=channel, **extra, **message)
        except SlackApiError as exc:
            if slack_error(exc) not in TOO_BIG_ERRORS:
                raise
            log.warning("Slack refused a message to %s (%s); sending it as text only", channel, slack_error(exc))
            short = {"text": clip(message.get("text") or "", 3000), "blocks": []}
            return await self._slack("chat.postMessage", self.client.chat_postMessage, channel=channel, **extra, **short)

    # --- the port -----------------------------------------------------------

    async def notify(self, request: NumberRequest, what: Change, *, actor: str | None = None, text: str | None = None) -> None:
        """Deliver one notification now, without an outbox row (nothing kept if Slack refuses)."""
        item = OutboxItem(id=0, request=request, what=what, actor=actor, text=text)
        try:
            await self.deliver(item)
        except DeliveryDeferred as exc:
            log.error("could not notify about request %s (%s): %s", request.id, what, exc)

    async def deliver(self, item: OutboxItem) -> None:
        """Send the parts of ``item`` not in ``item.done`` yet, adding each to it once Slack took it."""
        request, what = item.request, item.what
        current = await self._fresh(request)
        if "card" not in item.done and what not in CARD_UNCHANGED:
            if what == Change.CREATED and not current.card_ts:
                await self._post_card(current)
            elif what != Change.CREATED:
                await self._update_card(current)
            item.done.add("card")
            current = await self._fresh(request)
        if "dm" not in item.done and (what == Change.CREATED or what in DM_ON):
            link = await self._link(current.card_channel, current.card_ts)
            # "created" describes the request as it is now (perhaps approved by policy already).
            await self._dm(
                current if what == Change.CREATED else request, what, actor=item.actor, text=item.text, link=link,
                channel=current.card_channel,
            )
            item.done.add("dm")
        if "thread" not in item.done and what in THREAD_ON:
            await self._thread(current, what, text=item.text)
            item.done.add("thread")

    # --- pieces ---------------------------------------------------------------

    async def _fresh(self, request: NumberRequest) -> NumberRequest:
        if self.store is None:
            return request
        return await self.store.get_request(request.id, events=False) or request

    async def _offer(self, request: NumberRequest) -> Offer | None:
        if self.store is None:
            return None
        return await self.store.get_offer(request.offer_id)

    async def card(self, request: NumberRequest) -> dict[str, Any]:
        offer = await self._offer(request)
        return card_message(request, self.render, offer=offer, now=self.clock()).payload()

    async def _post_card(self, request: NumberRequest) -> None:
        channel = self.settings.approval_channel
        if not channel:
            log.warning("NUMBERS_APPROVAL_CHANNEL is not set; request %s has no card", request.id)
            return
        card = await self.card(request)
        try:
            response = await self.post(channel, card)
        except SlackApiError as exc:
            error = slack_error(exc)
            if error in CHANNEL_ERRORS:
                await self.trouble.report(request, channel, error, card)
                return
            log.error("could not post the card for request %s in %s: %s", request.id, channel, error)
            return
        if self.store is not None and response.get("ts"):
            await self.store.update_request(
                request.id, changes={"card_channel": response.get("channel") or channel, "card_ts": response["ts"]}
            )
        self._remember(request, card)

    def _remember(self, request: NumberRequest, card: dict[str, Any]) -> None:
        if request.state in TERMINAL:
            self._shown.pop(request.id, None)  # a final card never changes again
        else:
            self._shown[request.id] = card

    async def _link(self, channel: str | None, ts: str | None) -> str | None:
        if not channel or not ts:
            return None
        try:
            response = await self._slack("chat.getPermalink", self.client.chat_getPermalink, channel=channel, message_ts=ts)
        except (SlackApiError, DeliveryDeferred) as exc:
            log.info("no permalink for %s/%s: %s", channel, ts, exc if isinstance(exc, DeliveryDeferred) else slack_error(exc))
            return None
        return response.get("permalink") or None

    async def _update_card(self, request: NumberRequest) -> None:
        if not request.card_channel or not request.card_ts:
            # The card was never posted (Slack was down, or the bot was not in the channel): post it now,
            # so approvers see the current state somewhere.
            await self._post_card(request)
            return
        card = await self.card(request)
        if self._shown.get(request.id) == card:
            return
        try:
            await self._slack("chat.update", self.client.chat_update, channel=request.card_channel, ts=request.card_ts, **card)
            self._remember(request, card)
        except SlackApiError as exc:
            error = slack_error(exc)
            if error in CARD_GONE:
                log.warning("card of request %s is gone (%s); posting a new one", request.id, error)
                await self._post_card(request)
            elif error in CHANNEL_ERRORS:
                await self.trouble.report(request, request.card_channel, error, card)
            elif error in TOO_BIG_ERRORS:
                short: dict[str, Any] = {"text": card.get("text") or "", "blocks": []}
                await self._slack("chat.update", self.client.chat_update, channel=request.card_channel, ts=request.card_ts, **short)
            else:
                log.error("could not update the card of request %s: %s", request.id, error)

    async def _dm(
        self,
        request: NumberRequest,
        what: str,
        *,
        actor: str | None,
        text: str | None,
        link: str | None,
        channel: str | None,
    ) -> None:
        message = dm_message(request, what, self.render, actor=actor, text=text, channel=channel, link=link)
        try:
            # A user id as the channel posts in the app's DM with that user (the Messages tab).
            await self.post(request.requester, message.payload())
        except SlackApiError as exc:
            log.error("could not DM %s about request %s (%s): %s", request.requester, request.id, what, slack_error(exc))

    async def _thread(self, request: NumberRequest, what: str, *, text: str | None) -> None:
        message = thread_message(request, what, self.render, text=text)
        channel = request.card_channel or self.settings.approval_channel
        if not channel:
            return
        try:
            await self.post(channel, message.payload(), thread_ts=request.card_ts)
        except SlackApiError as exc:
            log.error("could not tell the approvers about request %s (%s): %s", request.id, what, slack_error(exc))
