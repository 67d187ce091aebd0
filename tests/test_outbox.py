"""The outbox: a state change and what Slack must show of it commit together, and the delivering
process sends it in order, once, until the notifier takes it."""

from __future__ import annotations

import pytest

from bot.bootstrap import build
from bot.delivery import MAX_BACKOFF, OutboxSender
from bot.domain.errors import DeliveryDeferred
from bot.domain.states import State
from bot.domain.offers import SearchQuery
from bot.services import StaticDirectory
from bot.store import outbox
from tests.conftest import APPROVER, EMAILS, REQUESTER, RecordingNotifier, make_env

TOLLFREE = SearchQuery("US", "tollfree", "833", quantity=2, sms=True)


async def acs_offer(env):
    result = await env.svc.search(REQUESTER, TOLLFREE)
    return next(o for o in result.offers if o.provider == "acs")


def rows(store, request_id):
    return list(store.db.query("SELECT * FROM outbox WHERE request_id = ? ORDER BY id", [request_id]))


async def test_a_change_writes_its_notice_in_its_own_commit(bot):
    offer = await acs_offer(bot)
    request = await bot.svc.request(REQUESTER, offer.id, "Support line")
    assert [r["what"] for r in rows(bot.store, request.id)] == ["created"]

    def refuse(store):
        raise RuntimeError("the budget check said no")

    with pytest.raises(RuntimeError):
        bot.store.transition(
            request.id, State.PENDING, State.APPROVED, actor=APPROVER, kind="approved", message="x",
            also=refuse, notify=outbox.Notice("approved", APPROVER),
        )
    # Rolled back together: no "approved" notice for an approval that never happened.
    assert [r["what"] for r in rows(bot.store, request.id)] == ["created"]
    assert bot.store.get_request(request.id).state == State.PENDING


async def test_what_the_cli_writes_the_server_delivers(settings_env):
    settings = settings_env(NUMBERS_SANDBOX=True, NUMBERS_POLL_INTERVAL=0.01)
    server = make_env(settings)
    # The CLI: same store file, writes to the outbox, delivers nothing itself.
    cli_notes = RecordingNotifier()
    cli = build(
        settings, sandbox=server.sandbox, clock=server.clock.now, notifier=cli_notes,
        directory=StaticDirectory(settings.approver_ids, EMAILS), deliver=False,
    )
    try:
        offer = await acs_offer(server)
        request = await cli.service.request(REQUESTER, offer.id, "From the terminal")
        await cli.service.deny(request.id, APPROVER, "not this month")
        assert cli_notes.whats(request.id) == ["created", "denied"]  # shown on the terminal
        assert server.notes.whats(request.id) == []
        assert [r["delivered_at"] for r in rows(server.store, request.id)] == [None, None]

        await server.c.worker.run_once()  # the server's loop finds them
        await server.c.worker.drain(request.id)
        assert server.notes.whats(request.id) == ["created", "denied"]
        assert all(r["delivered_at"] for r in rows(server.store, request.id))
        await server.c.worker.run_once()
        await server.c.worker.drain(request.id)
        assert server.notes.whats(request.id) == ["created", "denied"]  # once
    finally:
        await cli.aclose()
        await server.c.aclose()


class FlakyNotifier(RecordingNotifier):
    """Refuses (as Slack down would) while ``down``; records what it took."""

    def __init__(self):
        super().__init__()
        self.down = False
        self.tries = 0

    async def notify(self, request, what, *, actor=None, text=None):
        self.tries += 1
        if self.down:
            raise DeliveryDeferred("HTTP 503")
        await super().notify(request, what, actor=actor, text=text)


async def test_a_refused_notice_waits_in_order_and_goes_once_slack_is_back(settings_env):
    settings = settings_env(NUMBERS_SANDBOX=True, NUMBERS_POLL_INTERVAL=0.01)
    notes = FlakyNotifier()
    env = make_env(settings, notes=notes)
    try:
        offer = await acs_offer(env)
        request = await env.svc.request(REQUESTER, offer.id, "Support line")
        notes.down = True
        await env.svc.approve(request.id, APPROVER)
        done = await env.settle(request.id)
        assert done.state == State.FULFILLED
        assert notes.whats(request.id) == ["created"]
        waiting = rows(env.store, request.id)
        assert [r["what"] for r in waiting if not r["delivered_at"]] == ["approved", "fulfilling", "fulfilled"]
        assert waiting[1]["attempts"] >= 1 and waiting[1]["last_error"] == "HTTP 503"

        notes.down = False
        sender: OutboxSender = env.svc.sender
        env.advance(MAX_BACKOFF)
        await sender.run_once()
        assert notes.whats(request.id) == ["created", "approved", "fulfilling", "fulfilled"]
        assert not [r for r in rows(env.store, request.id) if not r["delivered_at"]]
    finally:
        await env.c.aclose()


async def test_backoff_is_capped_so_recovery_is_seen_within_the_cap():
    assert [OutboxSender.backoff(n) for n in range(8)][-1] == MAX_BACKOFF <= 30


