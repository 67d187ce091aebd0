"""A bot that dies in the middle of a purchase resumes on restart and buys exactly once."""

from __future__ import annotations

import pytest

from bot.domain.states import State
from bot.domain.offers import SearchQuery
from bot.domain.steps import InProgress
from bot.sandbox import SandboxServices
from bot.sandbox.common import Clock
from bot.store.db import Store
from bot.worker import LEASE_SECONDS, Worker
from tests.conftest import APPROVER, REQUESTER, make_env


class Crash(BaseException):
    """Stands for the process dying: nothing after it runs, no cleanup."""


@pytest.fixture
def world(settings_env, tmp_path):
    settings = settings_env(NUMBERS_SANDBOX=True, NUMBERS_POLL_INTERVAL=0.01, NUMBERS_DB=str(tmp_path / "bot.db"))
    clock = Clock()
    # The provider outlives the bot: both "processes" talk to the same simulated ACS.
    sandbox = SandboxServices.create(None, clock=clock)
    return settings, clock, sandbox


async def approved_request(env):
    result = await env.svc.search(REQUESTER, SearchQuery("US", "tollfree", "844", quantity=2))
    offer = next(o for o in result.offers if o.provider == "acs")
    request = await env.svc.request(REQUESTER, offer.id, "why")
    await env.svc.approve(request.id, APPROVER)
    return request


def restart(settings, clock, sandbox):
    """A second process on the same store; the first one's lease has run out."""
    clock.advance(LEASE_SECONDS + 1)
    env = make_env(settings, sandbox=sandbox, clock=clock, store=Store(settings.db_path, clock=clock.now))
    env.c.worker = Worker(env.svc, poll_interval=0.01, owner="second-process")
    return env


@pytest.mark.parametrize("crash_point", ["after_approval", "after_purchase_sent", "while_polling"])
async def test_restart_resumes_and_buys_exactly_once(world, crash_point):
    settings, clock, sandbox = world
    first = make_env(settings, sandbox=sandbox, clock=clock)
    acs = first.c.providers["acs"]
    request = await approved_request(first)

    if crash_point == "after_purchase_sent":
        real_submit = acs.submit

        async def submit_then_die(job):
            await real_submit(job)
            raise Crash()

        acs.submit = submit_then_die
        with pytest.raises(Crash):
            await first.c.worker.start(request.id)
    elif crash_point == "while_polling":
        real_poll = acs.poll

        async def poll_then_die(job, ref):
            step = await real_poll(job, ref)
            assert isinstance(step, InProgress)
            raise Crash()

        acs.poll = poll_then_die
        await first.c.worker.start(request.id)  # submit, record polling
        op = first.store.get_operation(request.id)
        assert op.phase == "polling"
        with pytest.raises(Crash):
            await first.c.worker.drive(op.id)
    # after_approval: the process dies before the worker ever starts the request.
    first.store.close()

    second = restart(settings, clock, sandbox)
    try:
        done = await second.settle(request.id)
        assert done.state == State.FULFILLED, done.outcome
        assert sandbox.acs.count("POST", r":purchase$") == 1
        kinds = [e.kind for e in done.events]
        assert kinds.count("fulfilled") == 1
        if crash_point == "after_purchase_sent":
            assert "recovered" in kinds
    finally:
        await second.c.aclose()


async def test_plivo_crash_after_rent_sent_needs_attention_on_restart(world):
    settings, clock, sandbox = world
    first = make_env(settings, sandbox=sandbox, clock=clock)
    group = (await first.svc.search(REQUESTER, SearchQuery("US", "local", "206", provider="plivo"))).offers[0]
    request = await first.svc.request(REQUESTER, group.id, "why", quantity=2)
    await first.svc.approve(request.id, APPROVER)
    plivo = first.c.providers["plivo"]
    real_submit = plivo.submit

    async def submit_then_die(job):
        await real_submit(job)
        raise Crash()

    plivo.submit = submit_then_die
    with pytest.raises(Crash):
        await first.c.worker.start(request.id)
    first.store.close()

    second = restart(settings, clock, sandbox)
    try:
        done = await second.settle(request.id)
        assert done.state == State.NEEDS_ATTENTION
        assert sandbox.plivo.count("POST", r"/AvailableNumberGroup/\d+/$") == 1
        assert second.notes.whats(request.id)[-1] == "needs_attention"
    finally:
        await second.c.aclose()


async def test_a_live_lease_keeps_a_second_process_off(world):
    """While the first process holds the operation, a second one does not touch it."""
    settings, clock, sandbox = world
    first = make_env(settings, sandbox=sandbox, clock=clock)
    request = await approved_request(first)
    await first.c.worker.start(request.id)
    op = first.store.get_operation(request.id)
    # Hold the lease as a live process elsewhere would.
    assert first.store.claim_operation(op.id, "elsewhere:1", 600) is not None
    other = make_env(settings, sandbox=sandbox, clock=clock, store=Store(settings.db_path, clock=clock.now))
    other.c.worker = Worker(other.svc, poll_interval=0.01, owner="third-process")
    polls = sandbox.acs.count("GET", r"/phoneNumbers/operations/")
    await other.c.worker.drive(op.id)
    assert sandbox.acs.count("GET", r"/phoneNumbers/operations/") == polls
    await other.c.aclose()
    await first.c.aclose()
