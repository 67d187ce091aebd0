"""Plivo number groups (the legacy ``AvailableNumberGroup`` API).

Plivo groups the numbers it sells by country, type, prefix and price; a search
returns groups (with their stock), and renting asks a group for N numbers. The
rent answers at once: ``fulfilled`` with the numbers (each with its own
``status``: a rent can partly succeed), or ``pending`` in countries with
address regulations, where a person at Plivo follows up and no number exists yet.

Protocol facts this adapter relies on (PROVIDERS.md, Plivo section):

* base ``{api_url}/v1/Account/{auth_id}/``, every path ends with ``/``, HTTP
  Basic auth ``auth_id:auth_token``;
* rates are *strings* (``"0.80000"``) except ``sms_rate``, a JSON number that
  is ``-1`` when the group has no SMS; JSON is parsed with ``Decimal`` floats so
  no amount ever passes through a binary float;
* ``meta.next`` is a relative URL or null; we take its ``offset`` and send the
  next page ourselves (relative URLs would lose any path prefix of ``api_url``);
* errors are ``{"api_id", "error"}``; a 401 may also come as plain text.

The auth id is part of every URL path, so no message here ever contains a URL:
errors name the path template (``AvailableNumberGroup/``) instead, and any
provider text is scrubbed of the auth id and token before it is shown.
"""

from __future__ import annotations

import asyncio
import json
import re
import urllib.parse
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping

import httpx

from bot.domain.errors import (
    OutcomeUnknown,
    ProviderAuthError,
    ProviderError,
    ProviderUnavailable,
    UsageError,
)
from bot.providers.base import (
    BoundedClient,
    NUMBER_TYPES,
    Done,
    Failed,
    Job,
    OfferDraft,
    ProviderPending,
    Requester,
    SearchQuery,
    Sleep,
    Step,
    parse_retry_after,
    send_read,
)

PLIVO_API_URL = "https://api.plivo.com"
MAX_PAGE = 20  # Plivo refuses a larger ``limit``
MAX_PREFIX_DIGITS = 5

_SEARCH = "AvailableNumberGroup/"
_RENT = "AvailableNumberGroup/{group_id}/"
_NUMBER = "Number/{number}/"
_ACCOUNT = "Account/"

CHECK_CONSOLE = "check the Plivo console (Numbers) before renting again"

# Errors raised before any byte of the request left: nothing can have been rented.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def _loads(content: bytes) -> Any:
    return json.loads(content, parse_float=Decimal)


