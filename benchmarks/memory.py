"""Memory over many requests: RSS after 10,000 full flows in one process ≤ 1.3 × RSS after the first 100.

Each flow is the whole life of a request through the real code: an ACS search
(``NumbersService.search``), ``request``, ``approve``, and the worker driving the
purchase to ``fulfilled`` (``Worker.drain``), against the in-process ACS sandbox
with a tiny poll interval. RSS (``VmRSS``) and the number of live objects are
sampled along the way (100, 1000, 5000, 10000 and every 1000).

What is not the bot's is kept out of the figure: the bot's store is a SQLite file
(its rows are data, not a leak); the sandbox's state is a file too by default
(``--sandbox-state memory`` keeps it in this process's memory instead, where it
grows with every operation the simulated provider remembers); the numbers a
flow bought are handed back to the sandbox's stock after each flow so that
10,000 purchases do not empty its catalogue.

``--trace`` takes tracemalloc snapshots at the first and last sample and lists
the lines whose allocations grew most: where a per-request leak lives.

    .venv/bin/python benchmarks/memory.py                  # 10,000 flows (a few minutes on 2 cores)
    .venv/bin/python benchmarks/memory.py --flows 2000 --trace
    .venv/bin/python benchmarks/memory.py --notifier slack # SlackNotifier against the stub Slack server
    .venv/bin/python benchmarks/memory.py --served         # RSS of the acking process of `numbers-bot serve`

``--served`` (``_memory_served.py``) measures the process that acks instead: ``numbers-bot serve``
as its own process tree, each flow one signed ``/numbers search US tollfree`` over HTTP (acked,
then searched, saved, rendered and posted by the process that does the work), RSS of the
acking process after 100 … 10,000 of them, with its GC pauses (issue 18's target).
"""

from __future__ import annotations

import argparse
import shutil
import asyncio
import gc
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

from bot.config import load_settings  # noqa: E402
from bot.domain.offers import SearchQuery  # noqa: E402
from bot.sandbox import SandboxServices  # noqa: E402
from bot.services import StaticDirectory  # noqa: E402

TOLLFREE_POOLS = ["833", "844", "855", "866", "877", "888"]
TARGET_RATIO = 1.3


class CountingNotifier:
    """Counts notifications; keeps nothing per request (a recording notifier would be the leak)."""

    def __init__(self) -> None:
        self.count = 0

    async def notify(self, request, what, *, actor=None, text=None) -> None:
        self.count += 1


