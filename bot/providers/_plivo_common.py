"""What Plivo's two APIs share: the account's HTTP (Basic auth, paths under the auth id, errors
scrubbed of secrets), the search checks and paging, money as ``Decimal``, and release/check.

``PlivoAccount`` is the base of both adapters: ``PlivoProvider`` (number groups, ``plivo.py``) and
``PlivoNumbersProvider`` (single numbers, ``plivo_numbers.py``).

The auth id is part of every URL path, so no message here ever contains a URL: errors name the
path template (``AvailableNumberGroup/``) instead, and any provider text is scrubbed of the auth
id and token before it is shown.
"""

from __future__ import annotations

import asyncio
import json
import re
import urllib.parse
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping

import httpx

from bot.domain.errors import OutcomeUnknown, ProviderError, ProviderUnavailable, UsageError
from bot.providers._http import (
    Sleep,
    bounded_client,
    provider_error,
    send_once,
    send_read,
    status_class,
)
from bot.domain.offers import NUMBER_TYPES, SearchQuery
from bot.domain.steps import Done, Step

__all__ = [
    "CHECK_CONSOLE", "MAX_PAGE", "PLIVO_API_URL", "PlivoAccount", "as_e164", "loads", "money", "rate_text", "search_params",
]

PLIVO_API_URL = "https://api.plivo.com"
MAX_PAGE = 20  # Plivo refuses a larger ``limit``

_NUMBER = "Number/{number}/"
_ACCOUNT = "Account/"

CHECK_CONSOLE = "check the Plivo console (Numbers) before renting again"


def loads(content: bytes) -> Any:
    return json.loads(content, parse_float=Decimal)


