"""Ack latency: ``numbers-bot serve`` against a bare Bolt app and a raw ASGI app, in alternating rounds of one run.

Signed ``/numbers search US tollfree`` slash commands from a loopback load
generator (aiohttp) at a fixed concurrency; each request is timed from send to
the end of the HTTP answer (the ack Slack waits up to 3 s for). Three servers
run side by side, each its own process (tree), and take turns, round by round,
the first of each round rotating:

* bot: ``numbers-bot serve`` in HTTP mode, sandbox providers answering in
  ``NUMBERS_SANDBOX_LATENCY`` (2 s), store in a temp dir, Slack's Web API a stub
  (``stub_slack.py``, its own process). After its round the benchmark waits
  until every search's offers reached the stub's response_url.
* bare: ``bare_bolt_app.py``, Bolt on uvicorn that acks and sleeps 2 s.
* raw: ``raw_asgi_app.py``, uvicorn answering 200: the floor of the stack.

Per server and round: p50/p99/max, acks over 3 s, CPU per request of the
process that acks (found as the holder of the listening socket; for a server
that acks in a front process and works in another, the work process's CPU is
reported separately), the longest GC pause and full collections in the acking
process during the load (``_probe/sitecustomize.py``, injected through
PYTHONPATH), RSS before and after. The verdict is the median over rounds of
bot p99 / bare p99 of the same round, with its spread (min–max).

Scenarios (bot only, c=50): ``lock``: another process holds the store's write
lock (``BEGIN IMMEDIATE``) for 20 s while the load runs; ``fulfil``: a bot
started on a store with 50 approved requests (``seed_approved.py``) fulfils them
with slow providers while the load runs.

    .venv/bin/python benchmarks/ack_latency.py                       # 500 @ 20 and 1000 @ 50, 3 rounds, scenarios
    .venv/bin/python benchmarks/ack_latency.py -n 200 -c 10 --rounds 1 --scenarios none   # quick
    .venv/bin/python benchmarks/ack_latency.py --profile /tmp/prof   # under py-spy (not a project dependency)

Only 127.0.0.1; hard timeouts everywhere; every child process group is killed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402
from _ack_report import line_for, summarize, table, verdicts  # noqa: E402
from _procs import ProbeReader, Server, cpu_seconds, probe_env, rss_kib, started, exit_on_sigterm  # noqa: E402

import aiohttp  # noqa: E402

TEXT = "search US tollfree"
SLACK_DEADLINE = 3.0
LOCK_HOLDER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("LOCKED", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("ROLLBACK")
print("RELEASED", flush=True)
"""


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBERS_", "SLACK_", "ACS_", "PLIVO_", "WEBEX_"))}
    env.update(extra)
    return env


