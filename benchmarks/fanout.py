"""Search fan-out: a search asks every provider at once, so it takes as long as the slowest one alone.

Two measurements, each in one process against the in-memory sandboxes:

* service level: ``NumbersService.search`` for ``US tollfree`` (ACS + Plivo;
  Webex serves only ``assign``, timed on its own for the record);
* Slack path: a signed ``/numbers search US tollfree`` into the real Bolt app
  (``bot.server.create_asgi_app``) → the ephemeral offers posted to the stub
  Slack server's response_url; timed from the command to that post.

Baseline, in the same run and interleaved: the same search restricted to one
provider (``via acs`` / ``via plivo``), each alone. Reported: median fan-out
time, median of each provider alone, ``overhead = fan-out − max(alone)`` (target
≤ 50 ms) and ``ratio = fan-out / max(alone)``.

Provider latency, two ways (both run by default):

* ``first_request``: a 1.0 s delay on ACS's ``:search`` POST, 1.5 s on Plivo's
  group search (fault rules, one per search), polls every 50 ms — the
  "ACS takes 1.0 s, Plivo 1.5 s" case of the issue;
* ``every_request``: ``sandbox.acs.latency = 1.0``, ``plivo = 1.5``, ``webex = 2.0``
  on every HTTP request with the default 2 s poll interval: ACS's search is a
  POST, three operation polls and a result read, so ACS alone is ~9 s.

    .venv/bin/python benchmarks/fanout.py            # 5 rounds per case
    .venv/bin/python benchmarks/fanout.py --rounds 3 --no-slack
"""

from __future__ import annotations

import argparse
import shutil
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

import httpx  # noqa: E402

from bot.domain.offers import SearchQuery  # noqa: E402
from bot.sandbox import SandboxServices  # noqa: E402
from stub_slack import StubSlack  # noqa: E402

TARGET_OVERHEAD_MS = 50.0  # issue 18: fan-out still ≤ slowest provider + 50 ms




CASES = {
    "first_request": {"poll": 0.05, "latency": {}, "delay": {"acs": 1.0, "plivo": 1.5}},
    "every_request": {"poll": 2.0, "latency": {"acs": 1.0, "plivo": 1.5, "webex": 2.0}, "delay": {}},
}


def arm(sandbox: SandboxServices, case: dict[str, Any], providers: list[str]) -> None:
    """One delay per provider asked, on its first request of this search."""
    delays = case["delay"]
    if "acs" in providers and "acs" in delays:
        sandbox.acs.faults.add("delay", method="POST", path=r"/:search$", seconds=delays["acs"], times=1)
    if "plivo" in providers and "plivo" in delays:
        # The search of either Plivo API (PLIVO_API=numbers is the default; groups the deprecated one).
        sandbox.plivo.faults.add("delay", method="GET", path=r"/(PhoneNumber|AvailableNumberGroup)/$", seconds=delays["plivo"],
                                 times=1)


def medians(times: dict[str, list[float]]) -> dict[str, float]:
    return {k: round(statistics.median(v) * 1000, 1) for k, v in times.items() if v}


def verdict(times: dict[str, list[float]]) -> dict[str, Any]:
    m = medians(times)
    slowest = max(m.get("acs_alone", 0), m.get("plivo_alone", 0))
    fan = m.get("fanout", 0)
    return {
        "median_ms": m,
        "all_ms": {k: [round(t * 1000, 1) for t in v] for k, v in times.items()},
        "slowest_alone_ms": slowest,
        "overhead_ms": round(fan - slowest, 1),
        "ratio": C.ratio(fan, slowest),
        "target_met": (fan - slowest) <= TARGET_OVERHEAD_MS,
    }