def money(value: Any) -> Decimal | None:
    """A Plivo rate (string, or a number parsed as Decimal) as Decimal; None when absent or unreadable."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value).strip())
    except InvalidOperation:
        return None


def rate_text(value: Any) -> str | None:
    amount = money(value)
    if amount is None or amount < 0:  # sms_rate -1: the group offers no SMS
        return None
    return str(amount)


def as_e164(number: Any) -> str:
    digits = re.sub(r"\D", "", str(number))
    return f"+{digits}" if digits else str(number)


def search_params(query: SearchQuery, limit: int) -> tuple[dict[str, str], dict[str, str]]:
    """Plivo's own limits, checked here so a bad query costs no call: the search's parameters
    before a prefix (country, type, limit) and after it (region, services)."""
    country = (query.country or "").strip().upper()
    if not re.fullmatch(r"[A-Z]{2}", country):
        raise UsageError(f"Plivo needs a two-letter country code such as US or GB, not {query.country!r}.")
    number_type = (query.number_type or "local").strip().lower()
    if number_type not in NUMBER_TYPES:
        raise UsageError(f"Plivo number types are {', '.join(NUMBER_TYPES)}; {query.number_type!r} is not one.")
    if query.quantity is None or query.quantity < 1:
        raise UsageError("The quantity must be at least 1.")
    head = {"country_iso": country, "number_type": number_type, "limit": str(limit)}
    tail: dict[str, str] = {}
    # Plivo accepts a region only for local numbers and answers 400 otherwise.
    if query.location and number_type == "local":
        tail["region"] = query.location
    services = [s for s, wanted in (("voice", query.voice), ("sms", query.sms)) if wanted]
    if services:
        tail["services"] = ",".join(services)
    return head, tail


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


def _lost(exc: httpx.TransportError, what: str, after: str) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"{what} timed out after it was sent; {after}: {CHECK_CONSOLE}"
    return f"the connection broke during {what} ({type(exc).__name__}); {after}: {CHECK_CONSOLE}"


class PlivoAccount:
    """One Plivo account over HTTP; the adapters add search and fulfilment."""

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
    ):
        self._auth_id = auth_id
        self._auth_token = auth_token
        self._api_url = api_url.rstrip("/")
        self._app_id = app_id or None
        self._sleep = sleep
        self._client = bounded_client(
            user_agent="numbers-bot",
            base_url=f"{self._api_url}/v1/Account/{urllib.parse.quote(auth_id, safe='')}/",
            auth=httpx.BasicAuth(auth_id, auth_token),
            transport=transport,
            timeout=timeout,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(api_url={self._api_url!r})"

    async def __aenter__(self) -> "PlivoAccount":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    # --- the account -----------------------------------------------------------------

    async def release(self, number: str, ref: Mapping[str, Any]) -> Step:
        """Give a number back to Plivo (``DELETE Number/{number}/``). Sent once."""
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
            raise self._unknown(response, what, "it may have been released: check the Plivo console (Numbers)")
        if response.status_code >= 300:
            raise self._error(response, _NUMBER)
        return Done([e164])

    async def check(self) -> str:
        data = await self._read_json("GET", "", _ACCOUNT)
        name = data.get("name") if isinstance(data, dict) else None
        return f"auth ok (account {self._scrub(str(name))})" if name else "auth ok"

    # --- HTTP -----------------------------------------------------------------------------

    async def _pages(self, path: str, params: dict[str, str], *, enough: int, what: str) -> list[dict[str, Any]]:
        """The ``objects`` of a paged search, page after page (``meta.next``), until ``enough`` are in."""
        found: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = await self._read_json("GET", path, path, params={**params, "offset": str(offset)})
            objects = page.get("objects") if isinstance(page, dict) else None
            if not isinstance(objects, list):
                raise ProviderError(self.name, f"GET {path} answered without a list of {what}")
            found.extend(o for o in objects if isinstance(o, dict))
            if len(found) >= enough:
                return found
            next_offset = _next_offset(page.get("meta"), offset, len(objects))
            if next_offset is None:
                return found
            offset = next_offset

    async def _read_json(self, method: str, path: str, template: str, *, params: dict[str, str] | None = None) -> Any:
        response = await self._read(method, path, template, params=params)
        if response.status_code >= 300:
            raise self._error(response, template)
        try:
            return loads(response.content)
        except ValueError:
            raise ProviderUnavailable(
                self.name, f"{method} {template} answered {response.status_code} with a body that is not JSON"
            ) from None

    async def _read(
        self, method: str, path: str, template: str, *, params: dict[str, str] | None = None
    ) -> httpx.Response:
        request = self._client.build_request(method, path, params=params)
        try:
            return await send_read(self._client, request, provider=self.name, sleep=self._sleep)
        except ProviderUnavailable as exc:
            # send_read names the URL path, which carries the auth id.
            raise ProviderUnavailable(self.name, self._scrub(exc.message.replace(request.url.path, template))) from None

    async def _send_once(
        self, request: httpx.Request, template: str, what: str, *, after: str = "it may have rented numbers"
    ) -> httpx.Response:
        """Send a call that changes the account, once. A transport failure after the
        request may have reached Plivo is OutcomeUnknown; before it, ProviderUnavailable."""
        return await send_once(
            self._client, request, provider=self.name, lost=lambda exc: _lost(exc, what, after),
            unsent=f"{request.method} {template} could not reach Plivo; nothing was sent",
        )

    def _unknown(self, response: httpx.Response, what: str, after: str) -> OutcomeUnknown:
        """A change answered 5xx: Plivo may have acted."""
        return OutcomeUnknown(
            self.name,
            f"Plivo answered {response.status_code} ({self._error_text(response)}) to {what}; {after}",
            status=response.status_code,
        )

    def _error(self, response: httpx.Response, template: str) -> ProviderError:
        text = self._error_text(response)
        cls = status_class(response.status_code)
        if cls is ProviderUnavailable:
            return provider_error(self.name, response, f"{text} ({template})", cls=cls)
        if cls is ProviderError:
            return ProviderError(self.name, text, status=response.status_code)
        return cls(self.name, f"{text} (check PLIVO_AUTH_ID and PLIVO_AUTH_TOKEN)", status=response.status_code)

    def _error_text(self, response: httpx.Response) -> str:
        """Plivo's own words from an error answer, without secrets."""
        try:
            data = loads(response.content)
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