def _money(value: Any) -> Decimal | None:
    """A Plivo rate (string, or a number parsed as Decimal) as Decimal; None when absent or unreadable."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value).strip())
    except InvalidOperation:
        return None


def _rate_text(value: Any) -> str | None:
    amount = _money(value)
    if amount is None or amount < 0:  # sms_rate -1: the group offers no SMS
        return None
    return str(amount)


def _e164(number: Any) -> str:
    digits = re.sub(r"\D", "", str(number))
    return f"+{digits}" if digits else str(number)


class PlivoProvider:
    """Search Plivo number groups and rent numbers from them."""

    name = "plivo"

    def __init__(
        self,
        auth_id: str,
        auth_token: str,
        *,
        api_url: str = PLIVO_API_URL,
        app_id: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
        sleep: Sleep = asyncio.sleep,
        max_groups: int = 60,
    ):
        self._auth_id = auth_id
        self._auth_token = auth_token
        self._api_url = api_url.rstrip("/")
        self._app_id = app_id or None
        self._sleep = sleep
        self._max_groups = max(1, max_groups)
        self._client = BoundedClient(
            base_url=f"{self._api_url}/v1/Account/{urllib.parse.quote(auth_id, safe='')}/",
            auth=httpx.BasicAuth(auth_id, auth_token),
            transport=transport,
            timeout=timeout,
            headers={"Accept": "application/json", "User-Agent": "numbers-bot"},
        )

    def __repr__(self) -> str:
        return f"PlivoProvider(api_url={self._api_url!r})"

    async def __aenter__(self) -> "PlivoProvider":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    # --- search -------------------------------------------------------------------

    async def search(self, query: SearchQuery) -> list[OfferDraft]:
        params = self._search_params(query)
        groups: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = await self._read_json("GET", _SEARCH, _SEARCH, params={**params, "offset": str(offset)})
            objects = page.get("objects") if isinstance(page, dict) else None
            if not isinstance(objects, list):
                raise ProviderError(self.name, f"GET {_SEARCH} answered without a list of groups")
            groups.extend(o for o in objects if isinstance(o, dict))
            if len(groups) >= self._max_groups:
                break
            next_offset = self._next_offset(page.get("meta"), offset, len(objects))
            if next_offset is None:
                break
            offset = next_offset
        return [offer for g in groups[: self._max_groups] if (offer := self._offer(g, query)) is not None]

    def _search_params(self, query: SearchQuery) -> dict[str, str]:
        """Plivo's own limits, checked here so a bad query costs no call."""
        country = (query.country or "").strip().upper()
        if not re.fullmatch(r"[A-Z]{2}", country):
            raise UsageError(f"Plivo needs a two-letter country code such as US or GB, not {query.country!r}.")
        number_type = (query.number_type or "local").strip().lower()
        if number_type not in NUMBER_TYPES:
            raise UsageError(f"Plivo number types are {', '.join(NUMBER_TYPES)}; {query.number_type!r} is not one.")
        if query.quantity is None or query.quantity < 1:
            raise UsageError("The quantity must be at least 1.")
        params = {"country_iso": country, "number_type": number_type, "limit": str(min(MAX_PAGE, self._max_groups))}
        if query.prefix:
            prefix = query.prefix.strip()
            if not prefix.isascii() or not prefix.isdigit() or len(prefix) > MAX_PREFIX_DIGITS:
                raise UsageError(
                    f"Plivo takes a prefix or area code of digits only, at most {MAX_PREFIX_DIGITS} "
                    f"(e.g. 415 or 833), not {query.prefix!r}."
                )
            params["prefix"] = prefix
        # Plivo accepts a region only for local numbers and answers 400 otherwise.
        if query.location and number_type == "local":
            params["region"] = query.location
        services = [s for s, wanted in (("voice", query.voice), ("sms", query.sms)) if wanted]
        if services:
            params["services"] = ",".join(services)
        return params

    @staticmethod
    def _next_offset(meta: Any, offset: int, got: int) -> int | None:
        """The offset named by ``meta.next``, or None when there is no further page."""
        if not isinstance(meta, dict) or not meta.get("next") or got == 0:
            return None
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(str(meta["next"])).query)
        try:
            nxt = int(query["offset"][0])
        except (KeyError, IndexError, ValueError):
            nxt = offset + got
        # A page that does not move forward would loop for ever.
        return nxt if nxt > offset else None

    def _offer(self, g: dict[str, Any], query: SearchQuery) -> OfferDraft | None:
        try:
            stock = int(g.get("stock") or 0)
        except (TypeError, ValueError):
            return None
        group_id = g.get("group_id")
        if stock <= 0 or group_id in (None, ""):
            return None
        sms = bool(g.get("sms_enabled"))
        voice = bool(g.get("voice_enabled"))
        # Plivo filters by services too; this keeps the promise if it ever does not.
        if (query.sms and not sms) or (query.voice and not voice):
            return None
        return OfferDraft(
            provider=self.name,
            kind="rent",
            numbers=[],
            unit_monthly_cost=_money(g.get("rental_rate")),
            unit_setup_cost=_money(g.get("setup_rate")),
            currency="USD",
            quantity=min(query.quantity, stock),
            max_quantity=stock,
            sms=sms,
            voice=voice,
            expires_at=None,
            ref={"group_id": str(group_id)},
            details={
                "region": g.get("region"),
                "prefix": g.get("prefix"),
                "stock": stock,
                "number_type": g.get("number_type") or query.number_type,
                # Exact decimal text (JSON-safe for the store); None: not offered.
                "voice_rate": _rate_text(g.get("voice_rate")),
                "sms_rate": _rate_text(g.get("sms_rate")),
                "country": query.country.upper(),
            },
        )

    # --- request / fulfil ------------------------------------------------------------

    async def prepare(self, offer: OfferDraft, quantity: int, requester: Requester) -> dict[str, Any]:
        if not isinstance(quantity, int) or quantity < 1:
            raise UsageError("Ask for at least 1 number.")
        if quantity > offer.max_quantity:
            raise UsageError(
                f"This Plivo group has {offer.max_quantity} number{'s' if offer.max_quantity != 1 else ''} "
                f"in stock; ask for {offer.max_quantity} or fewer."
            )
        return {}

    async def submit(self, job: Job) -> Step:
        """Rent ``job.quantity`` numbers from the group. Sent once, never retried."""
        group_id = str(job.ref.get("group_id") or "")
        if not re.fullmatch(r"[0-9A-Za-z_-]+", group_id):
            raise ProviderError(self.name, "the request names no valid Plivo number group")
        if job.quantity < 1:
            raise UsageError("Ask for at least 1 number.")
        body: dict[str, Any] = {"quantity": job.quantity}
        if self._app_id:
            body["app_id"] = self._app_id
        what = f"the rent of {job.quantity} number{'s' if job.quantity != 1 else ''} from group {group_id}"
        request = self._client.build_request("POST", _RENT.format(group_id=group_id), json=body)
        response = await self._send_once(request, _RENT, what)

        if response.status_code >= 500:
            raise OutcomeUnknown(
                self.name,
                f"Plivo answered {response.status_code} ({self._error_text(response)}) to {what}; "
                f"it may have rented numbers: {CHECK_CONSOLE}",
                status=response.status_code,
            )
        if response.status_code >= 300:
            raise self._error(response, _RENT)
        try:
            data = _loads(response.content)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise OutcomeUnknown(
                self.name, f"Plivo accepted {what} but its answer could not be read; {CHECK_CONSOLE}"
            )
        status = str(data.get("status") or "").lower()
        if status == "pending":
            details = self._scrub(str(data.get("details") or data.get("message") or "order pending at Plivo"))
            return ProviderPending(details)
        if status == "fulfilled":
            return self._rent_outcome(data.get("numbers"), job.quantity, what)
        raise OutcomeUnknown(
            self.name,
            f"Plivo answered {what} with status {self._scrub(str(data.get('status')))!r}; {CHECK_CONSOLE}",
            status=response.status_code,
        )

    def _rent_outcome(self, entries: Any, asked: int, what: str) -> Step:
        if not isinstance(entries, list) or not entries:
            raise OutcomeUnknown(self.name, f"Plivo said {what} was fulfilled but named no numbers; {CHECK_CONSOLE}")
        rented: list[str] = []
        refused: list[tuple[str, str]] = []
        for entry in entries:
            if not isinstance(entry, dict) or not entry.get("number"):
                continue
            number = _e164(entry["number"])
            status = str(entry.get("status") or "no status")
            if status.lower() == "success":
                rented.append(number)
            else:
                refused.append((number, status))
        if not rented and not refused:
            raise OutcomeUnknown(self.name, f"Plivo said {what} was fulfilled but named no numbers; {CHECK_CONSOLE}")
        refused_text = ", ".join(f"{n} ({s})" for n, s in refused)
        if not rented:
            return Failed(f"Plivo rented none of the {asked} numbers asked for: {refused_text}")
        note = None
        if len(rented) != asked or refused:
            note = f"{len(rented)} of {asked} numbers rented"
            if refused:
                note += f"; {len(refused)} not: {refused_text}"
            unanswered = asked - len(rented) - len(refused)
            if unanswered > 0:
                note += f"; Plivo said nothing about {unanswered} more"
        return Done(numbers=rented, note=note, failed_numbers=[n for n, _ in refused])

    async def poll(self, job: Job, ref: dict[str, Any]) -> Step:
        # submit() never returns InProgress: a Plivo group rent is answered at once.
        raise ProviderError(
            self.name, "a Plivo rent is answered at once (fulfilled or pending); there is no operation to poll"
        )

    async def recover(self, job: Job) -> Step | None:
        # Plivo has no order id we chose up front, and its number list cannot tell our
        # rent apart from any other: nobody can say whether the rent went through.
        raise OutcomeUnknown(self.name, f"Plivo cannot say whether the rent was carried out; {CHECK_CONSOLE}")

    async def release(self, number: str, ref: Mapping[str, Any]) -> Step:
        """Give a rented number back to Plivo (``DELETE Number/{number}/``). Sent once."""
        digits = re.sub(r"\D", "", number or "")
        if not digits:
            raise UsageError(f"{number!r} is not a phone number.")
        e164 = f"+{digits}"
        what = f"the release of {e164}"
        request = self._client.build_request("DELETE", _NUMBER.format(number=digits))
        response = await self._send_once(request, _NUMBER, what, after="it may have been released")
        if response.status_code == 404:
            # Not on the account (any more): released, which is what was asked. This also makes a
            # release sent again after a crash end as done instead of failed.
            return Done([e164], note=f"Plivo no longer lists {e164} on the account ({self._error_text(response)})")
        if response.status_code >= 500:
            raise OutcomeUnknown(
                self.name,
                f"Plivo answered {response.status_code} ({self._error_text(response)}) to {what}; "
                "it may have been released: check the Plivo console (Numbers)",
                status=response.status_code,
            )
        if response.status_code >= 300:
            raise self._error(response, _NUMBER)
        return Done([e164])

    async def check(self) -> str:
        data = await self._read_json("GET", "", _ACCOUNT)
        name = data.get("name") if isinstance(data, dict) else None
        return f"auth ok (account {self._scrub(str(name))})" if name else "auth ok"

    # --- HTTP -----------------------------------------------------------------------------

    async def _read_json(self, method: str, path: str, template: str, *, params: dict[str, str] | None = None) -> Any:
        request = self._client.build_request(method, path, params=params)
        try:
            response = await send_read(self._client, request, provider=self.name, sleep=self._sleep)
        except ProviderUnavailable as exc:
            # send_read names the URL path, which carries the auth id.
            raise ProviderUnavailable(self.name, self._scrub(exc.message.replace(request.url.path, template))) from None
        if response.status_code >= 300:
            raise self._error(response, template)
        try:
            return _loads(response.content)
        except ValueError:
            raise ProviderUnavailable(
                self.name, f"{method} {template} answered {response.status_code} with a body that is not JSON"
            ) from None

    async def _send_once(
        self, request: httpx.Request, template: str, what: str, *, after: str = "it may have rented numbers"
    ) -> httpx.Response:
        """Send a call that changes the account, once. A transport failure after the
        request may have reached Plivo is OutcomeUnknown; before it, ProviderUnavailable."""
        try:
            response = await self._client.send(request)
            await response.aread()
            return response
        except _NOT_SENT:
            raise ProviderUnavailable(
                self.name, f"{request.method} {template} could not reach Plivo; nothing was sent"
            ) from None
        except httpx.TimeoutException:
            raise OutcomeUnknown(
                self.name, f"{what} timed out after it was sent; {after}: {CHECK_CONSOLE}"
            ) from None
        except httpx.TransportError as exc:
            raise OutcomeUnknown(
                self.name, f"the connection broke during {what} ({type(exc).__name__}); {after}: {CHECK_CONSOLE}"
            ) from None

    def _error(self, response: httpx.Response, template: str) -> ProviderError:
        status = response.status_code
        text = self._error_text(response)
        if status in (401, 403):
            return ProviderAuthError(
                self.name, f"{text} (check PLIVO_AUTH_ID and PLIVO_AUTH_TOKEN)", status=status
            )
        if status == 429 or status >= 500:
            return ProviderUnavailable(
                self.name,
                f"{text} ({template})",
                status=status,
                retry_after=parse_retry_after(response.headers.get("retry-after")),
            )
        return ProviderError(self.name, text, status=status)

    def _error_text(self, response: httpx.Response) -> str:
        """Plivo's own words from an error answer, without secrets."""
        try:
            data = _loads(response.content)
        except ValueError:
            data = None
        text = ""
        if isinstance(data, dict):
            err = data.get("error") or data.get("message") or data.get("detail")
            if isinstance(err, dict):
                # Some Plivo endpoints answer {"error": {"field": ["problem", …]}}.
                text = "; ".join(
                    f"{k}: {' '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in err.items()
                )
            elif isinstance(err, list):
                text = "; ".join(map(str, err))
            elif err:
                text = str(err)
        elif response.content and not response.text.lstrip().startswith("<"):
            text = " ".join(response.text.split())[:300]
        if not text:
            text = response.reason_phrase or f"HTTP {response.status_code}"
        return self._scrub(text)

    def _scrub(self, text: str) -> str:
        for secret, shown in ((self._auth_token, "[auth token]"), (self._auth_id, "[auth id]")):
            if secret:
                text = text.replace(secret, shown)
        return text


__all__ = ["PlivoProvider", "PLIVO_API_URL"]
