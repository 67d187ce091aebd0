"""The composition root: settings in, a wired store, providers, service and worker out.

Nothing happens at import time; ``build`` does the wiring and the caller
(``numbers-bot serve``, the CLI, a test) owns the result and closes it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from bot.config import Settings
from bot.delivery import OutboxSender
from bot.providers.wiring import build_providers
from bot.sandbox import SandboxServices
from bot.ports import Directory, Notifier, Provider
from bot.services import NumbersService, StaticDirectory
from bot.store.check import open_store
from bot.store.connection import utcnow
from bot.store.db import Store
from bot.worker import Worker

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

    async def aclose(self) -> None:
        # Listeners first (what they record may give the worker and the outbox more to do), then the
        # worker, which flushes the outbox; only then do the clients and the store close.
        await self.in_flight.wait(self.listener_grace)
        await self.worker.stop()
        for provider in self.providers.values():
            await provider.aclose()
        self.service.store.close()  # waits for writes under way on the store's threads
        self.store.close()


def build(
    settings: Settings,
    *,
    directory: Directory | None = None,
    notifier: Notifier | None = None,
    clock: Callable[[], datetime] = utcnow,
    sandbox: SandboxServices | None = None,
    providers: dict[str, Provider] | None = None,
    store: Store | None = None,
    provider_options: dict[str, Any] | None = None,
    deliver: bool = True,
) -> Components:
    """``deliver``: this process sends the outbox through ``notifier`` (the server, tests);
    the CLI passes False: it writes to the outbox and the running server delivers."""
    # A store that cannot be used stops here with one line naming NUMBERS_DB, not a traceback
    # (before the sandbox puts its own file beside it).
    store = store or open_store(settings.db_path, clock=clock, busy_timeout=settings.db_busy_timeout)
    if providers is None:
        try:
            providers, sandbox = build_providers(settings, sandbox=sandbox, options=provider_options)
        except BaseException:
            store.close()
            raise
    service = NumbersService(
        store,
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
    return Components(settings, store, providers, service, worker, sandbox)
