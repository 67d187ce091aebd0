"""SQLite under load: the worker, 50 concurrent request handlers and another process write at once."""

from __future__ import annotations

import asyncio
import threading

from bot.domain.states import State
from bot.domain.offers import SearchQuery
from bot.store.db import Store
from tests.conftest import APPROVER, REQUESTER


async def test_fifty_handlers_the_worker_and_another_process(bot_factory, tmp_path):
    bot = bot_factory(NUMBERS_DB=str(tmp_path / "load.db"))
    # Two searches: fifty offers, one per request (a live request holds its offer).
    groups = [
        offer
        for _ in range(2)
        for offer in (await bot.svc.search(REQUESTER, SearchQuery("US", "local", provider="plivo"))).offers
    ]
    assert len(groups) >= 50

    # "Another process": its own connection to the same file, writing audit events in a loop.
    stop = threading.Event()
    other_writes: list[int] = []
    errors: list[BaseException] = []

    def other_process():
        store = Store(str(tmp_path / "load.db"))
        try:
            for i in range(400):
                if stop.is_set():
                    break
                store.add_event(None, "UOTHER", "note", f"other process write {i}")
                other_writes.append(i)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            store.close()

    writer = threading.Thread(target=other_process)
    writer.start()
    worker = asyncio.create_task(bot.c.worker.run())

    async def handler(i: int):
        offer = groups[i % len(groups)]
        request = await bot.svc.request(REQUESTER, offer.id, f"load {i}", quantity=1)
        await bot.svc.approve(request.id, APPROVER)
        return request.id

    ids = await asyncio.gather(*(handler(i) for i in range(50)))
    deadline = asyncio.get_running_loop().time() + 60
    while asyncio.get_running_loop().time() < deadline:
        states = {(await bot.svc.get(i)).state for i in ids}
        if states == {State.FULFILLED}:
            break
        await asyncio.sleep(0.05)
    stop.set()
    writer.join(timeout=30)
    await bot.c.worker.stop()
    worker.cancel()

    assert not errors, errors
    assert {(await bot.svc.get(i)).state for i in ids} == {State.FULFILLED}
    for i in ids:
        kinds = [e.kind for e in (await bot.svc.get(i)).events]
        assert kinds == ["requested", "approved", "fulfilling", "submitted", "fulfilled"], kinds
    notes = bot.store.db.execute("SELECT COUNT(*) FROM events WHERE kind = 'note'").fetchone()[0]
    assert notes == len(other_writes) > 0  # nothing lost on either side
    assert bot.sandbox.plivo.count("POST", r"/AvailableNumberGroup/\d+/$") == 50
