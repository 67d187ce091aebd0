"""Doubles at the ports, for a fast tier of service and worker tests.

``FakeProvider`` stands at the ``Provider`` port: each move answers from a
script the test sets (a value, an exception, or a callable), counts its calls,
and can be made to wait at a gate, so a test decides where a drive yields and
makes the interleaving it wants happen instead of hoping for it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Mapping

from bot.providers.base import Done, InProgress, Job, OfferDraft, Requester, SearchQuery, Step

Answer = Any  # a Step, an exception to raise, or a callable returning either


@dataclass
class Gate:
    """Where a call waits until the test opens it; ``reached`` tells the test it got there."""

    reached: asyncio.Event = field(default_factory=asyncio.Event)
    opened: asyncio.Event = field(default_factory=asyncio.Event)

    async def pass_through(self) -> None:
        self.reached.set()
        await self.opened.wait()

    def open(self) -> None:
        self.opened.set()


class FakeProvider:
    name = "fake"

    def __init__(self, *, kind: str = "purchase", unit_monthly_cost: Decimal | None = Decimal("2.00")):
        self.kind = kind
        self.unit_monthly_cost = unit_monthly_cost
        self.calls: dict[str, int] = {"search": 0, "prepare": 0, "submit": 0, "poll": 0, "recover": 0}
        self.submit_answers: list[Answer] = []
        self.poll_answers: list[Answer] = []
        self.recover_answers: list[Answer] = []
        self.search_answers: list[Answer] = []
        self.gates: dict[str, Gate] = {}
        self.counter = 0

    # --- script ---------------------------------------------------------------

    def gate(self, move: str) -> Gate:
        self.gates[move] = Gate()
        return self.gates[move]

    def draft(self, numbers: list[str] | None = None, cost: Decimal | None = None, quantity: int = 1) -> OfferDraft:
        self.counter += 1
        numbers = numbers or [f"+1833555{self.counter:04d}" for _ in range(quantity)]
        return OfferDraft(
            provider=self.name,
            kind=self.kind,
            numbers=numbers,
            unit_monthly_cost=cost if cost is not None else self.unit_monthly_cost,
            quantity=len(numbers),
            max_quantity=len(numbers),
            ref={"search_id": f"s{self.counter}"},
        )

    async def _answer(self, move: str, script: list[Answer], default: Callable[[], Any]) -> Any:
        self.calls[move] += 1
        gate = self.gates.get(move)
        if gate is not None:
            await gate.pass_through()
        answer = script.pop(0) if script else default()
        if callable(answer) and not isinstance(answer, type):
            answer = answer()
        if isinstance(answer, BaseException):
            raise answer
        return answer

    # --- the port ---------------------------------------------------------------

    async def search(self, query: SearchQuery) -> list[OfferDraft]:
        return await self._answer("search", self.search_answers, lambda: [self.draft()])

    async def prepare(self, offer: OfferDraft, quantity: int, requester: Requester) -> dict[str, Any]:
        self.calls["prepare"] += 1
        return {}

    async def submit(self, job: Job) -> Step:
        return await self._answer("submit", self.submit_answers, lambda: Done(numbers=list(job.numbers)))

    async def poll(self, job: Job, ref: dict[str, Any]) -> Step:
        return await self._answer("poll", self.poll_answers, lambda: Done(numbers=list(job.numbers)))

    async def recover(self, job: Job) -> Step | None:
        return await self._answer("recover", self.recover_answers, lambda: None)

    async def release(self, number: str, ref: Mapping[str, Any]) -> Step:
        return Done(numbers=[number])

    async def check(self) -> str:
        return "fake provider"

    async def aclose(self) -> None:
        pass


def in_progress(ref: dict[str, Any] | None = None) -> InProgress:
    return InProgress(ref=ref or {"operation_id": "op1"})


class SlowNotifier:
    """A notifier whose calls for ``slow`` changes wait at a gate (Slack answering slowly)."""

    def __init__(self, slow: set[str] | None = None):
        self.slow = slow or set()
        self.gate = Gate()
        self.seen: list[tuple[int, str]] = []

    async def notify(self, request: Any, what: str, *, actor: str | None = None, text: str | None = None) -> None:
        self.seen.append((request.id, what))
        if what in self.slow:
            await self.gate.pass_through()
