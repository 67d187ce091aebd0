"""Helpers for the reliability suite: Slack's retries, every recorded event, and real processes.

* ``retry_headers``: the same body signed again with a fresh timestamp, plus ``X-Slack-Retry-Num`` and
  ``X-Slack-Retry-Reason``, as Slack resends a delivery it thinks was lost.
* ``all_events`` / ``refusals``: the audit log as the store has it.
* ``ServedSandbox`` / ``ServedBot``: ``numbers-bot sandbox`` and ``numbers-bot serve`` as real
  subprocesses (killable with SIGKILL), with every wait bounded.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable

import httpx

from bot.sandbox.acs import SANDBOX_ACS_ACCESS_KEY
from bot.sandbox.telnyx import SANDBOX_TELNYX_API_KEY
from bot.sandbox.twilio import SANDBOX_TWILIO_ACCOUNT_SID, SANDBOX_TWILIO_AUTH_TOKEN
from bot.sandbox.plivo import SANDBOX_PLIVO_AUTH_ID, SANDBOX_PLIVO_AUTH_TOKEN
from bot.sandbox.webex import SANDBOX_WEBEX_TOKEN
from aiohttp import web

from bot.store.db import Store
from tests.conftest import clean_env
from tests.slack_harness import (
    APPROVAL_CHANNEL,
    APPROVER,
    APPROVER2,
    APPROVER_GROUP,
    BOT_TOKEN,
    FORM,
    GENERAL,
    REQUESTER,
    SIGNING_SECRET,
    RecordingSlack,
    SlackSigner,
    block_actions,
    slash_command,
    view_submission,
)

ROOT = Path(__file__).resolve().parents[1]
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
CLI = [PYTHON, "-c", "import sys; from bot.cli import main; sys.exit(main())"]  # `numbers-bot`, from this checkout
EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)


def retry_headers(signer: SlackSigner, body: bytes, content_type: str, num: int, reason: str = "http_timeout") -> dict[str, str]:
    headers = signer.headers(body, content_type, timestamp=int(time.time()))
    headers["X-Slack-Retry-Num"] = str(num)
    headers["X-Slack-Retry-Reason"] = reason
    return headers


def all_events(store: Any) -> list[Any]:
    return list(store.iter_events(EPOCH))


def refusals(store: Any, user: str | None = None) -> list[Any]:
    return [e for e in all_events(store) if e.kind == "refused" and (user is None or e.actor == user)]


def snapshot(store: Any) -> tuple[list[tuple], list[tuple], int]:
    """Requests and operations as rows, and how many events: to prove that nothing changed."""
    requests = [tuple(r) for r in store.db.execute("SELECT * FROM requests ORDER BY id").fetchall()]
    operations = [tuple(r) for r in store.db.execute("SELECT * FROM operations ORDER BY id").fetchall()]
    events = store.db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    return requests, operations, events


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def until_async(predicate: Callable[[], Awaitable[Any]], timeout: float, what: str, every: float = 0.05) -> Any:
    """``until`` for a predicate that must be awaited (one that asks another process)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(every)


async def until(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(every)


class Process:
    """A child process with its output in a file (read on failure), stopped with a signal by its pid."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path):
        self.log = log
        self._out = open(log, "ab")
        self.proc = subprocess.Popen(args, env=env, stdout=self._out, stderr=subprocess.STDOUT, cwd=str(log.parent))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no cleanup, no lifespan shutdown, leases left behind, as in a real crash."""
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._out.close()

    def stop(self) -> None:
        if self.alive():
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
                return
        self._out.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def base_env() -> dict[str, str]:
    env = clean_env()
    env["PYTHONUNBUFFERED"] = "1"
    return env


async def wait_http(url: str, timeout: float, proc: Process) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=1) as http:
        while True:
            if not proc.alive():
                raise AssertionError(f"{url} process exited:\n{proc.output()[-3000:]}")
            try:
                await http.get(url)
                return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} did not answer within {timeout}s:\n{proc.output()[-3000:]}")
            await asyncio.sleep(0.05)


class ServedSandbox:
    """``numbers-bot sandbox --port N --state FILE``: the providers outlive every bot process."""

    def __init__(self, tmp: Path):
        self.port = free_port()
        self.state = tmp / "sandbox-state.db"
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: Process | None = None
        self.tmp = tmp

    async def start(self) -> "ServedSandbox":
        self.process = Process(
            [*CLI, "sandbox", "--port", str(self.port), "--state", str(self.state)],
            base_env(),
            self.tmp / "sandbox.log",
        )
        await wait_http(self.base + "/healthz", 20, self.process)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    async def count(self, service: str, method: str, path: str, *, answered: bool = False) -> int:
        """How many ``method`` requests matching ``path`` the served ``service`` has seen
        (with ``answered``: has finished carrying out)."""
        params = {"service": service, "method": method, "path": path, "answered": "1" if answered else "0"}
        async with httpx.AsyncClient(timeout=5) as http:
            answer = await http.get(f"{self.base}/_sandbox/requests", params=params)
            assert answer.status_code == 200, answer.text
            return answer.json()["count"]

    async def fault(self, service: str, **rule: Any) -> None:
        """A fault rule over HTTP (``POST /_sandbox/faults?service=…``), as a load test steers it."""
        async with httpx.AsyncClient(timeout=5) as http:
            answer = await http.post(f"{self.base}/_sandbox/faults?service={service}", json=rule)
            assert answer.status_code == 201, answer.text

    def provider_env(self) -> dict[str, str]:
        return {
            "ACS_CONNECTION_STRING": f"endpoint={self.base}/;accesskey={SANDBOX_ACS_ACCESS_KEY}",
            "PLIVO_AUTH_ID": SANDBOX_PLIVO_AUTH_ID,
            "PLIVO_AUTH_TOKEN": SANDBOX_PLIVO_AUTH_TOKEN,
            "PLIVO_API_URL": self.base,
            "WEBEX_ACCESS_TOKEN": SANDBOX_WEBEX_TOKEN,
            "WEBEX_API_URL": f"{self.base}/v1",
            "TWILIO_ACCOUNT_SID": SANDBOX_TWILIO_ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": SANDBOX_TWILIO_AUTH_TOKEN,
            "TWILIO_API_URL": self.base,
            "TELNYX_API_KEY": SANDBOX_TELNYX_API_KEY,
            "TELNYX_API_URL": self.base,
        }


