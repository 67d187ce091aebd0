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
