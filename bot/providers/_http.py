"""How the adapters speak HTTP: one bounded client, reads retried, changes sent once, errors classed.

* ``BearerAuth`` — a bearer token as an ``httpx.Auth`` (Webex, Telnyx).
* ``bounded_client`` — the ``httpx.AsyncClient`` every adapter uses (``BoundedClient``: at most
  ``max_in_flight`` requests in its pool at once), with the bot's ``User-Agent``.
* ``send_read`` — a read (GET, a search) with bounded retries on transport faults, 429 and 5xx.
* ``send_once`` — a call that spends money or changes an assignment: sent once; a transport
  failure after sending is ``OutcomeUnknown`` (the provider may have acted).
* ``provider_error`` / ``status_class`` / ``spend_error_class`` — a provider's non-success answer
  as the error it is: 401/403 → ``ProviderAuthError``, 429 and 5xx → ``ProviderUnavailable``
  (for a change, 5xx → ``OutcomeUnknown``), otherwise ``ProviderError``.
* ``parse_retry_after`` and ``json_or_none`` — reading an answer's ``Retry-After`` and body.

What the adapters differ in (their own error shapes, the words a user sees, which secrets to
scrub) stays in each adapter.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, Generator

import httpx

from bot.domain.errors import OutcomeUnknown, ProviderAuthError, ProviderError, ProviderUnavailable

__all__ = [
    "BearerAuth",
    "BoundedClient",
    "NOT_SENT",
    "Sleep",
    "bounded_client",
    "json_or_none",
    "lost_how",
    "parse_retry_after",
    "provider_error",
    "send_once",
    "send_read",
    "spend_error_class",
    "status_class",
]

Sleep = Callable[[float], Awaitable[None]]

RETRY_STATUSES = (429, 500, 502, 503, 504)

# Transport errors raised before any byte of a request left: the provider cannot have acted.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


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

    async def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        async with self._slots:
            return await super().send(request, **kwargs)


class BearerAuth(httpx.Auth):
    """``Authorization: Bearer <token>`` on every request; the token is in no repr or message."""

    def __init__(self, token: str):
        self._header = f"Bearer {token}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(token=<hidden>)"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


def bounded_client(
    *,
    user_agent: str,
    timeout: float,
    transport: httpx.AsyncBaseTransport | None = None,
    base_url: str = "",
    auth: httpx.Auth | None = None,
    headers: dict[str, str] | None = None,
) -> BoundedClient:
    """The client of one adapter: JSON accepted, ``user_agent`` sent, ``timeout`` on every phase.

    ``transport`` is the test seam (the sandbox's ASGI app, a ``MockTransport``)."""
    return BoundedClient(
        base_url=base_url,
        auth=auth,
        transport=transport,
        timeout=httpx.Timeout(timeout),
        headers={"Accept": "application/json", "User-Agent": user_agent, **(headers or {})},
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


def json_or_none(response: httpx.Response) -> Any:
    """The answer's JSON, or None when its body is empty or not JSON."""
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


async def send_read(
    client: httpx.AsyncClient,
    request: httpx.Request,
    *,
    provider: str,
    attempts: int = 4,
    base_delay: float = 0.5,
    max_delay: float = 60.0,
    retry_statuses: tuple[int, ...] = RETRY_STATUSES,
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
        response: httpx.Response | None
        try:
            response = await client.send(request)
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


def lost_how(exc: Exception) -> str:
    """How an answer was lost, in words: ``timed out`` or ``lost its connection``."""
    return "timed out" if isinstance(exc, httpx.TimeoutException) else "lost its connection"


async def send_once(
    client: httpx.AsyncClient,
    request: httpx.Request,
    *,
    provider: str,
    lost: Callable[[httpx.TransportError], str],
    unsent: str | None = None,
) -> httpx.Response:
    """Send a call that spends or changes something, once: never retried here.

    A transport failure raises ``OutcomeUnknown`` with ``lost(exc)``, the adapter's words for
    "whether the provider acted is not known yet" (a timeout or a dropped connection may come
    after the provider acted); the caller then asks (``recover``) before anything is sent again.
    With ``unsent``, a failure before any byte left (``NOT_SENT``) is ``ProviderUnavailable(unsent)``
    instead: certainly not acted on."""
    try:
        return await client.send(request)
    except NOT_SENT as exc:
        if unsent is not None:
            raise ProviderUnavailable(provider, unsent) from None
        raise OutcomeUnknown(provider, lost(exc)) from None
    except httpx.TransportError as exc:
        raise OutcomeUnknown(provider, lost(exc)) from None


def status_class(status: int, *, auth_failed: bool = False) -> type[ProviderError]:
    """The error class of a non-success status: 401/403 (or the provider's own authentication
    code, ``auth_failed``) → ``ProviderAuthError``; 429 and 5xx → ``ProviderUnavailable``."""
    if status in (401, 403) or auth_failed:
        return ProviderAuthError
    if status == 429 or status >= 500:
        return ProviderUnavailable
    return ProviderError


def spend_error_class(status: int) -> type[ProviderError] | None:
    """The class of a spending call's failure when its status alone says it: 429 → refused (nothing
    spent, ``ProviderUnavailable``); 5xx → ``OutcomeUnknown`` (it may have acted); else None."""
    if status == 429:
        return ProviderUnavailable
    if status >= 500:
        return OutcomeUnknown
    return None


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
    """The error for a provider's non-success answer, classed by ``status_class``, with ``check``
    (the settings to look at) added to an authentication failure and the answer's ``Retry-After``.
    ``cls`` overrides the class (a spending call's 5xx is ``OutcomeUnknown``)."""
    status = response.status_code
    if cls is None:
        cls = status_class(status, auth_failed=auth_failed)
    if cls is ProviderAuthError and check:
        message = f"{message} (check {check})"
    return cls(
        provider,
        message,
        status=status,
        code=str(code) if code is not None else None,
        retry_after=parse_retry_after(response.headers.get("retry-after")),
    )
