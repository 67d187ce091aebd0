"""The Webex API over HTTP: the client, paged listings, throttling waited out, errors in words a
user can act on, and the people calls the adapter makes.

Throttling follows Webex's contract: ``429`` and ``423`` are waited out per ``Retry-After``
(seconds or an HTTP date; 5 s when absent; at most ``max_wait``). A throttled request was refused
before Webex acted on it, so even the PUT may be sent again after the wait. Other retries are for
reads only. ``WebexApi`` is the base of ``WebexProvider`` (``client.py``).
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
import uuid
from typing import Any

import httpx

from bot.domain.errors import OutcomeUnknown, ProviderAuthError, ProviderError, ProviderUnavailable
from bot.providers._http import Sleep, bounded_client, lost_how, parse_retry_after, status_class
from bot.providers.webex._auth import WebexAuth
from bot.providers.webex._wire import (
    DEFAULT_API_URL,
    DEFAULT_THROTTLE_WAIT,
    MAX_PAGES,
    SCOPE_PEOPLE_READ,
    SCOPE_PEOPLE_WRITE,
    STATUS_MEANINGS,
    THROTTLE_STATUSES,
    TRACKING_PREFIX,
    error_details,
    origin,
)

__all__ = ["WebexApi"]

log = logging.getLogger("bot.providers.webex")


class WebexApi:
    """One Webex organisation's API. ``transport``/``sleep`` are the test seams."""

    name = "webex"

    def __init__(
        self,
        access_token: str,
        *,
        api_url: str = DEFAULT_API_URL,
        org_id: str | None = None,
        location_id: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
        sleep: Sleep = asyncio.sleep,
        max_wait: float = 60.0,
        max_attempts: int = 5,
        page_size: int = 200,
    ):
        if not access_token:
            raise ProviderAuthError(self.name, STATUS_MEANINGS[401], status=401)
        self._token = access_token
        self.api_url = api_url.rstrip("/")
        self.org_id = org_id or None
        self.location_id = location_id or None
        self.max_wait = max_wait
        self.max_attempts = max(1, max_attempts)
        self.page_size = max(1, page_size)
        self._sleep = sleep
        self._api_origin = origin(self.api_url)
        self._client = bounded_client(
            user_agent="numbers-bot (webex)",
            base_url=self.api_url + "/",
            auth=WebexAuth(access_token),
            transport=transport,
            timeout=timeout,
        )

    def __repr__(self) -> str:  # never the token
        return f"WebexProvider(api_url={self.api_url!r}, org_id={self.org_id!r}, location_id={self.location_id!r})"

    async def aclose(self) -> None:
        await self._client.aclose()


    # --- people ------------------------------------------------------------------------

    async def _find_person(self, email: str) -> dict[str, Any] | None:
        params: dict[str, Any] = {"email": email, "callingData": "true"}
        if self.org_id:
            params["orgId"] = self.org_id
        response = await self._call(
            "GET", "/people", params=params, doing="looking up the person", scope=SCOPE_PEOPLE_READ
        )
        items = self._json(response, "looking up the person").get("items") or []
        return items[0] if items else None

    async def _get_person(self, person_id: str) -> dict[str, Any]:
        response = await self._call(
            "GET",
            f"/people/{urllib.parse.quote(person_id, safe='')}",
            params={"callingData": "true"},
            doing="reading the person",
            scope=SCOPE_PEOPLE_READ,
        )
        return self._json(response, "reading the person")

    async def _put_person(self, person: dict[str, Any], body: dict[str, Any], *, doing: str) -> httpx.Response:
        return await self._call(
            "PUT",
            f"/people/{urllib.parse.quote(person['id'], safe='')}",
            params={"callingData": "true"},
            json_body=body,
            doing=doing,
            scope=SCOPE_PEOPLE_WRITE,
            changes=True,
        )

    # --- HTTP ------------------------------------------------------------------------------

    async def _list_all(
        self, path: str, params: dict[str, Any], *, items_key: str, doing: str, scope: str
    ) -> list[dict[str, Any]]:
        """All items of a paged listing: follow ``Link: rel="next"``, else ``start`` while pages come back full."""
        items: list[dict[str, Any]] = []
        url: str = path
        page_params: dict[str, Any] | None = dict(params)
        start = 0
        for _page in range(MAX_PAGES):
            response = await self._call("GET", url, params=page_params, doing=doing, scope=scope)
            page = self._json(response, doing).get(items_key) or []
            items.extend(page)
            next_url = self._next_link(response)
            if next_url:
                url, page_params = next_url, None  # the link already carries the whole query
                continue
            if page and len(page) >= int(params.get("max", self.page_size)):
                start += len(page)
                url, page_params = path, {**params, "start": start}
                continue
            return items
        log.warning("webex: %s stopped after %d pages (%d items)", doing, MAX_PAGES, len(items))
        return items

    def _next_link(self, response: httpx.Response) -> str | None:
        url = (response.links.get("next") or {}).get("url")
        if not url:
            return None
        absolute = str(httpx.URL(str(response.request.url)).join(url))
        if origin(absolute) != self._api_origin:
            # Following it would send the bearer token to another host.
            log.warning("webex: ignoring a next-page link to another host")
            return None
        return absolute

    async def _call(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        doing: str,
        scope: str,
        changes: bool = False,
    ) -> httpx.Response:
        """Send one request; wait out throttling; retry other transient faults only when it ``changes`` nothing.

        ``changes=True`` (the PUT): a timeout, a dropped connection or a 5xx after
        sending raise ``OutcomeUnknown``, because Webex may have applied it.
        """
        request = self._client.build_request(
            method,
            url,
            params=params,
            json=json_body,
            headers={"TrackingID": f"{TRACKING_PREFIX}_{uuid.uuid4()}"},
        )
        what = f"{method} {request.url.path}"
        for attempt in range(1, self.max_attempts + 1):
            last = attempt == self.max_attempts
            try:
                response = await self._client.send(request)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                # Nothing reached Webex, so even a change is safe to try again.
                if last:
                    raise ProviderUnavailable(
                        self.name, f"{what} could not reach Webex after {attempt} attempts ({doing})"
                    ) from exc
                await self._sleep(self._backoff(attempt))
                continue
            except httpx.TransportError as exc:
                lost = lost_how(exc)
                if changes:
                    raise OutcomeUnknown(
                        self.name,
                        f"{what} {lost} while {doing}; Webex may or may not have applied it",
                    ) from exc
                if last:
                    raise ProviderUnavailable(self.name, f"{what} {lost} {attempt} times ({doing})") from exc
                await self._sleep(self._backoff(attempt))
                continue
            status = response.status_code
            if status < 400:
                return response
            await response.aread()
            if status in THROTTLE_STATUSES and not last:
                await self._sleep(self._throttle_wait(response))
                continue
            if status >= 500 and not changes and not last:
                await self._sleep(self._backoff(attempt))
                continue
            raise self._error(response, doing=doing, scope=scope, changes=changes, attempts=attempt)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _throttle_wait(self, response: httpx.Response) -> float:
        wait = parse_retry_after(response.headers.get("retry-after"))
        return min(DEFAULT_THROTTLE_WAIT if wait is None else wait, self.max_wait)

    def _backoff(self, attempt: int) -> float:
        return min(0.5 * 2 ** (attempt - 1), self.max_wait)

    def _error(
        self, response: httpx.Response, *, doing: str, scope: str, changes: bool, attempts: int
    ) -> ProviderError:
        status = response.status_code
        words, code, tracking_id = error_details(response)
        meaning = STATUS_MEANINGS.get(status, f"Webex answered HTTP {status}").format(scope=scope)
        if status in THROTTLE_STATUSES:
            meaning += f" after {attempts} attempts"
        text = f"{meaning} while {doing}"
        if words:
            text += f": {words}"
        if status >= 500 and changes:
            text += "; Webex may or may not have applied the change"
        if tracking_id:
            text += f" (tracking id {tracking_id})"
        text = text.replace(self._token, "[redacted]")
        # Throttled (423 too) and 5xx: try later; a change answered 5xx may have been applied.
        cls = OutcomeUnknown if status >= 500 and changes else status_class(429 if status in THROTTLE_STATUSES else status)
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        return cls(self.name, text, status=status, code=code, retry_after=retry_after)

    def _json(self, response: httpx.Response, doing: str) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError:
            raise ProviderUnavailable(
                self.name, f"Webex answered {doing} with a body that is not JSON", status=response.status_code
            ) from None
        if not isinstance(data, dict):
            raise ProviderUnavailable(self.name, f"Webex answered {doing} with an unexpected body")
        return data
