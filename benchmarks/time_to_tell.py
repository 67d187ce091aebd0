"""Time to tell: from the provider's purchase operation turning ``succeeded`` to the user knowing.

In one process: the real worker (``NUMBERS_POLL_INTERVAL`` 2 s, the default)
drives ACS purchases against the in-memory ACS sandbox. The sandbox steps an
operation forward on each poll, which would make "when did it succeed" the
same instant as "when did the bot look"; so the benchmark wraps the sandbox's
operation GET: each purchase operation gets a moment ``done_at`` (uniformly
0–3 intervals after the bot's first poll of it) before which it answers
``running``, as a real service does, and after which the sandbox's own handler
answers ``succeeded``. Time to tell = when the user is told − ``done_at``.

Told means, per path:

* service: a notifier that timestamps ``notify(request, "fulfilled")``;
* slack: the real ``SlackNotifier`` against the stub Slack server: the
  ``chat.update`` of the approval card and the ``chat.postMessage`` DM to the
  requester, timestamped where the stub receives them.

Cases: the default poll interval, and ``set_retry_after(0.5)`` (operation GETs
carry ``Retry-After: 0.5``: the bot must poll at that pace instead). Target:
max time to tell ≤ the interval in force + 200 ms.

    .venv/bin/python benchmarks/time_to_tell.py               # 20 purchases per case
    .venv/bin/python benchmarks/time_to_tell.py --flows 10 --no-slack
"""

from __future__ import annotations

import argparse
import shutil
import asyncio
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

from bot.domain.offers import SearchQuery  # noqa: E402
from bot.sandbox import SandboxServices  # noqa: E402
from bot.sandbox.common import Response  # noqa: E402
from bot.services import StaticDirectory  # noqa: E402
from stub_slack import StubSlack  # noqa: E402

SLACK_MARGIN_MS = 200.0
TOLLFREE_POOLS = ["833", "844", "855", "866", "877", "888"]


class TimedOperations:
    """Wraps the ACS sandbox's dispatch: purchase operations succeed at a wall-clock moment, not per poll."""

    def __init__(self, sandbox: SandboxServices, spread: float, seed: int = 7):
        self.acs = sandbox.acs
        self.spread = spread
        self.rng = random.Random(seed)
        self.done_at: dict[str, float] = {}  # operation id -> monotonic moment it succeeded
        self.seen_done: dict[str, float] = {}  # operation id -> first poll that saw it succeeded
        self.polls: dict[str, list[float]] = {}
        self.acs.purchase_polls = 0  # the first poll the sandbox handles finishes the operation
        self._dispatch = self.acs.dispatch
        self.acs.dispatch = self.dispatch  # type: ignore[method-assign]

    async def dispatch(self, request):
        now = time.monotonic()
        if request.method == "GET" and "/phoneNumbers/operations/purchase_" in request.path:
            op_id = request.path.rsplit("/", 1)[-1]
            self.polls.setdefault(op_id, []).append(now)
            if op_id not in self.done_at:
                # Anchored at the first poll, so that success comes while the bot polls at the pace in force
                # (the purchase POST itself carries no Retry-After: the first poll comes one poll interval later).
                self.done_at[op_id] = now + self.rng.uniform(0, self.spread)
            if now < self.done_at[op_id]:
                return self._running(op_id)
            response = await self._dispatch(request)
            self.seen_done.setdefault(op_id, now)
            return response
        return await self._dispatch(request)

    def _running(self, op_id: str) -> Response:
        doc = dict(self.acs.state.get("acs_operations", op_id))
        doc["status"] = "running"
        headers = {}
        retry_after = self.acs.state.get("acs_knobs", "retry_after")
        if retry_after is not None:
            headers["Retry-After"] = f"{retry_after:g}"
        return Response.json(self.acs._operation_body(doc), 200, headers)


class StampingNotifier:
    def __init__(self) -> None:
        self.fulfilled: dict[int, float] = {}

    async def notify(self, request, what, *, actor=None, text=None) -> None:
        if what == "fulfilled":
            self.fulfilled.setdefault(request.id, time.monotonic())




