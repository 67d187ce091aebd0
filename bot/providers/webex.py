"""Webex Calling: numbers the organisation already owns, assigned as a person's primary number.

Webex does not sell numbers; it lists the ones the organisation owns that can
become a person's primary ("work") number, and assigning one is an update of
the person. So:

* ``search`` lists ``GET /telephony/config/people/primary/availableNumbers``
  (all pages, following the ``Link: rel="next"`` header) as zero-cost offers;
* ``prepare`` finds the requester's Webex person by e-mail before any approval
  is asked, so a request that cannot work is refused at once;
* ``submit`` re-reads the person, checks the number is still free and ``PUT``\\ s
  the whole person back with the new work number (Webex's PUT replaces the
  whole person: a field left out is cleared);
* ``recover`` reads the person: the PUT is a full replace with the same
  content, so when the number is not there yet submitting again is safe.

Webex's location rule: a person's ``locationId`` "cannot be changed if a user
is already an existing calling user", and a primary number must come from the
person's location. So once the requester's person is known (``search`` with
``query.requester_email``, and always in ``prepare``) only numbers of that
location are offered or accepted, and the PUT keeps the person's
``locationId``. The PUT sends only the fields a caller may write: the
read-only ones (``READ_ONLY_PERSON_FIELDS``, as wxc_sdk leaves them out since
1.3.0) are dropped, everything else the person has is sent back unchanged.

Throttling follows Webex's contract: ``429`` and ``423`` are waited out per
``Retry-After`` (seconds or an HTTP date; 5 s when absent; at most ``max_wait``).
A throttled request was refused before Webex acted on it, so even the PUT may
be sent again after the wait. Other retries are for reads only.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
import uuid
from decimal import Decimal
from typing import Any, Mapping

import httpx

from bot.domain.errors import (
    NotAllowed,
    NotFound,
    OutcomeUnknown,
    ProviderAuthError,
    ProviderError,
    ProviderUnavailable,
)
from bot.providers.base import (
    BoundedClient,
    Done,
    Failed,
    Job,
    OfferDraft,
    Requester,
    SearchQuery,
    Sleep,
    Step,
    parse_retry_after,
)

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://webexapis.com/v1"
AVAILABLE_NUMBERS_PATH = "/telephony/config/people/primary/availableNumbers"
TRACKING_PREFIX = "NUMBERSBOT"
# Webex's documented default when a 429/423 carries no Retry-After.
DEFAULT_THROTTLE_WAIT = 5.0
# A listing longer than this many pages is cut short rather than followed forever.
MAX_PAGES = 50

SCOPE_NUMBERS_READ = "spark-admin:telephony_config_read"
SCOPE_LOCATIONS_READ = "spark-admin:locations_read"
SCOPE_PEOPLE_READ = "spark-admin:people_read"
SCOPE_PEOPLE_WRITE = "spark-admin:people_write"

# What each refusal means, in words a Slack user can act on. 423 and 429 are
# waited out first; these texts apply once the bot gives up.
STATUS_MEANINGS: dict[int, str] = {
    400: "Webex refused the request as invalid",
    401: "the Webex access token is missing, wrong or expired (set WEBEX_ACCESS_TOKEN to a valid admin token)",
    403: "the Webex token is not allowed to do this: it needs an administrator token with scope {scope}",
    404: "Webex has no such resource (a person, location or number that does not exist in this organisation)",
    405: "Webex does not allow this HTTP method on this resource",
    409: "Webex refused it as a conflict with the current state (for example, the number is taken)",
    410: "the resource is gone from Webex",
    415: "Webex did not accept the request's media type",
    423: "the resource stayed locked at Webex",
    428: "Webex requires a precondition the bot cannot meet (428 Precondition Required)",
    429: "Webex kept rate-limiting the bot (429 Too Many Requests)",
    500: "Webex had an internal error; if it persists, contact Webex developer support",
    502: "Webex's gateway got an invalid answer from an upstream server; try again later",
    503: "Webex is overloaded; try again later",
    504: "an upstream Webex server did not answer in time; a smaller page size (max) may help",
}
THROTTLE_STATUSES = (423, 429)
# What a person PUT must not send (Webex sets them; wxc_sdk's Person.create_update leaves them out).
READ_ONLY_PERSON_FIELDS = frozenset(
    ("id", "created", "lastModified", "status", "type", "sipAddresses", "invitePending", "loginEnabled",
     "timezone", "lastActivity")
)


class WebexProvider:
    """Webex Calling adapter. ``transport``/``sleep`` are the test seams."""

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
        self._api_origin = _origin(self.api_url)
        self._client = BoundedClient(
            base_url=self.api_url + "/",
            transport=transport,
            timeout=timeout,
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
        )

    def __repr__(self) -> str:  # never the token
        return f"WebexProvider(api_url={self.api_url!r}, org_id={self.org_id!r}, location_id={self.location_id!r})"

    # --- search ---------------------------------------------------------------

    async def search(self, query: SearchQuery) -> list[OfferDraft]:
        """Numbers that can become the caller's primary number: those of the caller's own location once
        their Webex person is known (``query.requester_email``), else of ``query.location`` or the configured one."""
        location: dict[str, Any] | None = None
        if query.location:
            location = await self.find_location(query.location)
        location_id = location["id"] if location else self.location_id
        own = await self._requester_location(query.requester_email)
        if own is not None:
            if location is not None and location["id"] != own:
                try:
                    yours = (await self.find_location(own)).get("name") or own
                except NotFound:
                    yours = own
                raise NotAllowed(
                    f"Your Webex Calling location is {yours}, not {location.get('name') or location['id']}, and Webex "
                    "cannot move a calling user to another location: only numbers of your own location can become "
                    "your primary number. Search without a location to see them."
                )
            location_id = own
        items = await self.available_numbers(location_id=location_id)
        offers: list[OfferDraft] = []
        seen: set[str] = set()
        for item in items:
            number = item.get("phoneNumber")
            if not number or number in seen or item.get("owner"):
                continue
            seen.add(number)
            offers.append(_offer(item, location_id=location_id, location_name=(location or {}).get("name")))
        # Inactive numbers can still be assigned, but an active one is what people expect first.
        offers.sort(key=lambda o: str(o.details.get("state") or "").upper() == "INACTIVE")
        return offers

    async def available_numbers(
        self,
        location_id: str | None = None,
        phone_numbers: list[str] | None = None,
        license_type: str | None = None,
    ) -> list[dict[str, Any]]:
        """Every ``phoneNumbers[]`` item of the available-numbers listing, all pages, as Webex gave them."""
        params: dict[str, Any] = {"max": self.page_size}
        if self.org_id:
            params["orgId"] = self.org_id
        location_id = location_id or self.location_id
        if location_id:
            params["locationId"] = location_id
        if phone_numbers:
            params["phoneNumber"] = ",".join(phone_numbers)
        if license_type:
            params["licenseType"] = license_type
        return await self._list_all(
            AVAILABLE_NUMBERS_PATH,
            params,
            items_key="phoneNumbers",
            doing="listing available numbers",
            scope=SCOPE_NUMBERS_READ,
        )

    async def _requester_location(self, email: str | None) -> str | None:
        """The location of the requester's calling person, or None when unknown (no e-mail, no person, no calling)."""
        if not email:
            return None
        person = await self._find_person(email)
        location_id = (person or {}).get("locationId")
        return location_id if isinstance(location_id, str) and location_id else None

    async def find_location(self, wanted: str) -> dict[str, Any]:
        """The location whose id is ``wanted`` or whose name is ``wanted`` (any case)."""
        params: dict[str, Any] = {"max": self.page_size}
        if self.org_id:
            params["orgId"] = self.org_id
        locations = await self._list_all(
            "/locations", params, items_key="items", doing="listing locations", scope=SCOPE_LOCATIONS_READ
        )
        wanted_clean = wanted.strip()
        for loc in locations:
            if loc.get("id") == wanted_clean:
                return loc
        for loc in locations:
            if str(loc.get("name") or "").casefold() == wanted_clean.casefold():
                return loc
        names = ", ".join(sorted(str(loc.get("name")) for loc in locations if loc.get("name"))[:20])
        raise NotFound(
            f"No Webex location is called or has the id '{wanted_clean}'."
            + (f" Known locations: {names}." if names else " The organisation has no locations.")
        )

    # --- request flow ---------------------------------------------------------------

    async def prepare(self, offer: OfferDraft, quantity: int, requester: Requester) -> dict[str, Any]:
        """Find the requester's Webex person; refuse now if the assignment could not work."""
        if quantity != 1:
            raise NotAllowed("A Webex number is assigned to one person at a time: the quantity must be 1.")
        if not requester.email:
            raise NotAllowed(
                "A Webex number is assigned to your Webex account, which is found by e-mail, but your Slack "
                "profile has no e-mail address. Add one to your Slack profile (or ask an admin) and try again."
            )
        person = await self._find_person(requester.email)
        if person is None:
            raise NotFound(
                f"No Webex person has the e-mail {requester.email}; ask an admin to add you to Webex Calling "
                "before requesting a number."
            )
        if not person.get("locationId"):
            raise NotAllowed(
                f"The Webex person {requester.email} has no Webex Calling (no calling licence or location), so "
                "no number can be assigned to it; ask an admin to enable Webex Calling for you first."
            )
        offered_location = (offer.ref or {}).get("location_id")
        if offered_location and offered_location != person["locationId"]:
            where = offer.details.get("location_name") or offered_location
            raise NotAllowed(
                f"{offer.numbers[0] if offer.numbers else 'This number'} belongs to the Webex location {where}, "
                f"but {requester.email} is a calling user of another location, and Webex cannot move a calling "
                "user to another location. Search again (`assign`) to see the numbers of your own location."
            )
        return {
            "person_id": person["id"],
            "email": requester.email,
            "replaces": _work_number(person),
        }

    async def submit(self, job: Job) -> Step:
        number, location_id, person_id = _job_target(job)
        person = await self._get_person(person_id)
        if _same_number(_work_number(person), number):
            return Done([number], note=f"{number} was already the person's work number")
        still_free = [
            item
            for item in await self.available_numbers(location_id=location_id, phone_numbers=[number])
            if _same_number(item.get("phoneNumber"), number) and not item.get("owner")
        ]
        if not still_free:
            return Failed(f"{number} is no longer available: it was assigned elsewhere meanwhile")
        number_location = (still_free[0].get("location") or {}).get("id") or location_id
        person_location = person.get("locationId")
        if person_location and number_location and number_location != person_location:
            return Failed(
                f"{number} belongs to another Webex location than the person's, and Webex cannot move a calling "
                "user to another location; nothing was changed"
            )
        location_id = person_location or number_location
        response = await self._put_person(
            person, _with_work_number(person, number, location_id), doing="assigning the number"
        )
        try:
            self._json(response, "assigning the number")
        except ProviderUnavailable:
            # Webex answers the PUT with the person as now stored; anything else (a proxy's page, a cut-off
            # body) does not show that the number was assigned. Ask (recover reads the person) instead of
            # reporting a number the person may not have.
            raise OutcomeUnknown(
                self.name, f"Webex answered the assignment of {number} with an unreadable body; checking whether it took"
            ) from None
        return Done([number])

    async def poll(self, job: Job, ref: dict[str, Any]) -> Step:
        raise ProviderError(
            self.name, "a Webex assignment completes within its one request; there is nothing to poll"
        )

    async def recover(self, job: Job) -> Step | None:
        number, _location_id, person_id = _job_target(job)
        person = await self._get_person(person_id)
        if _same_number(_work_number(person), number):
            return Done([number])
        # Not there: the PUT is a full replace with the same content, so sending it again cannot assign twice.
        return None

    async def release(self, number: str, ref: Mapping[str, Any]) -> Step:
        """Take ``number`` off the person ``ref["person_id"]`` (the number goes back to the organisation's
        available numbers)."""
        person_id = ref.get("person_id")
        if not isinstance(person_id, str) or not person_id:
            raise ProviderError("webex", f"the release of {number} names no Webex person to take it off")
        person = await self._get_person(person_id)
        entries = person.get("phoneNumbers") or []
        kept = [e for e in entries if not _same_number(e.get("value"), number)]
        if len(kept) == len(entries):
            return Done([number], note=f"{person.get('displayName') or person_id} no longer had {number}")
        body = writable_person(person)
        body["phoneNumbers"] = kept
        await self._put_person(person, body, doing="removing the number")
        return Done([number])

    async def check(self) -> str:
        response = await self._call(
            "GET", "/people/me", doing="reading the token's own person", scope=SCOPE_PEOPLE_READ
        )
        me = self._json(response, "reading the token's own person")
        who = me.get("displayName") or ", ".join(me.get("emails") or []) or me.get("id") or "unnamed"
        return f"token ok ({who})"

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
        if _origin(absolute) != self._api_origin:
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
                lost = "timed out" if isinstance(exc, httpx.TimeoutException) else "lost its connection"
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
        words, code, tracking_id = _error_details(response)
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
        if status in (401, 403):
            cls: type[ProviderError] = ProviderAuthError
        elif status >= 500 and changes:
            cls = OutcomeUnknown
        elif status >= 500 or status in THROTTLE_STATUSES:
            cls = ProviderUnavailable
        else:
            cls = ProviderError
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


