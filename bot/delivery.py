"""The outbox sender: delivers what the store's outbox holds through the ``Notifier`` port.

* In order per request: a request's notifications go one after another, and a
  later one waits while an earlier one waits for Slack.
* Until Slack takes it: a notifier raises ``DeliveryDeferred`` for what may work
  later (Slack down, rate-limited, a dropped connection); the row keeps the parts
  already sent and is tried again after a back-off (capped at ``MAX_BACKOFF``, so
  Slack's recovery is seen within that time). A permanent refusal is the
  notifier's to report; it returns and the row is done.
* One process at a time: a request's rows are leased to the delivering process
  (``lease_owner``), so two servers on one store never send a notice twice.
* Latest card only: when several notifications of one request wait, only the
  last one updates the card (the card always shows the request as it is now).

The process that commits a change delivers it at once when it is the server (or
a test); the background loop in the ``Worker`` picks up the rest: rows written by
the CLI, rows whose Slack call failed.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any, Callable

from bot.domain.errors import DeliveryDeferred
from bot.domain.kinds import Change
from bot.store import outbox
from bot.store.connection import drive_identity
from bot.store.outbox import OutboxItem
from bot.store.threaded import ThreadedStore

__all__ = ["OutboxSender", "BACKOFF", "MAX_BACKOFF"]

log = logging.getLogger(__name__)

BACKOFF = (1.0, 2.0, 5.0, 10.0, 20.0)
MAX_BACKOFF = 30.0
CONCURRENCY = 8  # requests delivered at once; pacing per channel is the notifier's
MAX_LOCKS = 1000
LEASE_SECONDS = 120.0  # a delivering process on another host that died frees its requests after this long


class OutboxSender:
    def __init__(
        self, store: ThreadedStore, notifier: Any, *, clock: Callable[[], datetime], owner: str | None = None
    ):
        self.store = store
        self.owner = owner or drive_identity()
        self.notifier = notifier
        self.clock = clock
        self._locks: dict[int, asyncio.Lock] = {}
        self._gate = asyncio.Semaphore(CONCURRENCY)
        self._soon: set[asyncio.Task[bool]] = set()

    def deliver_soon(self, request_id: int) -> asyncio.Task[bool]:
        """``deliver`` in a task this sender holds (``cancel`` ends it on stop; the rows stay)."""
        task = asyncio.create_task(self.deliver(request_id))
        self._soon.add(task)
        task.add_done_callback(self._soon.discard)
        return task

    async def cancel(self) -> None:
        """Stop deliveries under way; what they had not sent waits in the store for the next start."""
        tasks = list(self._soon)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    @staticmethod
    def backoff(attempts: int) -> float:
        return BACKOFF[attempts] if attempts < len(BACKOFF) else MAX_BACKOFF

    async def deliver(self, request_id: int) -> bool:
        """Deliver the request's waiting notifications that are due; True when none is left waiting."""
        lock = self._locks.setdefault(request_id, asyncio.Lock())
        async with lock:
            # Another server on this store may be delivering it: one process at a time per request.
            if not await self.store.run(lambda s: outbox.claim(s, request_id, self.owner, LEASE_SECONDS)):
                return False
            try:
                delivered = await self._deliver(request_id)
            finally:
                await self.store.run(lambda s: outbox.release(s, request_id, self.owner))
        if len(self._locks) > MAX_LOCKS:  # forget the locks nobody holds, so the dict stays small
            for rid in [r for r, held in self._locks.items() if not held.locked()]:
                del self._locks[rid]
        return delivered

    async def _deliver(self, request_id: int) -> bool:
        items = await self.store.run(lambda s: outbox.pending_for(s, request_id))
        now = self.clock()
        for index, item in enumerate(items):
            if item.next_at is not None and item.next_at > now:
                return False  # still backing off: what comes after it waits too
            later_card = any(wants_card(later.what) for later in items[index + 1 :])
            if later_card and item.what != Change.CREATED:
                item.done.add("card")  # a later notification shows the newer card
            try:
                await self._send(item)
            except DeliveryDeferred as exc:
                delay = exc.retry_after if exc.retry_after is not None else self.backoff(item.attempts)
                log.warning(
                    "Slack did not take %s of request %s (%s); trying again in %gs", item.what, request_id, exc, delay
                )
                reason = str(exc)
                await self.store.run(lambda s: outbox.deferred(s, item.id, item.done, reason, delay))
                return False
            except Exception as exc:  # a bug must not lose the notification: keep it, back off
                log.exception("delivering %s of request %s failed", item.what, request_id)
                delay, reason = self.backoff(item.attempts), type(exc).__name__
                await self.store.run(lambda s: outbox.deferred(s, item.id, item.done, reason, delay))
                return False
            await self.store.run(lambda s: outbox.delivered(s, item.id, item.done))
        return True

    async def _send(self, item: OutboxItem) -> None:
        deliver = getattr(self.notifier, "deliver", None)
        if deliver is not None:
            await deliver(item)
        else:
            await self.notifier.notify(item.request, item.what, actor=item.actor, text=item.text)

    async def run_once(self, limit: int = 100) -> int:
        """Deliver every request with a notification due; the number of requests tried."""
        due = await self.store.run(lambda s: outbox.due_requests(s, self.clock(), limit))

        async def one(request_id: int) -> None:
            async with self._gate:
                await self.deliver(request_id)

        await asyncio.gather(*(one(r) for r in due))
        return len(due)

    async def waiting(self, request_id: int | None = None) -> int:
        if request_id is None:
            count, _, _ = await self.store.run(outbox.backlog)
            return count
        return len(await self.store.run(lambda s: outbox.pending_for(s, request_id)))


def wants_card(what: Change) -> bool:
    """Whether a notification changes the card (a reminder only adds a thread note)."""
    return what != Change.REMINDER
