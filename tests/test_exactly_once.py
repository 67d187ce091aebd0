"""Exactly once under real timing, at the ports: the fast tier.

Each test makes its interleaving happen: the ``FakeProvider`` and the notifier
wait at gates the test opens, a directory double holds two decisions between
their read and their write, and threads on separate connections race for one
lease. Nothing here sleeps for a fixed time; it waits on conditions.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from datetime import timedelta
from decimal import Decimal

import pytest

from bot.services import fulfilling as fulfilling_module
from bot.domain.errors import (
    Conflict,
    DirectoryUnavailable,
    HoldExpired,
    NotAllowed,
    OfferTaken,
    OutcomeUnknown,
    ProviderAuthError,
    ProviderError,
    ProviderUnavailable,
)
from bot.domain.policy import Policy
from bot.domain.states import State
from bot.domain.offers import SearchQuery
from bot.domain.steps import Done, Failed
from bot.services import NumbersService, StaticDirectory
from bot.store.connection import drive_identity
from bot.store.db import Store
from bot.store.threaded import ThreadedStore
from bot.worker import Worker
from tests.conftest import MovableClock
from tests.fakes import FakeProvider, SlowNotifier, in_progress

REQUESTER, APPROVER, APPROVER2 = "UREQUESTER", "UAPPROVER1", "UAPPROVER2"
POLICY = Policy(approvers=frozenset({APPROVER, APPROVER2}))


async def until(condition, timeout: float = 10.0, what: str = "the condition") -> None:
    """Wait for ``condition()`` to hold, checking often; fail after ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


class Env:
    def __init__(self, tmp_path, provider=None, *, policy=POLICY, notifier=None, directory=None, clock=None, **worker_kw):
        self.clock = clock or MovableClock()
        self.path = str(tmp_path / "numbers.db")
        self.store = Store(self.path, clock=self.clock)
        self.provider = provider or FakeProvider()
        self.service = NumbersService(
            self.store,
            {"fake": self.provider},
            policy,
            directory=directory or StaticDirectory(policy.approvers),
            notifier=notifier,
            clock=self.clock,
        )
        self.worker = Worker(self.service, poll_interval=0.001, tick=0.01, **worker_kw)

    async def offer(self, user: str = REQUESTER, **kw):
        return (await self.service.search(user, SearchQuery("US", provider="fake", **kw))).offers[0]

    async def approved(self):
        offer = await self.offer()
        request = await self.service.request(REQUESTER, offer.id, "for the support line")
        await self.service.approve(request.id, APPROVER)
        return request

    def kinds(self, request_id: int) -> list[str]:
        return [e.kind for e in self.store.events_for(request_id)]

    async def close(self):
        await self.worker.stop()
        self.service.store.close()
        self.store.close()


@pytest.fixture
async def env(tmp_path):
    made = []

    def make(*args, **kw):
        e = Env(tmp_path / str(len(made)), *args, **kw)
        made.append(e)
        return e

    (tmp_path / "0").mkdir()
    for i in range(1, 4):
        (tmp_path / str(i)).mkdir()
    yield make
    for e in made:
        await e.close()


# --- 1. one drive per operation ---------------------------------------------------------


async def test_a_worker_pass_while_slack_is_slow_does_not_drive_the_operation_twice(env):
    """The finding: the worker told Slack "fulfilling" before marking the operation busy, and a
    pass during that await drove it a second time (two rents, or recover → needs_attention)."""
    notes = SlowNotifier({"fulfilling"})
    e = env(notifier=notes)
    submit = e.provider.gate("submit")
    request = await e.approved()
    start = asyncio.create_task(e.worker.start(request.id))
    await notes.gate.reached.wait()  # start() is waiting on Slack with the operation created
    # Passes during that await: this worker's, and another worker's in the same process.
    other = Worker(e.service, poll_interval=0.001, tick=0.01)
    await e.worker.run_once()
    await other.run_once()
    passes = e.worker._tasks | other._tasks
    await until(lambda: submit.reached.is_set() or all(t.done() for t in passes), what="the passes' drives to end or send")
    notes.gate.open()
    # The provider holds every send until each drive has either sent or given up.
    await until(
        lambda: e.provider.calls["submit"] >= 2 or (e.provider.calls["submit"] == 1 and all(t.done() for t in passes)),
        what="every drive to send or give up",
    )
    submit.open()
    await start
    await asyncio.gather(*passes)
    assert e.provider.calls["submit"] == 1
    assert e.provider.calls["recover"] == 0
    assert (await e.service.get(request.id)).state == State.FULFILLED