async def load(session: aiohttp.ClientSession, url: str, *, n: int, concurrency: int, run_id: str, stub_base: str,
               timeout: float, stop_at: float | None = None, spread_over: float | None = None) -> dict[str, Any]:
    """``n`` signed commands, ``concurrency`` at a time (closed loop); none started after ``stop_at``.

    ``spread_over``: the i-th command starts no earlier than i/n of that many seconds in, so the load
    covers the whole window (the lock scenario) instead of finishing in its first second."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors: dict[str, int] = {}
    acked_at: dict[str, float] = {}
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            if spread_over is not None:
                await asyncio.sleep(max(0.0, began + spread_over * i / n - time.monotonic()))
            if stop_at is not None and time.monotonic() >= stop_at:
                return
            key = f"{run_id}-{i}"
            body = C.slash_command(TEXT, user=f"U{i % 500:07d}", response_url=f"{stub_base}/response/{key}", n=i)
            headers = C.sign(body)
            started = time.monotonic()
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    status = response.status
            except Exception as exc:  # timeouts and refused connections count, they are not fatal
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                continue
            latencies.append(time.monotonic() - started)
            statuses[status] = statuses.get(status, 0) + 1
            acked_at[key] = started

    started = began = time.monotonic()
    tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
    _, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    ended = time.monotonic()
    return {
        "n": n,
        "concurrency": concurrency,
        "completed": len(latencies),
        "timed_out_run": bool(pending),
        "wall_s": round(ended - started, 2),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "non_200": sum(v for k, v in statuses.items() if k != 200) + sum(errors.values()),
        "errors": errors,
        "over_3s": sum(1 for s in latencies if s > SLACK_DEADLINE),
        "ack_ms": C.summary_ms(latencies),
        "latencies_ms": [round(x * 1000, 2) for x in latencies],
        "_window": (started, ended),
        "_acked_at": acked_at,
    }


async def wait_for_answers(session: aiohttp.ClientSession, stub_base: str, acked_at: dict[str, float],
                           timeout: float) -> dict[str, Any]:
    """Wait until the stub has seen a response_url post for every acked search; time from command to offers."""
    deadline = time.monotonic() + timeout
    while True:
        async with session.get(f"{stub_base}/_stats") as r:
            stats = await r.json()
        answered = {k: t for k, t in stats["responses"].items() if k in acked_at}
        if len(answered) >= len(acked_at) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    return {
        "answered": len(answered),
        "expected": len(acked_at),
        "answers_with_offers": sum(1 for k in answered if stats["blocks"].get(k, 0) > 3),
        "command_to_answer_ms": C.summary_ms([answered[k] - acked_at[k] for k in answered]),
    }


class Bench:
    """One run: the stub, the servers, the session, the probe files."""

    def __init__(self, args: argparse.Namespace, tmp: Path):
        self.args, self.tmp = args, tmp
        self.probes = ProbeReader(tmp / "probes")
        self.probes.directory.mkdir()
        self.servers: list[Server] = []
        self.stub_proc: subprocess.Popen[str] | None = None
        self.stub_base = ""
        self.session: aiohttp.ClientSession | None = None

    def start_stub(self) -> None:
        self.stub_proc = started(subprocess.Popen([C.PYTHON, str(C.BENCH / "stub_slack.py")], stdout=subprocess.PIPE,
                                                  text=True, start_new_session=True))
        line = self.stub_proc.stdout.readline()  # type: ignore[union-attr]
        self.stub_base = f"http://127.0.0.1:{int(line.split()[1])}"

    def slack_env(self) -> dict[str, str]:
        return {"SLACK_BOT_TOKEN": C.BOT_TOKEN, "SLACK_SIGNING_SECRET": C.SIGNING_SECRET,
                "SLACK_API_URL": f"{self.stub_base}/api/"}

    def bot_env(self, db: Path, port: int) -> dict[str, str]:
        env = clean_env(**self.slack_env(), NUMBERS_APPROVAL_CHANNEL=C.APPROVAL_CHANNEL, NUMBERS_APPROVERS=C.APPROVER,
                        NUMBERS_SANDBOX="1", NUMBERS_SANDBOX_LATENCY=str(self.args.sandbox_latency),
                        NUMBERS_DB=str(db), PORT=str(port))
        env.update(dict(kv.split("=", 1) for kv in self.args.bot_env))
        env = probe_env(env, self.probes.directory)
        if getattr(self.args, "bot_src", None):  # another tree of the product, ahead of the installed one
            env["PYTHONPATH"] = os.pathsep.join([str(Path(self.args.bot_src).resolve()), env["PYTHONPATH"]])
        return env

    def argv(self, name: str, argv: list[str]) -> list[str]:
        if not self.args.profile:
            return argv
        spy = shutil.which("py-spy", path=str(Path(C.PYTHON).parent)) or "py-spy"
        out = Path(self.args.profile) / f"{name}-{int(time.time())}.txt"
        return [spy, "record", "--subprocesses", "--format", "raw", "--rate", "250", "-o", str(out), "--", *argv]

    def start_bot(self, name: str, db: Path) -> Server:
        port = C.free_port()
        bot_cmd = shutil.which("numbers-bot", path=str(Path(C.PYTHON).parent)) or "numbers-bot"
        server = Server(name, self.argv(name, [bot_cmd, "serve"]), self.bot_env(db, port), self.tmp, port)
        self.servers.append(server)
        return server

    def start_floor(self, name: str, script: str, **env: str) -> Server:
        port = C.free_port()
        server = Server(name, self.argv(name, [C.PYTHON, str(C.BENCH / script)]),
                        probe_env(clean_env(**self.slack_env(), PORT=str(port), **env), self.probes.directory),
                        self.tmp, port)
        self.servers.append(server)
        return server

    async def ready(self, server: Server) -> None:
        assert self.session is not None
        await server.ready(self.session)
        warm = await self.load(server, n=self.args.warmup, concurrency=5, run_id=f"warm-{server.name}")
        server.find_ack_pid()
        if getattr(self.args, "nice_work", None):  # a variant: the work process yields the CPU to the acks
            for pid in server.work_pids():
                os.setpriority(os.PRIO_PROCESS, pid, self.args.nice_work)
        if server.name.startswith("bot"):
            await wait_for_answers(self.session, self.stub_base, warm["_acked_at"], self.args.drain_timeout)

    async def load(self, server: Server, **kw: Any) -> dict[str, Any]:
        assert self.session is not None
        kw.setdefault("timeout", self.args.run_timeout)
        return await load(self.session, server.url, stub_base=self.stub_base, **kw)

    async def measured(self, server: Server, *, n: int, concurrency: int, run_id: str,
                       stop_at: float | None = None, spread_over: float | None = None) -> dict[str, Any]:
        """One load on ``server`` with its process figures; waits until the server is idle again."""
        assert self.session is not None
        work = server.work_pids()
        ack_cpu0, work_cpu0 = cpu_seconds(server.ack_pid), {p: cpu_seconds(p) for p in work}
        rss_before = rss_kib(server.ack_pid)
        result = await self.load(server, n=n, concurrency=concurrency, run_id=run_id, stop_at=stop_at,
                                 spread_over=spread_over)
        start, end = result.pop("_window")
        acked = result.pop("_acked_at")
        ack_cpu = cpu_seconds(server.ack_pid) - ack_cpu0
        work_cpu = sum(cpu_seconds(p) - c for p, c in work_cpu0.items())
        done = max(1, result["completed"])
        result.update(
            target=server.name, ack_pid=server.ack_pid, work_pids=work,
            ack_cpu_ms_per_request=round(ack_cpu * 1000 / done, 3),
            work_cpu_ms_per_request_in_window=round(work_cpu * 1000 / done, 3) if work else None,
            rss_kib_before=rss_before, rss_kib_after=rss_kib(server.ack_pid),
        )
        result.update(ProbeReader.window(await self.probes.fresh(server.ack_pid, end), start, end))
        if server.name.startswith("bot"):
            drain_start = time.monotonic()
            result["answers"] = await wait_for_answers(self.session, self.stub_base, acked, self.args.drain_timeout)
            result["answers"]["drain_s"] = round(time.monotonic() - drain_start, 2)
            result["work_cpu_ms_per_request_with_drain"] = (
                round(sum(cpu_seconds(p) - c for p, c in work_cpu0.items()) * 1000 / done, 3) if work else None)
            result["ack_cpu_ms_per_request_with_drain"] = round((cpu_seconds(server.ack_pid) - ack_cpu0) * 1000 / done, 3)
        else:
            await asyncio.sleep(self.args.sandbox_latency + 0.5)  # its sleeps end
        return result

    def stop_all(self) -> None:
        for server in self.servers:
            server.stop()
        if self.stub_proc is not None:
            Server.kill_group(self.stub_proc)


async def main_rounds(bench: Bench, servers: list[Server]) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    args = bench.args
    for n, concurrency in zip(args.n, args.concurrency):
        for rnd in range(args.rounds):
            order = servers[rnd % len(servers):] + servers[:rnd % len(servers)]
            for server in order:
                result = await bench.measured(server, n=n, concurrency=concurrency,
                                              run_id=f"{server.name}-{n}-{concurrency}-{rnd}")
                result["round"] = rnd
                runs.append(result)
                C.one_line("ack_latency", f"round {rnd} " + line_for(result))
                await asyncio.sleep(1.0)
    return runs


async def scenario_lock(bench: Bench, bot: Server, db: Path) -> dict[str, Any]:
    """Load at c=50 while another process holds the store's write lock."""
    args = bench.args
    holder = started(subprocess.Popen([C.PYTHON, "-c", LOCK_HOLDER, str(db), str(args.lock_seconds)],
                                      stdout=subprocess.PIPE, text=True, start_new_session=True))
    try:
        if holder.stdout.readline().strip() != "LOCKED":  # type: ignore[union-attr]
            raise RuntimeError("the lock holder could not take the store's write lock")
        locked_at = time.monotonic()
        result = await bench.measured(bot, n=args.scenario_n, concurrency=args.scenario_c, run_id="lock",
                                      stop_at=locked_at + args.lock_seconds - 1.0,
                                      spread_over=args.lock_seconds - 2.0)
        result["lock_held_s"] = args.lock_seconds
    finally:
        Server.kill_group(holder)
    C.one_line("ack_latency", "lock  " + line_for(result))
    return result


