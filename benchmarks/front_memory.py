"""The ack process (``bot.front``) alone: the hand-over's cost, CPU and memory per request, GC pauses.

Drives the front's ASGI app directly (no sockets: what is measured is the front's own work) with
signed ``/numbers search`` commands, ``--concurrency`` at a time, while a second connection
deletes the inbox's rows as the work process would. Prints:

* the hand-over: one inbox insert (WAL, ``synchronous=OFF``), p50/p99/max in microseconds, and for
  comparison a local socket with confirmation (AF_UNIX, the receiver answers one byte);
* per request: wall time through the whole app (gate, signature, parse, ack, insert), CPU;
* the collector: collections per generation and the longest pause (``gc.callbacks``);
* RSS after the first 100 requests and after all of them, and with ``--trace`` the source lines
  whose allocations grew most between the two.

    .venv/bin/python benchmarks/front_memory.py --requests 10000 --gc default
    .venv/bin/python benchmarks/front_memory.py --requests 10000 --gc freeze
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import socket
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

from _common import REQUESTER, SIGNING_SECRET, percentile, rss_kib, sign, slash_command

from bot.config import load_settings
from bot.front import FrontHandler, create_front_app, tune_gc
from bot.inbox import Inbox
from bot.slack.gate import Installation


class GcPauses:
    def __init__(self) -> None:
        self.started = 0.0
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        gc.callbacks.append(self.callback)

    def callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self.started = time.perf_counter()
        else:
            self.pauses[info["generation"]].append(time.perf_counter() - self.started)

    def report(self) -> dict[str, Any]:
        return {
            f"gen{g}": {"count": len(p), "max_ms": round(max(p) * 1000, 3) if p else 0.0} for g, p in self.pauses.items()
        }


def socket_round_trips(count: int, size: int) -> list[float]:
    """A local socket with confirmation: send the request, wait for the receiver's one-byte answer."""
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)

    def receiver() -> None:
        while True:
            data = right.recv(65536)
            if not data:
                return
            right.sendall(b"k")

    thread = threading.Thread(target=receiver, daemon=True)
    thread.start()
    payload = b"x" * size
    times = []
    for _ in range(count):
        started = time.perf_counter()
        left.sendall(payload)
        left.recv(1)
        times.append(time.perf_counter() - started)
    left.close()
    thread.join(timeout=1)
    right.close()
    return times


async def one(app: Any, n: int) -> float:
    body = slash_command("search US tollfree 833 x2", user=REQUESTER, response_url=f"http://127.0.0.1:9/r/{n}", n=n)
    headers = [(k.lower().encode(), v.encode()) for k, v in sign(body).items()]
    headers.append((b"content-length", str(len(body)).encode()))
    scope = {"type": "http", "method": "POST", "path": "/slack/events", "headers": headers, "client": ("127.0.0.1", 1)}
    sent = False
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    started = time.perf_counter()
    await app(scope, receive, send)
    elapsed = time.perf_counter() - started
    assert status == [200], status
    return elapsed


def timed_inserts(handler_cls: type, times: list[float]) -> None:
    original = handler_cls.hand_over

    def hand_over(self: Any, raw: bytes, headers: dict[str, str]) -> bool:
        started = time.perf_counter()
        try:
            return original(self, raw, headers)
        finally:
            times.append(time.perf_counter() - started)

    handler_cls.hand_over = hand_over


async def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="front-bench-"))
    os.chdir(tmp)
    settings = load_settings(SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_BOT_TOKEN="xoxb-bench", NUMBERS_DB=str(tmp / "n.db"))
    inbox = Inbox(tmp / "n.inbox.db", checkpoints=args.front_checkpoints)
    drainer = Inbox(tmp / "n.inbox.db")  # the work process's connection
    inserts: list[float] = []
    timed_inserts(FrontHandler, inserts)
    app = create_front_app(settings, Installation(), inbox)
    if args.gc == "freeze":
        tune_gc()
    pauses = GcPauses()
    if args.trace:
        tracemalloc.start(10)
    walls: list[float] = []
    rss: dict[str, int] = {}
    snapshot = None
    cpu_started = time.process_time()
    done = 0
    while done < args.requests:
        batch = min(args.concurrency, args.requests - done)
        walls += await asyncio.gather(*(one(app, done + i) for i in range(batch)))
        done += batch
        if done % 200 < args.concurrency:
            for row in drainer.after(0, 1000):
                drainer.delete(row.id)
        if done >= 100 and "after_100" not in rss:
            rss["after_100"] = rss_kib()
            snapshot = tracemalloc.take_snapshot() if args.trace else None
    cpu = time.process_time() - cpu_started
    rss["after_all"] = rss_kib()
    result: dict[str, Any] = {
        "requests": args.requests,
        "gc": args.gc,
        "insert_us": {k: round(percentile(inserts, p) * 1e6, 1) for k, p in (("p50", 50), ("p99", 99), ("max", 100))},
        "request_us": {k: round(percentile(walls, p) * 1e6, 1) for k, p in (("p50", 50), ("p99", 99), ("max", 100))},
        "cpu_per_request_ms": round(cpu / args.requests * 1000, 3),
        "collections": pauses.report(),
        "rss_kib": rss,
        "rss_ratio": round(rss["after_all"] / rss["after_100"], 3),
    }
    trips = socket_round_trips(2000, 800)
    result["socket_confirm_us"] = {k: round(percentile(trips, p) * 1e6, 1) for k, p in (("p50", 50), ("p99", 99), ("max", 100))}
    if args.trace and snapshot is not None:
        grown = tracemalloc.take_snapshot().compare_to(snapshot, "lineno")[:8]
        result["grew_most"] = [f"{s.traceback[0].filename.split('/')[-1]}:{s.traceback[0].lineno} {s.size_diff // 1024} KiB" for s in grown]
    inbox.close()
    drainer.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--gc", choices=("default", "freeze"), default="freeze")
    parser.add_argument("--trace", action="store_true")
    parser.add_argument("--front-checkpoints", action="store_true", help="let the front's inserts checkpoint the WAL (before)")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    for key, value in result.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
