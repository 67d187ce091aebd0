"""``memory.py --served``: RSS of the process that acks, over N signed commands to ``numbers-bot serve``.

The server runs as in production (HTTP mode, its own process tree; sandbox providers answering at
once, store in a temp dir, Slack's Web API the stub). Each flow is one signed
``/numbers search US tollfree``: verified and acked by the acking process (the holder of the
listening socket), then searched, saved, rendered and posted to the stub's response_url by
whichever process does the work. Load at a fixed concurrency; after 100, 1000, 5000, 10000 (and
every 1000) acks, the RSS (``VmRSS``) of the acking process and of the server's other processes,
and the longest GC pause and full collections so far in the acking process (the probe,
``_probe/sitecustomize.py``). Target: RSS(acking, last) ≤ 1.3 × RSS(acking, after 100).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

import _common as C
from _procs import ProbeReader, rss_kib
from ack_latency import Bench, wait_for_answers

__all__ = ["run_served"]


async def _sample(bench: Bench, bot: Any, acks: int, started: float) -> dict[str, Any]:
    """Figures after ``acks`` flows; GC pauses since the first measured flow (start-up's own collections
    and ``gc.freeze()`` are not the steady state)."""
    data = await bench.probes.fresh(bot.ack_pid, time.monotonic())
    gc = ProbeReader.window(data, started, time.monotonic())
    return {
        "flows": acks,
        "ack_rss_mib": round(rss_kib(bot.ack_pid) / 1024, 1),
        "work_rss_mib": [round(rss_kib(p) / 1024, 1) for p in bot.work_pids()],
        "ack_gc_max_pause_ms": gc.get("gc_max_pause_ms"),
        "ack_gc_full_collections": gc.get("gc_full_collections"),
        "elapsed_s": round(time.monotonic() - started, 1),
    }


async def run_served(args: argparse.Namespace, points: list[int]) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="numbers-bench-memory-served-"))
    # Searches poll the sandbox every 50 ms instead of 2 s: the run waits on the bot's work, not on its timers.
    bench_args = argparse.Namespace(sandbox_latency=0.0, bot_env=["NUMBERS_POLL_INTERVAL=0.05"], profile=None, warmup=20, run_timeout=600.0,
                                    drain_timeout=300.0, bot_src=args.bot_src)
    bench = Bench(bench_args, tmp)
    samples: list[dict[str, Any]] = []
    started = time.monotonic()
    try:
        bench.start_stub()
        bot = bench.start_bot("bot", tmp / "numbers.db")
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as session:
            bench.session = session
            await bench.ready(bot)
            C.one_line("memory", f"served: acking pid {bot.ack_pid}, other processes {bot.work_pids()}")
            started = time.monotonic()
            done = 0
            for point in points:
                while done < point:
                    # Batches the work keeps up with: acks are fast, and a flood of thousands of searches
                    # queued in the work process would time its own answers out (not what is measured here).
                    batch = min(args.batch, point - done)
                    result = await bench.load(bot, n=batch, concurrency=args.concurrency, run_id=f"mem-{done}")
                    acked = result.pop("_acked_at")
                    if result["non_200"]:
                        raise RuntimeError(f"{result['non_200']} requests were not answered 200: {result['errors']}")
                    await wait_for_answers(session, bench.stub_base, acked, bench_args.drain_timeout)
                    done += batch
                samples.append(await _sample(bench, bot, done, started))
                C.one_line("memory", f"served {samples[-1]}")
                if time.monotonic() - started > args.max_seconds:
                    C.one_line("memory", f"stopping at {done} flows: --max-seconds {args.max_seconds} reached")
                    break
    finally:
        bench.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    base = next((s for s in samples if s["flows"] >= 100), None)
    last = samples[-1] if samples else None
    ratio = C.ratio(last["ack_rss_mib"], base["ack_rss_mib"]) if base and last else None
    return {
        "params": vars(args),
        "samples": samples,
        "flows_done": last["flows"] if last else 0,
        "seconds": round(time.monotonic() - started, 1),
        "ack_rss_ratio_last_over_100": ratio,
        "target": f"RSS of the acking process after {args.flows} ≤ 1.3 × after 100",
        "target_met": ratio is not None and ratio <= 1.3 and last is not None and last["flows"] == args.flows,
    }