def test_a_held_lease_is_free_to_no_second_drive_not_even_in_the_same_process(tmp_path, clock):
    store = Store(str(tmp_path / "n.db"), clock=clock)
    from tests.test_store import new_request

    request = new_request(store, clock)
    store.transition(request.id, State.PENDING, State.APPROVED, actor="a", kind="approved", message="ok")
    first = drive_identity()
    store.transition(
        request.id, State.APPROVED, State.FULFILLING, actor="w", kind="fulfilling", message="go",
        operation={"provider": "acs", "kind": "purchase", "lease_owner": first, "lease_until": clock() + timedelta(seconds=60)},
    )
    op = store.get_operation(request.id)
    assert store.claim_operation(op.id, drive_identity(), 60) is None  # same process, another drive
    assert store.claim_operation(op.id, first, 60) is None  # not even under the holder's own name
    clock.advance(61)
    assert store.claim_operation(op.id, drive_identity(), 60) is not None  # the lease ran out
    store.close()


def test_threads_on_separate_connections_claim_one_operation_once(tmp_path, clock):
    path = str(tmp_path / "n.db")
    store = Store(path, clock=clock)
    from tests.test_store import new_request

    request = new_request(store, clock)
    store.transition(request.id, State.PENDING, State.APPROVED, actor="a", kind="approved", message="ok")
    store.transition(
        request.id, State.APPROVED, State.FULFILLING, actor="w", kind="fulfilling", message="go",
        operation={"provider": "acs", "kind": "purchase"},
    )
    op_id = store.get_operation(request.id).id
    barrier = threading.Barrier(8)
    won: list[str] = []

    def claim() -> None:
        mine = Store(path, clock=clock)
        token = drive_identity()
        barrier.wait()
        if mine.claim_operation(op_id, token, 60) is not None:
            won.append(token)
        mine.close()

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1
    store.close()


# --- the compare-and-set, reached ----------------------------------------------------------


class HoldingDirectory:
    """Holds every decision between its read of the request and its write until all have read."""

    def __init__(self, parties: int):
        self.barrier = asyncio.Barrier(parties)

    async def is_approver(self, user_id: str) -> bool:
        await self.barrier.wait()
        return True

    async def email(self, user_id: str) -> str | None:
        return None


async def test_two_approvals_held_between_read_and_write_move_the_request_once(env):
    directory = HoldingDirectory(2)
    e = env(directory=directory)
    offer = await e.offer()
    request = await e.service.request(REQUESTER, offer.id, "why")
    # A second process: its own service and store connection on the same file.
    other = NumbersService(ThreadedStore(Store(e.path, clock=e.clock)), e.service.providers, POLICY, directory=directory, clock=e.clock)
    try:
        results = await asyncio.gather(
            e.service.approve(request.id, APPROVER), other.approve(request.id, APPROVER2), return_exceptions=True
        )
    finally:
        other.store.close()
        other.store.origin.close()
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(losers) == 1 and isinstance(losers[0], Conflict) and "already approved" in str(losers[0])
    assert e.kinds(request.id).count("approved") == 1


