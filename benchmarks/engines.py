"""SQLite and PostgreSQL side by side, same machine, same run.

* ``throughput``: full flows (ACS search → request → approve → the worker buys → fulfilled) per
  second, with 1 and 2 replicas on each engine. A replica is its own process with its own
  service and worker loop (``Worker.run``), on one store (one SQLite file in WAL mode, or one
  PostgreSQL database); the simulated providers keep their state in one shared file, so a
  purchase may be driven by either replica. Each replica runs ``--flows`` flows,
  ``--concurrency`` at a time; the replicas start together, and the figure is all flows over
  the slowest replica's time.
* ``reads``: ``mine``, ``pending``, ``show`` and the App Home render at ``--requests`` requests
  (``store_scale.generate``, then ``numbers-bot store copy`` into PostgreSQL, which is timed too).

PostgreSQL is ``--pg postgresql://…`` (a database that may be emptied), or a throwaway cluster
started with the tests' helper (``initdb`` + ``pg_ctl``, tests/pg_cluster.py).

* ``acks`` (with ``--acks``): ``ack_latency.py`` with the store on each engine, p99 against the bare
  Bolt app measured in the same run.

    .venv/bin/python benchmarks/engines.py --acks                           # ~10 min
    .venv/bin/python benchmarks/engines.py --flows 100 --requests 20000 --events 200000   # quick
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

TOLLFREE_POOLS = ["833", "844", "855", "866", "877", "888"]


async def _replica(target: str, sandbox_db: str, flows: int, concurrency: int, start_at: float, tag: int) -> dict:
    from bot.bootstrap import build
    from bot.config import load_settings
    from bot.domain.offers import SearchQuery
    from bot.sandbox import SandboxServices
    from bot.services import StaticDirectory

    settings = load_settings(
        NUMBERS_DB=target, NUMBERS_SANDBOX=True, NUMBERS_SANDBOX_DB=sandbox_db, NUMBERS_POLL_INTERVAL=0.05,
        NUMBERS_APPROVERS=C.APPROVER,
    )
    sandbox = SandboxServices.create(sandbox_db)
    for app in sandbox.apps.values():
        app.state.db.execute("PRAGMA synchronous=OFF")  # measure the bot's store, not the simulator's fsyncs

    class Quiet:
        async def notify(self, *a, **k):
            return None

    c = build(settings, sandbox=sandbox, notifier=Quiet(), directory=StaticDirectory(settings.approver_ids))
    svc = c.service
    loop_task = asyncio.create_task(c.worker.run())
    gate = asyncio.Semaphore(concurrency)
    failures = 0

    async def flow(i: int) -> None:
        nonlocal failures
        async with gate:
            user = f"U{tag}{i:06d}"
            pool = TOLLFREE_POOLS[(i + tag) % len(TOLLFREE_POOLS)]
            result = await svc.search(user, SearchQuery("US", "tollfree", pool, provider="acs"))
            if not result.offers:
                raise RuntimeError(f"flow {i}: no offers ({result.problems})")
            request = await svc.request(user, result.offers[0].id, "benchmark")
            await svc.approve(request.id, C.APPROVER)
            while (done := await svc.store.get_request(request.id, events=False)).state.value not in (
                "fulfilled", "failed", "needs_attention"
            ):
                await asyncio.sleep(0.01)
            failures += done.state.value != "fulfilled"
            for number in done.numbers:  # back to the simulated stock, so a long run never runs dry
                sandbox.acs.state.delete("acs_numbers", number)

    await asyncio.sleep(max(0.0, start_at - time.time()))
    started = time.monotonic()
    await asyncio.gather(*(flow(i) for i in range(flows)))
    elapsed = time.monotonic() - started
    await c.worker.stop()
    loop_task.cancel()
    await asyncio.gather(loop_task, return_exceptions=True)
    await c.aclose()
    return {"flows": flows, "failures": failures, "elapsed_s": elapsed}


def throughput(target: str, replicas: int, flows: int, concurrency: int, tmp: Path) -> dict[str, Any]:
    sandbox_db = str(tmp / f"sandbox-{time.monotonic_ns()}.db")
    start_at = time.time() + 4  # every replica imports and builds first, then all start together
    procs = [
        subprocess.Popen(
            [C.PYTHON, __file__, "--replica", target, sandbox_db, str(flows), str(concurrency), str(start_at), str(n)],
            stdout=subprocess.PIPE, text=True, cwd=str(tmp),
        )
        for n in range(replicas)
    ]
    results = [json.loads(p.communicate(timeout=600)[0].strip().splitlines()[-1]) for p in procs]
    total = sum(r["flows"] for r in results)
    slowest = max(r["elapsed_s"] for r in results)
    return {
        "replicas": replicas, "flows": total, "failures": sum(r["failures"] for r in results),
        "elapsed_s": round(slowest, 2), "flows_per_s": round(total / slowest, 1),
    }


def reads(pg: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    import store_scale as S

    from bot.domain.policy import Policy
    from bot.services import NumbersService, StaticDirectory
    from bot.store.copy import copy_store
    from bot.store.db import Store

    path = tmp / "scale.db"
    info = S.generate(path, args.requests, args.events, 500, 300)
    source, target = Store(str(path)), Store(pg)
    started = time.monotonic()
    copied = copy_store(source, target)
    copy_s = time.monotonic() - started
    source.close()
    target.db.execute("ANALYZE")
    out: dict[str, Any] = {"store": info, "copy_to_postgresql_s": round(copy_s, 1), "copied": copied}
    keys = ("mine", "mine_heaviest_user", "pending", "show", "home_render")
    for engine, where in (("sqlite", str(path)), ("postgresql", pg)):
        store = Store(where, clock=lambda: S.NOW)
        if store.postgres:
            S.plan = lambda st, sql, a: [r[0] for r in st.db.execute("EXPLAIN " + sql, a).fetchall()]
        svc = NumbersService(store, {}, Policy(approvers=frozenset(S.APPROVERS)),
                             directory=StaticDirectory(frozenset(S.APPROVERS)), clock=lambda: S.NOW)
        measured = S.measure_reads(store, svc, info, args.iterations)
        out[engine] = {k: measured[k] for k in keys}
        C.one_line("engines", f"reads {engine}: " + ", ".join(f"{k} {measured[k]['median_ms']} ms" for k in keys))
        store.close()
    return out


def acks(pg: str, n: int, concurrency: int) -> dict[str, Any]:
    """``ack_latency.py`` once with the store on SQLite and once on PostgreSQL: p99 against the bare Bolt app."""
    out = {}
    for engine, extra in (("sqlite", []), ("postgresql", ["--bot-env", f"NUMBERS_DB={pg}"])):
        cmd = [C.PYTHON, str(C.BENCH / "ack_latency.py"), "-n", str(n), "-c", str(concurrency), "--rounds", "1",
               "--scenarios", "none", *extra]
        subprocess.run(cmd, check=True, timeout=900, stdout=subprocess.DEVNULL)
        name = "ack_latency-variant" if extra else "ack_latency"
        result = json.loads((C.RESULTS / f"{name}-latest.json").read_text())
        out[engine] = result["summary"][0] if result["summary"] else result["runs"]
        C.one_line("engines", f"acks {engine}: {out[engine]}")
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--replica":
        target, sandbox_db, flows, concurrency, start_at, tag = sys.argv[2:8]
        result = asyncio.run(_replica(target, sandbox_db, int(flows), int(concurrency), float(start_at), int(tag)))
        print(json.dumps(result))
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pg", help="a PostgreSQL database to use (emptied tables are expected); default: a throwaway cluster")
    p.add_argument("--flows", type=int, default=200, help="flows per replica")
    p.add_argument("--concurrency", type=int, default=8, help="flows at a time per replica")
    p.add_argument("--requests", type=int, default=100_000)
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--iterations", type=int, default=200)
    p.add_argument("--skip-reads", action="store_true")
    p.add_argument("--acks", action="store_true", help="also the ack ratio (ack_latency.py) on each engine, ~4 min")
    p.add_argument("--ack-n", type=int, default=500)
    p.add_argument("--ack-c", type=int, default=20)
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="numbers-bench-engines-"))
    cluster = None
    if args.pg:
        databases = lambda: args.pg  # noqa: E731
    else:
        from tests.pg_cluster import start_cluster

        cluster, reason = start_cluster()
        if cluster is None:
            sys.exit(f"no PostgreSQL: {reason}; pass --pg postgresql://…")
        databases = cluster.create_database
    try:
        runs = []
        for replicas in (1, 2):
            for engine in ("sqlite", "postgresql"):
                target = str(tmp / f"flows-{replicas}.db") if engine == "sqlite" else databases()
                got = {"engine": engine, **throughput(target, replicas, args.flows, args.concurrency, tmp)}
                runs.append(got)
                C.one_line("engines", f"throughput {got}")
        data: dict[str, Any] = {"params": vars(args), "throughput": runs}
        if not args.skip_reads:
            data["reads"] = reads(databases(), args, tmp)
        if args.acks:
            data["acks"] = acks(databases(), args.ack_n, args.ack_c)
        C.save_result("engines", data)
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
