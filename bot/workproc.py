"""The work process of ``numbers-bot serve`` (HTTP mode): the inbox in, the Bolt app's listeners out.

Started by the ack process (``bot.front``, ``bot.supervisor``) as ``python -m bot.workproc --inbox
PATH --nudge-fd N --parent PID``. It reads the inbox (``bot.inbox``) in order and dispatches each
row through the same Bolt ``AsyncApp`` as the one-process server, built with ``handed_over``: the
front verified the signature and answered Slack, so the ack a listener sends goes nowhere, and a
dispatch returns once the listener has run; only then is the row deleted. The fulfilment worker
and the outbox run here too, exactly as in the one-process server.

On start it finds the rows a crash left (all of them: it starts from the first) and runs them
again: the services' compare-and-set and the one-live-request-per-offer index make a second run
of a half-done listener harmless. A row older than a ``response_url`` lives (30 minutes) is not
run: its user is told it was not carried out.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable

from bot.config import Settings, load_settings
from bot.front import parse_body
from bot.inbox import Inbox, InboxRow
from bot.logs import configure_logging

__all__ = ["Drain", "STALE_AFTER", "main", "run_work"]

log = logging.getLogger("bot.workproc")

STALE_AFTER = 30 * 60.0  # seconds a response_url works; an older row is answered as failed, not run
POLL = 0.5  # seconds between looks at the inbox when no nudge comes (and at the parent)
BATCH = 200


class Drain:
    """Rows to listeners, in order; each row deleted when its listener has run."""

    def __init__(
        self,
        app: Any,
        deps: Any,
        inbox: Inbox,
        *,
        clock: Callable[[], float] = time.time,
        stale_after: float = STALE_AFTER,
        poll: float = POLL,
    ):
        self.app = app
        self.deps = deps
        self.inbox = inbox
        self.clock = clock
        self.stale_after = stale_after
        self.poll = poll
        self.wake = asyncio.Event()
        self.stopping = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()
        self.last_id = 0

    async def run(self, parent: int | None = None) -> None:
        """Until ``stopping``: take new rows, start each; wait for a nudge or ``poll`` seconds."""
        while not self.stopping.is_set():
            self.wake.clear()  # before reading: a nudge that comes after the read wakes the wait below
            rows = await asyncio.to_thread(self.inbox.after, self.last_id, BATCH)
            for row in rows:
                self.last_id = row.id
                task = asyncio.create_task(self.handle(row), name=f"inbox row {row.id}")
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
            if len(rows) == BATCH:
                continue
            if parent is not None and os.getppid() != parent:
                log.error("the ack process is gone; stopping")
                return
            waits = [asyncio.ensure_future(self.wake.wait()), asyncio.ensure_future(self.stopping.wait())]
            await asyncio.wait(waits, timeout=self.poll, return_when=asyncio.FIRST_COMPLETED)
            for waiting in waits:
                waiting.cancel()

    async def handle(self, row: InboxRow) -> None:
        try:
            if self.clock() - row.received > self.stale_after:
                await self.answer_stale(row)
            else:
                await self.dispatch(row)
        except Exception as exc:  # noqa: BLE001 - one bad row must not stop the others; never log its body
            log.error("inbox row %s failed outside its listener: %s", row.id, type(exc).__name__)
        await asyncio.to_thread(self.inbox.delete, row.id)

    async def dispatch(self, row: InboxRow) -> None:
        from slack_bolt.request.async_request import AsyncBoltRequest

        request = AsyncBoltRequest(body=row.body.decode("utf-8"), headers=dict(row.headers))
        response = await self.app.async_dispatch(request)
        if response.status >= 400:
            log.warning("inbox row %s: Bolt answered %s", row.id, response.status)

    async def answer_stale(self, row: InboxRow) -> None:
        """Tell the user a request too old to run was not carried out (``response_url``, else ephemeral, else DM)."""
        from bot.slack.answer import describe, origin_of, user_of
        from bot.slack.render.kit import safe
        from bot.slack.render.notices import note as note_message

        body = parse_body(row.body, row.headers.get("content-type", "").lower()) or {}
        user = user_of(body)
        minutes = int((self.clock() - row.received) // 60)
        log.warning("inbox row %s (%s) is %d minutes old; answered as not carried out", row.id, describe(body), minutes)
        if body.get("type") == "event_callback" or not isinstance(user, str):
            return  # an event (the Home tab opened) has nobody waiting for an answer
        origin = origin_of(body, user, self.deps)
        note = note_message(
            f":warning: numbers-bot was not running when you asked ({safe(describe(body))}, {minutes} minutes ago), "
            "so it was not carried out. Please try again."
        )
        await self.deps.reply(user, note, response_url=origin.response_url, channel=origin.channel)

    async def finish(self) -> None:
        """Stop taking rows; the rows started run on (stop waits for listeners, bounded)."""
        self.stopping.set()


def _watch_nudges(fd: int | None, drain: Drain) -> None:
    if fd is None:
        return
    loop = asyncio.get_running_loop()
    os.set_blocking(fd, False)

    def readable() -> None:
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return
        if not data:  # the ack process closed its end: it is gone or stopping
            loop.remove_reader(fd)
            drain.stopping.set()
            return
        drain.wake.set()

    loop.add_reader(fd, readable)


async def run_work(
    settings: Settings, inbox_path: Path, *, nudge_fd: int | None = None, parent: int | None = None, **overrides: Any
) -> None:
    """Build the Slack app and the components, drain the inbox until SIGTERM (or the front is gone), stop cleanly."""
    from bot.server import lifespan_worker
    from bot.slack.app import build_slack, slack_deps

    slack_app, components = build_slack(settings, handed_over=True, **overrides)
    deps = slack_deps(components, settings, slack_app.client)
    inbox = Inbox(inbox_path)
    drain = Drain(slack_app, deps, inbox)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, drain.stopping.set)
    # Ctrl-C reaches the whole process group: the front stops this process in its own time (SIGTERM);
    # an early exit here would be taken for a crash and restarted (``bot.supervisor`` ignores it from exec).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    start, stop = lifespan_worker(components)
    await start()
    _watch_nudges(nudge_fd, drain)
    try:
        await drain.run(parent)
    finally:
        await drain.finish()
        if nudge_fd is not None:
            loop.remove_reader(nudge_fd)
        if drain.tasks:  # rows under way finish (and are deleted); one cut short stays for the next start
            await asyncio.wait(set(drain.tasks), timeout=components.listener_grace)
        await stop()  # stops the worker (it records what it has sent) and closes the store
        inbox.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.workproc", description=__doc__.splitlines()[0])
    parser.add_argument("--inbox", required=True)
    parser.add_argument("--nudge-fd", type=int, default=None)
    parser.add_argument("--parent", type=int, default=None)
    args = parser.parse_args(argv)
    settings = load_settings()
    configure_logging(settings.log_level, settings.secrets())
    asyncio.run(run_work(settings, Path(args.inbox), nudge_fd=args.nudge_fd, parent=args.parent))
    return 0


if __name__ == "__main__":
    sys.exit(main())
