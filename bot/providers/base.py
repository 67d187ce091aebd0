"""What every provider adapter implements, and the values that cross that line.

A provider adapter turns one provider's HTTP API into four moves:

* ``search(query)`` → offers (``OfferDraft``); reads, retried on transient faults.
* ``prepare(offer, quantity, requester)`` → extra reference data checked *before*
  an approval is asked for (Webex looks up the requester's person by e-mail);
  raises a ``NumbersError`` a user can read when the request cannot work.
* ``submit(job)`` → the one call that spends money or changes an assignment.
  Never retried blindly. Returns a ``Step``; raises ``ProviderError`` when the
  provider definitely refused, ``OutcomeUnknown`` when it cannot be told.
* ``poll(job, ref)`` → the next ``Step`` of an operation in flight (reads).
* ``recover(job)`` → after a crash between recording the intent to submit and
  recording the answer: ``None`` when the provider certainly has not acted (safe
  to submit), a ``Step`` when it has (carry on from there); raises
  ``OutcomeUnknown`` when the provider cannot say (the request then goes to
  ``needs_attention``, never a second submit).
* ``release(number, ref)`` → give a held number back (``ref``: the held number's provider ref;
  Webex reads ``ref["person_id"]``, the person the number comes off). Sent once, like ``submit``.
* ``check()`` → a harmless call for ``numbers-bot doctor``; returns a short text.

Optional, for providers whose hold is made at request time (Telnyx reserves in
``prepare``): ``extend_hold(ref)`` → the hold's new end while the request waits
for approval, and ``abandon(ref)`` → let the hold go when the request is denied,
cancelled or expires (returns a note for the audit log, or None). Call them
through ``extend_hold`` and ``abandon_hold`` below, which do nothing for
providers without them.

Money is ``Decimal`` end to end; times are aware UTC datetimes.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Awaitable, Callable, Mapping, Protocol, runtime_checkable

import httpx

from bot.domain.errors import ProviderAuthError, ProviderError, ProviderUnavailable

NUMBER_TYPES = ("local", "tollfree", "national")


@dataclass(frozen=True)
class SearchQuery:
    """A parsed search: ``search US tollfree 833 x2 sms via acs``."""

    country: str  # ISO 3166 alpha-2, upper case
    number_type: str = "local"  # local | tollfree | national
    prefix: str | None = None  # area code or prefix, digits only
    quantity: int = 1
    sms: bool = False
    voice: bool = False
    provider: str | None = None  # "via acs": only this provider
    location: str | None = None  # Webex location name or id (assign)
    # Whose search it is, when a provider offers per person (Webex: the person's location). Not stored.
    requester_email: str | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "country": self.country,
            "number_type": self.number_type,
            "prefix": self.prefix,
            "quantity": self.quantity,
            "sms": self.sms,
            "voice": self.voice,
            "provider": self.provider,
            "location": self.location,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SearchQuery":
        return cls(**{k: d.get(k) for k in cls.__dataclass_fields__ if k in d})


@dataclass
class OfferDraft:
    """One thing a user can ask for, as a provider found it.

    ``kind`` is what fulfilling it does: ``purchase`` (ACS; Plivo's PhoneNumber
    API, one number per offer), ``rent`` (a Plivo number group) or ``assign``
    (Webex). ``numbers`` are E.164 strings (empty for a Plivo group, whose
    numbers are only known after renting). Costs are per number;
    ``unit_monthly_cost`` is None when the provider did not say (ACS ``cost: null``).
    ``ref`` holds the provider's ids needed to fulfil it (``search_id`` and
    ``agree_to_not_resell``, ``group_id``, ``number``/``location_id``, Plivo's
    ``restriction_text``); ``details`` what a user is shown
    (region, prefix, stock, location name, telephony type, …).
    """

    provider: str
    kind: str
    numbers: list[str]
    unit_monthly_cost: Decimal | None
    currency: str = "USD"
    unit_setup_cost: Decimal | None = None
    quantity: int = 1
    max_quantity: int = 1
    sms: bool = False
    voice: bool = False
    expires_at: datetime | None = None
    ref: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Requester:
    user_id: str
    email: str | None = None
    name: str | None = None


@dataclass
class Job:
    """What the worker asks a provider to do for one approved request."""

    request_id: int
    provider: str
    kind: str  # purchase | rent | assign | release
    ref: dict[str, Any]  # offer ref merged with what prepare() returned
    quantity: int
    numbers: list[str]
    requester: Requester
    approved_by: list[str] = field(default_factory=list)  # who approved the request (or the policy)


def submit_audit_data(job: Job) -> dict[str, Any]:
    """What the audit event of a submit records beyond the text: an agreement the submit gives,
    and who gave it (the approvers; approving such a request is agreeing)."""
    if job.kind == "purchase" and (job.ref or {}).get("agree_to_not_resell") is True:
        return {"agreed_to_not_resell": True, "agreed_by": list(job.approved_by)}
    return {}


# --- Steps: what a provider says about a job ---------------------------------


@dataclass
class Done:
    numbers: list[str]
    note: str | None = None  # e.g. "2 of 3 numbers rented; 1 failed: …"
    failed_numbers: list[str] = field(default_factory=list)


@dataclass
class InProgress:
    ref: dict[str, Any]  # what poll() needs, e.g. {"operation_id": …, "location": …}
    retry_after: float | None = None  # seconds, when the provider said


@dataclass
class Failed:
    reason: str  # the provider's own words where it gave any


@dataclass
class ProviderPending:
    details: str  # e.g. Plivo's regulated-country "details" text


Step = Done | InProgress | Failed | ProviderPending


@runtime_checkable
class Provider(Protocol):
    name: str

    async def search(self, query: SearchQuery) -> list[OfferDraft]: ...

    async def prepare(self, offer: OfferDraft, quantity: int, requester: Requester) -> dict[str, Any]: ...

    async def submit(self, job: Job) -> Step: ...

    async def poll(self, job: Job, ref: dict[str, Any]) -> Step: ...

    async def recover(self, job: Job) -> Step | None: ...

    async def release(self, number: str, ref: Mapping[str, Any]) -> Step: ...

    async def check(self) -> str: ...

    async def aclose(self) -> None: ...


async def extend_hold(provider: Provider, ref: dict[str, Any]) -> datetime | None:
    """The hold's new end, or None when the provider keeps no hold it can extend."""
    extend = getattr(provider, "extend_hold", None)
    return await extend(ref) if extend is not None else None


def extends_holds(provider: Provider) -> bool:
    return getattr(provider, "extend_hold", None) is not None


async def abandon_hold(provider: Provider, ref: dict[str, Any]) -> str | None:
    """Let the request's hold go; a note for the audit log, or None when there was nothing to do."""
    abandon = getattr(provider, "abandon", None)
    return await abandon(ref) if abandon is not None else None


# --- HTTP helpers shared by the adapters -------------------------------------


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


def transport_error(provider: str, request: httpx.Request, exc: Exception) -> ProviderError:
    """A readable error for a transport failure, naming no secret."""
    what = "timed out" if isinstance(exc, httpx.TimeoutException) else "could not be reached"
    return ProviderUnavailable(provider, f"{request.method} {request.url.path} {what}")
