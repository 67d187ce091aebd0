"""Shared pieces of the benchmarks: paths, statistics, result files, Slack request signing, RSS.

Not a test module (the benchmarks are run by hand or by ``run_all.sh``, never by pytest).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import platform
import socket
import statistics
import sys
import time
import urllib.parse
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BENCH = ROOT / "benchmarks"
RESULTS = BENCH / "results"
PYTHON = sys.executable

# Fixed, public benchmark credentials: the stub Slack server accepts any token.
BOT_TOKEN = "xoxb-0000-1111-benchmarktoken"
SIGNING_SECRET = "5e1f0bench0signing0secret0d5e6f7a"
TEAM_ID = "T0BENCH01"
APP_ID = "A0BENCH01"
APPROVAL_CHANNEL = "CAPPROVALS"
APPROVER = "UAPPROVER1"
REQUESTER = "UREQUESTER"
CHANNEL = "CGENERAL01"


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_at_start": os.getloadavg(),
    }


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    # The smallest value with at least p% of the values at or below it: rank ceil(p·n/100). (A former
    # int(round(x + 0.5)) took one rank too many whenever banker's rounding went up, e.g. p99 of 500.)
    k = max(0, min(len(ordered) - 1, math.ceil(p * len(ordered) / 100.0 - 1e-9) - 1))
    return ordered[k]


def summary_ms(seconds: Iterable[float]) -> dict[str, float]:
    """p50/p95/p99/max/mean in milliseconds."""
    ms = [s * 1000.0 for s in seconds]
    if not ms:
        return {"n": 0}
    return {
        "n": len(ms),
        "p50": round(percentile(ms, 50), 2),
        "p95": round(percentile(ms, 95), 2),
        "p99": round(percentile(ms, 99), 2),
        "max": round(max(ms), 2),
        "mean": round(statistics.fmean(ms), 2),
    }


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def save_result(name: str, data: dict[str, Any]) -> Path:
    """Print the JSON on stdout and keep a copy under benchmarks/results/ (gitignored)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    data = {"benchmark": name, "at": stamp, "machine": machine(), **data}
    text = json.dumps(data, indent=2, default=str)
    path = RESULTS / f"{name}-{stamp}.json"
    path.write_text(text + "\n")
    (RESULTS / f"{name}-latest.json").write_text(text + "\n")
    print(text)
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib() -> int:
    """Resident set size of this process (VmRSS), KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def sign(body: bytes, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict[str, str]:
    """Headers Slack sends with a request: ``v0=hex(HMAC-SHA256(secret, "v0:ts:body"))``."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest(),
    }


def slash_command(text: str, *, user: str, response_url: str, channel: str = CHANNEL, n: int = 0) -> bytes:
    """The form body Slack posts for ``/numbers <text>``."""
    trigger = f"{int(time.time())}.{TEAM_ID}.{hashlib.md5(f'{n}-{time.monotonic_ns()}'.encode()).hexdigest()}"
    return urllib.parse.urlencode(
        {
            "token": "verificationTokenNotUsed",
            "team_id": TEAM_ID,
            "team_domain": "numbers-bench",
            "channel_id": channel,
            "channel_name": "general",
            "user_id": user,
            "user_name": user.lower(),
            "command": "/numbers",
            "text": text,
            "api_app_id": APP_ID,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger,
        }
    ).encode()


def one_line(name: str, text: str) -> None:
    """The one-line summary, on stderr so stdout stays pure JSON."""
    print(f"[{name}] {text}", file=sys.stderr, flush=True)


def sandbox_settings(tmp: Path, poll: float, api_url: str = "http://127.0.0.1:9/api/") -> Any:
    """Settings for an in-process bot on the sandbox providers, nothing read from the environment."""
    from bot.config import load_settings

    for name in list(os.environ):
        if name.startswith(("NUMBERS_", "SLACK_", "ACS_", "PLIVO_", "WEBEX_")):
            del os.environ[name]
    return load_settings(
        NUMBERS_DB=str(tmp / f"numbers-{time.monotonic_ns()}.db"),
        NUMBERS_SANDBOX=True,
        NUMBERS_POLL_INTERVAL=poll,
        NUMBERS_APPROVERS=APPROVER,
        NUMBERS_APPROVAL_CHANNEL=APPROVAL_CHANNEL,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=api_url,
    )


def median_spread(values: Iterable[float | None]) -> dict[str, float | int | None]:
    """Median of the values with their spread (min and max); ``None`` values (a round that failed) are left out."""
    kept = sorted(v for v in values if v is not None)
    if not kept:
        return {"median": None, "min": None, "max": None, "rounds": 0}
    return {"median": round(statistics.median(kept), 3), "min": kept[0], "max": kept[-1], "rounds": len(kept)}


def verdict(met: bool | None, text: str) -> str:
    """A verdict line: PASS, FAIL, or n/a when there was nothing to judge."""
    return f"{'n/a ' if met is None else 'PASS' if met else 'FAIL'} {text}"
