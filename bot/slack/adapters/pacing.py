"""Paced Slack calls: a rate limit is a delay, never a loss.

* ``chat.postMessage`` is paced per channel (Slack allows about one message per
  second per channel, with short bursts): a token bucket of ``burst`` messages
  refilled at ``rate`` per second.
* Every method honours ``Retry-After``: a 429 blocks that method (for
  ``chat.postMessage``, that channel) until the time Slack named, and the call is
  sent again then. After ``max_tries`` 429s in a row the call gives up with
  ``DeliveryDeferred`` carrying Slack's delay, and the outbox tries again later.

slack_sdk's own retry handler also sleeps on 429; what it gives up on lands here.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable

from slack_sdk.errors import SlackApiError

from bot.domain.errors import DeliveryDeferred

__all__ = ["SlackPacer", "retry_after"]

RATE = 1.0  # chat.postMessage per channel per second
BURST = 3
MAX_TRIES = 4


def retry_after(exc: SlackApiError) -> float | None:
    """Seconds Slack asked to wait (``Retry-After`` of a 429), or None when it is not a rate limit."""
    response = exc.response
    if response is None or response.status_code != 429:
        return None
    headers = {k.lower(): v for k, v in (response.headers or {}).items()}
    value = headers.get("retry-after")
    if isinstance(value, list):
        value = value[0] if value else None
    try:
        return max(float(value), 0.0) if value is not None else 1.0
    except ValueError:
        return 1.0


class SlackPacer:
    def __init__(
        self,
        *,
        rate: float = RATE,
        burst: int = BURST,
        max_tries: int = MAX_TRIES,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        self.rate = rate
        self.burst = burst
        self.max_tries = max_tries
        self.monotonic = monotonic
        self.sleep = sleep
        self._buckets: dict[str, tuple[float, float]] = {}  # channel → (tokens, when counted)
        self._blocked: dict[str, float] = {}  # method or method:channel → monotonic time it may go again
        self._locks: dict[str, asyncio.Lock] = {}
        self.waited = 0.0  # seconds spent waiting, for tests and logs

    async def call(self, method: str, fn: Callable[..., Awaitable[Any]], *, channel: str | None = None, **kwargs: Any) -> Any:
        """``fn(**kwargs)`` (``channel`` passed on too), paced and sent again after a 429."""
        if channel is not None:
            kwargs["channel"] = channel
        key = f"{method}:{channel}" if method == "chat.postMessage" and channel else method
        for _ in range(self.max_tries):
            await self._wait(key, channel if method == "chat.postMessage" else None)
            try:
                return await fn(**kwargs)
            except SlackApiError as exc:
                delay = retry_after(exc)
                if delay is None:
                    raise
                self._blocked[key] = max(self._blocked.get(key, 0.0), self.monotonic() + delay)
        raise DeliveryDeferred(f"{method} rate-limited", retry_after=max(self._blocked.get(key, 0.0) - self.monotonic(), 1.0))

    async def _wait(self, key: str, channel: str | None) -> None:
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:  # callers of one channel go in the order they came
            while True:
                delay = self._blocked.get(key, 0.0) - self.monotonic()
                if delay <= 0 and channel is not None:
                    delay = self._take(channel)
                if delay <= 0:
                    return
                self.waited += delay
                await self.sleep(delay)

    def _take(self, channel: str) -> float:
        """Take a token for ``channel``; 0 when taken, else seconds until one is there (nothing taken)."""
        now = self.monotonic()
        tokens, at = self._buckets.get(channel, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate)
        if tokens >= 1.0:
            self._buckets[channel] = (tokens - 1.0, now)
            return 0.0
        self._buckets[channel] = (tokens, now)
        return (1.0 - tokens) / self.rate