# --- 2. after a spending call may have been accepted ---------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        ProviderAuthError("fake", "stale x-ms-date", status=401),
        ProviderError("fake", "operation not found", status=404),
        ProviderError("fake", "bad request", status=400),
        ProviderUnavailable("fake", "connection reset"),
    ],
    ids=["401", "404", "400", "lost connection"],
)
async def test_poll_errors_after_an_accepted_purchase_are_retried_not_failed(env, fault):
    e = env()
    e.provider.submit_answers = [in_progress()]
    e.provider.poll_answers = [fault, fault, fault]  # then Done
    request = await e.approved()
    done = await e.worker.drain(request.id, timeout=20)
    assert done.state == State.FULFILLED
    assert e.provider.calls["submit"] == 1 and e.provider.calls["poll"] == 4


async def test_a_provider_that_cannot_be_read_hands_the_request_to_a_person_never_failed(env, monkeypatch):
    monkeypatch.setattr(fulfilling_module, "MAX_POLL_FAILURES", 4)
    e = env()
    e.provider.submit_answers = [in_progress()]
    e.provider.poll_answers = [ProviderAuthError("fake", "forbidden", status=403) for _ in range(10)]
    request = await e.approved()
    done = await e.worker.drain(request.id, timeout=20)
    assert done.state == State.NEEDS_ATTENTION
    assert "could not be read 5 times" in done.outcome
    assert e.provider.calls["poll"] == 5 and e.provider.calls["submit"] == 1


async def test_recover_errors_after_an_unknown_outcome_are_retried_not_failed(env):
    e = env()
    e.provider.submit_answers = [OutcomeUnknown("fake", "connection dropped after sending")]
    e.provider.recover_answers = [ProviderAuthError("fake", "forbidden", status=403), Done(numbers=["+18335550001"])]
    request = await e.approved()
    done = await e.worker.drain(request.id, timeout=20)
    assert done.state == State.FULFILLED and e.provider.calls["submit"] == 1


# --- the worker's safety valves and the re-search paths ------------------------------------


async def test_a_provider_that_keeps_saying_it_never_got_it_is_sent_at_most_max_submits(env):
    e = env()
    e.provider.submit_answers = [OutcomeUnknown("fake", "timed out") for _ in range(10)]
    request = await e.approved()
    done = await e.worker.drain(request.id, timeout=20)
    assert done.state == State.NEEDS_ATTENTION
    assert e.provider.calls["submit"] == fulfilling_module.MAX_SUBMITS
    assert "never received" in done.outcome


async def test_a_provider_that_keeps_refusing_before_acting_fails_after_max_refused(env, monkeypatch):
    monkeypatch.setattr(fulfilling_module, "MAX_REFUSED", 3)
    e = env()
    e.provider.submit_answers = [ProviderUnavailable("fake", "429 throttled", retry_after=0) for _ in range(10)]
    request = await e.approved()
    done = await e.worker.drain(request.id, timeout=20)
    assert done.state == State.FAILED and "gave up after 3 tries" in done.outcome
    assert e.provider.calls["submit"] == 3


async def test_a_definite_refusal_of_the_first_send_fails_the_request(env):
    e = env()
    e.provider.submit_answers = [ProviderError("fake", "number not available", status=400)]
    request = await e.approved()
    done = await e.worker.drain(request.id, timeout=20)
    assert done.state == State.FAILED and "number not available" in done.outcome


async def test_an_expired_hold_is_searched_again_and_bought_within_the_approved_cost(env):
    e = env()
    e.provider.submit_answers = [HoldExpired("fake", "search expired", status=400)]
    request = await e.approved()
    done = await e.worker.drain(request.id, timeout=20)
    assert done.state == State.FULFILLED
    assert e.provider.calls["search"] == 2 and e.provider.calls["submit"] == 2
    assert "hold_expired" in e.kinds(request.id) and "rehold" in e.kinds(request.id)


