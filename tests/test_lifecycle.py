"""Number lifecycle: the inventory of what the team holds, monthly costs, and approval-gated release."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.domain.errors import Conflict, NotAllowed, NotFound, UsageError
from bot.domain.states import State
from bot.domain.offers import SearchQuery
from bot.sandbox import SandboxServices
from bot.sandbox.common import Clock
from bot.store.db import Store
from bot.worker import LEASE_SECONDS, Worker
from tests.conftest import APPROVER, APPROVER2, OUTSIDER, REQUESTER, make_env


async def obtain(bot, provider: str) -> list[str]:
    """Get numbers through the whole flow; returns what was obtained."""
    if provider == "acs":
        result = await bot.svc.search(REQUESTER, SearchQuery("US", "tollfree", "855", quantity=2, provider="acs"))
        request = await bot.svc.request(REQUESTER, result.offers[0].id, "Support line")
    elif provider == "plivo":
        result = await bot.svc.search(REQUESTER, SearchQuery("US", "local", "312", provider="plivo"))
        request = await bot.svc.request(REQUESTER, result.offers[0].id, "Sales", quantity=2)
    else:
        result = await bot.svc.assign_search(REQUESTER, "San Jose")
        request = await bot.svc.request(REQUESTER, result.offers[0].id, "My desk line")
    if request.state == State.PENDING:  # else approved by policy already
        await bot.svc.approve(request.id, APPROVER)
    done = await bot.settle(request.id)
    assert done.state == State.FULFILLED, done.outcome
    return done.numbers


async def test_inventory_lists_what_was_obtained_with_totals(bot):
    acs = await obtain(bot, "acs")
    plivo = await obtain(bot, "plivo")
    webex = await obtain(bot, "webex")
    held = (await bot.svc.inventory())
    assert sorted(n.number for n in held) == sorted(acs + plivo + webex)
    one = next(n for n in held if n.number == acs[0])
    assert (one.provider, one.requester, one.approved_by, one.justification) == ("acs", REQUESTER, APPROVER, "Support line")
    assert one.unit_monthly_cost == Decimal("2.00")
    costs = (await bot.svc.costs())
    plivo_unit = next(n for n in held if n.provider == "plivo").unit_monthly_cost
    assert costs.by_provider() == {"acs": Decimal("4.00"), "plivo": plivo_unit * 2, "webex": Decimal("0")}
    assert costs.by_requester() == {REQUESTER: Decimal("4.00") + plivo_unit * 2}
    assert costs.budget_left is None
    assert [n.number for n in (await bot.svc.inventory(OUTSIDER))] == []


async def test_costs_show_budget_left(bot_factory):
    bot = bot_factory(NUMBERS_MONTHLY_BUDGET="50")
    await obtain(bot, "acs")
    costs = (await bot.svc.costs())
    assert costs.committed_this_month == Decimal("4.00") and costs.budget_left == Decimal("46.00")


@pytest.mark.parametrize("provider", ["acs", "plivo", "webex"])
async def test_release_end_to_end(bot, provider):
    numbers = await obtain(bot, provider)
    number = numbers[0]
    release = await bot.svc.request_release(REQUESTER, number, "Campaign is over")
    assert release.kind == "release" and release.state == State.PENDING and release.numbers == [number]
    await bot.svc.approve(release.id, APPROVER)
    done = await bot.settle(release.id)
    assert done.state == State.FULFILLED, done.outcome
    assert number not in [n.number for n in (await bot.svc.inventory())]
    if provider == "acs":
        assert number not in bot.sandbox.acs.purchased()
        assert bot.sandbox.acs.count("DELETE", r"/phoneNumbers/") == 1
    elif provider == "plivo":
        assert number not in bot.sandbox.plivo.rented_numbers()
    else:
        person = bot.sandbox.webex.person_by_email("alice@example.com")
        assert number not in [p.get("value") for p in person.get("phoneNumbers", [])]
    # Released numbers cost nothing any more: the totals are the numbers still held.
    still = [n for n in (await bot.svc.inventory()) if n.provider == provider]
    assert len(still) == len(numbers) - 1
    assert (await bot.svc.costs()).by_provider().get(provider, Decimal(0)) == sum(
        (n.unit_monthly_cost for n in still), Decimal(0)
    )


async def test_who_may_release_and_bad_input(bot):
    numbers = await obtain(bot, "acs")
    with pytest.raises(NotAllowed, match="or an approver"):
        await bot.svc.request_release(OUTSIDER, numbers[0], "mine now")
    with pytest.raises(NotFound, match="not in the inventory"):
        await bot.svc.request_release(REQUESTER, "+14155550199", "x")
    with pytest.raises(UsageError, match="not a phone number"):
        await bot.svc.request_release(REQUESTER, "call me", "x")
    with pytest.raises(UsageError, match="Say why"):
        await bot.svc.request_release(REQUESTER, numbers[0], " ")
    first = await bot.svc.request_release(APPROVER, numbers[0], "tidy up")  # an approver may ask too
    with pytest.raises(Conflict, match=f"request #{first.id}"):
        await bot.svc.request_release(REQUESTER, numbers[0], "again")
    # A denied release leaves the number held, and it can be asked again.
    await bot.svc.deny(first.id, APPROVER2, "still used")
    assert numbers[0] in [n.number for n in (await bot.svc.inventory())]
    again = await bot.svc.request_release(REQUESTER, numbers[0], "really over now")
    assert again.state == State.PENDING


async def test_release_is_never_auto_approved_nor_held_to_the_budget(bot_factory):
    bot = bot_factory(NUMBERS_AUTO_APPROVE_BELOW="100", NUMBERS_MONTHLY_BUDGET="4")
    numbers = await obtain(bot, "acs")  # auto-approved: $4 < $100, within the $4 budget
    release = await bot.svc.request_release(REQUESTER, numbers[0], "done")
    assert release.state == State.PENDING
    assert (await bot.svc.approve(release.id, APPROVER)).complete  # the budget is spent, yet release goes


async def test_double_click_on_release_releases_once(bot):
    numbers = await obtain(bot, "plivo")
    release = await bot.svc.request_release(REQUESTER, numbers[0], "done")
    import asyncio

    results = await asyncio.gather(
        *(bot.svc.approve(release.id, who) for who in [APPROVER, APPROVER2] * 5), return_exceptions=True
    )
    assert sum(not isinstance(r, Exception) for r in results) == 1
    done = await bot.settle(release.id)
    assert done.state == State.FULFILLED
    assert bot.sandbox.plivo.count("DELETE", r"/Number/") == 1


class Crash(BaseException):
    pass


@pytest.mark.parametrize("provider", ["acs", "plivo", "webex"])
async def test_restart_in_the_middle_of_a_release(settings_env, tmp_path, provider):
    settings = settings_env(NUMBERS_SANDBOX=True, NUMBERS_POLL_INTERVAL=0.01, NUMBERS_DB=str(tmp_path / "b.db"))
    clock = Clock()
    sandbox = SandboxServices.create(None, clock=clock)
    first = make_env(settings, sandbox=sandbox, clock=clock)
    numbers = await obtain(first, provider)
    release = await first.svc.request_release(REQUESTER, numbers[0], "done")
    await first.svc.approve(release.id, APPROVER)
    adapter = first.c.providers[provider]
    real_release = adapter.release

    async def release_then_die(*args):
        await real_release(*args)
        raise Crash()

    adapter.release = release_then_die
    with pytest.raises(Crash):
        await first.c.worker.start(release.id)
    first.store.close()

    clock.advance(LEASE_SECONDS + 1)
    second = make_env(settings, sandbox=sandbox, clock=clock, store=Store(settings.db_path, clock=clock.now))
    second.c.worker = Worker(second.svc, poll_interval=0.01, owner="second-process")
    try:
        done = await second.settle(release.id)
        assert done.state == State.FULFILLED, done.outcome
        assert numbers[0] not in [n.number for n in (await second.svc.inventory())]
    finally:
        await second.c.aclose()