def checkpoints(flows: int) -> list[int]:
    points = {p for p in (100, 1000, 5000, 10000) if p <= flows}
    points.update(range(1000, flows + 1, 1000))
    points.add(flows)
    return sorted(points)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from bot.bootstrap import build

    tmp = Path(tempfile.mkdtemp(prefix="numbers-bench-memory-"))
    os.chdir(tmp)
    for name in list(os.environ):
        if name.startswith(("NUMBERS_", "SLACK_", "ACS_", "PLIVO_", "WEBEX_")):
            del os.environ[name]
    stub = None
    if args.notifier == "slack":
        from stub_slack import StubSlack

        stub = await StubSlack().start()
        stub.keep_events = False
    settings = load_settings(
        NUMBERS_DB=str(tmp / "numbers.db"),
        NUMBERS_SANDBOX=True,
        NUMBERS_POLL_INTERVAL=args.poll,
        NUMBERS_APPROVERS=C.APPROVER,
        NUMBERS_APPROVAL_CHANNEL=C.APPROVAL_CHANNEL,
        SLACK_BOT_TOKEN=C.BOT_TOKEN,
        SLACK_SIGNING_SECRET=C.SIGNING_SECRET,
        SLACK_API_URL=stub.api_url if stub else "http://127.0.0.1:9/api/",
    )
    sandbox = SandboxServices.create(None if args.sandbox_state == "memory" else str(tmp / "sandbox.db"))
    if args.sandbox_state == "file":
        # The simulated provider's own file need not survive a power cut: without this every one of its
        # writes is an fsync, and the run measures the disk instead of the bot.
        for app in sandbox.apps.values():
            app.state.db.execute("PRAGMA synchronous=OFF")
    if args.notifier == "slack":
        from bot.slack.app import build_slack

        _, c = build_slack(settings, sandbox=sandbox)
        counter = None
    else:
        counter = CountingNotifier()
        c = build(settings, sandbox=sandbox, notifier=counter, directory=StaticDirectory(settings.approver_ids))
    svc, worker, acs = c.service, c.worker, sandbox.acs
    samples: list[dict[str, Any]] = []
    points = checkpoints(args.flows)
    snapshots: dict[str, Any] = {}
    failures = 0
    started = time.monotonic()
    if args.trace:
        tracemalloc.start(12)
    try:
        for i in range(1, args.flows + 1):
            user = f"U{i % 500:07d}"
            query = SearchQuery("US", "tollfree", TOLLFREE_POOLS[i % len(TOLLFREE_POOLS)], provider="acs")
            result = await svc.search(user, query)
            if not result.offers:
                raise RuntimeError(f"flow {i}: no offers ({result.problems})")
            offer = result.offers[0]
            request = await svc.request(user, offer.id, "memory benchmark")
            await svc.approve(request.id, C.APPROVER)
            done = await worker.drain(request.id, timeout=30)
            if done.state.value != "fulfilled":
                failures += 1
            for number in done.numbers:  # back to the sandbox's stock
                acs.state.delete("acs_numbers", number)
            if i in points:
                gc.collect()
                sample = {
                    "flows": i,
                    "rss_mib": round(C.rss_kib() / 1024, 1),
                    "objects": len(gc.get_objects()),
                    "elapsed_s": round(time.monotonic() - started, 1),
                }
                samples.append(sample)
                C.one_line("memory", f"{sample}")
                if args.trace and i == (args.trace_from if args.trace_from in points else points[0]):
                    snapshots["first"] = tracemalloc.take_snapshot()
                if args.trace and i == points[-1]:
                    snapshots["last"] = tracemalloc.take_snapshot()
            if time.monotonic() - started > args.max_seconds:
                C.one_line("memory", f"stopping at {i} flows: --max-seconds {args.max_seconds} reached")
                if i not in points:
                    gc.collect()
                    samples.append({"flows": i, "rss_mib": round(C.rss_kib() / 1024, 1),
                                    "objects": len(gc.get_objects()), "elapsed_s": round(time.monotonic() - started, 1)})
                if args.trace and "first" in snapshots:
                    snapshots["last"] = tracemalloc.take_snapshot()
                break
    finally:
        # The SlackNotifier keeps one lock per request id it was told about (bot/slack/adapters/notifier.py).
        locks = getattr(c.service.notifier, "_locks", None)
        notifier_locks = len(locks) if locks is not None else None
        await c.aclose()
        if stub:
            await stub.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    growth: list[dict[str, Any]] = []
    if "first" in snapshots and "last" in snapshots:
        filters = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen importlib._bootstrap*>")]
        diff = snapshots["last"].filter_traces(filters).compare_to(snapshots["first"].filter_traces(filters), "traceback")
        for stat in diff[:12]:
            frames = [f"{f.filename.replace(str(C.ROOT) + '/', '')}:{f.lineno}" for f in stat.traceback[-6:]]
            growth.append({"size_diff_kib": round(stat.size_diff / 1024, 1), "count_diff": stat.count_diff,
                           "traceback": frames})
        tracemalloc.stop()
    base = next((s for s in samples if s["flows"] >= 100), samples[0] if samples else None)
    last = samples[-1] if samples else None
    ratio = C.ratio(last["rss_mib"], base["rss_mib"]) if base and last else None
    flows_done = last["flows"] if last else 0
    return {
        "params": vars(args),
        "samples": samples,
        "failures": failures,
        "flows_done": flows_done,
        "seconds": round(time.monotonic() - started, 1),
        "ms_per_flow": round((time.monotonic() - started) * 1000 / max(1, flows_done), 2),
        "rss_ratio_last_over_100": ratio,
        "target": f"RSS after {args.flows} ≤ {TARGET_RATIO} × RSS after 100",
        "target_met": ratio is not None and ratio <= TARGET_RATIO and flows_done == args.flows,
        "tracemalloc_growth_top": growth,
        "notifications": counter.count if counter else None,
        "slack_notifier_locks_kept": notifier_locks,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--flows", type=int, default=10_000)
    p.add_argument("--poll", type=float, default=0.001, help="NUMBERS_POLL_INTERVAL (the sandbox answers at once)")
    p.add_argument("--sandbox-state", choices=["file", "memory"], default="file")
    p.add_argument("--notifier", choices=["counting", "slack"], default="counting")
    p.add_argument("--trace", action="store_true", help="tracemalloc diff between the first and last sample (slower)")
    p.add_argument("--trace-from", type=int, default=1000,
                   help="the tracemalloc baseline sample (after the sandbox's bounded request log has filled)")
    p.add_argument("--max-seconds", type=float, default=570.0, help="hard stop, so a run ends in under 10 minutes")
    p.add_argument("--served", action="store_true", help="RSS of the acking process of `numbers-bot serve` over HTTP")
    p.add_argument("--concurrency", type=int, default=10, help="--served: commands in flight")
    p.add_argument("--batch", type=int, default=200, help="--served: commands sent before waiting for their answers")
    p.add_argument("--bot-src", metavar="DIR", help="--served: run the bot from this tree (see ack_latency.py)")
    args = p.parse_args()
    if args.served:
        from _memory_served import run_served
        from _procs import exit_on_sigterm

        exit_on_sigterm()

        served = asyncio.run(run_served(args, checkpoints(args.flows)))
        C.save_result("memory-served", served)
        C.one_line("memory", f"served: {served['flows_done']} flows in {served['seconds']} s; acking process RSS "
                   f"ratio {served['ack_rss_ratio_last_over_100']}, target met: {served['target_met']}")
        return
    data = asyncio.run(run(args))
    name = "memory" if not args.trace else "memory-trace"
    C.save_result(name, data)
    C.one_line("memory", f"{data['flows_done']} flows in {data['seconds']} s ({data['ms_per_flow']} ms/flow); "
               f"RSS {data['samples'][0]['rss_mib'] if data['samples'] else '?'} → "
               f"{data['samples'][-1]['rss_mib'] if data['samples'] else '?'} MiB, ratio {data['rss_ratio_last_over_100']}, "
               f"target met: {data['target_met']}")


if __name__ == "__main__":
    main()
