"""The Slack composition: one ``AsyncApp`` with every listener, on top of the core components.

``build_slack(settings)`` is the only place where the Slack side and the core
meet: it makes the Web API client, the ``SlackDirectory`` and the
``SlackNotifier``, hands them to ``bot.app.build`` and wires the listeners.

The app runs with ``process_before_response=False``: Bolt sends the HTTP
answer as soon as a listener calls ``ack()`` and lets the listener go on, so
provider calls made after the ack never hold up Slack's 3-second deadline.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Callable

from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import Components, build
from bot.config import Settings
from bot.store.db import utcnow
from bot.slack import actions, commands, home, views
from bot.slack.deps import SlackDeps
from bot.slack.directory import SlackDirectory
from bot.slack.failures import report
from bot.slack.notifier import SlackNotifier

log = logging.getLogger(__name__)


def slack_client(settings: Settings) -> AsyncWebClient:
    """The Web API client: ``SLACK_API_URL``, and retries for 429 (per Retry-After), 5xx and dropped connections."""
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    base_url = settings.slack_api_url if settings.slack_api_url.endswith("/") else settings.slack_api_url + "/"
    return AsyncWebClient(
        token=token,
        base_url=base_url,
        timeout=30,
        retry_handlers=[
            AsyncRateLimitErrorRetryHandler(max_retry_count=2),
            AsyncServerErrorRetryHandler(max_retry_count=2),
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
        ],
    )


def create_slack_app(components: Components, settings: Settings, *, client: AsyncWebClient | None = None) -> AsyncApp:
    """Every listener on one ``AsyncApp``; ``client`` defaults to one made from ``settings``."""
    client = client or slack_client(settings)
    service = components.service
    app = AsyncApp(
        # The token travels inside ``client``; passing it twice makes Bolt warn and ignore one.
        client=client,
        signing_secret=settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else "",
        process_before_response=False,
        name="numbers-bot",
    )
    deps = SlackDeps(
        service=service,
        settings=settings,
        client=client,
        clock=service.clock,
    )
    commands.register(app, deps)
    actions.register(app, deps)
    views.register(app, deps)
    home.register(app, deps)

    @app.error
    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        # Only what fails outside a listener gets here (middleware, payload parsing); see failures.py.
        await report(deps, error, body or {})

    return app


def build_slack(
    settings: Settings, *, clock: Callable[[], datetime] = utcnow, **overrides: Any
) -> tuple[AsyncApp, Components]:
    """Settings in; the Slack app and the core components (store, providers, service, worker) out."""
    client = slack_client(settings)
    directory = SlackDirectory(client, settings.policy)
    notifier = SlackNotifier(client, settings, clock=clock)
    components = build(settings, directory=directory, notifier=notifier, clock=clock, **overrides)
    notifier.bind(components.store)
    return create_slack_app(components, settings, client=client), components
