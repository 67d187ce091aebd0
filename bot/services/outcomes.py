"""Recording a provider's last word on an operation: the request's final move, the numbers or the
release kept, the operation closed, in one commit; then people are told.

An answer received exists only in this process until it is written, so the
write is tried again while the store cannot take it (locked, disk full).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from typing import Any, Awaitable, Callable, Protocol, TypeVar

from bot.domain.display import both
from bot.domain.errors import StoreBusy
from bot.domain.kinds import Change, Kind
from bot.domain.requests import NumberRequest, Operation
from bot.domain.states import State
from bot.domain.steps import Done, Failed, ProviderPending, Step
from bot.services.core import WORKER_ACTOR, ServiceCore
from bot.store.outbox import Notice

__all__ = ["Outcomes", "Pacer"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class Pacer(Protocol):
    """When the next look at an operation is due: the worker's side of a drive."""

    def schedule(self, op_id: int, delay: float) -> Any:
        """Remember to look at ``op_id`` in ``delay`` seconds; the wall time to store beside it."""
        ...

    def kick(self) -> None:
        """Look again now (a request is ready to start, or an operation is due at once)."""
        ...


class Outcomes:
    """The final moves of a fulfilment, shared by the drive and the search again."""

    def __init__(self, service: ServiceCore, pacer: Pacer):
        self.service = service
        self.store = service.store
        self.pacer = pacer
        self.record_delays: tuple[float, ...] = (0.05, 0.1, 0.2, 0.5, 1, 1, 2, 2, 5, 5, 5)

    async def _finish(self, op: Operation, request: NumberRequest, step: Step) -> None:
        """Record the provider's last word on the operation and tell people."""
        if isinstance(step, Done):
            await self._done(op, request, step)
        elif isinstance(step, ProviderPending):
            await self._end(
                op, request, State.PROVIDER_PENDING, f"{request.provider} is following up: {step.details}", text=step.details
            )
        elif isinstance(step, Failed):
            await self._end(op, request, State.FAILED, f"failed: {step.reason}", text=step.reason)
        else:  # pragma: no cover - Step is a closed union
            raise TypeError(step)

    async def _done(self, op: Operation, request: NumberRequest, step: Done) -> None:
        """The provider did it. What it delivered is recorded as it is: each distinct number once,
        and more than was approved (or one number twice) goes to a person with the numbers."""
        note = step.note
        distinct = list(dict.fromkeys(step.numbers))
        shown = ", ".join(both(n) for n in distinct)
        if request.kind == Kind.RELEASE:
            number_id = request.ref["number_id"]
            also: Callable[[Any], None] = lambda store: store.mark_released(number_id, request.id)  # noqa: E731
        else:
            also = lambda store: store.record_numbers(request, distinct)  # noqa: E731
        data = {"numbers": step.numbers, "failed_numbers": step.failed_numbers}
        over = request.kind != Kind.RELEASE and (len(distinct) > request.quantity or len(distinct) < len(step.numbers))
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
            f"{request.kind.past} {shown}" + (f" — {note}" if note else ""),
            text=note,
            # A partial rent costs only what was rented.
            changes={"numbers": distinct, "quantity": len(distinct) or request.quantity},
            data=data,
            also=also,
        )

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
                notify=Notice(Change(state.value), text=text),
            )
        )
        if moved is not None:
            await self.service.tell(moved, Change(state.value), text=text)

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
