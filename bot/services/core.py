"""What every use case shares: the ports it talks through, telling people, the audit of refusals.

``ServiceCore`` holds the ``Store``, the providers, the policy, a ``Directory``
(who is an approver, what is a user's e-mail: Slack answers in the bot,
settings in the CLI) and a ``Notifier`` (Slack cards and DMs, or lines on the
terminal). The use cases in this package are mixins over it, put together as
``NumbersService``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from datetime import datetime
from typing import TYPE_CHECKING, Callable

from bot.domain.errors import DirectoryUnavailable, NotFound, NumbersError
from bot.domain.kinds import Change
from bot.domain.offers import Offer
from bot.domain.policy import Policy
from bot.domain.requests import NumberRequest
from bot.ports import Directory, Notifier, Provider
from bot.store.db import Store
from bot.domain.policy import POLICY_ACTOR
from bot.store.threaded import ThreadedStore

if TYPE_CHECKING:
    from bot.delivery import OutboxSender

__all__ = [
    "ServiceCore", "StaticDirectory", "SilentNotifier", "new_offer_id",
    "MAX_JUSTIFICATION", "POLICY_ACTOR", "WORKER_ACTOR", "INLINE_DELIVERY_WAIT",
]

log = logging.getLogger(__name__)

MAX_JUSTIFICATION = 3000
WORKER_ACTOR = "numbers-bot"
INLINE_DELIVERY_WAIT = 3.0  # seconds a state change waits for its notifications to reach Slack


class StaticDirectory:
    """Approvers from settings only (user ids); e-mails from a dict. For the CLI and tests."""

    def __init__(self, approvers: frozenset[str], emails: dict[str, str] | None = None):
        self.approvers = approvers
        self.emails = emails or {}

    async def is_approver(self, user_id: str) -> bool:
        return user_id in self.approvers

    async def email(self, user_id: str) -> str | None:
        return self.emails.get(user_id)


class SilentNotifier:
    async def notify(self, request: NumberRequest, what: Change, *, actor: str | None = None, text: str | None = None) -> None:
        return None


def new_offer_id() -> str:
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "o" + "".join(secrets.choice(alphabet) for _ in range(7))


class ServiceCore:
    """The ports and the plumbing every use case shares."""

    def __init__(
        self,
        store: Store | ThreadedStore,
        providers: dict[str, Provider],
        policy: Policy,
        *,
        directory: Directory,
        notifier: Notifier | None = None,
        request_ttl: float = 24 * 3600,
        remind_after: float = 4 * 3600,
        clock: Callable[[], datetime] | None = None,
    ):
        self.store = store if isinstance(store, ThreadedStore) else ThreadedStore(store)
        self.providers = providers
        self.policy = policy
        self.directory = directory
        self.notifier: Notifier = notifier or SilentNotifier()
        self.request_ttl = request_ttl
        self.remind_after = remind_after
        self.clock = clock or store.clock
        self._kick: Callable[[], None] | None = None
        # The outbox sender when this process delivers (``bot.bootstrap.build(deliver=True)``).
        self.sender: OutboxSender | None = None

    def on_work(self, kick: Callable[[], None]) -> None:
        """The worker registers here to be woken when there is work (an approval)."""
        self._kick = kick

    def kick(self) -> None:
        if self._kick is not None:
            self._kick()

    async def tell(self, request: NumberRequest, what: Change, *, actor: str | None = None, text: str | None = None) -> None:
        """After a commit that wrote its notice to the outbox: deliver the request's waiting
        notices now when this process delivers (the server); otherwise (the CLI) show it
        here and leave the outbox to the running server. Never raises: a notification
        must not undo or hide the state change, and the outbox keeps what is not sent."""
        try:
            if self.sender is not None:
                # Usually done in a moment; when Slack's pacing holds it longer, the caller (a
                # listener, a drive) goes on and the sender finishes it.
                await asyncio.wait({self.sender.deliver_soon(request.id)}, timeout=INLINE_DELIVERY_WAIT)
            else:
                await self.notifier.notify(request, what, actor=actor, text=text)
        except Exception:
            log.exception("could not notify about request %s (%s)", request.id, what)

    def provider(self, name: str) -> Provider:
        try:
            return self.providers[name]
        except KeyError:
            raise NotFound(f"The provider `{name}` is not enabled here.") from None

    async def is_approver(self, user: str) -> bool:
        return await self.directory.is_approver(user)


    async def get(self, request_id: int) -> NumberRequest:
        request = await self.store.get_request(request_id)
        if request is None:
            raise NotFound(f"There is no request #{request_id}.")
        return request

    async def _refused(self, request_id: int | None, user: str, action: str, exc: NumbersError) -> None:
        await self.store.add_event(request_id, user, "refused", f"{action} refused: {exc}", {"action": action})

    async def note_refusal(self, request_id: int | None, user: str, action: str, exc: NumbersError) -> None:
        """Audit a refusal decided outside the service (a listener's own check, e.g. a foreign button)."""
        await self._refused(request_id, user, action, exc)

    async def _approver_or_refuse(self, request_id: int | None, user: str, action: str) -> bool:
        """Whether ``user`` may decide; when that cannot be checked, the click is refused and audited."""
        try:
            return await self.is_approver(user)
        except DirectoryUnavailable as exc:
            await self._refused(request_id, user, action, exc)
            raise


    async def offer(self, offer_id: str) -> Offer:
        offer = await self.store.get_offer(offer_id.strip())
        if offer is None:
            raise NotFound(f"There is no offer `{offer_id}`; search again to get fresh offers.")
        return offer

    async def offer_or_none(self, offer_id: str) -> Offer | None:
        return await self.store.get_offer(offer_id.strip())
