"""The pieces every simulated provider service shares.

* ``SandboxApp``: a tiny ASGI application with regex routes. It is served in
  process through ``httpx.ASGITransport`` or over HTTP by uvicorn
  (``numbers-bot sandbox --port N``).
* ``SandboxState``: where a simulated service keeps its inventory, holds and
  operations. In memory for tests; in a SQLite file for the CLI, so that a
  ``search`` in one process and an ``approve`` in the next see the same holds.
* ``Faults``: fault injection. Rules say "the next N requests matching METHOD
  and PATH get STATUS / a delay / malformed JSON / a dropped connection".
  Set them from Python (``app.faults.add(...)``) or over HTTP
  (``POST /_sandbox/faults``), which is how load tests steer a served sandbox;
  ``GET /_sandbox/requests?method=…&path=…`` counts what arrived, for a test in another process.
  ``app.latency`` delays every answer (benchmarks).
* ``clock``: every service reads time through ``app.clock`` so tests can move it.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, MutableMapping

import httpx
import sqlite_utils


REQUEST_LOG_SIZE = 5000


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Clock:
    """Wall time plus an offset that tests can advance."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> datetime:
        from datetime import timedelta

        return utcnow() + timedelta(seconds=self.offset)

    def advance(self, seconds: float) -> None:
        self.offset += seconds


# --- requests and responses --------------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # from the route's named groups
    raw_query: str = ""
    scheme: str = "http"
    host: str = ""
    answered: bool = False  # the service finished with it (a test in another process waits on this)

    def json(self) -> Any:
        if not self.body:
            return None
        return json.loads(self.body)

    @property
    def path_and_query(self) -> str:
        return self.path + ("?" + self.raw_query if self.raw_query else "")


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> "Response":
        h = {"content-type": "application/json"}
        h.update(headers or {})
        return cls(status, json.dumps(data).encode(), h)

    @classmethod
    def empty(cls, status: int = 204, headers: dict[str, str] | None = None) -> "Response":
        return cls(status, b"", dict(headers or {}))


Handler = Callable[[Request], Awaitable[Response]]


class RequestLog(list):
    """A list of the most recent requests, dropping the oldest past ``REQUEST_LOG_SIZE``."""

    def append(self, request: Request) -> None:
        super().append(request)
        if len(self) > REQUEST_LOG_SIZE:
            del self[: len(self) - REQUEST_LOG_SIZE]


# --- fault injection ---------------------------------------------------------


@dataclass
class FaultRule:
    """Applies to the next ``times`` requests whose method and path match.

    ``kind``: ``status`` (answer ``status`` with ``body``/``headers``),
    ``delay`` (wait ``seconds`` then answer normally), ``malformed`` (200 with a
    body that is not JSON), ``drop`` (close the connection without an answer:
    the client sees a transport error), ``after`` (let the real handler act,
    then answer ``status`` instead: the provider did the work but the client
    cannot know).
    """

    kind: str
    method: str = "*"
    path: str = ".*"
    times: int = 1
    status: int = 500
    seconds: float = 0.0
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def matches(self, request: Request) -> bool:
        return (self.method == "*" or self.method.upper() == request.method) and re.search(
            self.path, request.path
        ) is not None


class Faults:
    def __init__(self) -> None:
        self.rules: list[FaultRule] = []
        self._lock = threading.Lock()

    def add(self, kind: str, **kw: Any) -> FaultRule:
        rule = FaultRule(kind=kind, **kw)
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def take(self, request: Request) -> FaultRule | None:
        with self._lock:
            for rule in self.rules:
                if rule.times != 0 and rule.matches(request):
                    if rule.times > 0:
                        rule.times -= 1
                    return rule
        return None


class DropConnection(httpx.ReadError):
    """Raised to end a request without any answer.

    In process (``httpx.ASGITransport`` re-raises app exceptions) the client
    sees it as the transport error it is; under uvicorn the connection ends.
    """

    def __init__(self) -> None:
        super().__init__("connection dropped by the sandbox (injected fault)")


# --- state --------------------------------------------------------------------


class SandboxState:
    """A JSON document store: ``get/put/items`` by (collection, key).

    Backed by SQLite (file or memory) so a sandbox used by separate CLI
    processes keeps its holds between them. Writes are immediate.
    """

    def __init__(self, path: str | None = None, namespace: str = "docs"):
        # One file can hold several services' state, each in its own table.
        if not namespace.isidentifier():
            raise ValueError(f"bad sandbox namespace {namespace!r}")
        self.table = namespace
        if path:
            self.db = sqlite_utils.Database(path)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA busy_timeout=5000")
        else:
            self.db = sqlite_utils.Database(memory=True)
        self.db.conn.isolation_level = None  # autocommit; each write stands alone
        self.db.execute(
            f"CREATE TABLE IF NOT EXISTS {self.table} "
            "(collection TEXT, key TEXT, value TEXT, PRIMARY KEY (collection, key))"
        )
        self._lock = threading.Lock()

    def get(self, collection: str, key: str, default: Any = None) -> Any:
        with self._lock:
            row = self.db.execute(
                f"SELECT value FROM {self.table} WHERE collection=? AND key=?", [collection, key]
            ).fetchone()
        return json.loads(row[0]) if row else default

    def put(self, collection: str, key: str, value: Any) -> None:
        with self._lock:
            self.db.execute(
                f"INSERT OR REPLACE INTO {self.table} (collection, key, value) VALUES (?, ?, ?)",
                [collection, key, json.dumps(value)],
            )

    def delete(self, collection: str, key: str) -> None:
        with self._lock:
            self.db.execute(f"DELETE FROM {self.table} WHERE collection=? AND key=?", [collection, key])

    def items(self, collection: str) -> list[tuple[str, Any]]:
        with self._lock:
            rows = self.db.execute(
                f"SELECT key, value FROM {self.table} WHERE collection=? ORDER BY rowid", [collection]
            ).fetchall()
        return [(k, json.loads(v)) for k, v in rows]

    def has(self, collection: str) -> bool:
        with self._lock:
            return (
                self.db.execute(f"SELECT 1 FROM {self.table} WHERE collection=? LIMIT 1", [collection]).fetchone()
                is not None
            )


