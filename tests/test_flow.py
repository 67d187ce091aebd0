"""The whole flow without Slack: search → request → approve → bought, against the sandbox services."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest

from bot.domain.errors import Conflict, NotAllowed, NotFound, UsageError
from bot.domain.states import State
from bot.domain.offers import SearchQuery
from bot.store.db import Store
from tests.conftest import APPROVER, APPROVER2, OUTSIDER, REQUESTER, make_env

TOLLFREE = SearchQuery("US", "tollfree", "833", quantity=2, sms=True)


async def acs_offer(bot, query=TOLLFREE):
    result = await bot.svc.search(REQUESTER, query)
    offers = [o for o in result.offers if o.provider == "acs"]
    assert offers, result.problems
    return offers[0]


def purchases(bot) -> int:
    return bot.sandbox.acs.count("POST", r"/availablePhoneNumbers/:purchase$")


async def test_search_fans_out_and_sorts_cheapest_first(bot):
    result = await bot.svc.search(REQUESTER, SearchQuery("US", "tollfree", sms=True))
    assert set(result.providers) == {"acs", "plivo", "twilio", "telnyx"}
    providers = {o.provider for o in result.offers}
    assert providers == {"acs", "plivo", "twilio", "telnyx"}
    costs = [o.unit_monthly_cost for o in result.offers]
    assert costs == sorted(costs)
    acs = next(o for o in result.offers if o.provider == "acs")
    assert acs.expires_at is not None and acs.numbers and acs.ref["search_id"]
    # offers are kept (held searches) so a later request can use them
    assert bot.store.get_offer(acs.id).ref == acs.ref


async def test_purchase_end_to_end_buys_exactly_once(bot):
    offer = await acs_offer(bot)
    request = await bot.svc.request(REQUESTER, offer.id, "Support line for the spring campaign")
    assert request.state == State.PENDING
    assert request.monthly_total == Decimal("4.00") and request.quantity == 2
    result = await bot.svc.approve(request.id, APPROVER)
    assert result.complete
    done = await bot.settle(request.id)
    assert done.state == State.FULFILLED
    assert sorted(done.numbers) == sorted(offer.numbers)
    assert purchases(bot) == 1
    kinds = [e.kind for e in done.events]
    assert kinds == ["requested", "approved", "fulfilling", "submitted", "fulfilled"]
    assert bot.notes.whats(request.id) == ["created", "approved", "fulfilling", "fulfilled"]
    assert set(offer.numbers) <= set(bot.sandbox.acs.purchased())


async def test_plivo_rent_fulfilled_and_regulated_pending(bot):
    result = await bot.svc.search(REQUESTER, SearchQuery("US", "local", "415", provider="plivo"))
    group = result.offers[0]
    request = await bot.svc.request(REQUESTER, group.id, "Sales team", quantity=3)
    assert request.monthly_total == group.unit_monthly_cost * 3
    await bot.svc.approve(request.id, APPROVER)
    done = await bot.settle(request.id)
    assert done.state == State.FULFILLED and len(done.numbers) == 3

    fr = (await bot.svc.search(REQUESTER, SearchQuery("FR", "local", provider="plivo"))).offers[0]
    request = await bot.svc.request(REQUESTER, fr.id, "Paris office", quantity=2)
    await bot.svc.approve(request.id, APPROVER)
    done = await bot.settle(request.id)
    assert done.state == State.PROVIDER_PENDING
    assert "additional information" in done.outcome
    assert bot.notes.whats(request.id)[-1] == "provider_pending"


async def test_plivo_crash_after_rent_goes_to_needs_attention_with_one_rent(bot):
    """Plivo rented, then the answer was lost: Plivo cannot be asked, so a person must look."""
    group = (await bot.svc.search(REQUESTER, SearchQuery("US", "local", "212", provider="plivo"))).offers[0]
    request = await bot.svc.request(REQUESTER, group.id, "Ops", quantity=1)
    bot.sandbox.plivo.faults.add("after", method="POST", path=r"/AvailableNumberGroup/\d+/$", status=502)
    await bot.svc.approve(request.id, APPROVER)
    done = await bot.settle(request.id)
    assert done.state == State.NEEDS_ATTENTION
    assert "Plivo console" in done.outcome
    assert bot.sandbox.plivo.count("POST", r"/AvailableNumberGroup/\d+/$") == 1
    assert bot.notes.whats(request.id)[-1] == "needs_attention"


async def test_acs_purchase_answer_lost_is_recovered_by_asking(bot):
    """ACS bought, then the answer was lost: ask purchase_<searchId>, poll it, no second purchase."""
    offer = await acs_offer(bot)
    request = await bot.svc.request(REQUESTER, offer.id, "why")
    bot.sandbox.acs.faults.add("after", method="POST", path=r":purchase$", status=503)
    await bot.svc.approve(request.id, APPROVER)
    done = await bot.settle(request.id)
    assert done.state == State.FULFILLED
    assert purchases(bot) == 1
    assert "recovered" in [e.kind for e in done.events]


async def test_acs_purchase_that_never_arrived_is_sent_again_once(bot):
    offer = await acs_offer(bot)
    request = await bot.svc.request(REQUESTER, offer.id, "why")
    bot.sandbox.acs.faults.add("drop", method="POST", path=r":purchase$")
    await bot.svc.approve(request.id, APPROVER)
    done = await bot.settle(request.id)
    assert done.state == State.FULFILLED
    assert purchases(bot) == 2  # the first never reached the service
    assert len([n for n in bot.sandbox.acs.purchased() if n in offer.numbers]) == 2


async def test_purchase_operation_that_fails_ends_failed_with_the_reason(bot):
    offer = await acs_offer(bot)
    request = await bot.svc.request(REQUESTER, offer.id, "why")
    bot.sandbox.acs.fail_next_purchase("Billing account is suspended.")
    await bot.svc.approve(request.id, APPROVER)
    done = await bot.settle(request.id)
    assert done.state == State.FAILED
    assert "Billing account is suspended." in done.outcome
    assert bot.notes.whats(request.id)[-1] == "failed"


async def test_expired_hold_is_searched_again_on_approval(bot):
    offer = await acs_offer(bot)
    request = await bot.svc.request(REQUESTER, offer.id, "why")
    bot.advance(17 * 60)  # the hold (16 min) is gone; the request (24 h) is not
    await bot.svc.approve(request.id, APPROVER)
    done = await bot.settle(request.id)
    assert done.state == State.FULFILLED
    assert "rehold" in [e.kind for e in done.events]
    assert done.offer_id != offer.id
    assert purchases(bot) == 1


async def test_expired_hold_costing_more_goes_back_for_a_fresh_approval(bot):
    offer = await acs_offer(bot)
    request = await bot.svc.request(REQUESTER, offer.id, "why")
    bot.advance(17 * 60)
    acs = bot.c.providers["acs"]
    real_search = acs.search

    async def dearer(query):
        drafts = await real_search(query)
        for d in drafts:
            d.unit_monthly_cost = d.unit_monthly_cost * 2
        return drafts

    acs.search = dearer
    await bot.svc.approve(request.id, APPROVER)
    back = await bot.settle(request.id)
    assert back.state == State.PENDING
    assert back.approvals == [] and back.unit_monthly_cost == Decimal("4.00")
    assert "fresh approval" in back.outcome
    assert purchases(bot) == 0
    assert bot.notes.whats(request.id)[-1] == "reapproval"
    # approving the new offer buys it
    acs.search = real_search
    await bot.svc.approve(request.id, APPROVER)
    done = await bot.settle(request.id)
    assert done.state == State.FULFILLED and purchases(bot) == 1


async def test_two_approvals_needed(bot_factory):
    bot = bot_factory(NUMBERS_REQUIRED_APPROVALS=2)
    offer = await acs_offer(bot)
    request = await bot.svc.request(REQUESTER, offer.id, "why")
    first = await bot.svc.approve(request.id, APPROVER)
    assert not first.complete and first.approvals == 1 and first.request.state == State.PENDING
    with pytest.raises(Conflict):
        await bot.svc.approve(request.id, APPROVER)  # the same approver twice does not count
    second = await bot.svc.approve(request.id, APPROVER2)
    assert second.complete and second.request.state == State.APPROVED
    assert second.request.approvals == [APPROVER, APPROVER2]


async def test_refusals_change_nothing_and_are_audited(bot):
    offer = await acs_offer(bot)
    request = await bot.svc.request(REQUESTER, offer.id, "why")
    with pytest.raises(NotAllowed, match="Only approvers"):
        await bot.svc.approve(request.id, OUTSIDER)
    with pytest.raises(NotAllowed, match="Only approvers"):
        await bot.svc.deny(request.id, OUTSIDER, "no")
    with pytest.raises(NotAllowed, match="Only the requester"):
        await bot.svc.cancel(request.id, OUTSIDER)
    with pytest.raises(NotFound):
        await bot.svc.approve(99999, APPROVER)
    now = (await bot.svc.get(request.id))
    assert now.state == State.PENDING and now.approvals == []
    refused = [e for e in now.events if e.kind == "refused"]
    assert len(refused) == 3 and all(e.actor == OUTSIDER for e in refused)


async def test_self_approval_refused_unless_allowed(bot_factory):
    bot = bot_factory(NUMBERS_APPROVERS=f"{REQUESTER},{APPROVER}")
    offer = await acs_offer(bot)
    request = await bot.svc.request(REQUESTER, offer.id, "why")
    with pytest.raises(NotAllowed, match="own request"):
        await bot.svc.approve(request.id, REQUESTER)
    assert (await bot.svc.get(request.id)).state == State.PENDING

    bot2 = bot_factory(NUMBERS_APPROVERS=f"{REQUESTER}", NUMBERS_ALLOW_SELF_APPROVAL=True)
    offer = await acs_offer(bot2)
    request = await bot2.svc.request(REQUESTER, offer.id, "why")
    assert (await bot2.svc.approve(request.id, REQUESTER)).complete


async def test_auto_approve_below_threshold(bot_factory):
    bot = bot_factory(NUMBERS_AUTO_APPROVE_BELOW="5")
    offer = await acs_offer(bot)  # 2 × $2.00 = $4.00 < $5
    request = await bot.svc.request(REQUESTER, offer.id, "why")
    assert request.state == State.APPROVED and request.decided_by == "policy"
    assert "approved by policy" in request.events[-1].message
    done = await bot.settle(request.id)
    assert done.state == State.FULFILLED


async def test_budget_refuses_with_figures(bot_factory):
    bot = bot_factory(NUMBERS_MONTHLY_BUDGET="5")
    first = await bot.svc.request(REQUESTER, (await acs_offer(bot)).id, "one")
    await bot.svc.approve(first.id, APPROVER)  # $4 of $5
    second = await bot.svc.request(REQUESTER, (await acs_offer(bot)).id, "two")
    with pytest.raises(NotAllowed, match=r"Over budget.*\$4\.00.*\$8\.00.*\$5\.00"):
        await bot.svc.approve(second.id, APPROVER)
    assert (await bot.svc.get(second.id)).state == State.PENDING


async def test_quantity_and_justification_checks(bot):
    group = (await bot.svc.search(REQUESTER, SearchQuery("US", "local", "415", provider="plivo"))).offers[0]
    with pytest.raises(NotAllowed, match="At most 10"):
        await bot.svc.request(REQUESTER, group.id, "why", quantity=11)
    with pytest.raises(UsageError, match="justification is required"):
        await bot.svc.request(REQUESTER, group.id, "   ", quantity=1)
    with pytest.raises(NotFound, match="no offer"):
        await bot.svc.request(REQUESTER, "onothere", "why")
    with pytest.raises(NotAllowed, match="At most 10"):
        await bot.svc.search(REQUESTER, SearchQuery("US", quantity=11))


async def test_deny_and_cancel(bot):
    a = await bot.svc.request(REQUESTER, (await acs_offer(bot)).id, "a")
    b = await bot.svc.request(REQUESTER, (await acs_offer(bot)).id, "b")
    denied = await bot.svc.deny(a.id, APPROVER, "Use the shared line")
    assert denied.state == State.DENIED and denied.outcome == "Use the shared line"
    with pytest.raises(Conflict):
        await bot.svc.approve(a.id, APPROVER2)
    cancelled = await bot.svc.cancel(b.id, REQUESTER)
    assert cancelled.state == State.CANCELLED
    assert [r.id for r in (await bot.svc.mine(REQUESTER))] == [b.id, a.id]
    assert await bot.svc.pending(APPROVER) == []
    with pytest.raises(NotAllowed):
        await bot.svc.pending(REQUESTER)


async def test_pending_requests_expire_and_approvers_are_reminded(bot):
    request = await bot.svc.request(REQUESTER, (await acs_offer(bot)).id, "why")
    bot.advance(4 * 3600 + 1)
    await bot.c.worker.run_once()
    assert bot.notes.whats(request.id)[-1] == "reminder"
    await bot.c.worker.run_once()
    assert bot.notes.whats(request.id).count("reminder") == 1  # one reminder only
    bot.advance(20 * 3600)
    await bot.c.worker.run_once()
    expired = (await bot.svc.get(request.id))
    assert expired.state == State.EXPIRED
    assert bot.notes.whats(request.id)[-1] == "expired"


async def test_concurrent_approvals_buy_once(bot_factory):
    bot = bot_factory(NUMBERS_REQUIRED_APPROVALS=1)
    request = await bot.svc.request(REQUESTER, (await acs_offer(bot)).id, "why")
    clicks = [bot.svc.approve(request.id, who) for who in [APPROVER, APPROVER2] * 10]
    results = await asyncio.gather(*clicks, return_exceptions=True)
    wins = [r for r in results if not isinstance(r, Exception)]
    assert len(wins) == 1
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, Exception))
    done = await bot.settle(request.id)
    assert done.state == State.FULFILLED
    assert purchases(bot) == 1
    assert [e.kind for e in done.events].count("approved") == 1


async def test_audit_csv_streams_every_event(bot):
    request = await bot.svc.request(REQUESTER, (await acs_offer(bot)).id, "why, with \"quotes\", and commas")
    await bot.svc.approve(request.id, APPROVER)
    await bot.settle(request.id)
    with pytest.raises(NotAllowed):
        await bot.svc.audit_csv(REQUESTER)
    text = "".join(await bot.svc.audit_csv(APPROVER, 30))
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(text)))
    kinds = [r["kind"] for r in rows]
    for kind in ("searched", "requested", "approved", "fulfilling", "submitted", "fulfilled", "refused"):
        assert kind in kinds
    justifications = [json.loads(r["data"]).get("justification") for r in rows if r["kind"] == "requested"]
    assert justifications == ['why, with "quotes", and commas']


async def test_budget_holds_when_two_processes_approve_at_once(bot_factory, store_target, monkeypatch):
    """Two requests, room in the monthly budget for one, approved at the same moment from two
    processes (two connections, two threads): both read the budget before either writes, and
    still only one approval commits; the other is refused with the figures and audited."""
    import threading

    from tests.conftest import make_env

    bot = bot_factory(NUMBERS_MONTHLY_BUDGET="5", NUMBERS_DB=store_target)
    first = await bot.svc.request(REQUESTER, (await acs_offer(bot)).id, "one")  # $4
    second = await bot.svc.request(REQUESTER, (await acs_offer(bot)).id, "two")  # $4
    both_read = threading.Barrier(2, timeout=10)
    in_transaction = threading.Condition()
    read_in_transaction: list = []
    results: list = []
    real_committed = Store.committed_this_month

    def read_in_transaction_then_wait(store, now=None):
        value = real_committed(store, now)
        conn = store.db.conn
        if conn.in_transaction if store.engine == "sqlite" else conn.info.transaction_status.name == "INTRANS":
            # The check in the approving transaction: give the other process every chance to read
            # too before this one commits. It never should (it queues for the lock), so the wait
            # ends by its bound; a store that let both read would approve both.
            with in_transaction:
                read_in_transaction.append(value)
                in_transaction.notify_all()
                in_transaction.wait_for(lambda: len(read_in_transaction) == 2, timeout=2)
        return value

    monkeypatch.setattr(Store, "committed_this_month", read_in_transaction_then_wait)

    def process(request_id: int, approver: str) -> None:
        async def run():
            env = make_env(bot.c.settings, sandbox=bot.sandbox)
            real = env.store.committed_this_month
            calls = []

            def read_then_wait(now=None):
                value = real(now)
                calls.append(value)
                if len(calls) == 1:  # the early check: wait until the other process has read too
                    both_read.wait()
                return value

            env.store.committed_this_month = read_then_wait
            try:
                results.append(await env.svc.approve(request_id, approver))
            except Exception as exc:  # noqa: BLE001 - the refusal is what we look at
                results.append(exc)
            finally:
                await env.c.aclose()

        asyncio.run(run())

    threads = [
        threading.Thread(target=process, args=(first.id, APPROVER)),
        threading.Thread(target=process, args=(second.id, APPROVER2)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(results) == 2
    assert sum(isinstance(r, NotAllowed) for r in results) == 1, results
    assert [(await bot.svc.get(r.id)).state for r in (first, second)].count(State.PENDING) == 1
    assert bot.store.committed_this_month() == Decimal("4.00")
    refused = [e for r in (first, second) for e in (await bot.svc.get(r.id)).events if e.kind == "refused"]
    assert len(refused) == 1 and "Over budget" in refused[0].message


async def test_a_hold_acs_calls_expired_is_searched_again_with_the_local_clock_behind(settings_env):
    """The bot's clock 3 s behind ACS: the bot still counts the hold while ACS says it is gone."""
    from datetime import timedelta

    from bot.sandbox import SandboxServices
    from bot.sandbox.common import Clock

    settings = settings_env(NUMBERS_SANDBOX=True, NUMBERS_POLL_INTERVAL=0.01)
    acs_clock = Clock()
    sandbox = SandboxServices.create(None, clock=acs_clock)
    bot = make_env(settings, sandbox=sandbox)
    bot.c.service.clock = lambda: acs_clock.now() - timedelta(seconds=3)  # the bot's clock, behind
    try:
        offer = await acs_offer(bot)
        request = await bot.svc.request(REQUESTER, offer.id, "why")
        acs_clock.advance(16 * 60 + 1)  # ACS: the hold ended a second ago; the bot: two seconds to go
        assert (await bot.svc.get(request.id)).hold_expires_at > bot.c.service.clock()
        await bot.svc.approve(request.id, APPROVER)
        done = await bot.settle(request.id)
        assert done.state == State.FULFILLED, done.outcome
        kinds = [e.kind for e in done.events]
        assert "hold_expired" in kinds and "rehold" in kinds
    finally:
        await bot.c.aclose()
