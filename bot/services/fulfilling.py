"""Fulfilling an approved request: the provider operation that spends, driven to its outcome.

The worker decides *when* (``bot/worker.py``); this module is *how*:

* ``begin`` moves ``approved → fulfilling`` as a compare-and-set that creates
  the operation row in the same transaction, born leased to this drive, so only
  one process ever submits (searching again first when the hold ran out).
* ``claim`` takes the lease on an operation in flight (``host:pid:token``); a
  second drive, in this process or another, finds it taken until the lease
  runs out or its process is gone. ``renew`` is the heartbeat's write.
* ``drive`` sends, polls or recovers once and records the answer. The
  operation is marked ``submitting`` *before* the spending call is sent, so
  after a crash the provider is asked (``recover``) instead of being called
  again blindly.

After a spending call may have been accepted, only the provider's own word
ends the request: unreadable polls (4xx included), unknown operations and lost
connections are retried with back-off and end in ``needs_attention`` — never
``failed`` — when the provider still cannot be read. An answer received is
recorded even if the store fails the first write (``Outcomes._record``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bot.domain.errors import HoldExpired, OutcomeUnknown, ProviderError, ProviderUnavailable
from bot.domain.kinds import Change, Kind, Phase
from bot.domain.requests import NumberRequest, Operation
from bot.domain.states import State
from bot.domain.steps import Done, Failed, InProgress, Job, Requester, Step, submit_audit_data
from bot.ports import Provider
from bot.services.core import WORKER_ACTOR, ServiceCore
from bot.services.outcomes import Pacer
from bot.services.search_again import SearchAgain
from bot.store.connection import drive_identity
from bot.store.outbox import Notice

__all__ = ["Fulfilment", "Drive", "Pacer", "MAX_SUBMITS", "MAX_POLL_FAILURES", "MAX_REFUSED"]

log = logging.getLogger(__name__)

MAX_SUBMITS = 3  # a provider that says "not received" after an unknown outcome may be asked again, boundedly
MAX_POLL_FAILURES = 30  # consecutive unreadable polls before a person must look
MAX_REFUSED = 6  # a spending call refused before acting (429, no connection) is sent again up to this often


@dataclass
class Drive:
    """One drive's hold on an operation: the operation as claimed and the lease holder's name."""

    op: Operation
    token: str
    request: NumberRequest | None = None  # as moved to ``fulfilling`` by ``begin`` (None after ``claim``)


def job_for(request: NumberRequest) -> Job:
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


class Fulfilment(SearchAgain):
    def __init__(self, service: ServiceCore, pacer: Pacer, *, poll_interval: float, lease_seconds: float):
        super().__init__(service, pacer)
        self.poll_interval = poll_interval
        self.lease_seconds = lease_seconds

    # --- what there is to do ----------------------------------------------------

    async def ready(self) -> list[NumberRequest]:
        """Approved requests no operation has started yet."""
        return await self.store.approved_without_operation()

    async def in_flight(self) -> list[Operation]:
        return await self.store.open_operations()

    # --- taking an operation on -----------------------------------------------------

    async def begin(self, request_id: int) -> Drive | None:
        """Start an approved request: the claim is made with the move itself. None when it is not
        approved any more, went back for approval after a search again, or another process started it."""
        request: NumberRequest | None = await self.service.get(request_id)
        if request is None or request.state != State.APPROVED:
            return None
        if request.kind == Kind.PURCHASE and request.hold_expires_at and request.hold_expires_at <= self.service.clock():
            request = await self.rehold(request)
            if request is None:
                return None
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
                "phase": Phase.INTENT,
                "lease_owner": token,
                "lease_until": self.service.clock() + timedelta(seconds=self.lease_seconds),
            },
            notify=Notice(Change.FULFILLING),
        )
        if moved is None:
            return None  # another process started it
        op = await self.store.get_operation(moved.id, request.kind)
        if op is None:  # pragma: no cover - the transition created it
            return None
        return Drive(op, token, moved)

    async def announce(self, drive: Drive) -> None:
        """Tell people the request is being fulfilled (after ``begin``)."""
        if drive.request is not None:
            await self.service.tell(drive.request, Change.FULFILLING)

    async def claim(self, op_id: int) -> Drive | None:
        """Claim the operation for a drive, or None when another holds it."""
        token = drive_identity()
        op = await self.store.claim_operation(op_id, token, self.lease_seconds)
        return Drive(op, token) if op is not None else None

    async def renew(self, drive: Drive) -> bool:
        """Keep the lease; False when the operation finished or another drive took it over."""
        return await self.store.renew_lease(drive.op.id, drive.token, self.lease_seconds)

    # --- one drive ----------------------------------------------------------------

    async def drive(self, drive: Drive) -> None:
        """Send, poll or recover once, and record what the provider said."""
        op, token = drive.op, drive.token
        request = await self.service.get(op.request_id)
        if request.state != State.FULFILLING:
            # The request already reached its outcome (another process finished it).
            await self.store.update_operation(op.id, token, phase=Phase.DONE, lease_owner=None, lease_until=None)
            return
        provider = self.service.provider(op.provider)
        job = job_for(request)
        # From here on, the provider may have acted unless this drive is about to send for the first time.
        may_have_acted = op.phase != Phase.INTENT or op.last_status in ("submitting", "unknown")
        try:
            if op.phase != Phase.INTENT:
                step: Step | None = await provider.poll(job, op.ref)
            elif op.last_status in ("submitting", "unknown"):
                # We, or a process that died, may have sent it: ask before sending again.
                step = await recover(provider, job)
                if step is not None:
                    await self.store.add_event(
                        job.request_id, WORKER_ACTOR, "recovered", f"{op.provider} already had it: {describe(step)}"
                    )
                elif op.attempts >= MAX_SUBMITS:
                    await self._needs_attention(op, request, f"{op.provider} kept saying it never received the {op.kind}")
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
            await self._hold_ran_out(op, request, exc)
            return
        except ProviderError as exc:
            if may_have_acted:
                # A read failed (4xx included: a stale signature, a rotated key, an operation the
                # provider lost): not the provider's word on the purchase. Ask again later.
                await self._later(op, token, str(exc), delay=exc.retry_after, reading=True)
            elif isinstance(exc, ProviderUnavailable):
                await self._refused_before_acting(op, token, request, exc)
            else:
                await self._finish(op, request, Failed(str(exc)))
            return
        if step is not None:
            await self._apply(op, token, request, step)

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

    async def _refused_before_acting(
        self, op: Operation, token: str, request: NumberRequest, exc: ProviderUnavailable
    ) -> None:
        """Throttled, or the connection never opened: nothing was spent, so sending again later
        is safe; a provider that keeps refusing fails the request."""
        if op.attempts + 1 >= MAX_REFUSED:
            await self._finish(op, request, Failed(f"{exc} (gave up after {op.attempts + 1} tries)"))
            return
        await self.store.update_operation(op.id, token, last_status="refused")
        await self._later(op, token, str(exc), delay=exc.retry_after)

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
                    next_poll_at=self.pacer.schedule(op.id, 0),
                    lease_owner=None,
                    lease_until=None,
                )
            )
            self.pacer.kick()
            return
        await self._needs_attention(op, request, str(exc))

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
                request,
                f"{op.provider} may have acted, but its answer could not be read {failures} times in a row "
                f"(last: {why}); check the account before doing anything else",
            )
            return
        changes: dict[str, Any] = {
            "next_poll_at": self.pacer.schedule(op.id, delay),
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
                    phase=Phase.POLLING,
                    ref=step.ref,
                    last_status="in progress",
                    attempts=0,
                    next_poll_at=self.pacer.schedule(op.id, delay),
                    lease_owner=None,
                    lease_until=None,
                )
            )
            self.pacer.kick()
            return
        await self._finish(op, request, step)


async def send(provider: Provider, job: Job) -> Step:
    """The one call that spends (or, for a release, stops spending)."""
    if job.kind == Kind.RELEASE:
        # The release request's ref carries the held number's provider ref (Webex: its person).
        return await provider.release(job.numbers[0], job.ref)
    return await provider.submit(job)


async def recover(provider: Provider, job: Job) -> Step | None:
    """After a crash or an unknown outcome: has the provider already acted?

    Releases are safe to send again: every adapter answers a release of a
    number the account no longer has as done (nothing is spent twice).
    """
    if job.kind == Kind.RELEASE:
        return None
    return await provider.recover(job)


def describe(step: Step) -> str:
    if isinstance(step, Done):
        return "done: " + ", ".join(step.numbers)
    if isinstance(step, InProgress):
        return "in progress"
    if isinstance(step, Failed):
        return "failed: " + step.reason
    return "pending at the provider: " + step.details
