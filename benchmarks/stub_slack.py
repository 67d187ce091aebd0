"""A stub Slack Web API for the benchmarks: answers every call with ``ok: true`` at once and keeps timestamps.

Run in process (``StubSlack().start()``) or as its own process
(``python benchmarks/stub_slack.py``; it prints ``PORT <n>`` on stdout), so that
answering the bot's calls does not share an event loop with a load generator.

* ``POST /api/<method>`` → realistic ``ok: true`` bodies (``auth.test``,
  ``chat.postMessage`` with ``channel``/``ts``, ``chat.update``, ``chat.postEphemeral``,
  ``chat.getPermalink``, ``views.open``/``publish``, ``users.info``, ``conversations.open``);
* ``POST /response/<key>`` → ``ok`` (a command's ``response_url``);
* ``GET /_stats`` → counts per method and the ``time.monotonic()`` of each
  response_url post by key (CLOCK_MONOTONIC is system-wide on Linux, so another
  process on the machine can compare it with its own clock); ``DELETE /_stats`` clears.

It keeps counts and one timestamp per response key / card update, nothing else: a
stub that grew with every call would distort the memory of long runs.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import sys
import time
from typing import Any

from aiohttp import web


class StubSlack:
    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self.responses: dict[str, list[float]] = {}  # response key -> monotonic times of posts
        self.response_bodies: dict[str, int] = {}  # response key -> blocks in the last post
        self.updates: list[tuple[float, str, str]] = []  # (monotonic, channel, ts) of chat.update
        self.posts: list[tuple[float, str]] = []  # (monotonic, channel) of chat.postMessage
        self.keep_events = True
        self._ts = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.base = ""
        self.changed = asyncio.Event()

    async def start(self, port: int = 0) -> "StubSlack":
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._api)  # users.info and friends come as GET
        app.router.add_post("/response/{key}", self._response)
        app.router.add_get("/_stats", self._stats)
        app.router.add_delete("/_stats", self._clear)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port, backlog=1024)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return f"{self.base}/api/"

    def response_url(self, key: str) -> str:
        return f"{self.base}/response/{key}"

    def clear(self) -> None:
        self.counts.clear()
        self.responses.clear()
        self.response_bodies.clear()
        self.updates.clear()
        self.posts.clear()

    async def wait_for(self, predicate, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), timeout=min(left, 0.05))
            except asyncio.TimeoutError:
                pass
        return True

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            params.update(await request.json() or {})
        elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
        return params

    def _ts_next(self) -> str:
        n = next(self._ts)
        return f"{1764000000 + n}.{n:06d}"

    async def _api(self, request: web.Request) -> web.Response:
        now = time.monotonic()
        method = request.match_info["method"]
        p = await self._params(request)
        self.counts[method] += 1
        answer: dict[str, Any] = {"ok": True}
        if method == "auth.test":
            answer.update(url="https://bench.slack.com/", team="Bench", user="numbers-bot", team_id="T0BENCH01",
                          user_id="UBOTBENCH", bot_id="BBOTBENCH", is_enterprise_install=False)
        elif method == "bots.info":  # the bot learns its app id at start (payloads' api_app_id is checked)
            answer.update(bot={"id": "BBOTBENCH", "app_id": "A0BENCH01", "user_id": "UBOTBENCH", "deleted": False})
        elif method == "chat.postMessage":
            channel = str(p.get("channel", ""))
            channel = "D" + channel[1:] if channel[:1] in ("U", "W") else channel
            answer.update(channel=channel, ts=self._ts_next())
            if self.keep_events:
                self.posts.append((now, channel))
        elif method == "chat.update":
            answer.update(channel=p.get("channel"), ts=p.get("ts"))
            if self.keep_events:
                self.updates.append((now, str(p.get("channel")), str(p.get("ts"))))
        elif method == "chat.postEphemeral":
            answer.update(message_ts=self._ts_next())
        elif method == "chat.getPermalink":
            answer.update(permalink=f"https://bench.slack.com/archives/{p.get('channel')}/p1")
        elif method in ("views.open", "views.publish", "views.update"):
            answer.update(view={"id": "VBENCH"})
        elif method == "users.info":
            user = p.get("user", "U")
            answer.update(user={"id": user, "profile": {"email": f"{str(user).lower()}@example.com"}})
        elif method == "conversations.open":
            answer.update(channel={"id": "DBENCH"})
        self.changed.set()
        return web.json_response(answer)

    async def _response(self, request: web.Request) -> web.Response:
        now = time.monotonic()
        key = request.match_info["key"]
        body = await request.read()
        self.counts["response_url"] += 1
        self.responses.setdefault(key, []).append(now)
        try:
            self.response_bodies[key] = len(json.loads(body).get("blocks") or [])
        except ValueError:
            self.response_bodies[key] = -1
        self.changed.set()
        return web.Response(text="ok")

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "counts": dict(self.counts),
                "responses": {k: v[0] for k, v in self.responses.items()},
                "blocks": self.response_bodies,
            }
        )

    async def _clear(self, request: web.Request) -> web.Response:
        self.clear()
        return web.Response(status=204)


async def _main(port: int) -> None:
    stub = await StubSlack().start(port)
    stub.keep_events = False
    print(f"PORT {stub.base.rsplit(':', 1)[1]}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        asyncio.run(_main(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
    except KeyboardInterrupt:
        pass
