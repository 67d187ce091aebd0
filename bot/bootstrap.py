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

from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings
from bot.delivery import OutboxSender
from bot.ports import Directory, Notifier, Provider
from bot.providers.wiring import build_providers
from bot.sandbox import SandboxServices
from bot.services import NumbersService, StaticDirectory
from bot.slack.adapters.directory import SlackDirectory
from bot.slack.adapters.notifier import SlackNotifier
from bot.store.check import open_store
from bot.store.connection import utcnow
from bot.store.db import Store
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