async def run_case(path: str, retry_after: float | None, flows: int, poll: float, tmp: Path) -> dict[str, Any]:
    from bot.bootstrap import build

    stub = await StubSlack().start() if path == "slack" else None
    settings = C.sandbox_settings(tmp, poll, stub.api_url if stub else "http://127.0.0.1:9/api/")
    sandbox = SandboxServices.create(None)
    interval = retry_after if retry_after is not None else poll
    timed = TimedOperations(sandbox, spread=3 * interval)
    if retry_after is not None:
        sandbox.acs.set_retry_after(retry_after)
    stamps = StampingNotifier()
    if path == "slack":
        from bot.slack.app import build_slack

        _, c = build_slack(settings, sandbox=sandbox)
    else:
        c = build(settings, sandbox=sandbox, notifier=stamps, directory=StaticDirectory(settings.approver_ids))
    svc = c.service
    worker_task = asyncio.create_task(c.worker.run())
    requests: list[tuple[int, str, str]] = []  # (request id, requester, operation id)
    try:
        # Search, request and approve every flow first (search polls take their own time), then watch.
        async def one(i: int) -> None:
            user = f"U{i + 1:07d}"
            result = await svc.search(user, SearchQuery("US", "tollfree", TOLLFREE_POOLS[i % 6], provider="acs"))
            offer = result.offers[0]
            request = await svc.request(user, offer.id, "time to tell benchmark")
            await svc.approve(request.id, C.APPROVER)
            requests.append((request.id, user, f"purchase_{offer.ref['search_id']}"))

        await asyncio.gather(*(one(i) for i in range(flows)))
        deadline = time.monotonic() + 6 * interval + 30
        while time.monotonic() < deadline:
            states = [svc.get(rid).state.value for rid, _, _ in requests]
            if all(s == "fulfilled" for s in states):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # the last notifications land
        delays: dict[str, list[float]] = {"notify": [], "card_update": [], "dm": []}
        poll_gaps: list[float] = []
        missing = 0
        for rid, user, op_id in requests:
            due = timed.done_at.get(op_id)
            if due is None:
                missing += 1
                continue
            polls = timed.polls.get(op_id, [])
            poll_gaps.extend(b - a for a, b in zip(polls, polls[1:]))
            if path == "service":
                if rid in stamps.fulfilled:
                    delays["notify"].append(stamps.fulfilled[rid] - due)
                else:
                    missing += 1
            else:
                req = svc.get(rid)
                updates = [t for t, ch, ts in stub.updates if ts == req.card_ts and t >= due]
                dms = [t for t, ch in stub.posts if ch == "D" + user[1:] and t >= due]
                if updates:
                    delays["card_update"].append(min(updates) - due)
                else:
                    missing += 1
                if dms:
                    delays["dm"].append(min(dms) - due)
    finally:
        await c.worker.stop()
        worker_task.cancel()
        await asyncio.gather(worker_task, return_exceptions=True)
        await c.aclose()
        if stub:
            await stub.stop()
    limit_ms = interval * 1000 + SLACK_MARGIN_MS
    out: dict[str, Any] = {
        "interval_in_force_s": interval,
        "flows": flows,
        "missing": missing,
        "poll_gap_ms": C.summary_ms(poll_gaps),
        "limit_ms": limit_ms,
    }
    for key, values in delays.items():
        if values:
            out[f"{key}_ms"] = C.summary_ms(values)
    measured = [out[f"{k}_ms"]["max"] for k in delays if f"{k}_ms" in out]
    out["target_met"] = bool(measured) and missing == 0 and max(measured) <= limit_ms
    return out


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="numbers-bench-tell-"))
    os.chdir(tmp)
    results: dict[str, Any] = {}
    paths = ["service"] + ([] if args.no_slack else ["slack"])
    for path in paths:
        for retry_after in (None, 0.5):
            name = f"{path}/{'poll_' + format(args.poll, 'g') + 's' if retry_after is None else 'retry_after_0.5s'}"
            results[name] = await run_case(path, retry_after, args.flows, args.poll, tmp)
            r = results[name]
            shown = {k: r[k]["max"] for k in ("notify_ms", "card_update_ms", "dm_ms") if k in r}
            C.one_line("time_to_tell", f"{name}: max {shown} ms, limit {r['limit_ms']} ms, met {r['target_met']}")
    shutil.rmtree(tmp, ignore_errors=True)
    return {"params": vars(args), "results": results, "targets_met": {k: v["target_met"] for k, v in results.items()}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--flows", type=int, default=20, help="purchases per case (run concurrently)")
    p.add_argument("--poll", type=float, default=2.0, help="NUMBERS_POLL_INTERVAL")
    p.add_argument("--no-slack", action="store_true")
    args = p.parse_args()
    data = asyncio.run(main_async(args))
    C.save_result("time_to_tell", data)
    C.one_line("time_to_tell", f"targets: {data['targets_met']}")


if __name__ == "__main__":
    main()