def request_states(db: Path) -> dict[str, int]:
    """Requests by state, read without taking the write lock."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            return dict(con.execute("SELECT state, COUNT(*) FROM requests GROUP BY state").fetchall())
    except sqlite3.Error as exc:
        return {"error": str(exc)}  # type: ignore[dict-item]


async def scenario_fulfil(bench: Bench) -> dict[str, Any]:
    """A bot started on a store holding approved requests: load at c=50 while its worker fulfils them."""
    args = bench.args
    db = bench.tmp / "fulfil" / "numbers.db"
    db.parent.mkdir()
    seeded = subprocess.run([C.PYTHON, str(C.BENCH / "seed_approved.py"), str(db), str(args.fulfil_count)],
                            env=clean_env(), capture_output=True, text=True, timeout=300)
    if seeded.returncode != 0:
        raise RuntimeError(f"seeding failed: {seeded.stderr[-2000:]}")
    bot = bench.start_bot("bot-fulfil", db)
    assert bench.session is not None
    await bot.ready(bench.session)
    # A short warm-up without waiting for its answers: the fulfilments have started with the server.
    await bench.load(bot, n=10, concurrency=5, run_id="warm-fulfil", timeout=60)
    bot.find_ack_pid()
    states_before = request_states(db)
    result = await bench.measured(bot, n=args.scenario_n, concurrency=args.scenario_c, run_id="fulfil")
    result.update(requests_seeded=args.fulfil_count, states_at_start=states_before, states_after=request_states(db))
    C.one_line("ack_latency", "fulfil " + line_for(result) + f"; requests {states_before} → {result['states_after']}")
    bot.stop()
    return result


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="numbers-bench-ack-"))
    bench = Bench(args, tmp)
    runs: list[dict[str, Any]] = []
    scenarios: dict[str, Any] = {}
    configs = list(zip(args.n, args.concurrency))
    try:
        bench.start_stub()
        db = tmp / "numbers.db"
        bot = bench.start_bot("bot", db)
        bare = bench.start_floor("bare", "bare_bolt_app.py", BARE_SLEEP=str(args.sandbox_latency))
        raw = bench.start_floor("raw", "raw_asgi_app.py")
        timeout = aiohttp.ClientTimeout(total=args.request_timeout)
        async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as session:
            bench.session = session
            for server in (bot, bare, raw):
                await bench.ready(server)
            C.one_line("ack_latency", "acking processes: " + ", ".join(
                f"{s.name} pid {s.ack_pid} (+{len(s.work_pids())} other)" for s in (bot, bare, raw)))
            runs = await main_rounds(bench, [bot, bare, raw])
            if "lock" in args.scenarios:
                scenarios["lock"] = await scenario_lock(bench, bot, db)
            bare.stop(), raw.stop()
            if "fulfil" in args.scenarios:
                bot.stop()  # one bot at a time on the 2 cores
                scenarios["fulfil"] = await scenario_fulfil(bench)
    finally:
        bench.stop_all()
        if args.keep_logs:
            C.one_line("ack_latency", f"server logs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    summary = summarize(runs, configs)
    return {"params": vars(args), "summary": summary, "scenarios": scenarios, "runs": runs,
            "verdicts": verdicts(summary, scenarios, args.rounds), "table": table(summary)}


def main() -> None:
    exit_on_sigterm()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, nargs="+", default=[500, 1000], help="requests per round, one per config")
    p.add_argument("-c", "--concurrency", type=int, nargs="+", default=[20, 50], help="concurrency, one per config")
    p.add_argument("--rounds", type=int, default=3, help="rounds per config; each round measures every server once")
    p.add_argument("--scenarios", nargs="*", default=["lock", "fulfil"], choices=["lock", "fulfil", "none"])
    p.add_argument("--scenario-n", type=int, default=1000)
    p.add_argument("--scenario-c", type=int, default=50)
    p.add_argument("--lock-seconds", type=float, default=20.0)
    p.add_argument("--fulfil-count", type=int, default=50)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--sandbox-latency", type=float, default=2.0)
    p.add_argument("--request-timeout", type=float, default=40.0, help="per request (a lock can hold an ack 20 s)")
    p.add_argument("--run-timeout", type=float, default=180.0, help="hard limit for one round's requests")
    p.add_argument("--drain-timeout", type=float, default=300.0, help="how long to wait for the bot's answers")
    p.add_argument("--bot-env", action="append", default=[], metavar="NAME=VALUE",
                   help="extra environment for the bot (variants); the result file is then named -variant")
    p.add_argument("--bot-src", metavar="DIR", help="run the bot from this tree (a directory holding bot/, e.g. "
                   "`git archive <commit> bot | tar -x -C DIR`): the baseline from the same benchmark code")
    p.add_argument("--nice-work", type=int, metavar="N", help="variant: renice the bot's processes other than "
                   "the acking one by N (what a lower-priority work process would give); named -variant")
    p.add_argument("--profile", metavar="DIR", help="run every server under `py-spy record --subprocesses` "
                   "(raw stacks into DIR; py-spy is not a project dependency); figures are then not comparable")
    p.add_argument("--hard-timeout", type=float, default=3600.0, help="the whole run, seconds")
    p.add_argument("--keep-logs", action="store_true", help="keep the servers' logs (printed path)")
    args = p.parse_args()
    if len(args.n) != len(args.concurrency):
        p.error("give as many -n values as -c values")
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    data = asyncio.run(asyncio.wait_for(main_async(args), timeout=args.hard_timeout))
    name = "ack_latency" + ("-variant" if args.bot_env or args.bot_src or args.nice_work else "") + ("-profile" if args.profile else "")
    C.save_result(name, data)
    for line in data["table"] + data["verdicts"]:
        C.one_line("ack_latency", line)


if __name__ == "__main__":
    main()
