"""Drives approved requests to their outcome, and keeps time-driven duties.

One loop per process (``Worker.run``): it starts approved requests, drives the
operations in flight in the ``operations`` table (``intent`` → ``polling`` →
``done``), expires pending requests past their TTL and reminds approvers. It
wakes when the service kicks it (an approval) or when the next operation is
due, and at least every ``tick`` seconds.

Exactly once: the move ``approved → fulfilling`` is compare-and-set and
creates the operation row in the same transaction, so only one process ever
submits. Each drive of an operation holds its lease under a name of its own
(``host:pid:token``): a second drive, in this process or another, finds it
taken until the lease runs out or its process is gone, and a heartbeat keeps
the lease while a slow provider call is under way. The operation is marked
``submitting`` *before* the spending call is sent, so after a crash the
provider is asked (``recover``) instead of being called again blindly.

After a spending call may have been accepted, only the provider's own word
ends the request: unreadable polls (4xx included), unknown operations and lost
connections are retried with back-off and end in ``needs_attention`` — never
``failed`` — when the provider still cannot be read. An answer received is
recorded even if the store fails the first write, and ``stop()`` lets drives
under way record their answers before the process exits.

Time: when to poll is kept on the monotonic clock in process; the stored
``next_poll_at`` is read once per value and re-based, so a wall-clock step
neither stalls polling nor makes it spin.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable, TypeVar

from bot.domain.display import both
from bot.domain.errors import HoldExpired, NumbersError, OutcomeUnknown, ProviderError, ProviderUnavailable, StoreBusy
from bot.domain.models import NumberRequest, Offer, Operation
from bot.domain.states import TERMINAL, State
from bot.providers.base import (
    Done,
    Failed,
    InProgress,
    Job,
    Provider,
    ProviderPending,
    Requester,
    Step,
    submit_audit_data,
)
from bot.services import WORKER_ACTOR, NumbersService, new_offer_id
from bot.store.connection import drive_identity, process_identity
from bot.store.outbox import Notice

log = logging.getLogger(__name__)

T = TypeVar("T")

LEASE_SECONDS = 120.0  # the default of NUMBERS_LEASE_SECONDS; a drive renews its lease every quarter of it
MAX_WAIT = 300.0  # the longest a stored poll time is trusted into the future when re-based
STOP_GRACE = 20.0  # stop() waits this long for drives under way to record their answers
RECORD_TRIES = 12  # a provider's answer is written this many times (with back-off) before giving up
HOLD_GONE = datetime(1970, 1, 1, tzinfo=timezone.utc)  # "the hold is gone", whatever the local clock says
MAX_SUBMITS = 3  # a provider that says "not received" after an unknown outcome may be asked again, boundedly
MAX_POLL_FAILURES = 30  # consecutive unreadable polls before a person must look
MAX_REFUSED = 6  # a spending call refused before acting (429, no connection) is sent again up to this often


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
        self.store = service.store
        self.poll_interval = poll_interval
        self.tick = tick
        self.owner = owner or process_identity()
        self.housekeeping = housekeeping
        self.monotonic = monotonic
        self.stop_grace = stop_grace
        # How long a drive's lease lasts without a heartbeat: how soon another replica takes over
        # the operations of one that died (NUMBERS_LEASE_SECONDS).
        self.lease_seconds = lease_seconds
        self.record_delays: tuple[float, ...] = (0.05, 0.1, 0.2, 0.5, 1, 1, 2, 2, 5, 5, 5)
        self._wake = asyncio.Event()
        self._busy: set[tuple[str, int]] = set()  # ("start", request id) / ("op", operation id) under way here
        self._tasks: set[asyncio.Task[Any]] = set()
        self._due: dict[int, tuple[datetime, float]] = {}  # op id → (stored next_poll_at, monotonic due)
        self._stopping = False
        self._outbox_pass: asyncio.Task[Any] | None = None
        service.on_work(self.kick)

    def kick(self) -> None:
        self._wake.set()

    @property
    def clock(self):
        return self.service.clock

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
                log.exception("worker pass failed; trying again")
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
        for request in await self.store.approved_without_operation():
            if ("start", request.id) not in self._busy:
                self._spawn(("start", request.id), self.start(request.id))
        wait = self.tick
        open_ids = set()
        for op in await self.store.open_operations():
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

    def _schedule(self, op_id: int, delay: float) -> datetime:
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

    # --- starting an approved request ---------------------------------------

    def job(self, request: NumberRequest) -> Job:
        return Job(
            request_id=request.id,
            provider=request.provider,
            kind=request.kind,
            ref=request.ref,
            quantity=request.quantity,
            numbers=request.numbers,
            requester=Requester(user_id=request.requester, email=request.requester_email),
            approved_by=list(request.approvals) or [a for a in [request.decided_by] if a],
        )

    async def start(self, request_id: int) -> None:
        request: NumberRequest | None = await self.service.get(request_id)
        if request is None or request.state != State.APPROVED:
            return
        if request.kind == "purchase" and request.hold_expires_at and request.hold_expires_at <= self.clock():
            request = await self.rehold(request)
            if request is None:
                return
        # The claim is made with the move itself: the operation row is born leased to this drive.
        token = drive_identity()
        moved = await self.store.transition(
            request.id,
            State.APPROVED,
            State.FULFILLING,
            actor=WORKER_ACTOR,
            kind="fulfilling",
            message=f"sending the {request.kind} to {request.provider}",
            operation={
                "provider": request.provider,
                "kind": request.kind,
                "phase": "intent",
                "lease_owner": token,
                "lease_until": self.clock() + timedelta(seconds=self.lease_seconds),
            },
            notify=Notice("fulfilling"),
        )
        if moved is None:
            return  # another process started it
        op = await self.store.get_operation(moved.id, request.kind)
        if op is None:  # pragma: no cover - the transition created it
            return
        self._busy.add(("op", op.id))
        try:
            await self._holding(op, token, self._tell_then_drive(moved, op, token))
        finally:
            self._busy.discard(("op", op.id))

    async def _tell_then_drive(self, moved: NumberRequest, op: Operation, token: str) -> None:
        await self.service.tell(moved, "fulfilling")
        await self._drive(op, token)

    async def rehold(self, request: NumberRequest) -> NumberRequest | None:
        """The ACS hold expired before approval: search again (SPEC.md "Holds").

        Same quantity at no more than the approved monthly cost → carry on with
        the new numbers (the card says which changed); otherwise back to
        ``pending`` with the new offer for a fresh approval.
        """
        svc = self.service
        gone = _why_searching_again(request.provider)
        offer = await svc.offer(request.offer_id)
        provider = svc.provider(request.provider)
        try:
            drafts = await provider.search(offer.query)
        except ProviderUnavailable as exc:
            log.warning("re-search for request %s failed, will retry: %s", request.id, exc)
            return None
        except NumbersError as exc:
            moved = await self.store.transition(
                request.id,
                State.APPROVED,
                State.FAILED,
                actor=WORKER_ACTOR,
                kind="failed",
                message=f"{gone.lower()} and the search again failed: {exc}",
                changes={"outcome": f"{gone} and searching again failed: {exc}"},
                notify=Notice("failed", text=str(exc)),
            )
            if moved:
                await svc.tell(moved, "failed", text=str(exc))
            return None
        now = self.clock()
        fresh = [
            Offer.from_draft(new_offer_id(), d, offer.query, WORKER_ACTOR, now) for d in drafts if d.quantity >= 1
        ]
        approved_unit = request.unit_monthly_cost
        good = [
            o
            for o in fresh
            if o.quantity == request.quantity
            and (approved_unit is None or (o.unit_monthly_cost is not None and o.unit_monthly_cost <= approved_unit))
        ]
        if fresh:
            await self.store.save_offers(
                fresh,
                actor=WORKER_ACTOR,
                message=f"searched again for request #{request.id}: {gone.lower()}",
                data={"request": request.id, "offers": [o.id for o in fresh]},
            )
        if good:
            new = good[0]
            changed = sorted(set(new.numbers) ^ set(request.numbers))
            note = (
                f"{gone}; searched again and got the same numbers."
                if not changed
                else f"{gone}; searched again. Numbers now: "
                + ", ".join(both(n) for n in new.numbers)
                + " (was "
                + ", ".join(both(n) for n in request.numbers)
                + ")."
            )
            moved = await self.store.update_request(
                request.id,
                expect_state=State.APPROVED,
                changes={
                    "offer_id": new.id,
                    "numbers": new.numbers,
                    "ref": {**request.ref, **new.ref},
                    "hold_expires_at": new.expires_at,
                    "unit_monthly_cost": new.unit_monthly_cost,
                    "outcome": note,
                },
                event=(WORKER_ACTOR, "rehold", note, {"old": request.numbers, "new": new.numbers, "offer": new.id}),
                notify=Notice("numbers_changed", text=note) if changed else None,
            )
            if moved is not None and changed:
                await svc.tell(moved, "numbers_changed", text=note)
            return moved
        best = fresh[0] if fresh else None
        if best is None:
            reason = f"{gone} and searching again found no numbers; the request needs a new approval once numbers are found."
            changes: dict[str, Any] = {"outcome": reason, "approvals": [], "decided_by": None, "decided_at": None}
        else:
            reason = (
                f"{gone} and the new search found {best.quantity} number(s) at "
                f"{best.unit_monthly_cost if best.unit_monthly_cost is not None else 'unknown cost'} {best.currency}/month each "
                f"(approved: {request.quantity} at {approved_unit}); it needs a fresh approval."
            )
            changes = {
                "offer_id": best.id,
                "numbers": best.numbers,
                "quantity": best.quantity,
                "ref": {**request.ref, **best.ref},
                "hold_expires_at": best.expires_at,
                "unit_monthly_cost": best.unit_monthly_cost,
                "unit_setup_cost": best.unit_setup_cost,
                "approvals": [],
                "decided_by": None,
                "decided_at": None,
                "outcome": reason,
                "expires_at": now + timedelta(seconds=svc.request_ttl),
            }
        moved = await self.store.transition(
            request.id,
            State.APPROVED,
            State.PENDING,
            actor=WORKER_ACTOR,
            kind="reapproval",
            message=reason,
            changes=changes,
            notify=Notice("reapproval", text=reason),
        )
        if moved is not None:
            await svc.tell(moved, "reapproval", text=reason)
        return None

    # --- driving an operation ---------------------------------------------

    async def drive(self, op_id: int) -> None:
        """Claim the operation for this drive, or leave it to whoever holds it."""
        token = drive_identity()
        op = await self.store.claim_operation(op_id, token, self.lease_seconds)
        if op is None:
            return
        await self._holding(op, token, self._drive(op, token))

    async def _holding(self, op: Operation, token: str, work: Awaitable[None]) -> None:
        """Run ``work`` while a heartbeat keeps the lease on ``op``."""
        heartbeat = asyncio.create_task(self._heartbeat(op.id, token))
        try:
            await work
        finally:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)

    async def _heartbeat(self, op_id: int, token: str) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 4)
            try:
                if not await self.store.renew_lease(op_id, token, self.lease_seconds):
                    return  # finished, or taken over: nothing left to keep
            except StoreBusy:
                continue  # the lease is long; the next beat tries again

    async def _drive(self, op: Operation, token: str) -> None:
        request = await self.service.get(op.request_id)
        if request.state != State.FULFILLING:
            # The request already reached its outcome (another process finished it).
            await self.store.update_operation(op.id, token, phase="done", lease_owner=None, lease_until=None)
            return
        provider = self.service.provider(op.provider)
        job = self.job(request)
        # From here on, the provider may have acted unless this drive is about to send for the first time.
        may_have_acted = op.phase != "intent" or op.last_status in ("submitting", "unknown")
        try:
            if op.phase != "intent":
                step: Step | None = await provider.poll(job, op.ref)
            elif op.last_status in ("submitting", "unknown"):
                # We, or a process that died, may have sent it: ask before sending again.
                step = await recover(provider, job)
                if step is not None:
                    await self.store.add_event(
                        job.request_id, WORKER_ACTOR, "recovered", f"{op.provider} already had it: {_describe(step)}"
                    )
                elif op.attempts >= MAX_SUBMITS:
                    await self._needs_attention(
                        op, token, request, f"{op.provider} kept saying it never received the {op.kind}"
                    )
                    return
                else:
                    may_have_acted = False
                    step = await self._submit(op, token, job)
            else:
                step = await self._submit(op, token, job)
        except OutcomeUnknown as exc:
            await self._unknown(op, token, request, exc)
            return
        except HoldExpired as exc:
            await self._hold_ran_out(op, token, request, exc)
            return
        except ProviderError as exc:
            if may_have_acted:
                # A read failed (4xx included: a stale signature, a rotated key, an operation the
                # provider lost): not the provider's word on the purchase. Ask again later.
                await self._later(op, token, str(exc), delay=exc.retry_after, reading=True)
            elif isinstance(exc, ProviderUnavailable):
                await self._refused_before_acting(op, token, request, exc)
            else:
                await self._finish(op, token, request, Failed(str(exc)))
            return
        if step is None:
            return
        await self._apply(op, token, request, step)

    async def _refused_before_acting(
        self, op: Operation, token: str, request: NumberRequest, exc: ProviderUnavailable
    ) -> None:
        """Throttled, or the connection never opened: nothing was spent, so sending again later
        is safe; a provider that keeps refusing fails the request."""
        if op.attempts + 1 >= MAX_REFUSED:
            await self._finish(op, token, request, Failed(f"{exc} (gave up after {op.attempts + 1} tries)"))
            return
        await self.store.update_operation(op.id, token, last_status="refused")
        await self._later(op, token, str(exc), delay=exc.retry_after)

    async def _hold_ran_out(self, op: Operation, token: str, request: NumberRequest, exc: HoldExpired) -> None:
        """The hold expired before the provider took the purchase: nothing spent, so back to
        ``approved`` with the hold marked gone; ``start`` then searches again (SPEC.md "Holds").

        The hold is marked gone outright rather than "expired now": with the local clock behind
        the provider's, "now" could still be before the hold's end and the search would not run."""
        moved = await self._record(
            lambda: self.store.transition(
                request.id,
                State.FULFILLING,
                State.APPROVED,
                actor=WORKER_ACTOR,
                kind="hold_expired",
                message=(
                    f"{_why_searching_again(request.provider).lower()}; searching again ({exc.message})"
                    if request.provider == "twilio"
                    else f"the hold ran out before the purchase was taken; searching again ({exc.message})"
                ),
                changes={"hold_expires_at": HOLD_GONE},
                finish_operation=op.id,
            )
        )
        if moved is not None:
            self.kick()

    async def _submit(self, op: Operation, token: str, job: Job) -> Step | None:
        """Send the spending call, having first recorded that we are about to."""
        if not await self.store.update_operation(op.id, token, last_status="submitting", attempts=op.attempts + 1):
            return None  # lost the lease
        await self.store.add_event(
            job.request_id, WORKER_ACTOR, "submitted", f"{job.kind} sent to {op.provider}", submit_audit_data(job)
        )
        try:
            return await send(self.service.provider(op.provider), job)
        except (OutcomeUnknown, ProviderUnavailable) as exc:
            exc.add_note("submit")
            raise

    async def _unknown(self, op: Operation, token: str, request: NumberRequest, exc: OutcomeUnknown) -> None:
        """Nobody can tell yet whether the provider acted.

        Straight after a submit: ask the provider on the next pass (now).
        When asking is what could not tell (Plivo's group API cannot be asked): a person must look.
        """
        if "submit" in getattr(exc, "__notes__", []):
            await self._record(
                lambda: self.store.update_operation(
                    op.id,
                    token,
                    last_status="unknown",
                    next_poll_at=self._schedule(op.id, 0),
                    lease_owner=None,
                    lease_until=None,
                )
            )
            self.kick()
            return
        await self._needs_attention(op, token, request, str(exc))

    async def _later(
        self, op: Operation, token: str, why: str, *, delay: float | None = None, reading: bool = False
    ) -> None:
        """Try again after a back-off. While the provider may have acted (``reading``), ``attempts``
        counts the reads that failed in a row, and too many of them hand the request to a person."""
        failures = op.attempts + 1
        if delay is None:
            delay = min(60.0, self.poll_interval * (2 ** min(failures, 5)))
        if reading and failures > MAX_POLL_FAILURES:
            request = await self.service.get(op.request_id)
            await self._needs_attention(
                op,
                token,
                request,
                f"{op.provider} may have acted, but its answer could not be read {failures} times in a row "
                f"(last: {why}); check the account before doing anything else",
            )
            return
        changes: dict[str, Any] = {
            "next_poll_at": self._schedule(op.id, delay),
            "lease_owner": None,
            "lease_until": None,
        }
        if reading:
            changes["attempts"] = failures
        await self._record(lambda: self.store.update_operation(op.id, token, **changes))
        log.info("operation %s (request %s) later: %s", op.id, op.request_id, why)

    async def _apply(self, op: Operation, token: str, request: NumberRequest, step: Step) -> None:
        if isinstance(step, InProgress):
            delay = step.retry_after if step.retry_after is not None else self.poll_interval
            await self._record(
                lambda: self.store.update_operation(
                    op.id,
                    token,
                    phase="polling",
                    ref=step.ref,
                    last_status="in progress",
                    attempts=0,
                    next_poll_at=self._schedule(op.id, delay),
                    lease_owner=None,
                    lease_until=None,
                )
            )
            self.kick()
            return
        await self._finish(op, token, request, step)

    async def _finish(self, op: Operation, token: str, request: NumberRequest, step: Step) -> None:
        """Record the provider's last word on the operation and tell people."""
        if isinstance(step, Done):
            await self._done(op, token, request, step)
        elif isinstance(step, ProviderPending):
            await self._end(
                op, request, State.PROVIDER_PENDING, f"{request.provider} is following up: {step.details}", text=step.details
            )
        elif isinstance(step, Failed):
            await self._end(op, request, State.FAILED, f"failed: {step.reason}", text=step.reason)
        else:  # pragma: no cover - Step is a closed union
            raise TypeError(step)

    async def _done(self, op: Operation, token: str, request: NumberRequest, step: Done) -> None:
        """The provider did it. What it delivered is recorded as it is: each distinct number once,
        and more than was approved (or one number twice) goes to a person with the numbers."""
        note = step.note
        distinct = list(dict.fromkeys(step.numbers))
        shown = ", ".join(both(n) for n in distinct)
        if request.kind == "release":
            number_id = request.ref["number_id"]
            also: Callable[[Any], None] = lambda store: store.mark_released(number_id, request.id)  # noqa: E731
        else:
            also = lambda store: store.record_numbers(request, distinct)  # noqa: E731
        data = {"numbers": step.numbers, "failed_numbers": step.failed_numbers}
        over = request.kind != "release" and (len(distinct) > request.quantity or len(distinct) < len(step.numbers))
        if over:
            why = (
                f"{request.provider} delivered {len(step.numbers)} number(s) for {request.quantity} approved"
                + (" (some twice)" if len(distinct) < len(step.numbers) else "")
                + f": {shown}. All are recorded in the inventory; release what is not wanted."
            )
            await self._end(
                op, request, State.NEEDS_ATTENTION, f"needs a person: {why}", text=why,
                changes={"numbers": distinct, "quantity": len(distinct)}, data=data, also=also,
            )
            return
        await self._end(
            op,
            request,
            State.FULFILLED,
            f"{_verb(request.kind)} {shown}" + (f" — {note}" if note else ""),
            text=note,
            # A partial rent costs only what was rented.
            changes={"numbers": distinct, "quantity": len(distinct) or request.quantity},
            data=data,
            also=also,
        )

    async def _needs_attention(self, op: Operation, token: str, request: NumberRequest, why: str) -> None:
        await self._end(op, request, State.NEEDS_ATTENTION, f"needs a person: {why}", text=why)

    async def _end(
        self,
        op: Operation,
        request: NumberRequest,
        state: State,
        message: str,
        *,
        text: str | None,
        changes: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        also: Any = None,
    ) -> None:
        """``fulfilling → state``, the operation closed and the outcome kept, in one commit; then notify."""
        moved = await self._record(
            lambda: self.store.transition(
                request.id,
                State.FULFILLING,
                state,
                actor=WORKER_ACTOR,
                kind=state.value,
                message=message,
                data=data,
                changes={"outcome": text, **(changes or {})},
                finish_operation=op.id,
                also=also,
                notify=Notice(state.value, text=text),
            )
        )
        if moved is not None:
            await self.service.tell(moved, state.value, text=text)

    async def _record(self, write: Callable[[], Awaitable[T]]) -> T:
        """Write what a provider said, trying again while the store cannot take it (locked, disk
        full): the answer exists only in this process until it is written."""
        for delay in (*self.record_delays, None):
            try:
                return await write()
            except (StoreBusy, sqlite3.OperationalError) as exc:
                if delay is None:
                    raise
                log.warning("could not record a provider's answer (%s); trying again in %gs", exc, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover


async def send(provider: Provider, job: Job) -> Step:
    """The one call that spends (or, for a release, stops spending)."""
    if job.kind == "release":
        return await provider.release(job.numbers[0], job.ref)
    return await provider.submit(job)


async def recover(provider: Provider, job: Job) -> Step | None:
    """After a crash or an unknown outcome: has the provider already acted?

    Releases are safe to send again: every adapter answers a release of a
    number the account no longer has as done (nothing is spent twice).
    """
    if job.kind == "release":
        return None
    return await provider.recover(job)


def _why_searching_again(provider: str) -> str:
    """The card's words for why the numbers may change: Twilio has no hold to expire."""
    if provider == "twilio":
        return "A number was bought by someone else before the purchase (Twilio holds none)"
    return "The hold expired"


def _verb(kind: str) -> str:
    return {"purchase": "purchased", "rent": "rented", "assign": "assigned", "release": "released"}.get(kind, kind)


def _describe(step: Step) -> str:
    if isinstance(step, Done):
        return "done: " + ", ".join(step.numbers)
    if isinstance(step, InProgress):
        return "in progress"
    if isinstance(step, Failed):
        return "failed: " + step.reason
    return "pending at the provider: " + step.details


__all__ = ["Worker", "LEASE_SECONDS"]
