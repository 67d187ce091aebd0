"""The Slack composition: one ``AsyncApp`` with every listener, on top of the core components.

``build_slack(settings)`` asks the composition root (``bot.bootstrap.build``) for
every part, Slack's client, directory and notifier included, and registers the
listeners on an app that uses that same client.

The app runs with ``process_before_response=False``: Bolt sends the HTTP
answer as soon as a listener calls ``ack()`` and lets the listener go on, so
provider calls made after the ack never hold up Slack's 3-second deadline.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.bootstrap import Components, build, slack_client
from bot.config import Settings
from bot.store.connection import process_identity
from bot.slack import listeners
from bot.slack.configure import render_config
from bot.slack.deps import SlackDeps
from bot.slack.answer import report

log = logging.getLogger(__name__)


class SeenDeliveries:
    """Slack's re-deliveries of what this process already took: answered 200 and not run again.

    Slack re-sends a request it thinks was lost (``X-Slack-Retry-Num``, e.g. ``http_timeout`` when the
    answer took over 3 s), with the same body signed anew. Run twice, a retried search would hold numbers
    and post offers twice and a retried Request form would post two approval cards. Bolt has no built-in
    handling, so a delivery is recognised by what Slack never reuses (an event's ``event_id``, a command's
    or interaction's ``trigger_id``). A retry of a delivery nobody saw (``connection_failed``) is the
    only copy, and runs.

    With a ``store`` the keys are kept in the database too (``Store.take_delivery``), so a re-delivery
    that lands on another replica is recognised there as well; this process's own memory answers first
    without a write. The database is asked for at most ``wait`` seconds: a store that cannot answer in
    time (another process holds SQLite's write lock) lets the delivery run rather than hold up the ack,
    and the state changes' own compare-and-set keeps a second run from doing anything twice.
    """

    def __init__(
        self,
        *,
        store: Any = None,
        taker: str | None = None,
        wait: float = 1.0,
        ttl: float = 3600.0,
        size: int = 20000,
        monotonic=time.monotonic,
    ):
        self.store = store
        self.taker = taker or process_identity()
        self.wait = wait
        self.ttl = ttl
        self.size = size
        self.monotonic = monotonic
        self._seen: OrderedDict[str, float] = OrderedDict()

    @staticmethod
    def key(body: dict[str, Any]) -> str | None:
        if body.get("event_id"):
            return f"event:{body['event_id']}"
        if body.get("trigger_id"):
            return f"trigger:{body['trigger_id']}"
        return None

    def first_time(self, key: str) -> bool:
        """Remember ``key``; False when it was already seen within ``ttl``."""
        now = self.monotonic()
        while self._seen and (len(self._seen) > self.size or next(iter(self._seen.values())) < now - self.ttl):
            self._seen.popitem(last=False)
        if key in self._seen:
            return False
        self._seen[key] = now
        return True

    async def first_delivery(self, key: str) -> bool:
        """True unless this process or, through the store, any replica has taken ``key`` already."""
        if not self.first_time(key):
            return False
        if self.store is None:
            return True
        try:
            return await asyncio.wait_for(self.store.take_delivery(key, self.taker, self.ttl), self.wait)
        except Exception as exc:  # noqa: BLE001 - the store's trouble must not lose the delivery
            log.warning("could not record Slack delivery %s (%s); handling it", key.split(":")[0], type(exc).__name__)
            return True

    async def middleware(self, request: Any, body: dict[str, Any], next: Any) -> BoltResponse | None:
        key = self.key(body or {})
        if key is not None and not await self.first_delivery(key) and _retry_number(request.headers) > 0:
            log.info("Slack re-delivered %s (retry %s); already taken", key.split(":")[0], _retry_number(request.headers))
            return BoltResponse(status=200, body="")
        await next()
        return None


def _retry_number(headers: dict[str, Any]) -> int:
    value = (headers.get("x-slack-retry-num") or ["0"])[0]
    return int(value) if str(value).isdigit() else 0


def slack_deps(components: Components, settings: Settings, client: AsyncWebClient) -> SlackDeps:
    """What the listeners share (the work process's stale-row answers use the same)."""
    service = components.service
    return SlackDeps(
        service=service,
        settings=settings,
        client=client,
        clock=service.clock,
        render=render_config(settings),
        in_flight=components.in_flight,
        pacer=getattr(service.notifier, "pacer", None),
    )


def create_slack_app(
    components: Components, settings: Settings, *, client: AsyncWebClient | None = None, handed_over: bool = False
) -> AsyncApp:
    """Every listener on one ``AsyncApp``; ``client`` defaults to the components' (the one their
    notifier and directory use), else one made from ``settings``.

    ``handed_over``: the app of the work process (``bot.workproc``), fed requests the ack process has
    verified and answered: no signature check again, and each dispatch returns once its listener has
    run (``process_before_response``), so the inbox row is deleted only then."""
    client = client or components.slack or slack_client(settings)
    service = components.service
    app = AsyncApp(
        # The token travels inside ``client``; passing it twice makes Bolt warn and ignore one.
        client=client,
        signing_secret=settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else "",
        process_before_response=handed_over,
        request_verification_enabled=not handed_over,
        name="numbers-bot",
    )
    # After Bolt's own middleware (signature check first): an unsigned "retry" never gets this far.
    app.middleware(SeenDeliveries(store=service.store).middleware)
    deps = slack_deps(components, settings, client)
    listeners.register(app, deps)

    @app.error
    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        # Only what fails outside a listener gets here (middleware, payload parsing); see answer.py.
        await report(deps, error, body or {})

    return app


def build_slack(settings: Settings, *, handed_over: bool = False, **overrides: Any) -> tuple[AsyncApp, Components]:
    """Settings in; the Slack app and the core components (store, providers, service, worker) out.
    ``overrides`` go to ``bot.bootstrap.build`` (``clock=``, ``sandbox=``, ``providers=``, ``store=``…)."""
    components = build(settings, slack=True, **overrides)
    return create_slack_app(components, settings, handed_over=handed_over), components
