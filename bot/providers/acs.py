"""Azure Communication Services (ACS) Phone Numbers, api-version 2025-06-01 by default.

``ACS_API_VERSION`` picks another version the service lists (``2021-03-07``,
the seed's and the oldest still listed, keeps working). From 2022-12-01 on a
search result may say ``isAgreementToNotResellRequired``: the purchase of such
a search must carry ``agreeToNotResell: true`` or the service refuses it, so
the offer carries ``ref["agree_to_not_resell"]`` and the purchase sends the
agreement only then (approving the request is the organisation's agreement).

How the real service behaves (``PROVIDERS.md``, recorded traffic beats docs):

* Searching is a long-running operation: ``POST …/:search`` answers ``202``
  with an *empty* body and a relative ``Operation-Location`` that already
  carries ``?api-version``; older traffic sent no ``Location`` and no
  ``search-id``, so the search id is also derived from ``operation-id`` or the
  operation path. Numbers found are *held* until ``searchExpiresBy``.
* Purchasing is another long-running operation whose id is
  ``purchase_<searchId>``, so after a crash we can ask whether a purchase was
  already submitted instead of buying twice (``recover``).
* Operation statuses are not monotonic (``running, running, notStarted, …,
  succeeded``) and arrive capitalised or in lower camel case: only
  ``succeeded`` and ``failed`` end an operation.
* Every request is signed with HMAC-SHA256 over the verb, path and query,
  ``x-ms-date``, host and a SHA-256 of the body (``AcsAuth``).

The access key lives only inside ``AcsAuth``; no message, log line or repr
built here contains it.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import hashlib
import hmac
import logging
import re
import time
import urllib.parse
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Generator, Mapping

import httpx

from bot.domain.errors import (
    HoldExpired,
    ConfigError,
    OutcomeUnknown,
    ProviderAuthError,
    ProviderError,
    ProviderUnavailable,
    UsageError,
)
from bot.providers.base import (
    BoundedClient,
    Done,
    Failed,
    InProgress,
    Job,
    OfferDraft,
    Requester,
    SearchQuery,
    Sleep,
    Step,
    parse_retry_after,
    send_read,
)

log = logging.getLogger(__name__)

PROVIDER = "acs"
API_VERSION = "2025-06-01"  # what the official SDK (1.4.0) sends
LEGACY_API_VERSION = "2021-03-07"  # the seed's version: no do-not-resell agreement exists there
_API_VERSION_FORMAT = re.compile(r"\d{4}-\d{2}-\d{2}(-preview\d*)?")
EMPTY_BODY_HASH = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
SIGNED_HEADERS = "x-ms-date;host;x-ms-content-sha256"

_NUMBER_TYPES = {"local": "geographic", "national": "geographic", "tollfree": "tollFree"}
_TERMINAL = ("succeeded", "failed")
# The search operation of the sandbox (and, we expect, of the service) ends
# ``failed`` with this code when the stock is empty: that is "nothing found",
# not a fault, so search() answers with no offers.
_NOTHING_FOUND_CODES = {"noavailablenumbers"}
_MAX_MESSAGE = 600


# --- signing -----------------------------------------------------------------


def content_hash(body: bytes) -> str:
    """``x-ms-content-sha256``: base64 of the body's SHA-256."""
    return base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def rfc1123(when: datetime) -> str:
    """``x-ms-date``, e.g. ``Thu, 08 Dec 2022 23:09:33 GMT``."""
    return email.utils.format_datetime(when.astimezone(timezone.utc), usegmt=True)


def string_to_sign(method: str, path_and_query: str, x_ms_date: str, host: str, body_hash: str) -> str:
    return f"{method.upper()}\n{path_and_query}\n{x_ms_date};{host};{body_hash}"


def decode_access_key(access_key: str | bytes) -> bytes:
    """The HMAC key bytes; the error names the setting, never the value."""
    if isinstance(access_key, bytes):
        return access_key
    try:
        key = base64.b64decode(access_key.strip(), validate=True)
    except (ValueError, TypeError):
        raise ConfigError(["the ACS access key is not valid base64 (copy it again from the Azure portal)"]) from None
    if not key:
        raise ConfigError(["the ACS access key is empty"])
    return key


