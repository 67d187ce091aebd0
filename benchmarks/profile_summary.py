"""Summarise a ``py-spy record --format raw --subprocesses`` profile: where each process spends its CPU.

``ack_latency.py --profile DIR`` runs every server under py-spy (installed by hand into the
venv, not a project dependency); this reads one of the raw files (``process PID:"cmd";frame;…
count`` per line; py-spy leaves idle samples out, so a sample is time on the CPU) and prints,
per process: busy samples (stacks topped by a wait are left out), the share of them whose stack passes through each part of the code
(inclusive, so shares overlap), and the functions most often on top of the stack.

    .venv/bin/python benchmarks/profile_summary.py /tmp/prof/bot-*.txt
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import sys
from pathlib import Path
from typing import Any

# (name, substrings of a frame's file path); a stack counts for every part it passes through.
PARTS: list[tuple[str, tuple[str, ...]]] = [
    ("HTTP parsing (uvicorn's protocol, h11)", ("/uvicorn/protocols/", "/h11/", "bot/http_limits")),
    ("gate: limits + signature", ("bot/slack/gate", "slack_sdk/signature")),
    ("Bolt dispatch", ("/slack_bolt/",)),
    ("front: acks + inbox hand-over", ("bot/front", "bot/slack/acks", "bot/inbox", "bot/supervisor")),
    ("work process: inbox drain", ("bot/workproc",)),
    ("listeners", ("bot/slack/commands", "bot/slack/actions", "bot/slack/views", "bot/slack/home")),
    ("services", ("bot/services",)),
    ("providers + httpx", ("bot/providers/", "/httpx/", "/httpcore/")),
    ("sandbox providers", ("bot/sandbox/",)),
    ("store (SQLite)", ("bot/store/", "sqlite_utils", "sqlite3")),
    ("rendering blocks", ("bot/slack/render", "bot/slack/blocks", "slack_sdk/models")),
    ("Slack Web API client", ("slack_sdk/web", "/aiohttp/", "bot/slack/adapters/notifier", "bot/slack/notifier", "bot/delivery")),
    ("worker (fulfilment)", ("bot/worker",)),
    ("logging", ("/logging/", "bot/logs")),
]
# Stacks whose top frame is one of these wait rather than run (py-spy's idle detection misses them):
# the event loop's select, a thread pool's idle workers, the benchmark's own probe thread.
IDLE_TOP = re.compile(r"^(EpollSelector\.select|_worker) \(.*(selectors|thread)\.py:\d+\)$|sitecustomize\.py:")
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*):(?P<line>\d+)\)$")


def parse(path: Path) -> dict[str, collections.Counter[tuple[str, ...]]]:
    """Stacks (root first) and their sample counts, per process (``pid cmd``)."""
    per_process: dict[str, collections.Counter[tuple[str, ...]]] = collections.defaultdict(collections.Counter)
    text = path.read_text(errors="replace")
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        process = "?"
        while frames and frames[0].startswith("process "):  # a child's stacks sit under its parent's frame
            process = frames.pop(0)[len("process "):]
        while frames and frames[0].startswith("thread "):
            frames.pop(0)
        per_process[process][tuple(frames)] += int(count)
    return per_process


def summarise(stacks: collections.Counter[tuple[str, ...]], top: int = 12, loop_only: bool = True) -> dict[str, Any]:
    idle = sum(c for stack, c in stacks.items() if stack and IDLE_TOP.search(stack[-1]))
    stacks = collections.Counter({s: c for s, c in stacks.items() if not (s and IDLE_TOP.search(s[-1]))})
    threads = sum(stacks.values())
    if loop_only:  # the event loop's thread: where an ack waits if something else runs
        stacks = collections.Counter({s: c for s, c in stacks.items() if any("run_forever" in f for f in s)})
    total = sum(stacks.values())
    parts: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    for stack, count in stacks.items():
        files = " ".join(stack)
        for name, markers in PARTS:
            # py-spy names a library's file from its package ("(slack_bolt/app/…"), a path otherwise
            if any(m in files or (m[0] == "/" and "(" + m[1:] in files) for m in markers):
                parts[name] += count
        if stack:
            m = FRAME.match(stack[-1])
            leaves[f"{m['func']} ({Path(m['file']).name}:{m['line']})" if m else stack[-1]] += count
    pct = (lambda c: round(100.0 * c / total, 1)) if total else (lambda c: 0.0)
    return {
        "samples": total,
        "idle_samples_left_out": idle,
        "busy_samples_all_threads": threads,
        "parts_pct": {name: pct(parts[name]) for name, _ in PARTS if parts[name]},
        "top_leaf_pct": {name: pct(c) for name, c in leaves.most_common(top)},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--top", type=int, default=12)
    p.add_argument("--json", action="store_true")
    p.add_argument("--all-threads", action="store_true", help="count every thread (the store's pool too), not only "
                   "the event loop's")
    args = p.parse_args()
    out: dict[str, Any] = {}
    for path in args.files:
        for process, stacks in sorted(parse(path).items(), key=lambda kv: -sum(kv[1].values())):
            out[f"{path.name} {process[:90]}"] = summarise(stacks, args.top, not args.all_threads)
    if args.json:
        json.dump(out, sys.stdout, indent=2)
        return
    for name, s in out.items():
        print(f"\n== {name}: {s['samples']} busy samples on the event loop ({s['busy_samples_all_threads']} busy in all "
              f"threads, {s['idle_samples_left_out']} waiting, left out)")
        for part, share in sorted(s["parts_pct"].items(), key=lambda kv: -kv[1]):
            print(f"   {share:5.1f}%  {part}")
        print("   top of stack:")
        for leaf, share in s["top_leaf_pct"].items():
            print(f"   {share:5.1f}%  {leaf}")


if __name__ == "__main__":
    main()
