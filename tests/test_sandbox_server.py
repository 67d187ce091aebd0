"""`numbers-bot sandbox --port N` serves the simulated providers over HTTP; the real clients,
configured with ordinary credentials settings, buy through it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import pytest

from bot.sandbox.acs import SANDBOX_ACS_ACCESS_KEY
from bot.sandbox.plivo import SANDBOX_PLIVO_AUTH_ID, SANDBOX_PLIVO_AUTH_TOKEN
from bot.sandbox.webex import SANDBOX_WEBEX_TOKEN
from tests.conftest import clean_env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served_sandbox(tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "sandbox", "--port", str(port), "--state", str(tmp_path / "sbx.db")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(proc.stderr.read())
            time.sleep(0.1)
    else:
        proc.kill()
        raise AssertionError("the sandbox did not start listening")
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    try:
        _, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    assert "ACS_CONNECTION_STRING=" in err  # it told how to point the clients at it


def test_real_clients_buy_through_the_served_sandbox(served_sandbox, tmp_path):
    base = served_sandbox
    env = clean_env()
    env.update(
        NUMBERS_DB=str(tmp_path / "n.db"),
        NUMBERS_APPROVERS="UAPPROVER1",
        NUMBERS_POLL_INTERVAL="0.05",
        USER="UREQUESTER",
        ACS_CONNECTION_STRING=f"endpoint={base}/;accesskey={SANDBOX_ACS_ACCESS_KEY}",
        PLIVO_AUTH_ID=SANDBOX_PLIVO_AUTH_ID,
        PLIVO_AUTH_TOKEN=SANDBOX_PLIVO_AUTH_TOKEN,
        PLIVO_API_URL=base,
        WEBEX_ACCESS_TOKEN=SANDBOX_WEBEX_TOKEN,
        WEBEX_API_URL=f"{base}/v1",
    )

    def cli(*args):
        proc = subprocess.run([sys.executable, "-m", "bot.cli", *args, "--json"], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    offers = cli("search", "US", "tollfree", "844")["offers"]
    assert {o["provider"] for o in offers} == {"acs", "plivo"}
    acs = next(o for o in offers if o["provider"] == "acs")
    request = cli("request", acs["id"], "--reason", "over HTTP")
    done = cli("approve", str(request["id"]), "--as", "UAPPROVER1")
    assert done["state"] == "fulfilled" and sorted(done["numbers"]) == sorted(acs["numbers"])
    webex = cli("assign", "London")["offers"]
    assert webex and all(o["provider"] == "webex" for o in webex)
    assert not (tmp_path / "n.sandbox.db").exists()  # real providers configured: no in-process sandbox