async def test_stopping_the_server_flushes_what_waits(settings_env):
    settings = settings_env(NUMBERS_SANDBOX=True, NUMBERS_POLL_INTERVAL=0.01)
    server = make_env(settings)
    cli = build(
        settings, sandbox=server.sandbox, clock=server.clock.now, notifier=RecordingNotifier(),
        directory=StaticDirectory(settings.approver_ids, EMAILS), deliver=False,
    )
    try:
        offer = await acs_offer(server)
        request = await cli.service.request(REQUESTER, offer.id, "written just before the server stops")
    finally:
        await cli.aclose()
    await server.c.aclose()  # stop: the outbox is flushed before the store closes
    assert server.notes.whats(request.id) == ["created"]


# --- pacing: a rate limit is a delay, never a loss -------------------------------------------


class FakeTime:
    def __init__(self):
        self.now = 0.0
        self.slept: list[float] = []

    def monotonic(self):
        return self.now

    async def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def rate_limited(retry_after: str):
    from slack_sdk.errors import SlackApiError
    from slack_sdk.web.async_slack_response import AsyncSlackResponse

    response = AsyncSlackResponse(
        client=None, http_verb="POST", api_url="chat.postMessage", req_args={}, data={"ok": False, "error": "ratelimited"},
        headers={"Retry-After": retry_after}, status_code=429,
    )
    return SlackApiError("ratelimited", response)


async def test_the_pacer_waits_out_retry_after_and_sends_again():
    from bot.slack.adapters.pacing import SlackPacer

    clock = FakeTime()
    pacer = SlackPacer(monotonic=clock.monotonic, sleep=clock.sleep)
    answers = [rate_limited("7"), {"ok": True}]

    async def call(**kwargs):
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert await pacer.call("chat.update", call, channel="C1", ts="1") == {"ok": True}
    assert clock.slept == [7.0]


async def test_the_pacer_spaces_posts_to_one_channel_after_a_short_burst():
    from bot.slack.adapters.pacing import SlackPacer

    clock = FakeTime()
    pacer = SlackPacer(rate=1.0, burst=3, monotonic=clock.monotonic, sleep=clock.sleep)
    sent = []

    async def post(**kwargs):
        sent.append((clock.now, kwargs["channel"]))
        return {"ok": True}

    for _ in range(5):
        await pacer.call("chat.postMessage", post, channel="C1")
    await pacer.call("chat.postMessage", post, channel="C2")  # another channel is not held up
    times = [t for t, c in sent if c == "C1"]
    assert times[:3] == [0.0, 0.0, 0.0] and times[3] >= 1.0 and times[4] >= 2.0
    assert sent[-1] == (times[4], "C2")


async def test_a_rate_limit_slack_keeps_answering_is_deferred_not_dropped(settings_env):
    from bot.slack.adapters.notifier import SlackNotifier
    from bot.slack.adapters.pacing import SlackPacer
    from bot.store.outbox import OutboxItem

    clock = FakeTime()

    class Client:
        async def chat_postMessage(self, **kwargs):
            raise rate_limited("30")

    settings = settings_env(NUMBERS_APPROVAL_CHANNEL="CAPPROVALS")
    notifier = SlackNotifier(Client(), settings, pacer=SlackPacer(max_tries=2, monotonic=clock.monotonic, sleep=clock.sleep))
    env_request = type("R", (), {"id": 1, "card_ts": None, "card_channel": None})()
    notifier._fresh = lambda request: _same(request)
    notifier.card = lambda request: _same({"text": "card", "blocks": []})
    with pytest.raises(DeliveryDeferred) as deferred:
        await notifier.deliver(OutboxItem(id=1, request=env_request, what="created", actor=None, text=None))
    assert deferred.value.retry_after and deferred.value.retry_after >= 1


async def _same(value):
    return value


class HeldNotifier(RecordingNotifier):
    """Takes a notice only when the test lets it: the first sender is mid-delivery meanwhile."""

    def __init__(self):
        super().__init__()
        import asyncio

        self.entered = asyncio.Event()
        self.go = asyncio.Event()

    async def notify(self, request, what, *, actor=None, text=None):
        self.entered.set()
        await self.go.wait()
        await super().notify(request, what, actor=actor, text=text)


async def test_two_servers_on_one_store_send_a_notice_once(settings_env):
    import asyncio

    from bot.store.db import Store
    from bot.store.threaded import ThreadedStore

    settings = settings_env(NUMBERS_SANDBOX=True, NUMBERS_POLL_INTERVAL=0.01)
    writer = make_env(settings)  # writes the notice; its own sender is not used
    writer.svc.sender = None
    offer = await acs_offer(writer)
    request = await writer.svc.request(REQUESTER, offer.id, "one notice, two servers")
    first_notes, second_notes = HeldNotifier(), RecordingNotifier()
    stores = [ThreadedStore(Store(settings.db_path)) for _ in range(2)]  # two processes: own connections
    first = OutboxSender(stores[0], first_notes, clock=writer.clock.now, owner="hostA:1:a")
    second = OutboxSender(stores[1], second_notes, clock=writer.clock.now, owner="hostB:2:b")
    try:
        delivering = asyncio.create_task(first.deliver(request.id))
        await first_notes.entered.wait()  # the first server is sending it now
        assert await second.deliver(request.id) is False  # leased: the second leaves it
        first_notes.go.set()
        assert await delivering is True
        assert await second.deliver(request.id) is True  # nothing left to send
        assert first_notes.whats(request.id) == ["created"] and second_notes.whats(request.id) == []
    finally:
        for store in stores:
            store.close()
        await writer.c.aclose()
