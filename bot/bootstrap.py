"""The one composition root: settings in; the store, providers, service, worker (and Slack's
client, directory and notifier) out, each made once, in the order that lets every part get what it
needs at construction.

Nothing happens at import time; ``build`` does the wiring and the caller (``numbers-bot serve``,
Socket Mode, the CLI verbs, ``doctor``, a test) owns the result and closes it. ``doctor`` builds
its parts with the same functions (``open_configured_store``, ``build_providers``,
``slack_client``) so what it checks is what ``serve`` runs.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

import httpx
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings
from bot.domain.errors import ConfigError
from bot.delivery import OutboxSender
from bot.providers.base import Provider
from bot.sandbox import SandboxServices
from bot.services import Directory, Notifier, NumbersService, StaticDirectory
from bot.slack.directory import SlackDirectory
from bot.slack.notifier import SlackNotifier
from bot.store.check import open_store
from bot.store.db import Store, utcnow
from bot.store.threaded import ThreadedStore
from bot.worker import Worker

__all__ = [
    "Components",
    "InFlight",
    "build",
    "build_providers",
    "open_configured_store",
    "slack_client",
]

SLACK_TIMEOUT = 30  # seconds for one Web API call


def slack_client(settings: Settings, *, timeout: int = SLACK_TIMEOUT) -> AsyncWebClient:
    """The Web API client: ``SLACK_API_URL`` ending in a slash (method names are joined onto it; the
    slack_sdk installed today adds the slash itself, older ones did not), and retries for 429
    (per Retry-After), 5xx and dropped connections."""
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    base_url = settings.slack_api_url if settings.slack_api_url.endswith("/") else settings.slack_api_url + "/"
    return AsyncWebClient(
        token=token,
        base_url=base_url,
        timeout=timeout,
        retry_handlers=[
            AsyncRateLimitErrorRetryHandler(max_retry_count=2),
            AsyncServerErrorRetryHandler(max_retry_count=2),
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
        ],
    )


def open_configured_store(settings: Settings, *, clock: Callable[[], datetime] = utcnow) -> Store:
    """``NUMBERS_DB`` opened (SQLite file or PostgreSQL URL), or ``ConfigError`` with one line naming it."""
    return open_store(settings.db_path, clock=clock, busy_timeout=settings.db_busy_timeout)


def build_providers(
    settings: Settings, *, sandbox: SandboxServices | None = None, options: dict[str, Any] | None = None
) -> tuple[dict[str, Provider], SandboxServices | None]:
    """Real clients for the providers with credentials; the sandbox services when none have any
    (or ``NUMBERS_SANDBOX=1``). A provider whose settings are only partly set raises ``ConfigError``. The same client code runs either way: only the transport differs.
    ``options`` go to every adapter's constructor (tests pass a ``sleep`` that does not wait)."""
    problems = settings.provider_problems()
    if problems:
        raise ConfigError(problems)
    common: dict[str, Any] = {"timeout": settings.provider_timeout, **(options or {})}
    if settings.uses_sandbox or sandbox is not None:
        if sandbox is None:
            sandbox = SandboxServices.create(settings.sandbox_state_path, latency=settings.sandbox_latency)
        return _sandbox_providers(settings, sandbox, common), sandbox
    return _configured_providers(settings, common), None


def _sandbox_providers(settings: Settings, sandbox: SandboxServices, common: dict[str, Any]) -> dict[str, Provider]:
    """Every adapter, talking to the simulated services in process with their made-up credentials."""
    from bot.providers.acs import AcsProvider
    from bot.providers.plivo_numbers import plivo_provider
    from bot.providers.webex import WebexProvider
    from bot.providers.wiring import twilio_and_telnyx
    from bot.sandbox.acs import SANDBOX_ACS_ACCESS_KEY, SANDBOX_ACS_ENDPOINT
    from bot.sandbox.plivo import SANDBOX_PLIVO_API_URL, SANDBOX_PLIVO_AUTH_ID, SANDBOX_PLIVO_AUTH_TOKEN
    from bot.sandbox.webex import SANDBOX_WEBEX_API_URL, SANDBOX_WEBEX_TOKEN

    providers: dict[str, Provider] = {
        "acs": AcsProvider(
            SANDBOX_ACS_ENDPOINT,
            SANDBOX_ACS_ACCESS_KEY,
            transport=httpx.ASGITransport(app=sandbox.acs),
            poll_interval=settings.poll_interval,
            api_version=settings.acs_api_version,
            **common,
        ),
        "plivo": plivo_provider(
            SANDBOX_PLIVO_AUTH_ID,
            SANDBOX_PLIVO_AUTH_TOKEN,
            api_url=SANDBOX_PLIVO_API_URL,
            app_id=settings.plivo_app_id,
            api=settings.plivo_api,
            transport=httpx.ASGITransport(app=sandbox.plivo),
            **common,
        ),
        "webex": WebexProvider(
            SANDBOX_WEBEX_TOKEN,
            api_url=SANDBOX_WEBEX_API_URL,
            org_id=settings.webex_org_id,
            location_id=settings.webex_location_id,
            transport=httpx.ASGITransport(app=sandbox.webex),
            **common,
        ),
    }
    providers.update(twilio_and_telnyx(settings, sandbox=sandbox, common=common))
    return providers