# --- helpers -------------------------------------------------------------------------------


def _origin(url: str) -> tuple[str, str, int | None]:
    parsed = httpx.URL(url)
    return parsed.scheme, parsed.host, parsed.port


def _error_details(response: httpx.Response) -> tuple[str, str | None, str | None]:
    """The provider's own words, its error code and the tracking id from ``{message, errors[], trackingId}``."""
    tracking_id = response.headers.get("trackingid") or response.request.headers.get("trackingid")
    try:
        data = response.json()
    except ValueError:
        text = response.text.strip()
        return (text[:300] if text and not text.lstrip().startswith("<") else ""), None, tracking_id
    if not isinstance(data, dict):
        return "", None, tracking_id
    descriptions: list[str] = []
    code: str | None = None
    for err in data.get("errors") or []:
        if isinstance(err, dict):
            if err.get("description") and err["description"] not in descriptions:
                descriptions.append(str(err["description"]))
            if code is None and err.get("errorCode") is not None:
                code = str(err["errorCode"])
    words = "; ".join(descriptions) or str(data.get("message") or data.get("error") or "")
    return words, code, data.get("trackingId") or tracking_id


def _telephony_type(item: dict[str, Any]) -> str | None:
    # The API page's own sample names it includedTelephonyTypes (sometimes a list); the spec says telephonyType.
    value = item.get("telephonyType") or item.get("includedTelephonyTypes")
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or None
    return value