# --- the ASGI application -------------------------------------------------------


class SandboxApp:
    """Regex-routed ASGI app with fault injection, latency and a test clock."""

    name = "sandbox"

    def __init__(self, state: SandboxState | None = None, clock: Clock | None = None, latency: float = 0.0):
        self.state = state or SandboxState()
        self.clock = clock or Clock()
        self.latency = latency
        self.faults = Faults()
        # The most recent requests seen, for tests to inspect; bounded so that a long-running
        # sandbox (benchmarks, `numbers-bot sandbox`) does not grow without end.
        self.requests: RequestLog = RequestLog()
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.route("POST", r"/_sandbox/faults")(self._admin_add_fault)
        self.route("DELETE", r"/_sandbox/faults")(self._admin_clear_faults)
        self.route("POST", r"/_sandbox/latency")(self._admin_latency)
        self.route("GET", r"/_sandbox/requests")(self._admin_count)

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        compiled = re.compile("^" + pattern + "$")

        def register(handler: Handler) -> Handler:
            self._routes.append((method.upper(), compiled, handler))
            return handler

        return register

    def count(self, method: str, path_regex: str, *, answered: bool = False) -> int:
        """How many requests matching method and path this service has seen (or, with
        ``answered``, has finished with: a delayed one counts once its work is done)."""
        rx = re.compile(path_regex)
        return sum(
            1
            for r in self.requests
            if r.method == method.upper() and rx.search(r.path) and (r.answered or not answered)
        )

    async def _admin_add_fault(self, request: Request) -> Response:
        data = request.json() or {}
        self.faults.add(**data)
        return Response.json({"ok": True}, 201)

    async def _admin_count(self, request: Request) -> Response:
        """``GET /_sandbox/requests?method=POST&path=<regex>``: ``count()`` for a test in another process."""
        method, path = request.query.get("method", "GET"), request.query.get("path", ".*")
        answered = request.query.get("answered") in ("1", "true")
        return Response.json({"count": self.count(method, path, answered=answered)})

    async def _admin_clear_faults(self, request: Request) -> Response:
        self.faults.clear()
        return Response.empty(204)

    async def _admin_latency(self, request: Request) -> Response:
        self.latency = float((request.json() or {}).get("seconds", 0))
        return Response.json({"latency": self.latency})

    def not_found(self, request: Request) -> Response:
        return Response.json({"error": f"no route for {request.method} {request.path}"}, 404)

    async def dispatch(self, request: Request) -> Response:
        allowed = False
        for method, pattern, handler in self._routes:
            m = pattern.match(request.path)
            if not m:
                continue
            allowed = True
            if method != request.method:
                continue
            request.params = {k: urllib.parse.unquote(v) for k, v in m.groupdict().items() if v is not None}
            return await handler(request)
        if allowed:
            return self.method_not_allowed(request)
        return self.not_found(request)

    def method_not_allowed(self, request: Request) -> Response:
        return Response.json({"error": f"{request.method} not allowed on {request.path}"}, 405)

    async def handle(self, request: Request) -> Response:
        try:
            return await self._handle(request)
        finally:
            request.answered = True

    async def _handle(self, request: Request) -> Response:
        is_admin = request.path.startswith("/_sandbox/")
        if not is_admin:
            self.requests.append(request)
        rule = None if is_admin else self.faults.take(request)
        if self.latency and not is_admin:
            await asyncio.sleep(self.latency)
        if rule is not None:
            if rule.kind == "delay":
                await asyncio.sleep(rule.seconds)
            elif rule.kind == "status":
                body = rule.body if rule.body is not None else {"error": "injected fault"}
                if isinstance(body, (dict, list)):
                    return Response.json(body, rule.status, rule.headers)
                return Response(rule.status, str(body).encode(), dict(rule.headers))
            elif rule.kind == "malformed":
                return Response(200, b'{"this is": not json', {"content-type": "application/json"})
            elif rule.kind == "drop":
                raise DropConnection()
            elif rule.kind == "after":
                await self.dispatch(request)
                body = rule.body if rule.body is not None else {"error": "injected fault after acting"}
                return Response.json(body, rule.status, rule.headers)
        return await self.dispatch(request)

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:  # the ASGI application signature, as httpx.ASGITransport and uvicorn call it
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        raw_query = scope.get("query_string", b"").decode("latin-1")
        query = dict(urllib.parse.parse_qsl(raw_query, keep_blank_values=True))
        request = Request(
            method=scope["method"].upper(),
            path=scope.get("raw_path", b"").decode("latin-1").split("?")[0] or scope["path"],
            query=query,
            headers=headers,
            body=body,
            raw_query=raw_query,
            scheme=scope.get("scheme", "http"),
            host=headers.get("host", ""),
        )
        try:
            response = await self.handle(request)
        except DropConnection:
            raise
        except Exception as exc:  # a sandbox bug must look like a 500, as a real service would answer
            response = Response.json({"error": f"sandbox failure: {type(exc).__name__}: {exc}"}, 500)
        headers_out = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()]
        headers_out.append((b"content-length", str(len(response.body)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": headers_out})
        await send({"type": "http.response.body", "body": response.body})