class StallingSlack(RecordingSlack):
    """A RecordingSlack that can hang calls of one method until released: a window in which the bot
    waits on Slack, to kill it there."""

    def __init__(self, **kw: Any):
        super().__init__(**kw)
        self.stalled: dict[str, asyncio.Event] = {}
        self.stalls_hit: list[str] = []

    def stall(self, method: str) -> None:
        self.stalled[method] = asyncio.Event()

    def release(self) -> None:
        for gate in self.stalled.values():
            gate.set()
        self.stalled.clear()

    async def _api(self, request: web.Request) -> web.Response:
        gate = self.stalled.get(request.match_info["method"])
        if gate is not None:
            self.stalls_hit.append(request.match_info["method"])
            self._changed.set()
            await gate.wait()
        return await super()._api(request)


class ServedBot:
    """``numbers-bot serve`` in HTTP mode as a subprocess, on a store that outlives it.

    Has the driving methods of ``tests.slack_harness.SlackBot`` (``command``, ``click``, ``submit``,
    ``response_to``, ``store``), so ``tests.test_slack_flow.request_offer`` works against it.
    """

    def __init__(self, tmp: Path, slack_api_url: str, sandbox: ServedSandbox, db: Path, **env: str):
        self.tmp = tmp
        self.db = db
        self.env = {
            **base_env(),
            **sandbox.provider_env(),
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack_api_url,
            "NUMBERS_APPROVAL_CHANNEL": APPROVAL_CHANNEL,
            "NUMBERS_APPROVERS": f"{APPROVER},{APPROVER2},{APPROVER_GROUP}",
            "NUMBERS_DB": str(db),
            "NUMBERS_POLL_INTERVAL": "0.1",
            "NUMBERS_PROVIDER_TIMEOUT": "5",
            "LOG_LEVEL": "INFO",
            "PLIVO_API": "groups",  # these scenarios were written for the number-group rent
            **env,
        }
        self.process: Process | None = None
        self.url = ""
        self.runs = 0
        self.slack: RecordingSlack | None = None
        self.signer = SlackSigner(SIGNING_SECRET)
        self.http = httpx.AsyncClient(timeout=30)
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        """The bot's store, read from the test process (SQLite WAL: readers never block the bot)."""
        if self._store is None:
            self._store = Store(str(self.db))
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    async def post(self, body: bytes, content_type: str = FORM, *, headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.http.post(self.url + "/slack/events", content=body, headers=headers or self.signer.headers(body, content_type))

    async def command(self, text: str, *, user: str = REQUESTER, channel: str = GENERAL) -> tuple[httpx.Response, str]:
        assert self.slack is not None
        url = self.slack.response_url("cmd")
        return await self.post(slash_command(text, user=user, channel=channel, response_url=url)), url

    async def click(self, action_id: str, value: str, *, user: str, where: str = "message", channel: str = GENERAL, message_ts: str = "1764000000.000001") -> tuple[httpx.Response, str]:
        assert self.slack is not None
        url = self.slack.response_url("act")
        body = block_actions(action_id, value, user=user, where=where, channel=channel, message_ts=message_ts, response_url=url)
        return await self.post(body), url

    async def submit(self, callback_id: str, values: dict[str, dict[str, Any]], *, user: str, private_metadata: str = "") -> httpx.Response:
        return await self.post(view_submission(callback_id, values, user=user, private_metadata=private_metadata))

    async def response_to(self, url: str, count: int = 1, timeout: float = 15.0) -> list[dict[str, Any]]:
        assert self.slack is not None
        slack = self.slack
        return await slack.wait_for(lambda: len(slack.response_posts(url)) >= count and slack.response_posts(url), timeout, f"{count} post(s) to {url}")

    async def state_of(self, request_id: int, states: set[str], timeout: float = 20.0) -> Any:
        return await until(
            lambda: (r := self.store.get_request(request_id)) is not None and r.state.value in states and r,
            timeout,
            f"request {request_id} in {states}; process output:\n{self.process.output()[-3000:] if self.process else ''}",
        )

    async def start(self) -> "ServedBot":
        port = free_port()
        self.runs += 1
        self.process = Process(
            [*CLI, "serve"], {**self.env, "PORT": str(port)}, self.tmp / f"bot-{self.runs}.log"
        )
        self.url = f"http://127.0.0.1:{port}"
        await wait_http(self.url + "/healthz", 20, self.process)
        return self

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()

    def pids(self) -> set[int]:
        """The ack process and its children (the work process, which drives the worker): Linux ``/proc``."""
        if self.process is None:
            return set()
        pid = self.process.pid
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            children = []
        return {pid, *(int(c) for c in children)}

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    async def cli(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        """``numbers-bot <args>`` against the same store and providers (another process). Run off the
        event loop: the CLI calls the recording Slack (``users.info`` for ``--as``), served by this loop."""
        return await asyncio.to_thread(
            subprocess.run,
            [*CLI, *args], env=self.env, capture_output=True, text=True, timeout=timeout, cwd=str(self.tmp),
        )