def _offer(item: dict[str, Any], *, location_id: str | None, location_name: str | None) -> OfferDraft:
    number = item["phoneNumber"]
    location = item.get("location") or {}
    return OfferDraft(
        provider="webex",
        kind="assign",
        numbers=[number],
        unit_monthly_cost=Decimal("0"),  # the organisation already owns it
        currency="USD",
        quantity=1,
        max_quantity=1,
        voice=True,
        sms=False,
        ref={"number": number, "location_id": location.get("id") or location_id},
        details={
            "state": item.get("state"),
            "is_main_number": bool(item.get("isMainNumber")),
            "telephony_type": _telephony_type(item),
            "mobile_network": item.get("mobileNetwork"),
            "routing_profile": item.get("routingProfile"),
            "is_service_number": bool(item.get("isServiceNumber")),
            "toll_free": bool(item.get("tollFreeNumber")),
            "location_name": location.get("name") or location_name,
            "extension": item.get("extension"),
        },
    )


def _job_target(job: Job) -> tuple[str, str | None, str]:
    number = job.ref.get("number") or (job.numbers[0] if job.numbers else None)
    person_id = job.ref.get("person_id")
    if not number or not person_id:
        raise ProviderError("webex", "the request lacks the number or the Webex person to assign it to")
    return number, job.ref.get("location_id"), person_id


