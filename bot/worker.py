"""Drives approved requests to their outcome, and keeps time-driven duties.

One loop per process (``Worker.run``): it starts approved requests, drives the
operations in flight in the ``operations`` table (``intent`` → ``polling`` →
``done``), expires pending requests past their TTL and reminds approvers. It
wakes when the service kicks it (an approval) or when the next operation is
due, and at least every ``tick`` seconds.

Exactly once: the move ``approved → fulfilling`` is compare-and-set and
creates the operation row in the same transaction, so only one process ever
submits; a lease on the operation keeps two processes from driving it at once;
and the operation is marked ``submitting`` *before* the spending call is sent,
so after a crash the provider is asked (``recover``) instead of being called
again blindly.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from bot.domain.display import both
from bot.domain.errors import HoldExpired, NumbersError, OutcomeUnknown, ProviderError, ProviderUnavailable
from bot.domain.models import NumberRequest, Offer, Operation
from bot.domain.states import TERMINAL, State
from bot.providers.base import Done, Failed, InProgress, Job, Provider, ProviderPending, Requester, Step
from bot.services import WORKER_ACTOR, NumbersService, new_offer_id
from bot.store.db import process_identity

log = logging.getLogger(__name__)

LEASE_SECONDS = 120.0
MAX_SUBMITS = 3  # a provider that says "not received" after an unknown outcome may be asked again, boundedly
MAX_POLL_FAILURES = 30  # consecutive unreadable polls before a person must look
MAX_REFUSED = 6  # a spending call refused before acting (429, no connection) is sent again up to this often


class Worker:
    def __init__(
        self,
        service: NumbersService,
        *,
        poll_interval: float = 2.0,
        tick: float = 1.0,
        owner: str | None = None,
        housekeeping: bool = True,
    ):
        self.service = service
        self.store = service.store
        self.poll_interval = poll_interval
        self.tick = tick
        self.owner = owner or process_identity()
        self.housekeeping = housekeeping
        self._wake = asyncio.Event()
        self._busy: set[tuple[str, int]] = set()  # ("start", request id) / ("op", operation id) under way here
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False
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
        self._stopping = True
        self.kick()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def run_once(self) -> float:
        """One pass; returns how long to sleep before the next."""
        if self.housekeeping:
            await self.service.expire_due()
            await self.service.remind_due()
            await self.service.extend_holds()
        for request in self.store.approved_without_operation():
            if ("start", request.id) not in self._busy:
                self._spawn(("start", request.id), self.start(request.id))
        now = self.clock()
        wait = self.tick
        for op in self.store.open_operations():
            if ("op", op.id) in self._busy:
                continue
            due = (op.next_poll_at - now).total_seconds()
            if due <= 0:
                self._spawn(("op", op.id), self.drive(op.id))
            else:
                wait = min(wait, due)
        return wait

    def _spawn(self, key: tuple[str, int], coro: Any) -> None:
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

    async def drain(self, request_id: int, timeout: float = 300.0) -> NumberRequest:
        """Carry one request to a state the worker cannot move further (the CLI's ``approve``)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            request = self.service.get(request_id)
            if request.state in TERMINAL or request.state == State.PENDING:
                # Let notifications of the last step finish.
                if self._tasks:
                    await asyncio.gather(*list(self._tasks), return_exceptions=True)
                return self.service.get(request_id)
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
        )

    async def start(self, request_id: int) -> None:
        request = self.service.get(request_id)
        if request.state != State.APPROVED:
            return
        if request.kind == "purchase" and request.hold_expires_at and request.hold_expires_at <= self.clock():
            request = await self.rehold(request)
            if request is None:
                return
        lease_until = self.clock() + timedelta(seconds=LEASE_SECONDS)
        moved = self.store.transition(
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
                "lease_owner": self.owner,
                "lease_until": lease_until,
            },
        )
        if moved is None:
            return  # another process started it
        await self.service.tell(moved, "fulfilling")
        op = self.store.get_operation(moved.id, request.kind)
        if op is not None:
            self._busy.add(("op", op.id))
            try:
                await self.drive(op.id)
            finally:
                self._busy.discard(("op", op.id))

    async def rehold(self, request: NumberRequest) -> NumberRequest | None:
        """The ACS hold expired before approval: search again (SPEC.md "Holds").

        Same quantity at no more than the approved monthly cost → carry on with
        the new numbers (the card says which changed); otherwise back to
        ``pending`` with the new offer for a fresh approval.
        """
        svc = self.service
        gone = _why_searching_again(request.provider)
        offer = svc.offer(request.offer_id)
        provider = svc.provider(request.provider)
        try:
            drafts = await provider.search(offer.query)
        except ProviderUnavailable as exc:
            log.warning("re-search for request %s failed, will retry: %s", request.id, exc)
            return None
        except NumbersError as exc:
            moved = self.store.transition(
                request.id,
                State.APPROVED,
                State.FAILED,
                actor=WORKER_ACTOR,
                kind="failed",
                message=f"{gone.lower()} and the search again failed: {exc}",
                changes={"outcome": f"{gone} and searching again failed: {exc}"},
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
            self.store.save_offers(
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
            moved = self.store.update_request(
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
        moved = self.store.transition(
            request.id,
            State.APPROVED,
            State.PENDING,
            actor=WORKER_ACTOR,
            kind="reapproval",
            message=reason,
            changes=changes,
        )
        if moved is not None:
            await svc.tell(moved, "reapproval", text=reason)
        return None

    # --- driving an operation ---------------------------------------------

    async def drive(self, op_id: int) -> None:
        op = self.store.claim_operation(op_id, self.owner, LEASE_SECONDS)
        if op is None:
            return
        request = self.service.get(op.request_id)
        if request.state != State.FULFILLING:
            # The request already reached its outcome (another process finished it).
            self.store.update_operation(op.id, self.owner, phase="done", lease_owner=None, lease_until=None)
            return
        provider = self.service.provider(op.provider)
        job = self.job(request)
        try:
            if op.phase != "intent":
                step: Step | None = await provider.poll(job, op.ref)
            elif op.last_status in ("submitting", "unknown"):
                # We, or a process that died, may have sent it: ask before sending again.
                step = await recover(provider, job)
                if step is not None:
                    self.store.add_event(
                        job.request_id, WORKER_ACTOR, "recovered", f"{op.provider} already had it: {_describe(step)}"
                    )
                elif op.attempts >= MAX_SUBMITS:
                    await self._needs_attention(
                        op, request, f"{op.provider} kept saying it never received the {op.kind}"
                    )
                    return
                else:
                    step = await self._submit(op, job)
            else:
                step = await self._submit(op, job)
        except OutcomeUnknown as exc:
            await self._unknown(op, request, exc)
            return
        except ProviderUnavailable as exc:
            if "submit" in getattr(exc, "__notes__", []):
                # Refused before acting (throttled, or the connection never opened): nothing was
                # spent, so sending again later is safe; a provider that keeps refusing fails it.
                if op.attempts + 1 >= MAX_REFUSED:
                    await self._finish(op, request, Failed(f"{exc} (gave up after {op.attempts + 1} tries)"))
                    return
                self.store.update_operation(op.id, self.owner, last_status="refused")
            await self._later(op, str(exc), delay=exc.retry_after)
            return
        except HoldExpired as exc:
            await self._hold_ran_out(op, request, exc)
            return
        except ProviderError as exc:
            await self._finish(op, request, Failed(str(exc)))
            return
        if step is None:
            return
        await self._apply(op, request, step)

    async def _hold_ran_out(self, op: Operation, request: NumberRequest, exc: HoldExpired) -> None:
        """The hold expired before the provider took the purchase: nothing spent, so back to
        ``approved`` with the hold marked gone; ``start`` then searches again (SPEC.md "Holds")."""
        moved = self.store.transition(
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
            changes={"hold_expires_at": self.clock()},
            finish_operation=op.id,
        )
        if moved is not None:
            self.kick()

    async def _submit(self, op: Operation, job: Job) -> Step | None:
        """Send the spending call, having first recorded that we are about to."""
        if not self.store.update_operation(op.id, self.owner, last_status="submitting", attempts=op.attempts + 1):
            return None  # lost the lease
        self.store.add_event(job.request_id, WORKER_ACTOR, "submitted", f"{job.kind} sent to {op.provider}")
        try:
            return await send(self.service.provider(op.provider), job)
        except (OutcomeUnknown, ProviderUnavailable) as exc:
            exc.add_note("submit")
            raise

    async def _unknown(self, op: Operation, request: NumberRequest, exc: OutcomeUnknown) -> None:
        """Nobody can tell yet whether the provider acted.

        Straight after a submit: ask the provider on the next pass (now).
        When asking is what could not tell (Plivo cannot be asked): a person must look.
        """
        if "submit" in getattr(exc, "__notes__", []):
            self.store.update_operation(
                op.id, self.owner, last_status="unknown", next_poll_at=self.clock(), lease_owner=None, lease_until=None
            )
            self.kick()
            return
        await self._needs_attention(op, request, str(exc))

    async def _later(self, op: Operation, why: str, *, delay: float | None = None) -> None:
        failures = op.attempts + 1
        if delay is None:
            delay = min(60.0, self.poll_interval * (2 ** min(failures, 5)))
        if op.phase == "polling" and failures > MAX_POLL_FAILURES:
            request = self.service.get(op.request_id)
            await self._needs_attention(op, request, f"could not read the operation's status {failures} times: {why}")
            return
        changes: dict[str, Any] = {
            "next_poll_at": self.clock() + timedelta(seconds=delay),
            "lease_owner": None,
            "lease_until": None,
        }
        if op.phase == "polling":  # while polling, attempts counts reads that failed in a row
            changes["attempts"] = failures
        self.store.update_operation(op.id, self.owner, **changes)
        log.info("operation %s (request %s) later: %s", op.id, op.request_id, why)

    async def _apply(self, op: Operation, request: NumberRequest, step: Step) -> None:
        if isinstance(step, InProgress):
            delay = step.retry_after if step.retry_after is not None else self.poll_interval
            self.store.update_operation(
                op.id,
                self.owner,
                phase="polling",
                ref=step.ref,
                last_status="in progress",
                attempts=0,
                next_poll_at=self.clock() + timedelta(seconds=delay),
                lease_owner=None,
                lease_until=None,
            )
            self.kick()
            return
        await self._finish(op, request, step)

    async def _finish(self, op: Operation, request: NumberRequest, step: Step) -> None:
        """Record the provider's last word on the operation and tell people."""
        if isinstance(step, Done):
            note = step.note
            if request.kind == "release":
                number_id = request.ref["number_id"]
                also = lambda: self.store.mark_released(number_id, request.id)  # noqa: E731
            else:
                obtained = list(step.numbers)
                also = lambda: self.store.record_numbers(request, obtained)  # noqa: E731
            shown = ", ".join(both(n) for n in step.numbers)
            await self._end(
                op,
                request,
                State.FULFILLED,
                f"{_verb(request.kind)} {shown}" + (f" — {note}" if note else ""),
                text=note,
                # A partial rent costs only what was rented.
                changes={"numbers": step.numbers, "quantity": len(step.numbers) or request.quantity},
                data={"numbers": step.numbers, "failed_numbers": step.failed_numbers},
                also=also,
            )
        elif isinstance(step, ProviderPending):
            await self._end(
                op, request, State.PROVIDER_PENDING, f"{request.provider} is following up: {step.details}", text=step.details
            )
        elif isinstance(step, Failed):
            await self._end(op, request, State.FAILED, f"failed: {step.reason}", text=step.reason)
        else:  # pragma: no cover - Step is a closed union
            raise TypeError(step)

    async def _needs_attention(self, op: Operation, request: NumberRequest, why: str) -> None:
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
        moved = self.store.transition(
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
        )
        if moved is not None:
            await self.service.tell(moved, state.value, text=text)


async def send(provider: Provider, job: Job) -> Step:
    """The one call that spends (or, for a release, stops spending)."""
    if job.kind == "release":
        number = job.numbers[0]
        if "person_id" in job.ref:  # Webex: the number comes off the person it was assigned to
            return await provider.release(number, job.ref["person_id"])  # type: ignore[attr-defined]
        return await provider.release(number)  # type: ignore[attr-defined]
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
