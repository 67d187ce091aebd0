"""Another process holding the store's write lock never freezes the bot.

SQLite runs on the store's threads, so acks and ``/healthz`` answer at once
while a write waits; a click whose write cannot get the lock within
``NUMBERS_DB_BUSY_TIMEOUT`` is told the store is busy, and nothing changes.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time

from bot.slack import ids
from tests.slack_harness import APPROVAL_CHANNEL, APPROVER, start_bot
from tests.test_slack_flow import request_offer

HOLD = 8.0  # seconds the other process keeps the write lock (at most)
ACK_LIMIT = 3.0


async def test_acks_and_healthz_answer_while_another_process_holds_the_write_lock(settings_env):
    bot = await start_bot(settings_env, NUMBERS_DB_BUSY_TIMEOUT=3.5)  # a write waits longer than an ack may
    try:
        request, ts = await request_offer(bot)
        other = sqlite3.connect(bot.settings.db_path, timeout=1, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # the other process's write lock
        try:
            started = time.monotonic()
            took = []
            for _ in range(3):
                t0 = time.monotonic()
                assert (await bot.http.get(bot.url + "/healthz")).status_code == 200
                response, _ = await bot.command("help")
                assert response.status_code == 200
                clicked, url = await bot.click(
                    ids.ACTION_APPROVE, str(request.id), user=APPROVER, channel=APPROVAL_CHANNEL, message_ts=ts
                )
                assert clicked.status_code == 200
                took.append(time.monotonic() - t0)
            answer = (await bot.response_to(url, timeout=10))[0]
            assert time.monotonic() - started < HOLD, "the lock must still be held while we measure"
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert max(took) < ACK_LIMIT, took
        assert "store is busy" in answer["text"]
        assert bot.store.get_request(request.id).state.value == "pending"
        # Once the lock is gone the same click goes through.
        await bot.click(ids.ACTION_APPROVE, str(request.id), user=APPROVER, channel=APPROVAL_CHANNEL, message_ts=ts)
        await bot.state_of(request.id, {"fulfilled"})
    finally:
        await bot.stop()
        await bot.slack.stop()
