"""The benchmarks' statistics: the percentile, the ratio and the median-of-rounds verdict they print.

The figures in the README come from these helpers (``benchmarks/_common.py``); a wrong
percentile or a median that lets a failed round count as a pass would make every verdict wrong.
"""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))
import _common as C  # noqa: E402

sys.path.remove(str(BENCH))


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert C.percentile(values, 50) == 50.0
    assert C.percentile(values, 99) == 99.0
    assert C.percentile(values, 100) == 100.0
    assert C.percentile([5.0, 1.0, 3.0], 50) == 3.0  # sorted first
    # 500 acks: the p99 is the 495th smallest, so the five slowest are above it and one stall is not the p99
    acks = [0.010] * 494 + [0.020] + [3.0] * 5
    assert C.percentile(acks, 99) == 0.020


def test_summary_reports_milliseconds() -> None:
    s = C.summary_ms([0.001, 0.002, 0.003, 0.100])
    assert s["n"] == 4 and s["max"] == 100.0 and s["p50"] == 2.0
    assert C.summary_ms([]) == {"n": 0}


def test_ratio_and_median_spread() -> None:
    assert C.ratio(110.0, 100.0) == 1.1
    assert C.ratio(1.0, 0.0) is None
    spread = C.median_spread([1.5, None, 0.9, 1.05])
    assert spread == {"median": 1.05, "min": 0.9, "max": 1.5, "rounds": 3}  # the failed round is not a round
    assert C.median_spread([1.0, 2.0])["median"] == 1.5
    assert C.median_spread([None])["median"] is None


def test_verdict_lines() -> None:
    assert C.verdict(True, "x").startswith("PASS ")
    assert C.verdict(False, "x").startswith("FAIL ")
    assert C.verdict(None, "x").startswith("n/a ")


def _run(target: str, rnd: int, p99: float, over_3s: int = 0, concurrency: int = 20) -> dict:
    return {
        "target": target, "round": rnd, "n": 500, "concurrency": concurrency, "over_3s": over_3s, "non_200": 0,
        "ack_ms": {"n": 500, "p50": p99 / 4, "p99": p99, "max": p99 * 1.1},
        "ack_cpu_ms_per_request": 0.5, "work_cpu_ms_per_request_in_window": None,
        "rss_kib_before": 1024, "rss_kib_after": 2048, "gc_max_pause_ms": 0.0, "gc_full_collections": 0,
    }


def test_the_verdict_is_the_median_of_same_round_ratios() -> None:
    sys.path.insert(0, str(BENCH))
    try:
        import _ack_report as R
    finally:
        sys.path.remove(str(BENCH))
    # Round by round the bot is ×1.0, ×5.0, ×1.05 the bare app: the median round passes, the stall does not decide.
    runs = [_run("bot", 0, 100), _run("bare", 0, 100), _run("bot", 1, 500), _run("bare", 1, 100),
            _run("bot", 2, 105), _run("bare", 2, 100), _run("raw", 0, 50)]
    summary = R.summarize(runs, [(500, 20)])
    ratio = summary[0]["bot_over_bare_p99"]
    assert summary[0]["bot_over_bare_p99_per_round"] == [1.0, 5.0, 1.05]
    assert (ratio["median"], ratio["min"], ratio["max"]) == (1.05, 1.0, 5.0)
    assert summary[0]["servers"]["bot"]["p99"]["median"] == 105
    assert R.verdicts(summary, {}, rounds=3)[0].startswith("PASS")
    # Fewer than three rounds never passes, however good the ratio.
    two = R.summarize(runs[:2] + runs[4:6], [(500, 20)])  # ×1.0 and ×1.05
    assert two[0]["bot_over_bare_p99"]["median"] == 1.025
    assert R.verdicts(two, {}, rounds=2)[0].startswith("FAIL")
    # An ack over 3 s in a scenario fails it.
    lock = {"lock": {"over_3s": 1, "non_200": 0, "ack_ms": {"p99": 3100.0, "max": 3200.0}}}
    assert R.verdicts(summary, lock, rounds=3)[-1].startswith("FAIL lock")
