"""What ``ack_latency.py`` prints: a line per round, the per-config summary over rounds, the table, the verdicts.

Pure functions of the runs' dictionaries (``ack_latency.load`` plus the process figures), so a
result file can be summarised again: ``summarize(json["runs"], [(500, 20), (1000, 50)])``.
"""

from __future__ import annotations

from typing import Any

import _common as C

__all__ = ["RATIO_TARGET", "line_for", "summarize", "table", "verdicts"]

RATIO_TARGET = 1.1


def line_for(result: dict[str, Any]) -> str:
    a = result["ack_ms"]
    work = result.get("work_cpu_ms_per_request_in_window")
    return (f"{result['target']:>5} n={result['n']} c={result['concurrency']}: p50 {a.get('p50')} p99 {a.get('p99')} "
            f"max {a.get('max')} ms, >3s {result['over_3s']}, non-200 {result['non_200']}, "
            f"CPU/req ack {result['ack_cpu_ms_per_request']} ms" + (f" work {work} ms" if work is not None else "")
            + f", gc max {result.get('gc_max_pause_ms')} ms ({result.get('gc_full_collections')} full), "
            f"RSS {result['rss_kib_before'] // 1024}→{result['rss_kib_after'] // 1024} MiB")


def summarize(runs: list[dict[str, Any]], configs: list[tuple[int, int]]) -> list[dict[str, Any]]:
    """Per config: each server's figures as median (min–max) over rounds, and bot/bare p99 per round."""
    out = []
    for n, concurrency in configs:
        mine = [r for r in runs if r["n"] == n and r["concurrency"] == concurrency]
        rounds = sorted({r["round"] for r in mine})
        by = {(r["target"], r["round"]): r for r in mine}
        per_server: dict[str, Any] = {}
        for name in ("bot", "bare", "raw"):
            rs = [by[(name, i)] for i in rounds if (name, i) in by and by[(name, i)]["ack_ms"].get("n")]
            if not rs:
                continue
            per_server[name] = {
                key: C.median_spread(r["ack_ms"][key] for r in rs) for key in ("p50", "p99", "max")
            } | {
                "over_3s": sum(r["over_3s"] for r in rs),
                "non_200": sum(r["non_200"] for r in rs),
                "ack_cpu_ms_per_request": C.median_spread(r["ack_cpu_ms_per_request"] for r in rs),
                "work_cpu_ms_per_request_in_window": C.median_spread(r["work_cpu_ms_per_request_in_window"] for r in rs),
                "work_cpu_ms_per_request_with_drain": C.median_spread(r.get("work_cpu_ms_per_request_with_drain")
                                                                      for r in rs),
                "gc_max_pause_ms": max(r.get("gc_max_pause_ms", 0.0) for r in rs),
                "gc_full_collections": [r.get("gc_full_collections") for r in rs],
                "rss_mib_first_before": round(rs[0]["rss_kib_before"] / 1024, 1),
                "rss_mib_last_after": round(rs[-1]["rss_kib_after"] / 1024, 1),
            }

        def ratios(a: str, b: str) -> list[float | None]:
            return [C.ratio(by[(a, i)]["ack_ms"]["p99"], by[(b, i)]["ack_ms"]["p99"])
                    if (a, i) in by and (b, i) in by and by[(a, i)]["ack_ms"].get("n") and by[(b, i)]["ack_ms"].get("n")
                    else None for i in rounds]

        bot_bare = ratios("bot", "bare")
        out.append({"n": n, "concurrency": concurrency, "servers": per_server,
                    "bot_over_bare_p99_per_round": bot_bare, "bot_over_bare_p99": C.median_spread(bot_bare),
                    "bare_over_raw_p99": C.median_spread(ratios("bare", "raw")),
                    "bot_over_raw_p99": C.median_spread(ratios("bot", "raw"))})
    return out


def verdicts(summary: list[dict[str, Any]], scenarios: dict[str, Any], rounds: int) -> list[str]:
    lines = []
    for s in summary:
        r = s["bot_over_bare_p99"]
        met = None if r["median"] is None else r["median"] <= RATIO_TARGET and r["rounds"] >= 3
        lines.append(C.verdict(met, f"c={s['concurrency']}: bot p99 / bare p99 median ×{r['median']} "
                                    f"(×{r['min']}–×{r['max']}, {r['rounds']} rounds) ≤ ×{RATIO_TARGET}"
                                    + (" [needs ≥ 3 rounds]" if rounds < 3 else "")))
        if s["concurrency"] >= 50 and "bot" in s["servers"]:
            over = s["servers"]["bot"]["over_3s"]
            lines.append(C.verdict(over == 0, f"c={s['concurrency']}: bot acks over 3 s: {over} (target 0)"))
    for name, result in scenarios.items():
        over, errors = result["over_3s"], result["non_200"]
        lines.append(C.verdict(over == 0 and errors == 0, f"{name}: acks over 3 s {over}, non-200/errors {errors} "
                                                         f"(target 0); p99 {result['ack_ms'].get('p99')} "
                                                         f"max {result['ack_ms'].get('max')} ms"))
    return lines


def table(summary: list[dict[str, Any]]) -> list[str]:
    lines = ["server  c    p50 ms          p99 ms                max ms          CPU/req ack (work) ms   gc max ms  RSS MiB"]
    for s in summary:
        for name, f in s["servers"].items():
            def m(d: dict[str, Any]) -> str:
                return f"{d['median']} ({d['min']}–{d['max']})" if d["median"] is not None else "-"
            work = f["work_cpu_ms_per_request_in_window"]["median"]
            lines.append(f"{name:<6} {s['concurrency']:<4} {m(f['p50']):<15} {m(f['p99']):<21} {m(f['max']):<15} "
                         f"{f['ack_cpu_ms_per_request']['median']}" + (f" ({work})" if work is not None else "")
                         + f"{'':<10} {f['gc_max_pause_ms']:<10} {f['rss_mib_first_before']}→{f['rss_mib_last_after']}")
    return lines
