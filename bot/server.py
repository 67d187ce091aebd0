"""``numbers-bot serve``: the Slack app over HTTP (uvicorn) or Socket Mode, with the worker alongside.

HTTP mode serves ``POST /slack/events`` (commands, interactivity and events all
use that one URL, as in ``manifest.yml``) and ``GET /healthz``. The worker
(purchases, polling, expiry, reminders) starts and stops with the server's
lifespan, so it runs exactly as long as the process serves Slack.

Socket Mode (``SLACK_APP_TOKEN`` set) needs no public URL: the app opens a
WebSocket to Slack instead.

``serve()`` in HTTP mode runs two processes instead (``bot.front`` acks, ``bot.workproc`` runs this
same Bolt app and worker); ``create_asgi_app`` is the one-process app, which the tests drive.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any, Callable

from slack_bolt.adapter.asgi.async_handler import AsyncSlackRequestHandler

from bot.app import Components
from bot.config import Settings
from bot.domain.errors import ConfigError
from bot.http_limits import bounded_protocol
from bot.logs import RedactSecrets, configure_logging
from bot.slack.app import build_slack
from bot.slack.gate import Installation, SlackGate, installation_middleware, learn_installation

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


def create_asgi_app(
    settings: Settings,
    *,
    gate_options: dict[str, Any] | None = None,
    known_installation: Installation | None = None,
    **overrides: Any,
) -> tuple[Callable, Components]:
    """The HTTP app: the gate and Bolt under ``/slack/events``, ``/healthz``, and the worker in the lifespan.

    ``overrides`` go to ``bot.app.build`` (``providers=``, ``sandbox=``, ``store=``, ``clock=``), for tests;
    ``gate_options`` to ``SlackGate`` (``max_body=``, ``body_timeout=``); ``known_installation`` is
    what ``auth.test`` said already (``serve`` asks before starting), else the lifespan asks.
    Raises ``ConfigError`` naming each missing Slack setting, and a provider setting that is missing.
    """
    settings.require_slack()
    if "providers" not in overrides:
        settings.require_providers()
    slack_app, components = build_slack(settings, **overrides)
    bolt = AsyncSlackRequestHandler(slack_app, path=EVENTS_PATH)
    installation = known_installation or Installation()

    async def bolt_answering(scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        await _answered_even_if_unreadable(bolt, scope, receive, send)

    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
    gate = SlackGate(bolt_answering, secret, installation, path=EVENTS_PATH, **(gate_options or {}))
    start_worker, stop = lifespan_worker(components)

    async def start() -> None:
        # Learn which workspace and app this is before taking any request: payloads signed for
        # another installation (same signing secret reused, or an org-wide app) are refused.
        if not installation.known:
            learned = await _learn(slack_app.client)
            installation.team_id, installation.enterprise_id, installation.app_id = (
                learned.team_id,
                learned.enterprise_id,
                learned.app_id,
            )
            installation.known = True
        await start_worker()

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
        await gate(scope, receive, send)

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


async def _learn(client: Any) -> Installation:
    from slack_sdk.errors import SlackApiError

    try:
        return await learn_installation(client)
    except SlackApiError as exc:
        error = exc.response.get("error", "an error") if exc.response is not None else "an error"
        raise ConfigError([f"SLACK_BOT_TOKEN: Slack's auth.test said {error}; the bot cannot tell its workspace"]) from None
    except Exception as exc:
        raise ConfigError([f"Slack's auth.test could not be reached ({type(exc).__name__}); check SLACK_API_URL and the network"]) from None


def uvicorn_config(app: Callable, *, host: str, port: int, log_level: str = "info", **limits: Any) -> Any:
    """Uvicorn with the bounds that keep acks flowing: header deadline, connection cap, keep-alive.

    ``limits``: ``header_timeout=``, ``max_connections=`` (``bot.http_limits``)."""
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="on",
        log_level=log_level,
        # No logging config of uvicorn's own: its records go to the root handler, which redacts secrets.
        log_config=None,
        proxy_headers=True,
        http=bounded_protocol(**limits),
        timeout_keep_alive=5,
        h11_max_incomplete_event_size=16 * 1024,  # request line and headers; Slack's are a few hundred bytes
    )


async def run_socket_mode(settings: Settings, **overrides: Any) -> None:
    """Socket Mode: a WebSocket to Slack instead of a public URL; the worker runs beside it."""
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    settings.require_slack()
    if "providers" not in overrides:
        settings.require_providers()
    assert settings.slack_app_token is not None
    slack_app, components = build_slack(settings, **overrides)
    start, stop = lifespan_worker(components)
    # No HTTP request for the gate here: the installation is checked as the first middleware instead.
    try:
        installation = await _learn(slack_app.client)
    except BaseException:
        await components.aclose()
        raise
    slack_app.middleware(installation_middleware(installation))  # runs before every listener
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
    """Run until stopped: Socket Mode with ``SLACK_APP_TOKEN`` (one process), else HTTP on ``$PORT``
    as two processes: the ack process (``bot.front``) and the work process (``bot.workproc``)."""
    settings.require_slack()
    ensure_redacted_logging(settings)
    if settings.slack_app_token:
        log.info("numbers-bot: Socket Mode")
        asyncio.run(run_socket_mode(settings))
        return
    # Acks in this process, everything else in a child it supervises (bot.front, README "Acks").
    from bot.front import serve_split

    settings.require_providers()
    serve_split(settings)
