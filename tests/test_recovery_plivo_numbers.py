"""A process dies around Plivo's PhoneNumber buy; the next one asks ``GET Number/{n}/`` and
finishes the request exactly once (where the group API had to send it to a person)."""

from __future__ import annotations

import pytest

from bot.domain.states import State
from bot.domain.offers import SearchQuery
from bot.sandbox import SandboxServices
from bot.sandbox.common import Clock
from tests.conftest import APPROVER, REQUESTER, make_env
from tests.test_recovery import Crash, restart

BUY = r"/PhoneNumber/\d+/$"


@pytest.fixture
def world(settings_env, tmp_path):
    settings = settings_env(
        NUMBERS_SANDBOX=True, NUMBERS_POLL_INTERVAL=0.01, NUMBERS_DB=str(tmp_path / "bot.db"), PLIVO_API="numbers"
    )
    clock = Clock()
    return settings, clock, SandboxServices.create(None, clock=clock)


@pytest.mark.parametrize("sent", [True, False], ids=["killed-after-the-buy", "killed-before-the-buy"])
async def test_a_restart_asks_plivo_and_buys_exactly_once(world, sent):
    settings, clock, sandbox = world
    first = make_env(settings, sandbox=sandbox, clock=clock)
    offer = (await first.svc.search(REQUESTER, SearchQuery("US", "local", "206", provider="plivo"))).offers[0]
    request = await first.svc.request(REQUESTER, offer.id, "Seattle desk")
    await first.svc.approve(request.id, APPROVER)
    plivo = first.c.providers["plivo"]
    real_submit = plivo.submit

    async def die_around_the_buy(job):
        if sent:
            await real_submit(job)
        raise Crash()

    plivo.submit = die_around_the_buy
    with pytest.raises(Crash):
        await first.c.worker.start(request.id)
    first.store.close()

    second = restart(settings, clock, sandbox)
    try:
        done = await second.settle(request.id)
        assert done.state == State.FULFILLED and done.numbers == offer.numbers
        assert sandbox.plivo.count("POST", BUY) == 1
        assert sandbox.plivo.count("GET", r"/Number/\d+/$") >= 1
        assert offer.numbers[0].lstrip("+") in sandbox.plivo.rented_numbers()
    finally:
        await second.c.aclose()
