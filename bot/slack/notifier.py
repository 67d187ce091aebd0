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

Each Slack call stands alone: a card that cannot be updated does not stop the
DM, and nothing here raises into the service (it logs instead), because a
notification must never undo or hide a state change.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from typing import Any, Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings
from bot.domain.models import NumberRequest, Offer
from bot.domain.states import TERMINAL
from bot.slack import blocks
from bot.store.threaded import ThreadedStore

log = logging.getLogger(__name__)

DM_ON = frozenset(
    {"approved", "denied", "fulfilled", "failed", "expired", "provider_pending", "needs_attention", "reapproval", "numbers_changed"}
)
THREAD_ON = frozenset({"needs_attention", "reminder", "reapproval"})
CARD_UNCHANGED = frozenset({"reminder"})
# ``ok: false`` errors that Slack documents as transient on its side (HTTP 200, so slack_sdk's retry handlers,
# which look at 429/5xx, let them through). The card update that shows the outcome is the last one: lost
# there, the card would keep "buying…" and live buttons for good.
TRANSIENT_ERRORS = frozenset({"internal_error", "fatal_error", "service_unavailable", "request_timeout"})
RETRY_DELAYS = (1.0, 3.0)


def slack_error(exc: Exception) -> str:
    """The Slack error code (``not_in_channel``, ``ratelimited``…), never the request that carried the token."""
    if isinstance(exc, SlackApiError) and exc.response is not None:
        data = exc.response.data
        if isinstance(data, dict) and data.get("error"):
            return str(data["error"])
        return f"HTTP {exc.response.status_code}"
    return type(exc).__name__


class SlackNotifier:
    def __init__(
        self,
        client: AsyncWebClient,
        settings: Settings,
        *,
        clock: Callable[[], datetime] | None = None,
    ):
        self.client = client
        self.settings = settings
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.store: ThreadedStore | None = None  # bound after the store exists (bot.slack.app.build_slack)
        # One lock per request still moving; dropped once the request reaches a final state.
        self._locks: dict[int, asyncio.Lock] = {}
        self._shown: dict[int, dict[str, Any]] = {}  # the card as last posted, to skip identical updates
        self.retry_delays: tuple[float, ...] = RETRY_DELAYS

    async def _slack(self, call: Callable[..., Any], **kwargs: Any) -> Any:
        """One Web API call, sent again after Slack's transient ``ok: false`` errors; raises the last error."""
        for delay in (*self.retry_delays, None):
            try:
                return await call(**kwargs)
            except SlackApiError as exc:
                if delay is None or slack_error(exc) not in TRANSIENT_ERRORS:
                    raise
                log.warning("Slack answered %s; trying again in %gs", slack_error(exc), delay)
                await asyncio.sleep(delay)

    def bind(self, store: ThreadedStore) -> None:
        self.store = store

    # --- the port -----------------------------------------------------------

    async def notify(self, request: NumberRequest, what: str, *, actor: str | None = None, text: str | None = None) -> None:
        lock = self._locks.setdefault(request.id, asyncio.Lock())
        async with lock:
            current = await self._fresh(request)
            if what == "created":
                await self._post_card(current)
            elif what not in CARD_UNCHANGED:
                await self._update_card(current)
            current = await self._fresh(request)
        if what == "created" or what in DM_ON:
            link = await self._link(current.card_channel, current.card_ts)
            # "created" describes the request as it is now (perhaps approved by policy already).
            await self._dm(current if what == "created" else request, what, actor=actor, text=text, link=link, channel=current.card_channel)
        if what in THREAD_ON:
            await self._thread(current, what, text=text)
        if current.state in TERMINAL:
            # A card in a final state never changes again: forget it, so these dicts stay small.
            self._shown.pop(request.id, None)
            self._locks.pop(request.id, None)

    # --- pieces ---------------------------------------------------------------

    async def _fresh(self, request: NumberRequest) -> NumberRequest:
        if self.store is None:
            return request
        return await self.store.get_request(request.id, events=False) or request

    async def _offer(self, request: NumberRequest) -> Offer | None:
        if self.store is None:
            return None
        return await self.store.get_offer(request.offer_id)

    async def _card(self, request: NumberRequest) -> dict[str, Any]:
        offer = await self._offer(request)
        return blocks.card_message(request, self.settings, offer=offer, now=self.clock()).payload()

    async def _post_card(self, request: NumberRequest) -> None:
        channel = self.settings.approval_channel
        if not channel:
            log.warning("NUMBERS_APPROVAL_CHANNEL is not set; request %s has no card", request.id)
            return
        card = await self._card(request)
        try:
            response = await self._slack(self.client.chat_postMessage, channel=channel, **card)
        except SlackApiError as exc:
            log.error("could not post the card for request %s in %s: %s", request.id, channel, slack_error(exc))
            return
        if self.store is not None and response.get("ts"):
            await self.store.update_request(
                request.id, changes={"card_channel": response.get("channel") or channel, "card_ts": response["ts"]}
            )
        self._shown[request.id] = card

    async def _link(self, channel: str | None, ts: str | None) -> str | None:
        if not channel or not ts:
            return None
        try:
            response = await self.client.chat_getPermalink(channel=channel, message_ts=ts)
        except SlackApiError as exc:
            log.info("no permalink for %s/%s: %s", channel, ts, slack_error(exc))
            return None
        return response.get("permalink") or None

    async def _update_card(self, request: NumberRequest) -> None:
        if not request.card_channel or not request.card_ts:
            # The card was never posted (Slack was down, or the bot was not in the channel): post it now,
            # so approvers see the current state somewhere.
            await self._post_card(request)
            return
        card = await self._card(request)
        if self._shown.get(request.id) == card:
            return  # e.g. "approved" then "fulfilling": same card; Slack rate-limits chat.update
        try:
            await self._slack(self.client.chat_update, channel=request.card_channel, ts=request.card_ts, **card)
            self._shown[request.id] = card
        except SlackApiError as exc:
            error = slack_error(exc)
            if error in ("message_not_found", "cant_update_message", "channel_not_found"):
                log.warning("card of request %s is gone (%s); posting a new one", request.id, error)
                await self._post_card(request)
                return
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
        message = blocks.dm_message(request, what, self.settings, actor=actor, text=text, channel=channel, link=link)
        try:
            # A user id as the channel posts in the app's DM with that user (the Messages tab).
            await self._slack(self.client.chat_postMessage, channel=request.requester, **message.payload())
        except SlackApiError as exc:
            log.error("could not DM %s about request %s (%s): %s", request.requester, request.id, what, slack_error(exc))

    async def _thread(self, request: NumberRequest, what: str, *, text: str | None) -> None:
        message = blocks.thread_message(request, what, self.settings, text=text)
        channel = request.card_channel or self.settings.approval_channel
        if not channel:
            return
        try:
            await self._slack(self.client.chat_postMessage, channel=channel, thread_ts=request.card_ts, **message.payload())
        except SlackApiError as exc:
            log.error("could not tell the approvers about request %s (%s): %s", request.id, what, slack_error(exc))
