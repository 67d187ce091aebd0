"""When the work happens: one loop per process, scheduling what ``bot.services`` does.

``Worker.run`` wakes when the service kicks it (an approval) or when the next
operation is due, and at least every ``tick`` seconds. Each pass runs the
time-driven duties (expiry, reminders, provider holds), starts approved
requests, drives the operations in flight that are due, and triggers a pass of
the outbox. How a request is fulfilled — the compare-and-set that creates the
operation, the lease, submit/poll/recover and what is recorded — is
``bot.services.fulfilling``; this module decides only when.

Leases: a drive's lease is renewed by a heartbeat every quarter of
``lease_seconds`` while a slow provider call is under way. ``stop()`` lets
drives under way record their answers (at most ``stop_grace`` seconds) and
flushes the outbox before the process exits.

Time: when to poll is kept on the monotonic clock in process; the stored
``next_poll_at`` is read once per value and re-based, so a wall-clock step
neither stalls polling nor makes it spin.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta
from typing import Any, Awaitable, Callable

from bot.domain.errors import StoreBusy
from bot.domain.requests import NumberRequest, Operation
from bot.domain.states import TERMINAL, State
from bot.services import NumbersService
from bot.services.fulfilling import Drive, Fulfilment

log = logging.getLogger(__name__)

LEASE_SECONDS = 120.0  # the default of NUMBERS_LEASE_SECONDS; a drive renews its lease every quarter of it
MAX_WAIT = 300.0  # the longest a stored poll time is trusted into the future when re-based
STOP_GRACE = 20.0  # stop() waits this long for drives under way to record their answers
FLUSH_GRACE = 3.0  # seconds stop spends sending what the outbox holds before the store closes


class Worker:
    def __init__(
        self,
        service: NumbersService,
        *,
        poll_interval: float = 2.0,
        tick: float = 1.0,
        owner: str | None = None,
        housekeeping: bool = True,
        monotonic: Callable[[], float] = time.monotonic,
        stop_grace: float = STOP_GRACE,
        lease_seconds: float = LEASE_SECONDS,
    ):
        self.service = service
        self.poll_interval = poll_interval
        self.tick = tick
        self.owner = owner or "worker"  # names this worker in its logs
        self.housekeeping = housekeeping
        self.monotonic = monotonic
        self.stop_grace = stop_grace
        # How long a drive's lease lasts without a heartbeat: how soon another replica takes over
        # the operations of one that died (NUMBERS_LEASE_SECONDS).
        self.lease_seconds = lease_seconds
        self.fulfilment = Fulfilment(service, self, poll_interval=poll_interval, lease_seconds=lease_seconds)
        self._wake = asyncio.Event()
        self._busy: set[tuple[str, int]] = set()  # ("start", request id) / ("op", operation id) under way here
        self._tasks: set[asyncio.Task[Any]] = set()
        self._due: dict[int, tuple[datetime, float]] = {}  # op id → (stored next_poll_at, monotonic due)
        self._stopping = False
        self._outbox_pass: asyncio.Task[Any] | None = None
        service.on_work(self.kick)

    def kick(self) -> None:
        self._wake.set()

    def clock(self) -> datetime:
        return self.service.clock()

    # --- the loop ---------------------------------------------------------

    async def run(self) -> None:
        """Run until cancelled or ``stop()``."""
        while not self._stopping:
            # Cleared before the pass, so a kick during it (an approval, an operation's next
            # poll time just written) wakes the next pass at once instead of being lost.
            self._wake.clear()
            try:
                wait = await self.run_once()
            except Exception:
                log.exception("%s: pass failed; trying again", self.owner)
                wait = self.tick
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=max(0.01, wait))
            except asyncio.TimeoutError:
                pass

    async def stop(self) -> None:
        """Start nothing new; let drives under way finish recording (at most ``stop_grace``
        seconds), then cancel what is left. An operation cut off here is taken up again
        after a restart by asking the provider, never by sending again."""
        self._stopping = True
        self.kick()
        if self._outbox_pass is not None:
            # A background pass may be waiting out Slack's pacing for minutes: its rows are kept
            # in the store, so it stops now and the bounded flush below sends what it can.
            self._outbox_pass.cancel()
        if self.service.sender is not None:
            await self.service.sender.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=self.stop_grace)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.flush_outbox(min(self.stop_grace, FLUSH_GRACE))

    async def flush_outbox(self, timeout: float) -> None:
        """Send what the outbox holds that is due, for at most ``timeout`` seconds (on stop,
        before the store and clients close); what is left waits for the next start."""
        sender = self.service.sender
        if sender is None:
            return
        try:
            await asyncio.wait_for(sender.run_once(), timeout=timeout)
        except asyncio.TimeoutError:
            log.warning("stopped with notifications still waiting for Slack; they go at the next start")
        except Exception as exc:  # the store going away must not stop the shutdown: the rows stay for the next start
            log.warning("could not flush the outbox on stop (%s); what waits goes at the next start", type(exc).__name__)

    async def run_once(self) -> float:
        """One pass; returns how long to sleep before the next."""
        if self._stopping:
            return self.tick
        if self.housekeeping:
            await self.service.expire_due()
            await self.service.remind_due()
            await self.service.extend_holds()
        for request in await self.fulfilment.ready():
            if ("start", request.id) not in self._busy:
                self._spawn(("start", request.id), self.start(request.id))
        wait = self.tick
        open_ids = set()
        for op in await self.fulfilment.in_flight():
            open_ids.add(op.id)
            if ("op", op.id) in self._busy:
                continue
            due = self._seconds_until(op)
            if due <= 0:
                self._spawn(("op", op.id), self.drive(op.id))
            else:
                wait = min(wait, due)
        for gone in set(self._due) - open_ids:
            del self._due[gone]
        sender = self.service.sender
        if sender is not None and ("outbox", 0) not in self._busy:
            # Notices written by another process (the CLI) or waiting out a Slack failure.
            self._outbox_pass = self._spawn(("outbox", 0), sender.run_once())
        return wait

    def _seconds_until(self, op: Operation) -> float:
        """When ``op`` is due, on the monotonic clock: a stored time is re-based once, when first
        seen (or changed by another process), and bounded, so wall-clock steps do not move it."""
        seen = self._due.get(op.id)
        if seen is None or seen[0] != op.next_poll_at:
            ahead = (op.next_poll_at - self.clock()).total_seconds()
            seen = (op.next_poll_at, self.monotonic() + min(max(ahead, 0.0), MAX_WAIT))
            self._due[op.id] = seen
        return seen[1] - self.monotonic()

    def schedule(self, op_id: int, delay: float) -> datetime:
        """Remember when to poll next (monotonic) and return the wall time to store beside it."""
        at = self.clock() + timedelta(seconds=delay)
        self._due[op_id] = (at, self.monotonic() + delay)
        return at

    def _spawn(self, key: tuple[str, int], coro: Any) -> asyncio.Task[Any]:
        self._busy.add(key)
        task = asyncio.create_task(coro)
        self._tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            self._busy.discard(key)
            if not t.cancelled() and t.exception() is not None:
                log.error("worker task %s failed", key, exc_info=t.exception())
            self.kick()

        task.add_done_callback(done)
        return task

    async def drain(self, request_id: int, timeout: float = 300.0) -> NumberRequest:
        """Carry one request to a state the worker cannot move further (the CLI's ``approve``)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            request = await self.service.get(request_id)
            if request.state in TERMINAL or request.state == State.PENDING:
                # Let notifications of the last step finish.
                if self._tasks:
                    await asyncio.gather(*list(self._tasks), return_exceptions=True)
                if self.service.sender is not None:
                    await self.service.sender.deliver(request_id)
                return await self.service.get(request_id)
            if asyncio.get_running_loop().time() > deadline:
                return request
            wait = await self.run_once()
            if self._tasks:
                done, _ = await asyncio.wait(list(self._tasks), timeout=wait, return_when=asyncio.FIRST_COMPLETED)
                if not done:
                    continue
            else:
                await asyncio.sleep(min(wait, self.poll_interval))

    # --- drives ----------------------------------------------------------------

    async def start(self, request_id: int) -> None:
        """Start an approved request and drive its operation's first step."""
        drive = await self.fulfilment.begin(request_id)
        if drive is None:
            return
        self._busy.add(("op", drive.op.id))
        try:
            await self._holding(drive, self._announce_then_drive(drive))
        finally:
            self._busy.discard(("op", drive.op.id))

    async def _announce_then_drive(self, drive: Drive) -> None:
        await self.fulfilment.announce(drive)
        await self.fulfilment.drive(drive)

    async def drive(self, op_id: int) -> None:
        """Claim the operation for this drive, or leave it to whoever holds it."""
        drive = await self.fulfilment.claim(op_id)
        if drive is None:
            return
        await self._holding(drive, self.fulfilment.drive(drive))

    async def _holding(self, drive: Drive, work: Awaitable[None]) -> None:
        """Run ``work`` while a heartbeat keeps the lease on the drive's operation."""
        heartbeat = asyncio.create_task(self._heartbeat(drive))
        try:
            await work
        finally:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)

    async def _heartbeat(self, drive: Drive) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 4)
            try:
                if not await self.fulfilment.renew(drive):
                    return  # finished, or taken over: nothing left to keep
            except StoreBusy:
                continue  # the lease is long; the next beat tries again


__all__ = ["Worker", "LEASE_SECONDS"]
