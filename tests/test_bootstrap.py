"""``bot.bootstrap``: the one composition root. Every part made once, in the order that hands each
its collaborators at construction (no binding afterwards), and nothing done at import time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bot.bootstrap import build
from bot.slack.app import build_slack
from tests.conftest import clean_env
from tests.slack_harness import APPROVAL_CHANNEL, BOT_TOKEN, SIGNING_SECRET

SLACK = {
    "SLACK_BOT_TOKEN": BOT_TOKEN,
    "SLACK_SIGNING_SECRET": SIGNING_SECRET,
    "NUMBERS_APPROVAL_CHANNEL": APPROVAL_CHANNEL,
    "NUMBERS_SANDBOX": True,
}


async def test_the_slack_parts_share_one_client_and_the_service_store(settings_env):
    slack_app, c = build_slack(settings_env(**SLACK))
    try:
        notifier, directory = c.service.notifier, c.service.directory
        assert notifier.store is c.service.store  # handed over at construction: cards re-read from it
        assert c.slack is not None
        assert notifier.client is c.slack and directory.client is c.slack and slack_app.client is c.slack
        assert c.service.sender is not None and c.service.sender.notifier is notifier
    finally:
        await c.aclose()


async def test_without_slack_nothing_of_slack_is_made(settings_env):
    c = build(settings_env(NUMBERS_SANDBOX=True), deliver=False)
    try:
        assert c.slack is None
        assert c.service.sender is None  # the CLI writes to the outbox; the running server delivers
        assert type(c.service.notifier).__name__ == "SilentNotifier"
    finally:
        await c.aclose()


def test_importing_the_composition_root_does_nothing(tmp_path):
    """No store opened, no thread or socket started, no file written, on import alone."""
    code = (
        "import threading, bot.bootstrap, bot.slack.app, bot.server, bot.doctor, bot.cli\n"
        "assert threading.active_count() == 1, threading.enumerate()\n"
        "import sys; assert 'bot.sandbox.acs' not in sys.modules\n"
    )
    env = clean_env()
    env["NUMBERS_DB"] = str(tmp_path / "numbers.db")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert list(Path(tmp_path).iterdir()) == []
