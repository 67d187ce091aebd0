"""``numbers-bot serve``: the Slack app over HTTP (uvicorn) or Socket Mode, with the worker alongside.

HTTP mode serves ``POST /slack/events`` (commands, interactivity and events all
use that one URL, as in ``manifest.yml``) and ``GET /healthz``. The worker
(purchases, polling, expiry, reminders) starts and stops with the server's
lifespan, so it runs exactly as long as the process serves Slack.

Socket Mode (``SLACK_APP_TOKEN`` set) needs no public URL: the app opens a
WebSocket to Slack instead.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any, Callable

from slack_bolt.adapter.asgi.async_handler import AsyncSlackRequestHandler

from bot.app import Components
from bot.config import Settings
from bot.logs import RedactSecrets, configure_logging
from bot.slack.app import build_slack

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
WORKER_STOP_TIMEOUT = 10.0


def ensure_redacted_logging(settings: Settings) -> None:
    """``numbers-bot serve`` has set logging up already (``bot.logs``); a direct ``serve()`` call gets the same."""
    root = logging.getLogger()
    if not any(isinstance(f, RedactSecrets) for h in root.handlers for f in h.filters):
        configure_logging(settings.log_level, settings.secrets())


def lifespan_worker(components: Components) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """``start`` and ``stop`` for the worker and the components, for an ASGI lifespan or Socket Mode."""
    task: asyncio.Task[None] | None = None

    async def start() -> None:
        nonlocal task
        task = asyncio.create_task(components.worker.run(), name="numbers-bot worker")

    async def stop() -> None:
        # Listeners' post-ack work first: what it records still reaches the store and the outbox.
        await components.in_flight.wait(components.listener_grace)
        await components.worker.stop()
        if task is not None:
            try:
                await asyncio.wait_for(task, timeout=WORKER_STOP_TIMEOUT)
            except asyncio.TimeoutError:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            except Exception:
                log.exception("the worker ended with an error")
        await components.aclose()

    return start, stop


def create_asgi_app(settings: Settings, **overrides: Any) -> tuple[Callable, Components]:
    """The HTTP app: Bolt under ``/slack/events``, ``/healthz``, and the worker in the lifespan.

    ``overrides`` go to ``bot.app.build`` (``providers=``, ``sandbox=``, ``store=``, ``clock=``), for tests.
    Raises ``ConfigError`` naming each missing Slack setting.
    """
    settings.require_slack()
    slack_app, components = build_slack(settings, **overrides)
    bolt = AsyncSlackRequestHandler(slack_app, path=EVENTS_PATH)
    start, stop = lifespan_worker(components)

    async def app(scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    try:
                        await start()
                    except Exception as exc:
                        await send({"type": "lifespan.startup.failed", "message": f"{type(exc).__name__}: {exc}"})
                        return
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await stop()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] == "http" and scope["path"] == HEALTH_PATH and scope["method"] in ("GET", "HEAD"):
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain; charset=utf-8")]}
            )
            await send({"type": "http.response.body", "body": b"ok\n"})
            return
        if scope["type"] == "http" and not _timestamp_readable(scope):
            # Bolt's signature check reads the timestamp with int() and a ValueError there becomes a 500;
            # a request whose timestamp is not even a number is unsigned: 401, as Bolt answers a bad signature.
            await send({"type": "http.response.start", "status": 401, "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": b'{"error": "invalid request"}'})
            return
        await _answered_even_if_unreadable(bolt, scope, receive, send)

    return app, components


async def _answered_even_if_unreadable(bolt: Callable, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
    """Run Bolt; a body it cannot even read answers 400 instead of a 500 and a traceback.

    Bolt builds its request context (``is_enterprise_install``, team and user ids) before it checks the
    signature, and a field of an unexpected type raises there: anyone, signed or not, could fill the log
    with tracebacks and get a 500. Slack never sends such bodies.
    """
    started = False

    async def tracked(message: dict[str, Any]) -> None:
        nonlocal started
        started = started or message["type"] == "http.response.start"
        await send(message)

    try:
        await bolt(scope, receive, tracked)
    except Exception as exc:
        if started or scope["type"] != "http":
            raise
        log.warning("unreadable request to %s refused: %s", scope.get("path"), type(exc).__name__)
        await send({"type": "http.response.start", "status": 400, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b'{"error": "invalid request"}'})


def _timestamp_readable(scope: dict[str, Any]) -> bool:
    """False when ``X-Slack-Request-Timestamp`` is there but is not a number (absent is Bolt's to refuse)."""
    for name, value in scope.get("headers", []):
        if name.lower() == b"x-slack-request-timestamp":
            try:
                int(value.decode("latin-1"))
            except ValueError:
                return False
    return True


async def run_socket_mode(settings: Settings, **overrides: Any) -> None:
    """Socket Mode: a WebSocket to Slack instead of a public URL; the worker runs beside it."""
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    settings.require_slack()
    assert settings.slack_app_token is not None
    slack_app, components = build_slack(settings, **overrides)
    start, stop = lifespan_worker(components)
    handler = AsyncSocketModeHandler(slack_app, settings.slack_app_token.get_secret_value())
    # A platform stops a process with SIGTERM: end like Ctrl-C, so the worker stops and the store closes cleanly.
    main = asyncio.current_task()
    try:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main.cancel)  # type: ignore[union-attr]
    except (NotImplementedError, RuntimeError):
        pass  # no signal handlers here (Windows, or not the main thread); SIGTERM then ends the process at once
    await start()
    try:
        await handler.start_async()
    finally:
        await handler.close_async()
        await stop()


def serve(settings: Settings) -> None:
    """Run until stopped: Socket Mode with ``SLACK_APP_TOKEN``, else HTTP on ``$PORT``."""
    import uvicorn

    settings.require_slack()
    ensure_redacted_logging(settings)
    if settings.slack_app_token:
        log.info("numbers-bot: Socket Mode")
        asyncio.run(run_socket_mode(settings))
        return
    app, _ = create_asgi_app(settings)
    config = uvicorn.Config(
        app,
        host="0.0.0.0",
        port=settings.port,
        lifespan="on",
        log_level=settings.log_level.lower(),
        # No logging config of uvicorn's own: its records go to the root handler, which redacts secrets.
        log_config=None,
        proxy_headers=True,
    )
    log.info("numbers-bot: HTTP on port %s, path %s", settings.port, EVENTS_PATH)
    uvicorn.Server(config).run()