def _digits(number: Any) -> str:
    return "".join(ch for ch in str(number or "") if ch.isdigit())


def _same_number(a: Any, b: Any) -> bool:
    return bool(_digits(a)) and _digits(a) == _digits(b)


def _work_number(person: dict[str, Any]) -> str | None:
    for entry in person.get("phoneNumbers") or []:
        if entry.get("type") == "work":
            return entry.get("value")
    return None


def writable_person(person: dict[str, Any]) -> dict[str, Any]:
    """The person as read, less the fields a PUT must not send."""
    return {k: v for k, v in person.items() if k not in READ_ONLY_PERSON_FIELDS}


def _with_work_number(person: dict[str, Any], number: str, location_id: str | None) -> dict[str, Any]:
    """The writable person as read, with ``number`` as its work number (other entries kept in place).
    ``locationId`` is only ever set for a person who has none: a calling user's cannot change."""
    body = writable_person(person)
    entries = [dict(e) for e in person.get("phoneNumbers") or []]
    work = {"type": "work", "value": number}
    for i, entry in enumerate(entries):
        if entry.get("type") == "work":
            entries[i] = work
            break
    else:
        entries.append(work)
    body["phoneNumbers"] = entries
    if location_id and not person.get("locationId"):
        body["locationId"] = location_id
    return body
