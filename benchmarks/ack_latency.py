"""Ack latency under load: ``numbers-bot serve`` (HTTP mode, its own process) against a bare Bolt app.

Signed ``/numbers search US tollfree`` slash commands from a loopback load
generator (aiohttp) at a fixed concurrency; each request is timed from send to
the end of the HTTP answer (the ack Slack waits up to 3 s for). The floor is
``bare_bolt_app.py``: Bolt on the same server stack that acks and then sleeps
2 s, measured in the same run, interleaved with the bot. The bot's sandbox
providers take ``NUMBERS_SANDBOX_LATENCY`` (2 s) per request, so its searches
run on after the ack, as real ones do; between runs the benchmark waits until
the bot has posted the offers of every search (to the stub's response_url) and
reports how long that took.

    .venv/bin/python benchmarks/ack_latency.py                # 500 @ 20 and 1000 @ 50, each twice
    .venv/bin/python benchmarks/ack_latency.py -n 200 -c 10 --repeat 1

Targets: bot p99 ≤ 1.5 × bare p99; no ack over 3 s at concurrency 20; no non-200.
Only 127.0.0.1; every run has a hard timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

import aiohttp  # noqa: E402

TEXT = "search US tollfree"
SLACK_DEADLINE = 3.0


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBERS_", "SLACK_", "ACS_", "PLIVO_", "WEBEX_"))}
    env.update(extra)
    return env


def proc_rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def proc_cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


class Server:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: Path, port: int):
        self.name, self.port = name, port
        self.log = open(cwd / f"{name}.log", "wb")
        self.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{port}/slack/events"

    async def ready(self, session: aiohttp.ClientSession, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log.name}")
            try:
                async with session.get(f"http://127.0.0.1:{self.port}/healthz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.name} did not start within {timeout}s; see {self.log.name}")

    async def ready_port(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log.name}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return
            except OSError:
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.name} did not listen within {timeout}s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.log.close()


async def load(
    session: aiohttp.ClientSession, url: str, *, n: int, concurrency: int, run_id: str, stub_base: str, timeout: float
) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors: dict[str, int] = {}
    acked_at: dict[str, float] = {}
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
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
            done = time.monotonic()
            latencies.append(done - started)
            statuses[status] = statuses.get(status, 0) + 1
            acked_at[key] = started

    started = time.monotonic()
    tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
    finished, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    wall = time.monotonic() - started
    return {
        "n": n,
        "concurrency": concurrency,
        "completed": len(latencies),
        "timed_out_run": bool(pending),
        "wall_s": round(wall, 2),
        "rate_per_s": round(len(latencies) / wall, 1) if wall else None,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "non_200": sum(v for k, v in statuses.items() if k != 200) + sum(errors.values()),
        "errors": errors,
        "over_3s": sum(1 for s in latencies if s > SLACK_DEADLINE),
        "ack_ms": C.summary_ms(latencies),
        "_acked_at": acked_at,
    }


async def wait_for_answers(session: aiohttp.ClientSession, stub_base: str, acked_at: dict[str, float], timeout: float) -> dict[str, Any]:
    """Wait until the stub has seen a response_url post for every acked search; time from command to offers."""
    deadline = time.monotonic() + timeout
    answered: dict[str, float] = {}
    while True:
        async with session.get(f"{stub_base}/_stats") as r:
            stats = await r.json()
        answered = {k: t for k, t in stats["responses"].items() if k in acked_at}
        if len(answered) >= len(acked_at) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    delays = [answered[k] - acked_at[k] for k in answered]
    with_offers = sum(1 for k in answered if stats["blocks"].get(k, 0) > 3)
    return {
        "answered": len(answered),
        "expected": len(acked_at),
        "answers_with_offers": with_offers,
        "command_to_answer_ms": C.summary_ms(delays),
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="numbers-bench-ack-"))
    servers: list[Server] = []
    extra_servers: list[Server] = []
    stub_proc = None
    try:
        stub_proc = subprocess.Popen([C.PYTHON, str(C.BENCH / "stub_slack.py")], stdout=subprocess.PIPE, text=True)
        line = stub_proc.stdout.readline()  # type: ignore[union-attr]
        stub_base = f"http://127.0.0.1:{int(line.split()[1])}"
        common = {
            "SLACK_BOT_TOKEN": C.BOT_TOKEN,
            "SLACK_SIGNING_SECRET": C.SIGNING_SECRET,
            "SLACK_API_URL": f"{stub_base}/api/",
        }
        bot_port, bare_port = C.free_port(), C.free_port()
        bot_env = clean_env(
            **common,
            NUMBERS_APPROVAL_CHANNEL=C.APPROVAL_CHANNEL,
            NUMBERS_APPROVERS=C.APPROVER,
            NUMBERS_SANDBOX="1",
            NUMBERS_SANDBOX_LATENCY=str(args.sandbox_latency),
            NUMBERS_DB=str(tmp / "numbers.db"),
            PORT=str(bot_port),
        )
        if args.sandbox == "remote":
            # The providers in their own process, as real ones are: the bot's process does only the bot's work.
            from bot.sandbox.acs import SANDBOX_ACS_ACCESS_KEY
            from bot.sandbox.plivo import SANDBOX_PLIVO_AUTH_ID, SANDBOX_PLIVO_AUTH_TOKEN
            from bot.sandbox.webex import SANDBOX_WEBEX_TOKEN

            sandbox_port = C.free_port()
            sandbox_base = f"http://127.0.0.1:{sandbox_port}"
            provider_server = Server(
                "sandbox",
                [shutil.which("numbers-bot", path=str(Path(C.PYTHON).parent)) or "numbers-bot", "sandbox",
                 "--port", str(sandbox_port), "--latency", str(args.sandbox_latency)],
                clean_env(), tmp, sandbox_port,
            )
            extra_servers.append(provider_server)
            del bot_env["NUMBERS_SANDBOX"]
            bot_env.update(
                ACS_CONNECTION_STRING=f"endpoint={sandbox_base}/;accesskey={SANDBOX_ACS_ACCESS_KEY}",
                PLIVO_API_URL=sandbox_base,
                PLIVO_AUTH_ID=SANDBOX_PLIVO_AUTH_ID,
                PLIVO_AUTH_TOKEN=SANDBOX_PLIVO_AUTH_TOKEN,
                WEBEX_API_URL=f"{sandbox_base}/v1",
                WEBEX_ACCESS_TOKEN=SANDBOX_WEBEX_TOKEN,
            )
        bot_env.update(dict(kv.split("=", 1) for kv in args.bot_env))
        bare_env = clean_env(**common, PORT=str(bare_port), BARE_SLEEP=str(args.sandbox_latency))
        bot_cmd = shutil.which("numbers-bot", path=str(Path(C.PYTHON).parent)) or "numbers-bot"
        bot = Server("bot", args.bot_cmd.split() if args.bot_cmd else [bot_cmd, "serve"], bot_env, tmp, bot_port)
        bare = Server("bare", [C.PYTHON, str(C.BENCH / "bare_bolt_app.py")], bare_env, tmp, bare_port)
        servers = [bare, bot]
        timeout = aiohttp.ClientTimeout(total=args.request_timeout)
        runs: list[dict[str, Any]] = []
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            for server in extra_servers:
                await server.ready_port()
            for server in servers:
                await server.ready(session)
            # Warm up both (Bolt's first request calls auth.test; imports settle), then let the bot finish.
            for server in servers:
                warm = await load(session, server.url, n=args.warmup, concurrency=5, run_id=f"warm-{server.name}",
                                  stub_base=stub_base, timeout=60)
                if server is bot:
                    await wait_for_answers(session, stub_base, warm["_acked_at"], args.drain_timeout)
            configs = [(n, c) for n, c in zip(args.n, args.concurrency)]
            for n, concurrency in configs:
                for rep in range(args.repeat):
                    order = servers if rep % 2 == 0 else list(reversed(servers))
                    for server in order:
                        run_id = f"{server.name}-{n}-{concurrency}-{rep}"
                        cpu0 = proc_cpu_seconds(server.proc.pid)
                        result = await load(session, server.url, n=n, concurrency=concurrency, run_id=run_id,
                                            stub_base=stub_base, timeout=args.run_timeout)
                        acked = result.pop("_acked_at")
                        result.update(target=server.name, repeat=rep, rss_kib_after=proc_rss_kib(server.proc.pid))
                        if server is bot:
                            drain_start = time.monotonic()
                            result["answers"] = await wait_for_answers(session, stub_base, acked, args.drain_timeout)
                            result["answers"]["drain_s"] = round(time.monotonic() - drain_start, 2)
                        else:
                            await asyncio.sleep(args.sandbox_latency + 0.5)  # its sleeps end
                        result["server_cpu_s"] = round(proc_cpu_seconds(server.proc.pid) - cpu0, 2)
                        runs.append(result)
                        C.one_line("ack_latency", f"{server.name} n={n} c={concurrency} rep={rep}: "
                                   f"p50 {result['ack_ms'].get('p50')} p99 {result['ack_ms'].get('p99')} ms, "
                                   f"non-200 {result['non_200']}, >3s {result['over_3s']}")
                        await asyncio.sleep(1.0)
            async with session.get(f"{stub_base}/_stats") as r:
                stub_counts = (await r.json())["counts"]
    finally:
        for server in servers + extra_servers:
            server.stop()
        if stub_proc is not None:
            stub_proc.terminate()
            stub_proc.wait(timeout=10)
    comparisons = []
    for n, concurrency in configs:
        for rep in range(args.repeat):
            pair = {r["target"]: r for r in runs if r["n"] == n and r["concurrency"] == concurrency and r["repeat"] == rep}
            bot_r, bare_r = pair.get("bot"), pair.get("bare")
            if not bot_r or not bare_r or not bot_r["ack_ms"].get("n") or not bare_r["ack_ms"].get("n"):
                continue
            comparisons.append({
                "n": n,
                "concurrency": concurrency,
                "repeat": rep,
                "bot_p50": bot_r["ack_ms"]["p50"],
                "bare_p50": bare_r["ack_ms"]["p50"],
                "bot_p99": bot_r["ack_ms"]["p99"],
                "bare_p99": bare_r["ack_ms"]["p99"],
                "bot_max": bot_r["ack_ms"]["max"],
                "bare_max": bare_r["ack_ms"]["max"],
                "p50_ratio": C.ratio(bot_r["ack_ms"]["p50"], bare_r["ack_ms"]["p50"]),
                "p99_ratio": C.ratio(bot_r["ack_ms"]["p99"], bare_r["ack_ms"]["p99"]),
                "bot_over_3s": bot_r["over_3s"],
                "bot_non_200": bot_r["non_200"],
                "p99_target_met": (C.ratio(bot_r["ack_ms"]["p99"], bare_r["ack_ms"]["p99"]) or 99) <= 1.5,
            })
    targets = {
        "p99_within_1.5x_bare": all(c["p99_target_met"] for c in comparisons) if comparisons else None,
        "no_ack_over_3s_at_c20": all(r["over_3s"] == 0 for r in runs if r["target"] == "bot" and r["concurrency"] <= 20),
        "no_non_200": all(r["non_200"] == 0 for r in runs if r["target"] == "bot"),
    }
    if args.keep_logs:
        C.one_line("ack_latency", f"server logs kept in {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "params": vars(args),
        "comparisons": comparisons,
        "targets": targets,
        "runs": runs,
        "stub_counts": stub_counts,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, nargs="+", default=[500, 1000], help="requests per run, one per config")
    p.add_argument("-c", "--concurrency", type=int, nargs="+", default=[20, 50], help="concurrency, one per config")
    p.add_argument("--repeat", type=int, default=2, help="runs of each config per target (order alternates)")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--sandbox-latency", type=float, default=2.0)
    p.add_argument("--request-timeout", type=float, default=10.0)
    p.add_argument("--run-timeout", type=float, default=180.0, help="hard limit for one run's requests")
    p.add_argument("--sandbox", choices=["inprocess", "remote"], default="inprocess",
                   help="inprocess: NUMBERS_SANDBOX=1 (the sandbox runs inside the bot's process); remote: "
                   "`numbers-bot sandbox` in its own process, the bot pointed at it as at real providers")
    p.add_argument("--bot-env", action="append", default=[], metavar="NAME=VALUE",
                   help="extra environment for the bot process (variants, e.g. NUMBERS_SANDBOX_DB=:memory:)")
    p.add_argument("--bot-cmd", help="run the bot with this command instead of `numbers-bot serve` (e.g. under a profiler)")
    p.add_argument("--keep-logs", action="store_true", help="keep the servers' logs (printed path)")
    p.add_argument("--drain-timeout", type=float, default=120.0, help="how long to wait for the bot's answers")
    args = p.parse_args()
    if len(args.n) != len(args.concurrency):
        p.error("give as many -n values as -c values")
    data = asyncio.run(main_async(args))
    name = "ack_latency" if args.sandbox == "inprocess" else "ack_latency-remote"
    if args.bot_cmd or args.bot_env:
        name += "-variant"  # a variant must not pass for the default run
    C.save_result(name, data)
    for c in data["comparisons"]:
        C.one_line("ack_latency", f"n={c['n']} c={c['concurrency']} rep={c['repeat']}: bot p99 {c['bot_p99']} ms vs "
                   f"bare {c['bare_p99']} ms (×{c['p99_ratio']}), bot >3s: {c['bot_over_3s']}, non-200: {c['bot_non_200']}")
    C.one_line("ack_latency", f"targets: {data['targets']}")


if __name__ == "__main__":
    main()