def compute_signature(
    access_key: str | bytes, method: str, path_and_query: str, x_ms_date: str, host: str, body_hash: str
) -> str:
    """``base64(HMAC-SHA256(base64decode(key), string_to_sign))`` exactly as the SDK signs."""
    message = string_to_sign(method, path_and_query, x_ms_date, host, body_hash).encode("utf-8")
    digest = hmac.new(decode_access_key(access_key), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def authorization_header(signature: str) -> str:
    return f"HMAC-SHA256 SignedHeaders={SIGNED_HEADERS}&Signature={signature}"


def signing_headers(
    access_key: str | bytes, method: str, url: httpx.URL, body: bytes, when: datetime
) -> dict[str, str]:
    """The three headers that authenticate one request."""
    x_ms_date = rfc1123(when)
    body_hash = content_hash(body)
    host = url.netloc.decode("ascii")  # host, plus :port when the URL names one
    path_and_query = url.raw_path.decode("ascii")
    signature = compute_signature(access_key, method, path_and_query, x_ms_date, host, body_hash)
    return {
        "x-ms-date": x_ms_date,
        "x-ms-content-sha256": body_hash,
        "Authorization": authorization_header(signature),
    }


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class AcsAuth(httpx.Auth):
    """Signs every request with the resource's access key (HMAC-SHA256)."""

    requires_request_body = True

    def __init__(self, access_key: str | bytes, *, now: Callable[[], datetime] = _utcnow):
        self._key = decode_access_key(access_key)
        self._now = now

    def __repr__(self) -> str:
        return "AcsAuth(access_key=<hidden>)"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        # Re-signed on every send, so a retried read carries a fresh x-ms-date.
        request.headers.update(signing_headers(self._key, request.method, request.url, request.content, self._now()))
        yield request


# --- connection string --------------------------------------------------------


def parse_connection_string(connection_string: str) -> tuple[str, str]:
    """``endpoint=https://<resource>.communication.azure.com/;accesskey=<base64>`` → (endpoint, key).

    Names are case-insensitive and the key may itself end in ``=``. Errors say
    which part is wrong without repeating any of the string.
    """
    parts: dict[str, str] = {}
    for piece in (connection_string or "").split(";"):
        if not piece.strip():
            continue
        name, sep, value = piece.partition("=")
        if not sep:
            raise ConfigError(["ACS_CONNECTION_STRING is not of the form endpoint=https://…;accesskey=…"])
        parts[name.strip().lower()] = value.strip()
    problems = []
    endpoint = parts.get("endpoint", "")
    key = parts.get("accesskey", "")
    if not endpoint:
        problems.append("ACS_CONNECTION_STRING has no endpoint=https://<resource>.communication.azure.com/ part")
    elif not re.match(r"^https?://[^/\s]+", endpoint):
        problems.append("ACS_CONNECTION_STRING endpoint must start with https:// and name a host")
    if not key:
        problems.append("ACS_CONNECTION_STRING has no accesskey=… part (Azure portal → your resource → Keys)")
    if problems:
        raise ConfigError(problems)
    decode_access_key(key)
    return endpoint, key


# --- parsing helpers -------------------------------------------------------------


def parse_acs_time(value: Any) -> datetime | None:
    """ACS timestamps: 7 fractional digits, ``+00:00`` or ``Z``; always aware UTC."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Python wants at most 6 fractional digits on every version we support.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def _lower_camel(value: Any) -> str | None:
    """``TollFree`` → ``tollFree``: the 2021 service capitalised, the 2022 one did not."""
    if not isinstance(value, str) or not value:
        return None
    return value[0].lower() + value[1:]


def _capability_on(value: Any) -> bool:
    return isinstance(value, str) and value.strip().lower() not in ("", "none")


def _error_parts(response: httpx.Response) -> tuple[str | None, str | None]:
    """(code, message) from a CommunicationErrorResponse, tolerating other shapes."""
    try:
        body = response.json()
    except ValueError:
        return None, None
    if not isinstance(body, dict):
        return None, None
    error = body.get("error", body)
    if isinstance(error, str):
        return None, error[:_MAX_MESSAGE]
    if not isinstance(error, dict):
        return None, None
    code = error.get("code") if isinstance(error.get("code"), str) else None
    message = error.get("message") if isinstance(error.get("message"), str) else None
    if message is None:
        return code, None
    target = error.get("target")
    if isinstance(target, str) and target and target.lower() not in message.lower():
        message = f"{message} (target: {target})"
    details = error.get("details")
    if isinstance(details, list):
        extra = [
            d["message"] for d in details[:3] if isinstance(d, dict) and isinstance(d.get("message"), str)
        ]
        extra = [m for m in extra if m != message]
        if extra:
            message = message + " — " + "; ".join(extra)
    return code, message[:_MAX_MESSAGE]


class _Operation:
    """What a GET on ``/phoneNumbers/operations/{id}`` said."""

    def __init__(self, body: dict[str, Any], response: httpx.Response):
        self.body = body
        self.status = str(body.get("status") or "").strip().lower()
        self.resource_location = body.get("resourceLocation") or response.headers.get("location")
        error = body.get("error")
        self.error_code = error.get("code") if isinstance(error, dict) else None
        self.error_message = error.get("message") if isinstance(error, dict) else None
        self.retry_after = parse_retry_after(response.headers.get("retry-after"))

    @property
    def terminal(self) -> bool:
        return self.status in _TERMINAL

    def failure_reason(self, what: str) -> str:
        if self.error_message:
            return self.error_message[:_MAX_MESSAGE]
        if self.error_code:
            return f"the {what} operation failed ({self.error_code})"
        return f"the {what} operation failed without saying why"


# --- the provider ------------------------------------------------------------------


class AcsProvider:
    """Search, purchase and release phone numbers at one ACS resource.

    ``transport`` and ``sleep`` are the test seams; ``now`` dates the
    signatures (default: the wall clock), for tests whose service clock moves.
    """

    name = PROVIDER

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
        poll_interval: float = 2.0,
        search_timeout: float = 90.0,
        sleep: Sleep = asyncio.sleep,
        assignment_type: str = "application",
        now: Callable[[], datetime] | None = None,
        api_version: str = API_VERSION,
    ):
        endpoint = (endpoint or "").strip()
        if not _API_VERSION_FORMAT.fullmatch(api_version or ""):
            raise ConfigError(["the ACS api-version must look like 2025-06-01 (ACS_API_VERSION)"])
        self.api_version = api_version
        if not re.match(r"^https?://[^/\s]+", endpoint):
            raise ConfigError(["the ACS endpoint must start with https:// and name a host"])
        if assignment_type not in ("application", "person"):
            raise ConfigError(["the ACS assignment type must be application or person"])
        self.endpoint = endpoint.rstrip("/")
        self._base_path = httpx.URL(self.endpoint).path.rstrip("/")
        self._poll_interval = poll_interval
        self._search_timeout = search_timeout
        self._sleep = sleep
        self._assignment_type = assignment_type
        self._client = BoundedClient(
            base_url=self.endpoint + "/",
            auth=AcsAuth(access_key, now=now or _utcnow),
            transport=transport,
            timeout=httpx.Timeout(timeout),
            headers={"Accept": "application/json", "User-Agent": "numbers-bot (acs)"},
        )

    @classmethod
    def from_connection_string(cls, connection_string: str, **kw: Any) -> "AcsProvider":
        endpoint, key = parse_connection_string(connection_string)
        return cls(endpoint, key, **kw)

    def __repr__(self) -> str:
        return f"AcsProvider(endpoint={self.endpoint!r}, api_version={self.api_version!r})"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> "AcsProvider":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    # --- URLs -------------------------------------------------------------------

    def _api(self, path: str) -> str:
        """A service path with our api-version."""
        return f"{path}?api-version={self.api_version}"

    def _follow(self, location: str) -> str:
        """The relative path to request for a Location/Operation-Location value.

        Relative values already carry ``?api-version``; an absolute one is
        reduced to its path so signed requests only ever go to our endpoint.
        """
        url = httpx.URL(location.strip())
        path_and_query = url.raw_path.decode("ascii")
        if self._base_path and path_and_query.startswith(self._base_path + "/"):
            path_and_query = path_and_query[len(self._base_path) :]
        if not path_and_query.startswith("/"):
            path_and_query = "/" + path_and_query
        if "api-version" not in dict(url.params):
            path_and_query += ("&" if url.query else "?") + f"api-version={self.api_version}"
        return path_and_query

    def _operation_path(self, operation_id: str) -> str:
        return self._api(f"/phoneNumbers/operations/{urllib.parse.quote(operation_id, safe='')}")

    # --- HTTP ---------------------------------------------------------------------

    async def _read(self, method: str, path: str, *, json: Any = None) -> httpx.Response:
        request = self._client.build_request(method, path, json=json)
        return await send_read(self._client, request, provider=PROVIDER, sleep=self._sleep)

    def _error(self, response: httpx.Response, *, cls: type[ProviderError] | None = None) -> ProviderError:
        status = response.status_code
        code, message = _error_parts(response)
        request = response.request
        if message is None:
            reason = response.reason_phrase or "error"
            message = f"{request.method} {request.url.path} answered {status} {reason}"
        if cls is None:
            if status in (401, 403):
                cls = ProviderAuthError
            elif status == 429 or status >= 500:
                cls = ProviderUnavailable
            else:
                cls = ProviderError
        if cls is ProviderAuthError:
            message = f"{message} (check the access key in ACS_CONNECTION_STRING)"
        return cls(
            PROVIDER,
            message,
            status=status,
            code=code,
            retry_after=parse_retry_after(response.headers.get("retry-after")),
        )

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            request = response.request
            raise ProviderUnavailable(
                PROVIDER, f"{request.method} {request.url.path} answered with a body that is not a JSON object"
            )
        return body

    async def _get_operation(self, path: str) -> _Operation | None:
        response = await self._read("GET", path)
        if response.status_code == 404:
            return None
        if not response.is_success:
            raise self._error(response)
        return _Operation(self._json(response), response)

    # --- search -------------------------------------------------------------------

    def _search_body(self, query: SearchQuery) -> dict[str, Any]:
        number_type = _NUMBER_TYPES.get((query.number_type or "").lower())
        if number_type is None:
            raise UsageError(f"ACS has no {query.number_type!r} numbers; use local or tollfree")
        if not isinstance(query.quantity, int) or query.quantity < 1:
            raise UsageError("the quantity must be at least 1")
        wants_voice = query.voice or not query.sms
        body: dict[str, Any] = {
            "phoneNumberType": number_type,
            "assignmentType": self._assignment_type,
            "capabilities": {
                "calling": "inbound+outbound" if wants_voice else "none",
                "sms": "inbound+outbound" if query.sms else "none",
            },
            "quantity": query.quantity,
        }
        if query.prefix:
            body["areaCode"] = query.prefix
        return body

    async def search(self, query: SearchQuery) -> list[OfferDraft]:
        body = self._search_body(query)
        country = urllib.parse.quote((query.country or "").strip().upper(), safe="")
        response = await self._read("POST", self._api(f"/availablePhoneNumbers/countries/{country}/:search"), json=body)
        if not response.is_success:
            raise self._error(response)

        # The spec says the 202 carries the result; the service sends none. Use it if it ever does.
        inline = self._maybe_json(response)
        if isinstance(inline, dict) and isinstance(inline.get("phoneNumbers"), list) and inline.get("searchId"):
            return self._offers(inline, query, body)

        headers = response.headers
        operation_location = headers.get("operation-location")
        operation_id = headers.get("operation-id")
        search_id = headers.get("search-id")
        if not operation_location and operation_id:
            operation_location = self._operation_path(operation_id)
        if not operation_location:
            raise ProviderError(PROVIDER, "the search was accepted but the answer named no operation to follow")
        operation_path = self._follow(operation_location)
        if not operation_id:
            operation_id = urllib.parse.unquote(httpx.URL(operation_path).path.rsplit("/", 1)[-1])
        if not search_id:
            search_id = operation_id.removeprefix("search_")
        results_location = headers.get("location")

        operation = await self._wait_for_search(operation_path, parse_retry_after(headers.get("retry-after")))
        if operation.status == "failed":
            if (operation.error_code or "").lower() in _NOTHING_FOUND_CODES:
                log.info("acs search %s found no numbers: %s", search_id, operation.error_message)
                return []
            raise ProviderError(PROVIDER, operation.failure_reason("search"), code=operation.error_code)

        location = results_location or operation.resource_location
        results_path = (
            self._follow(location)
            if location
            else self._api(f"/availablePhoneNumbers/searchResults/{urllib.parse.quote(search_id, safe='')}")
        )
        response = await self._read("GET", results_path)
        if not response.is_success:
            raise self._error(response)
        return self._offers(self._json(response), query, body)

    @staticmethod
    def _maybe_json(response: httpx.Response) -> Any:
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            return None

    async def _wait_for_search(self, operation_path: str, first_wait: float | None) -> _Operation:
        started = time.monotonic()
        waited = 0.0

        async def pause(seconds: float) -> None:
            nonlocal waited
            # Fake sleeps in tests take no real time, real ones take both: count the larger.
            if max(waited, time.monotonic() - started) + seconds > self._search_timeout:
                raise ProviderUnavailable(
                    PROVIDER, f"the search did not finish within {self._search_timeout:g} seconds; try again"
                )
            await self._sleep(seconds)
            waited += seconds

        if first_wait:
            await pause(first_wait)
        while True:
            operation = await self._get_operation(operation_path)
            if operation is None:
                raise ProviderError(PROVIDER, "the search operation disappeared before it finished", status=404)
            if operation.terminal:
                return operation
            await pause(operation.retry_after if operation.retry_after is not None else self._poll_interval)

    def _offers(self, result: dict[str, Any], query: SearchQuery, request_body: dict[str, Any]) -> list[OfferDraft]:
        numbers = [n for n in result.get("phoneNumbers") or [] if isinstance(n, str) and n]
        if not numbers:
            return []
        search_id = result.get("searchId")
        if not isinstance(search_id, str) or not search_id:
            raise ProviderError(PROVIDER, "the search result carried no searchId, so it cannot be purchased")
        cost = result.get("cost") if isinstance(result.get("cost"), dict) else None
        unit_cost: Decimal | None = None
        currency = "USD"
        if cost is not None:
            amount = cost.get("amount")
            if amount is not None and not isinstance(amount, bool):
                try:
                    unit_cost = Decimal(str(amount))
                except InvalidOperation:
                    unit_cost = None
            if isinstance(cost.get("currencyCode"), str) and cost["currencyCode"]:
                currency = cost["currencyCode"].upper()
        capabilities = result.get("capabilities") if isinstance(result.get("capabilities"), dict) else None
        if capabilities is None:
            capabilities = request_body["capabilities"]
        details: dict[str, Any] = {
            "number_type": _lower_camel(result.get("phoneNumberType")) or request_body["phoneNumberType"],
            "area_code": query.prefix,
            "country": (query.country or "").upper(),
            "assignment_type": _lower_camel(result.get("assignmentType")) or self._assignment_type,
        }
        if cost is not None and isinstance(cost.get("billingFrequency"), str):
            details["billing_frequency"] = _lower_camel(cost["billingFrequency"])
        ref: dict[str, Any] = {"search_id": search_id}
        if result.get("isAgreementToNotResellRequired") is True:
            # Shown on the offer and the card; the purchase then sends agreeToNotResell: true.
            ref["agree_to_not_resell"] = True
            details["agreement_to_not_resell_required"] = True
        return [
            OfferDraft(
                provider=PROVIDER,
                kind="purchase",
                numbers=numbers,
                unit_monthly_cost=unit_cost,
                currency=currency,
                quantity=len(numbers),
                max_quantity=len(numbers),
                sms=_capability_on(capabilities.get("sms")),
                voice=_capability_on(capabilities.get("calling")),
                expires_at=parse_acs_time(result.get("searchExpiresBy")),
                ref=ref,
                details=details,
            )
        ]

    # --- purchase -------------------------------------------------------------------

    async def prepare(self, offer: OfferDraft, quantity: int, requester: Requester) -> dict[str, Any]:
        return {}

    @staticmethod
    def _search_id(job: Job) -> str:
        search_id = (job.ref or {}).get("search_id")
        if not isinstance(search_id, str) or not search_id:
            raise ProviderError(PROVIDER, "this request has no ACS search id to purchase")
        return search_id

    def _purchase_body(self, job: Job, search_id: str) -> dict[str, Any]:
        """``{searchId}``, plus ``agreeToNotResell`` at versions that know it: ``true`` only when the
        search said the agreement is required (the request's approval is that agreement)."""
        body: dict[str, Any] = {"searchId": search_id}
        if self.api_version != LEGACY_API_VERSION:
            body["agreeToNotResell"] = (job.ref or {}).get("agree_to_not_resell") is True
        return body

    async def submit(self, job: Job) -> Step:
        """Buy the numbers held by the job's search. Sent once; never retried here."""
        search_id = self._search_id(job)
        request = self._client.build_request(
            "POST", self._api("/availablePhoneNumbers/:purchase"), json=self._purchase_body(job, search_id)
        )
        try:
            response = await self._client.send(request)
        except httpx.TimeoutException:
            raise OutcomeUnknown(
                PROVIDER, f"the purchase of search {search_id} timed out; whether ACS acted is not known yet"
            ) from None
        except httpx.TransportError:
            raise OutcomeUnknown(
                PROVIDER,
                f"the connection failed while purchasing search {search_id}; whether ACS acted is not known yet",
            ) from None
        status = response.status_code
        if response.is_success and not (response.headers.get("operation-id") or response.headers.get("operation-location")):
            # ACS accepts a purchase with 202 and the operation's headers. A 2xx without them is not ACS's
            # answer (a proxy's page, a mangled reply): whether ACS acted is unknown, so ask, never assume.
            raise OutcomeUnknown(
                PROVIDER,
                f"the purchase of search {search_id} got an answer ({status}) that names no operation; "
                "whether ACS acted is not known yet",
            )
        if response.is_success:
            operation_id = response.headers.get("operation-id") or f"purchase_{search_id}"
            location = response.headers.get("operation-location")
            path = self._follow(location) if location else self._operation_path(operation_id)
            log.info("acs purchase of search %s accepted as %s", search_id, operation_id)
            return InProgress(
                ref={"operation_id": operation_id, "location": path},
                retry_after=self._retry_after(response),
            )
        if status == 429:
            # Throttled: certainly refused, safe to send again later.
            raise self._error(response, cls=ProviderUnavailable)
        if 400 <= status < 500:
            code, _ = _error_parts(response)
            if code and "expired" in code.lower():
                # The hold ran out before ACS took the purchase: nothing bought; the worker searches again.
                raise self._error(response, cls=HoldExpired)
            raise self._error(response)
        raise self._error(response, cls=OutcomeUnknown)

    def _retry_after(self, response: httpx.Response) -> float:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        return retry_after if retry_after is not None else self._poll_interval

    def _step(self, operation: _Operation, job: Job, ref: dict[str, Any], what: str) -> Step:
        if operation.status == "succeeded":
            if ref.get("number"):
                return Done(numbers=[ref["number"]])
            # A purchase operation's resourceLocation is null: what it bought is the search's numbers.
            return Done(numbers=list(job.numbers))
        if operation.status == "failed":
            return Failed(reason=operation.failure_reason(what))
        return InProgress(
            ref=dict(ref),
            retry_after=operation.retry_after if operation.retry_after is not None else self._poll_interval,
        )

    async def poll(self, job: Job, ref: dict[str, Any]) -> Step:
        if ref.get("watch_number"):
            return await self._watch_release(ref["watch_number"])
        operation_id = ref.get("operation_id")
        location = ref.get("location")
        if location:
            path = self._follow(location)
        elif operation_id:
            path = self._operation_path(operation_id)
        else:
            raise ProviderError(PROVIDER, "nothing to poll: the reference names no operation")
        operation = await self._get_operation(path)
        if operation is None:
            return await self._operation_gone(job, operation_id or path)
        what = (operation_id or "").split("_", 1)[0] or "purchase"
        next_ref = {"operation_id": operation_id, "location": path}
        if ref.get("number"):
            next_ref["number"] = ref["number"]
        return self._step(operation, job, next_ref, what)

    async def _operation_gone(self, job: Job, operation: str) -> Step:
        """ACS no longer knows an operation it accepted. That is not its word on the purchase:
        ask the resource whether it holds the numbers, and say "cannot tell yet" otherwise."""
        held = []
        for number in job.numbers:
            response = await self._read("GET", self._api(f"/phoneNumbers/{urllib.parse.quote(number, safe='')}"))
            if response.is_success:
                held.append(number)
            elif response.status_code != 404:
                raise self._error(response, cls=ProviderUnavailable)
        if job.numbers and len(held) == len(job.numbers):
            return Done(numbers=held, note=f"ACS no longer lists operation {operation}; the numbers are in the resource")
        raise ProviderUnavailable(
            PROVIDER,
            f"operation {operation} is not found and the resource holds {len(held)} of {len(job.numbers)} number(s) yet",
            status=404,
        )

    async def recover(self, job: Job) -> Step | None:
        """Was the purchase of this job's search already submitted? Asks ACS by operation id."""
        search_id = self._search_id(job)
        operation_id = f"purchase_{search_id}"
        path = self._operation_path(operation_id)
        operation = await self._get_operation(path)
        if operation is None:
            return None
        return self._step(operation, job, {"operation_id": operation_id, "location": path}, "purchase")

    # --- release, listing, doctor ---------------------------------------------------------

    async def release(self, number: str, ref: Mapping[str, Any]) -> Step:
        """Give a purchased number back. Not retried: on doubt, raise OutcomeUnknown."""
        if not re.fullmatch(r"\+\d{6,15}", number or ""):
            raise UsageError(f"{number!r} is not an E.164 phone number such as +18332272459")
        request = self._client.build_request(
            "DELETE", self._api(f"/phoneNumbers/{urllib.parse.quote(number, safe='')}")
        )
        try:
            response = await self._client.send(request)
        except (httpx.TimeoutException, httpx.TransportError):
            raise OutcomeUnknown(
                PROVIDER, f"the release of {number} could not be confirmed; check the number in the Azure portal"
            ) from None
        if response.is_success:
            # 202 names the release operation; so did a recorded 204 (Feb 2021): follow it when named,
            # and only an answer naming none means the release is already done.
            location = response.headers.get("operation-location")
            operation_id = response.headers.get("operation-id")
            if not location and not operation_id:
                return Done(numbers=[number])
            path = self._follow(location) if location else self._operation_path(operation_id or "")
            if not operation_id:
                operation_id = urllib.parse.unquote(httpx.URL(path).path.rsplit("/", 1)[-1])
            return InProgress(
                ref={"operation_id": operation_id, "location": path, "number": number},
                retry_after=self._retry_after(response),
            )
        if response.status_code == 404:
            # The resource no longer has it: released, which is what was asked. A release sent
            # again after a crash therefore ends as done, not failed.
            return Done(numbers=[number], note=f"ACS no longer lists {number} on the resource")
        if response.status_code == 409:
            # A release of it is already under way (ours, sent before a crash): watch the number go.
            return InProgress(ref={"watch_number": number}, retry_after=self._retry_after(response))
        if response.status_code == 429:
            raise self._error(response, cls=ProviderUnavailable)
        if 400 <= response.status_code < 500:
            raise self._error(response)
        raise self._error(response, cls=OutcomeUnknown)

    async def _watch_release(self, number: str) -> Step:
        """Done once ``GET /phoneNumbers/{number}`` says the resource no longer has it."""
        response = await self._read("GET", self._api(f"/phoneNumbers/{urllib.parse.quote(number, safe='')}"))
        if response.status_code == 404:
            return Done(numbers=[number])
        if not response.is_success:
            raise self._error(response, cls=ProviderUnavailable if response.status_code >= 500 else None)
        return InProgress(ref={"watch_number": number}, retry_after=self._retry_after(response))

    async def purchased_numbers(self) -> list[str]:
        """Numbers the resource owns (first page)."""
        response = await self._read("GET", self._api("/phoneNumbers"))
        if not response.is_success:
            raise self._error(response)
        body = self._json(response)
        items = body.get("phoneNumbers") or body.get("value") or []
        return [i["phoneNumber"] for i in items if isinstance(i, dict) and isinstance(i.get("phoneNumber"), str)]

    async def check(self) -> str:
        """A harmless authenticated read: list the numbers the resource owns."""
        numbers = await self.purchased_numbers()
        host = httpx.URL(self.endpoint).host
        return (
            f"access key accepted by {host} at api-version {self.api_version}; "
            f"{len(numbers)} purchased number(s) listed"
        )