async def service_level(case_name: str, rounds: int, tmp: Path) -> dict[str, Any]:
    from bot.bootstrap import build

    case = CASES[case_name]
    settings = C.sandbox_settings(tmp, case["poll"])
    sandbox = SandboxServices.create(None)
    for name, seconds in case["latency"].items():
        sandbox.apps[name].latency = seconds
    c = build(settings, sandbox=sandbox)
    svc = c.service
    times: dict[str, list[float]] = {"acs_alone": [], "plivo_alone": [], "fanout": []}
    shapes = {"acs_alone": "acs", "plivo_alone": "plivo", "fanout": None}
    try:
        # one warm-up search (imports, first connections)
        arm(sandbox, case, ["acs", "plivo"])
        await svc.search(C.REQUESTER, SearchQuery("US", "tollfree"))
        for _ in range(rounds):
            for label, provider in shapes.items():
                query = SearchQuery("US", "tollfree", provider=provider)
                arm(sandbox, case, [provider] if provider else ["acs", "plivo"])
                started = time.monotonic()
                result = await svc.search(C.REQUESTER, query)
                times[label].append(time.monotonic() - started)
                if not result.offers:
                    raise RuntimeError(f"{label}: no offers ({result.problems})")
        webex: list[float] = []
        if "webex" in case["latency"]:
            for _ in range(max(1, rounds // 2)):
                started = time.monotonic()
                await svc.assign_search(C.REQUESTER, None)
                webex.append(time.monotonic() - started)
    finally:
        await c.aclose()
    out = verdict(times)
    if webex:
        out["webex_assign_alone_ms"] = round(statistics.median(webex) * 1000, 1)
    return out


async def slack_level(case_name: str, rounds: int, tmp: Path) -> dict[str, Any]:
    from bot.server import create_asgi_app

    case = CASES[case_name]
    stub = await StubSlack().start()
    settings = C.sandbox_settings(tmp, case["poll"], stub.api_url)
    sandbox = SandboxServices.create(None)
    for name, seconds in case["latency"].items():
        sandbox.apps[name].latency = seconds
    app, components = create_asgi_app(settings, sandbox=sandbox)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench")
    times: dict[str, list[float]] = {"acs_alone": [], "plivo_alone": [], "fanout": []}
    texts = {"acs_alone": "search US tollfree via acs", "plivo_alone": "search US tollfree via plivo", "fanout": "search US tollfree"}
    acks: list[float] = []
    seq = 0
    try:
        for label_round in [("warm", "fanout")] + [(r, label) for r in range(rounds) for label in texts]:
            r, label = label_round
            seq += 1
            key = f"{label}-{seq}"
            body = C.slash_command(texts[label], user=C.REQUESTER, response_url=stub.response_url(key), n=seq)
            arm(sandbox, case, ["acs", "plivo"] if label == "fanout" else [label.split("_")[0]])
            started = time.monotonic()
            answer = await client.post("/slack/events", content=body, headers=C.sign(body))
            if answer.status_code != 200:
                raise RuntimeError(f"the bot answered {answer.status_code}: {answer.text[:200]}")
            acks.append(time.monotonic() - started)
            if not await stub.wait_for(lambda: key in stub.responses, timeout=60):
                raise RuntimeError(f"no offers posted for {key}")
            if r != "warm":
                times[label].append(stub.responses[key][0] - started)
    finally:
        await client.aclose()
        await components.aclose()
        await stub.stop()
    out = verdict(times)
    out["ack_ms"] = C.summary_ms(acks)
    return out


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="numbers-bench-fanout-"))
    os.chdir(tmp)  # no stray .env
    results: dict[str, Any] = {}
    for case in args.cases:
        results[f"service/{case}"] = await service_level(case, args.rounds, tmp)
        C.one_line("fanout", f"service {case}: {results[f'service/{case}']['median_ms']}, overhead "
                   f"{results[f'service/{case}']['overhead_ms']} ms")
        if not args.no_slack:
            results[f"slack/{case}"] = await slack_level(case, args.rounds, tmp)
            C.one_line("fanout", f"slack {case}: {results[f'slack/{case}']['median_ms']}, overhead "
                       f"{results[f'slack/{case}']['overhead_ms']} ms")
    shutil.rmtree(tmp, ignore_errors=True)
    return {"params": vars(args), "cases": {k: CASES[k] for k in args.cases}, "results": results,
            "target": f"fan-out ≤ slowest provider alone + {TARGET_OVERHEAD_MS:g} ms",
            "targets_met": {k: v["target_met"] for k, v in results.items()}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    p.add_argument("--no-slack", action="store_true", help="service level only")
    args = p.parse_args()
    data = asyncio.run(main_async(args))
    C.save_result("fanout", data)
    C.one_line("fanout", "overhead over the slowest provider alone: " + ", ".join(
        f"{k} {v['overhead_ms']} ms (×{v['ratio']})" for k, v in data["results"].items()))


if __name__ == "__main__":
    main()
