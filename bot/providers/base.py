"""HTTP helpers shared by the provider adapters: error classing, ``Retry-After``, bounded
retries for reads, a client that bounds the requests in flight.

What an adapter implements is the ``Provider`` port in ``bot/ports.py``.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable

import httpx

from bot.domain.errors import ProviderAuthError, ProviderError, ProviderUnavailable


def provider_error(
    provider: str,
    response: httpx.Response,
    message: str,
    *,
    code: Any = None,
    cls: type[ProviderError] | None = None,
    auth_failed: bool = False,
    check: str = "",
) -> ProviderError:
    """The error for a provider's non-success answer, classed by status: 401/403 (or the
    provider's own authentication code, ``auth_failed``) → ``ProviderAuthError`` with ``check``
    (the settings to look at) added; 429 and 5xx → ``ProviderUnavailable``; else ``ProviderError``.
    ``cls`` overrides the class (a spending call's 5xx is ``OutcomeUnknown``)."""
    status = response.status_code
    if cls is None:
        if status in (401, 403) or auth_failed:
            cls = ProviderAuthError
        elif status == 429 or status >= 500:
            cls = ProviderUnavailable
        else:
            cls = ProviderError
    if cls is ProviderAuthError and check:
        message = f"{message} (check {check})"
    return cls(
        provider,
        message,
        status=status,
        code=str(code) if code is not None else None,
        retry_after=parse_retry_after(response.headers.get("retry-after")),
    )


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: either delta-seconds or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max(0.0, (when - now).total_seconds())


Sleep = Callable[[float], Awaitable[None]]


async def send_read(
    client: httpx.AsyncClient,
    request: httpx.Request,
    *,
    provider: str,
    attempts: int = 4,
    base_delay: float = 0.5,
    max_delay: float = 60.0,
    retry_statuses: tuple[int, ...] = (429, 500, 502, 503, 504),
    sleep: Sleep = asyncio.sleep,
) -> httpx.Response:
    """Send a read (GET/search) with bounded retries.

    Retries connection errors, timeouts and ``retry_statuses``, waiting
    ``Retry-After`` when the answer carries one (capped at ``max_delay``), else
    exponential backoff with jitter. After the last attempt the last response is
    returned (so the caller maps its status), or ``ProviderUnavailable`` raised
    for a transport failure. Never use it for a call that spends money.
    """
    last_exc: Exception | None = None
    for attempt in range(attempts):
        try:
            response = await client.send(request)
        except httpx.TimeoutException as exc:
            last_exc = exc
            response = None
        except httpx.TransportError as exc:
            last_exc = exc
            response = None
        if response is not None:
            if response.status_code not in retry_statuses or attempt == attempts - 1:
                return response
            await response.aread()
            delay = parse_retry_after(response.headers.get("retry-after"))
        else:
            if attempt == attempts - 1:
                break
            delay = None
        if delay is None:
            delay = base_delay * (2**attempt) * (0.5 + random.random())
        await sleep(min(delay, max_delay))
    what = "timed out" if isinstance(last_exc, httpx.TimeoutException) else "could not be reached"
    raise ProviderUnavailable(provider, f"{request.method} {request.url.path} {what} after {attempts} attempts")


class BoundedClient(httpx.AsyncClient):
    """An ``httpx.AsyncClient`` that lets at most ``max_in_flight`` requests into its pool at once.

    Hundreds of searches in flight would otherwise queue inside httpcore's pool,
    whose bookkeeping costs O(queued × connections) on every pass
    (encode/httpcore#1035): measured, 67 s of CPU for 500 searches and acks
    pushed past Slack's 3 s. Waiting on a semaphore costs O(1). The adapters
    read every answer whole (no streaming), so a request holds its slot exactly
    until its answer is in. Bounding here rather than in a transport keeps
    httpx's own transport set-up (proxies from the environment) intact.
    """

    def __init__(self, *args: Any, max_in_flight: int = 100, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._slots = asyncio.Semaphore(max_in_flight)

    async def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:  # type: ignore[override]
        async with self._slots:
            return await super().send(request, **kwargs)
