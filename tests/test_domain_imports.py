"""The domain stands alone: loading every module of ``bot.domain`` loads no HTTP client, no
database driver, no Slack SDK and nothing from the adapters (stdlib and phonenumbers only)."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import bot.domain

FORBIDDEN = (
    "httpx",
    "sqlite3",
    "sqlite_utils",
    "slack_sdk",
    "slack_bolt",
    "psycopg",
    "bot.providers",
    "bot.store",
    "bot.slack",
    "bot.services",
    "bot.config",
)

PROBE = """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
print(json.dumps(sorted(sys.modules)))
"""


def domain_modules() -> list[str]:
    return ["bot.domain"] + [f"bot.domain.{m.name}" for m in pkgutil.iter_modules(bot.domain.__path__)]


def test_every_domain_module_is_checked():
    names = domain_modules()
    for expected in ("errors", "states", "kinds", "offers", "requests", "steps", "policy", "holds", "display"):
        assert f"bot.domain.{expected}" in names


def test_the_domain_loads_no_adapter_driver_or_sdk():
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *domain_modules()],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded = json.loads(out.stdout)
    leaked = sorted(m for m in loaded if any(m == f or m.startswith(f + ".") for f in FORBIDDEN))
    assert leaked == [], f"bot.domain pulled in {leaked}"
