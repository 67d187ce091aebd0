"""``numbers-bot serve`` as two processes, end to end: the ack process and the work process it supervises.

Real processes (``tests.reliability_harness.ServedBot``): signed requests to the front's HTTP port,
Slack's Web API at a RecordingSlack, providers at ``numbers-bot sandbox`` in another process. The work
process is found as the front's child (``/proc``), stopped (SIGSTOP) to keep rows in the inbox,
and killed; the front is killed after it has acked; another process holds the store's write lock.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from bot.inbox import Inbox
from tests.reliability_harness import FORM, ServedBot, ServedSandbox, until
from tests.slack_harness import REQUESTER, RecordingSlack, SlackSigner, offers_in, slash_command
from tests.test_slack_flow import request_offer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the work process through /proc"),
]

SEARCH = "search US tollfree 833 x2"


@pytest.fixture
async def world(tmp_path):
    slack = await RecordingSlack().start()
    sandbox = await ServedSandbox(tmp_path).start()
    bots: list[ServedBot] = []

    def make(**env: str) -> ServedBot:
        bot = ServedBot(tmp_path, slack.api_url, sandbox, tmp_path / "bot.db", **env)
        bot.slack = slack
        bots.append(bot)
        return bot

    make.slack = slack
    yield make
    for bot in bots:
        bot.stop()
        bot.close()
        await bot.http.aclose()
    sandbox.stop()
    await slack.stop()


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def work_pid(bot: ServedBot, not_this: int | None = None) -> int:
    assert bot.process is not None
    front = bot.process.pid
    return await until(
        lambda: next((p for p in children(front) if p != not_this and alive(p)), None), 20, "the work process"
    )


def inbox_of(bot: ServedBot) -> Inbox:
    return Inbox(bot.db.with_suffix(".inbox.db"))


async def test_acks_come_from_the_front_and_the_work_process_carries_the_flow(world):
    bot = await world().start()
    worker = await work_pid(bot)
    assert worker != bot.process.pid
    request, ts = await request_offer(bot)  # search, Request click, form, approval card: through both processes
    assert request.state.value == "pending" and ts
    inbox = inbox_of(bot)
    await until(lambda: inbox.count() == 0, 10, "the inbox to empty")
    inbox.close()
    process = bot.process
    bot.stop()  # SIGTERM to serve
    await until(lambda: not process.alive() and not alive(worker), 30, "both processes to end")


async def test_a_killed_work_process_is_restarted_and_runs_what_was_acked_once(world):
    bot = await world().start()
    worker = await work_pid(bot)
    os.kill(worker, signal.SIGSTOP)  # it takes nothing from the inbox now
    response, url = await bot.command(SEARCH)
    assert response.status_code == 200 and "Searching" in response.text
    inbox = inbox_of(bot)
    assert inbox.count() == 1
    os.kill(worker, signal.SIGKILL)
    await work_pid(bot, not_this=worker)  # the front started another
    posts = await bot.response_to(url)
    assert offers_in(posts[0])
    await until(lambda: inbox.count() == 0, 10, "the row to be deleted")
    assert len(world.slack.response_posts(url)) == 1  # answered once
    inbox.close()


async def test_a_front_killed_after_acking_leaves_the_row_and_the_next_start_runs_it(world):
    bot = await world().start()
    worker = await work_pid(bot)
    os.kill(worker, signal.SIGSTOP)
    response, url = await bot.command(SEARCH)
    assert response.status_code == 200
    bot.kill()  # SIGKILL to the front: its work process dies with it
    await until(lambda: not alive(worker), 10, "the work process to die with the front")
    inbox = inbox_of(bot)
    assert inbox.count() == 1
    assert not world.slack.response_posts(url)
    await bot.start()
    posts = await bot.response_to(url)
    assert offers_in(posts[0])
    await until(lambda: inbox.count() == 0, 10, "the row to be deleted")
    assert len(world.slack.response_posts(url)) == 1
    inbox.close()


async def test_acks_answer_fast_while_another_process_holds_the_stores_write_lock(world):
    bot = await world(NUMBERS_DB_BUSY_TIMEOUT="20").start()
    await work_pid(bot)
    await bot.command("mine")  # the store exists and the work process is up
    holder = sqlite3.connect(bot.db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the write lock, held by this (another) process
    try:
        started = time.monotonic()
        answers = await asyncio.gather(*(bot.command(SEARCH) for _ in range(10)))
        elapsed = time.monotonic() - started
        assert all(r.status_code == 200 and "Searching" in r.text for r, _ in answers)
        assert elapsed < 3.0, f"10 acks took {elapsed:.2f}s with the store locked"
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    for _, url in answers:  # the work then goes on
        assert offers_in((await bot.response_to(url, timeout=40))[0])


async def test_a_row_older_than_a_response_url_lives_is_answered_as_not_carried_out(world):
    bot = world()
    url = world.slack.response_url("old")
    body = slash_command(SEARCH, user=REQUESTER, response_url=url)
    inbox = inbox_of(bot)
    inbox.put(body, {"content-type": FORM}, received=time.time() - 3600)
    await bot.start()
    posts = await bot.response_to(url)
    assert "was not carried out" in posts[0]["text"] and "60 minutes ago" in posts[0]["text"]
    await until(lambda: inbox.count() == 0, 10, "the row to be deleted")
    assert len(world.slack.response_posts(url)) == 1 and not offers_in(posts[0])
    inbox.close()


async def test_a_forged_request_to_the_front_is_refused_and_never_runs(world):
    bot = await world().start()
    url = world.slack.response_url("forged")
    body = slash_command(SEARCH, user=REQUESTER, response_url=url)
    answer = await bot.post(body, headers=SlackSigner("not-our-secret").headers(body, FORM))
    assert answer.status_code == 401
    inbox = inbox_of(bot)
    assert inbox.count() == 0
    ok, ok_url = await bot.command("mine")  # a signed one after it is answered: the forged one was not run
    await bot.response_to(ok_url)
    assert not world.slack.response_posts(url)
    inbox.close()


async def test_ctrl_c_to_serve_stops_both_processes_and_starts_no_other(world):
    bot = await world().start()
    worker = await work_pid(bot)
    process = bot.process
    assert process is not None
    # A request whose body is still coming keeps the front's shutdown waiting (up to the gate's body
    # timeout): long enough for a work process that quit on Ctrl-C by itself to be taken for a crash.
    port = int(bot.url.rsplit(":", 1)[1])
    slow = socket.create_connection(("127.0.0.1", port))
    slow.sendall(
        f"POST /slack/events HTTP/1.1\r\nHost: bot\r\nContent-Length: 100\r\nContent-Type: {FORM}\r\n"
        f"X-Slack-Request-Timestamp: {int(time.time())}\r\nX-Slack-Signature: v0={'0' * 64}\r\n\r\ntoken=".encode()
    )
    await asyncio.sleep(0.2)  # the front is reading that body  # noqa: ASYNC - a real client's pace, not a wait for a condition
    for pid in (worker, process.pid):  # a terminal's Ctrl-C reaches every process of the group
        os.kill(pid, signal.SIGINT)
    await until(lambda: not process.alive() and not alive(worker), 30, "both processes to end")
    slow.close()
    assert process.output().count("work process started") == 1
