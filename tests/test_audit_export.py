"""``/numbers audit`` streams the CSV from the store to Slack's upload: memory stays bounded whatever
the size of the log, and the event loop keeps answering (acks) while it runs."""

from __future__ import annotations

import asyncio
import json
import time
import tracemalloc

from bot.domain.values import ts
from tests.slack_harness import APPROVER, slack_bot  # noqa: F401  (fixture)

EVENTS = 50_000
MESSAGE = "approved by policy below the limit; " + "m" * 160


def fill_audit_log(store, now) -> None:
    data = json.dumps({"offer": "oabcdefg", "quantity": 2, "justification": "Support line for the spring campaign"})
    rows = [(ts(now), None, "UREQUESTER", "searched", f"{MESSAGE} {i}", data) for i in range(EVENTS)]
    store.db.conn.executemany("INSERT INTO events (at, request_id, actor, kind, message, data) VALUES (?, ?, ?, ?, ?, ?)", rows)
    store.db.conn.commit()


async def test_audit_export_streams_in_bounded_memory_without_stalling_acks(slack_bot):
    bot, slack = slack_bot, slack_bot.slack
    slack.upload_digest = True
    fill_audit_log(bot.store, bot.clock.now())

    lag = 0.0
    running = True

    async def ticker() -> None:
        nonlocal lag
        last = time.monotonic()
        while running:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            lag = max(lag, now - last - 0.01)
            last = now

    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        tick = asyncio.create_task(ticker())
        response, url = await bot.command("audit 7", user=APPROVER)
        assert response.status_code == 200
        done = await slack.wait_for(lambda: slack.of("files.completeUploadExternal"), timeout=120, what="the upload")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        running = False
        tracemalloc.stop()
    await tick
    [upload_call] = slack.of("files.getUploadURLExternal")
    declared = int(upload_call.params["length"])
    [(file_id, recorded)] = slack.uploads.items()
    size = int(recorded.split(b":")[0])
    assert size == declared == int(slack.upload_lengths[file_id]) and size > 10_000_000
    assert f"{EVENTS + 1:,} events" in done[0].params["initial_comment"] or f"{EVENTS + 1} events" in done[0].params["initial_comment"]
    # The CSV is over 10 MB; what the export held at once is a small fraction of it.
    assert peak - base < 4_000_000, f"peak {peak - base:,} bytes for a {size:,}-byte CSV"
    assert lag < 0.5, f"the event loop stalled {lag:.2f}s"
    assert "is in our DM" in (await bot.response_to(url))[-1]["text"]