async def test_an_expired_hold_is_searched_again_even_with_the_local_clock_behind(env):
    """The provider says the hold is gone while the local clock says it still runs."""
    e = env()
    e.provider.submit_answers = [HoldExpired("fake", "search expired", status=400)]
    offer = await e.offer()
    request = await e.service.request(REQUESTER, offer.id, "why")
    await e.service.store.update_request(request.id, changes={"hold_expires_at": e.clock() + timedelta(minutes=10)})
    await e.service.approve(request.id, APPROVER)
    done = await e.worker.drain(request.id, timeout=20)
    assert done.state == State.FULFILLED and e.provider.calls["search"] == 2


@pytest.mark.parametrize(
    "answer, state, words",
    [
        (ProviderError("fake", "search refused", status=400), State.FAILED, "searching again failed"),
        (lambda: [], State.PENDING, "found no numbers"),
        ("dearer", State.PENDING, "needs a fresh approval"),
    ],
    ids=["refused", "nothing found", "dearer"],
)
async def test_a_re_search_that_cannot_go_ahead_fails_or_asks_again(env, answer, state, words):
    e = env()
    e.provider.submit_answers = [HoldExpired("fake", "search expired", status=400)]
    if answer == "dearer":
        answer = lambda: [e.provider.draft(cost=Decimal("9.00"))]  # noqa: E731
    request = await e.approved()
    e.provider.search_answers = [answer]
    done = await e.worker.drain(request.id, timeout=20)
    assert done.state == state and words in (done.outcome or "")
    assert e.provider.calls["submit"] == 1


async def test_a_re_search_the_provider_cannot_answer_now_is_tried_again(env):
    e = env()
    e.provider.submit_answers = [HoldExpired("fake", "search expired", status=400)]
    request = await e.approved()
    e.provider.search_answers = [ProviderUnavailable("fake", "503")]
    done = await e.worker.drain(request.id, timeout=20)
    assert done.state == State.FULFILLED and e.provider.calls["search"] == 3


# --- 3. approver checks fail closed -------------------------------------------------------


class BrokenDirectory:
    async def is_approver(self, user_id: str) -> bool:
        raise DirectoryUnavailable("Could not check your approver group with Slack; try again in a minute.")

    async def email(self, user_id: str) -> str | None:
        return None


async def test_an_approval_that_cannot_be_checked_is_refused_audited_and_changes_nothing(env):
    e = env(directory=BrokenDirectory())
    offer = await e.offer()
    request = await e.service.request(REQUESTER, offer.id, "why")
    with pytest.raises(DirectoryUnavailable, match="try again in a minute"):
        await e.service.approve(request.id, APPROVER)
    with pytest.raises(DirectoryUnavailable):
        await e.service.deny(request.id, APPROVER, "no")
    now = await e.service.get(request.id)
    assert now.state == State.PENDING and now.approvals == []
    refused = [ev for ev in now.events if ev.kind == "refused"]
    assert [ev.data["action"] for ev in refused] == ["approve", "deny"]


# --- 4. one live request per offer --------------------------------------------------------


async def test_one_live_request_per_offer_and_only_the_searcher_may_request_it(env):
    e = env()
    offer = await e.offer()
    with pytest.raises(NotAllowed, match="someone else's search"):
        await e.service.request(APPROVER, offer.id, "mine now")
    first = await e.service.request(REQUESTER, offer.id, "why")
    with pytest.raises(OfferTaken, match=f"request #{first.id}"):
        await e.service.request(REQUESTER, offer.id, "again")
    await e.service.cancel(first.id, REQUESTER)
    again = await e.service.request(REQUESTER, offer.id, "after cancelling")  # the offer is free again
    assert again.id != first.id
    assert e.provider.calls["prepare"] == 2  # the refused request looked nothing up