def _configured_providers(settings: Settings, common: dict[str, Any]) -> dict[str, Provider]:
    """A real client for each provider whose credentials are set."""
    from bot.providers.acs import AcsProvider
    from bot.providers.plivo_numbers import plivo_provider
    from bot.providers.webex import WebexProvider
    from bot.providers.wiring import twilio_and_telnyx

    providers: dict[str, Provider] = {}
    if settings.acs_connection_string:
        providers["acs"] = AcsProvider.from_connection_string(
            settings.acs_connection_string.get_secret_value(),
            poll_interval=settings.poll_interval,
            api_version=settings.acs_api_version,
            **common,
        )
    if settings.plivo_auth_id and settings.plivo_auth_token:
        providers["plivo"] = plivo_provider(
            settings.plivo_auth_id,
            settings.plivo_auth_token.get_secret_value(),
            api_url=settings.plivo_api_url,
            app_id=settings.plivo_app_id,
            api=settings.plivo_api,
            **common,
        )
    if settings.webex_access_token:
        providers["webex"] = WebexProvider(
            settings.webex_access_token.get_secret_value(),
            api_url=settings.webex_api_url,
            org_id=settings.webex_org_id,
            location_id=settings.webex_location_id,
            **common,
        )
    providers.update(twilio_and_telnyx(settings, common=common))
    return providers


log = logging.getLogger(__name__)

LISTENER_GRACE = 20.0  # seconds stop waits for listeners' post-ack work before closing the store


class InFlight:
    """Work that runs after Slack was answered (Bolt runs it in a task nobody holds): tracked,
    so stopping waits for it (bounded) before the store and the provider clients close."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[object]] = set()

    def track(self, task: asyncio.Task[object] | None) -> None:
        if task is not None and task not in self._tasks:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def __len__(self) -> int:
        return len(self._tasks)

    async def wait(self, timeout: float) -> None:
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=timeout)
        if late:
            log.warning("stopping with %d listener task(s) still at work after %gs", len(late), timeout)


@dataclass
class Components:
    settings: Settings
    store: Store
    providers: dict[str, Provider]
    service: NumbersService
    worker: Worker
    sandbox: SandboxServices | None = None
    in_flight: InFlight = field(default_factory=InFlight)
    listener_grace: float = LISTENER_GRACE
    slack: AsyncWebClient | None = None  # the Web API client the directory and notifier use, when built for Slack

    async def aclose(self) -> None:
        # Listeners first (what they record may give the worker and the outbox more to do), then the
        # worker, which flushes the outbox; only then do the clients and the store close.
        await self.in_flight.wait(self.listener_grace)
        await self.worker.stop()
        for provider in self.providers.values():
            await provider.aclose()
        self.service.store.close()  # waits for writes under way on the store's threads
        self.store.close()


def _slack_parts(
    settings: Settings, store: ThreadedStore, clock: Callable[[], datetime]
) -> tuple[AsyncWebClient, SlackDirectory, SlackNotifier]:
    """Slack's client, the approver directory on it, and the notifier, which reads the store it is given."""
    client = slack_client(settings)
    directory = SlackDirectory(client, settings.policy, ttl=settings.approver_cache_seconds)

    async def approvers() -> set[str]:
        users = set(directory.users)
        for group in sorted(directory.groups):
            users |= await directory.members(group)
        return users

    notifier = SlackNotifier(client, settings, store=store, clock=clock, approvers=approvers)
    return client, directory, notifier


def build(
    settings: Settings,
    *,
    slack: bool = False,
    directory: Directory | None = None,
    notifier: Notifier | None = None,
    clock: Callable[[], datetime] = utcnow,
    sandbox: SandboxServices | None = None,
    providers: dict[str, Provider] | None = None,
    store: Store | None = None,
    provider_options: dict[str, Any] | None = None,
    deliver: bool = True,
) -> Components:
    """Every part, made once, in dependency order: store, providers, (Slack), service, sender, worker.

    ``slack``: the Slack client, ``SlackDirectory`` and ``SlackNotifier`` are made here too (unless
    ``directory``/``notifier`` are given); ``bot.slack.app.build_slack`` asks for them.
    ``deliver``: this process sends the outbox through the notifier (the server, tests);
    the CLI passes False: it writes to the outbox and the running server delivers."""
    # A store that cannot be used stops here with one line naming NUMBERS_DB, not a traceback
    # (before the sandbox puts its own file beside it).
    store = store or open_configured_store(settings, clock=clock)
    if providers is None:
        try:
            providers, sandbox = build_providers(settings, sandbox=sandbox, options=provider_options)
        except BaseException:
            store.close()
            raise
    threaded = ThreadedStore(store)
    client: AsyncWebClient | None = None
    if slack:
        client, slack_directory, slack_notifier = _slack_parts(settings, threaded, clock)
        directory = directory or slack_directory
        notifier = notifier or slack_notifier
    service = NumbersService(
        threaded,
        providers,
        settings.policy,
        directory=directory or StaticDirectory(settings.approver_ids),
        notifier=notifier,
        request_ttl=settings.request_ttl,
        remind_after=settings.remind_after,
        clock=clock,
    )
    if deliver:
        service.sender = OutboxSender(service.store, service.notifier, clock=clock)
    worker = Worker(service, poll_interval=settings.poll_interval, lease_seconds=settings.lease_seconds)
    return Components(settings, store, providers, service, worker, sandbox, slack=client)