async def test_two_requests_of_one_offer_from_two_processes_make_one(env):
    e = env()
    offer = await e.offer()
    other = NumbersService(ThreadedStore(Store(e.path, clock=e.clock)), e.service.providers, POLICY,
                           directory=StaticDirectory(POLICY.approvers), clock=e.clock)
    gate = asyncio.Barrier(2)

    async def prepare(*args):  # both requests pass the early check before either writes
        await gate.wait()
        return {}

    e.provider.prepare = prepare  # type: ignore[method-assign]
    try:
        results = await asyncio.gather(
            e.service.request(REQUESTER, offer.id, "one"), other.request(REQUESTER, offer.id, "two"),
            return_exceptions=True,
        )
    finally:
        other.store.close()
        other.store.origin.close()
    assert sum(isinstance(r, OfferTaken) for r in results) == 1
    assert e.store.db.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 1


# --- 5. unknown cost is never $0 ----------------------------------------------------------


async def test_an_offer_of_unknown_cost_cannot_be_approved_under_a_budget_nor_auto_approved(env):
    policy = Policy(approvers=POLICY.approvers, monthly_budget=Decimal("100"), auto_approve_below=Decimal("50"))
    e = env(FakeProvider(unit_monthly_cost=None), policy=policy)
    offer = await e.offer()
    request = await e.service.request(REQUESTER, offer.id, "why")
    assert request.state == State.PENDING  # not auto-approved as if it cost nothing
    with pytest.raises(NotAllowed, match="cost unknown"):
        await e.service.approve(request.id, APPROVER)
    assert (await e.service.get(request.id)).state == State.PENDING


# --- 7. provider answers are kept ---------------------------------------------------------


async def test_an_answer_is_recorded_even_when_the_store_fails_the_first_writes(env):
    e = env()
    request = await e.approved()
    real = e.service.store.transition
    failures = iter([sqlite3.OperationalError("database or disk is full")] * 3)

    async def flaky(*args, **kw):
        if kw.get("kind") == "fulfilled":
            failure = next(failures, None)
            if failure is not None:
                raise failure
        return await real(*args, **kw)

    e.service.store.transition = flaky  # type: ignore[method-assign]
    e.worker.fulfilment.record_delays = (0.001,) * 5
    done = await e.worker.drain(request.id, timeout=20)
    assert done.state == State.FULFILLED and e.provider.calls["submit"] == 1
    assert [n.number for n in e.store.held_numbers()] == done.numbers


async def test_stop_lets_a_spending_call_under_way_record_its_answer(env):
    e = env()
    submit = e.provider.gate("submit")
    request = await e.approved()
    run = asyncio.create_task(e.worker.run())
    await submit.reached.wait()
    stopping = asyncio.create_task(e.worker.stop())
    await until(lambda: e.worker._stopping, what="stop to begin")
    submit.open()  # the provider answers while the worker is stopping
    await stopping
    await run
    assert e.store.get_request(request.id).state == State.FULFILLED
    assert len(e.store.held_numbers()) == 1


async def test_more_numbers_than_approved_are_recorded_once_each_and_flagged(env):
    e = env()
    e.provider.submit_answers = [Done(numbers=["+18335550101", "+18335550102", "+18335550102"])]
    request = await e.approved()
    done = await e.worker.drain(request.id, timeout=20)
    assert done.state == State.NEEDS_ATTENTION
    assert "+18335550101" in done.outcome and "+18335550102" in done.outcome
    held = sorted(n.number for n in e.store.held_numbers())
    assert held == ["+18335550101", "+18335550102"]  # each distinct number once
    assert (await e.service.costs()).total == Decimal("4.00")


# --- 8. time ------------------------------------------------------------------------------


async def test_a_backward_wall_clock_step_does_not_stall_polling(env):
    e = env()
    e.provider.submit_answers = [in_progress()]
    e.provider.poll_answers = [in_progress(), in_progress()]
    request = await e.approved()
    run = asyncio.create_task(e.worker.run())
    await until(lambda: e.provider.calls["poll"] >= 1, what="the first poll")
    e.clock.advance(-3600)  # the wall clock steps back an hour
    await until(lambda: e.store.get_request(request.id).state == State.FULFILLED, timeout=10, what="fulfilled")
    await e.worker.stop()
    await run
    assert e.provider.calls["poll"] == 3
