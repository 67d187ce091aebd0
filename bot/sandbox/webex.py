"""A simulated Webex Calling service: available numbers, locations and people.

It speaks the Webex REST protocol as the real service does (README, "Providers", Webex Calling):
bearer tokens, the ``{message, errors[{description, errorCode?}], trackingId}``
error shape echoing the caller's ``TrackingID``, ``Link: <…>; rel="next"``
paging with absolute URLs, ``429`` + ``Retry-After`` throttling, and a person
``PUT`` with full-replace semantics (a field left out is cleared;
``displayName`` is required; ``loginEnabled`` and a calling user's
``locationId`` are kept when left out, and changing a calling user's
``locationId`` is refused as Webex documents). The organisation owns numbers in two locations,
San Jose (enough for several pages) and London. A number is available while no
person has it; that is derived from the people, which live in ``app.state``
(the only mutable state), so CLI processes sharing a state file agree.

Knobs: ``throttle_every=N`` answers every N-th API request with ``429``;
``page_size_cap`` makes the service return fewer items than ``max`` asks for;
``app.faults`` injects anything else; ``app.assign_elsewhere(number)`` gives a
number to someone else, as another admin might meanwhile.
"""

from __future__ import annotations

import urllib.parse
import uuid
from typing import Any

from bot.sandbox.common import Clock, Request, Response, SandboxApp, SandboxState
from bot.sandbox.webex_org import (
    CALLING_FIELDS,
    INVENTORY,
    INVENTORY_BY_DIGITS,
    KEPT_WHEN_OMITTED,
    LICENSE_CALLING,
    LOCATIONS,
    LOCATIONS_BY_ID,
    LOCATION_LOCKED,
    META,
    PEOPLE,
    READ_ONLY_FIELDS,
    SANDBOX_WEBEX_ORG_ID,
    WRITABLE_FIELDS,
    number_digits,
    new_person,
    seed_people,
    webex_id,
)

__all__ = ["SANDBOX_WEBEX_API_URL", "SANDBOX_WEBEX_TOKEN", "WebexSandbox", "create_webex_sandbox"]

SANDBOX_WEBEX_TOKEN = "sandbox-webex-admin-token"
SANDBOX_WEBEX_API_URL = "https://webex.sandbox.invalid/v1"


class WebexSandbox(SandboxApp):
    name = "webex"

    def __init__(
        self,
        state: SandboxState | None = None,
        clock: Clock | None = None,
        *,
        access_token: str = SANDBOX_WEBEX_TOKEN,
        throttle_every: int = 0,
        page_size_cap: int | None = None,
    ):
        super().__init__(state, clock)
        self.access_token = access_token
        self.throttle_every = throttle_every
        self.page_size_cap = page_size_cap
        if not self.state.has(PEOPLE):
            for person in seed_people():
                self.state.put(PEOPLE, person["id"], person)
        api = [
            ("GET", r"/v1/telephony/config/people/primary/availableNumbers", self._available_numbers),
            ("GET", r"/v1/locations", self._locations),
            ("GET", r"/v1/people", self._list_people),
            ("GET", r"/v1/people/me", self._me),
            ("GET", r"/v1/people/(?P<person_id>[^/]+)", self._get_person),
            ("PUT", r"/v1/people/(?P<person_id>[^/]+)", self._put_person),
        ]
        for method, pattern, handler in api:
            self.route(method, pattern)(self._guarded(handler))

    # --- helpers for tests and the CLI ----------------------------------------------------

    def assign_elsewhere(self, number: str) -> str:
        """Give ``number`` to a new person, as another admin might meanwhile; returns that person's id."""
        item = INVENTORY_BY_DIGITS.get(number_digits(number))
        if item is None:
            raise ValueError(f"{number} is not in the sandbox inventory")
        if self._holder(number) is not None:
            raise ValueError(f"{number} is already assigned")
        n = len(self.state.items(PEOPLE)) + 1
        person = new_person(
            f"elsewhere-{n}",
            f"someone.else.{n}@example.com",
            "Someone",
            f"Else {n}",
            locationId=item["locationId"],
            extension=str(5000 + n),
            licenses=[LICENSE_CALLING],
            phoneNumbers=[{"type": "work", "value": item["phoneNumber"]}],
        )
        self.state.put(PEOPLE, person["id"], person)
        return person["id"]

    def person_by_email(self, email: str) -> dict[str, Any] | None:
        for _key, person in self.state.items(PEOPLE):
            if email.casefold() in (e.casefold() for e in person.get("emails") or []):
                return person
        return None

    # --- protocol plumbing ----------------------------------------------------------------

    def _error(
        self,
        request: Request,
        status: int,
        description: str,
        *,
        code: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        tracking_id = request.headers.get("trackingid") or f"ROUTER_{uuid.uuid4()}"
        error: dict[str, Any] = {"description": description}
        if code is not None:
            error["errorCode"] = code
        body = {"message": description, "errors": [error], "trackingId": tracking_id}
        return Response.json(body, status, {"trackingid": tracking_id, **(headers or {})})

    def not_found(self, request: Request) -> Response:
        return self._error(request, 404, f"The requested resource could not be found: {request.path}")

    def method_not_allowed(self, request: Request) -> Response:
        return self._error(request, 405, f"Method {request.method} is not supported on {request.path}")

    def _guarded(self, handler):
        async def guarded(request: Request) -> Response:
            if request.headers.get("authorization") != f"Bearer {self.access_token}":
                return self._error(
                    request,
                    401,
                    "The request requires a valid access token set in the Authorization request header.",
                )
            if self.throttle_every > 0:
                seen = int(self.state.get(META, "requests", 0)) + 1
                self.state.put(META, "requests", seen)
                if seen % self.throttle_every == 0:
                    return self._error(
                        request,
                        429,
                        "Too many requests have been sent; try again later.",
                        headers={"retry-after": "1"},
                    )
            org_id = request.query.get("orgId")
            if org_id and org_id != SANDBOX_WEBEX_ORG_ID:
                return self._error(request, 404, f"Organization {org_id} was not found.")
            response = await handler(request)
            response.headers.setdefault(
                "trackingid", request.headers.get("trackingid") or f"ROUTER_{uuid.uuid4()}"
            )
            return response

        return guarded

    def _page(self, request: Request, items: list[Any], key: str) -> Response:
        """One page of ``items`` per ``start``/``max``, with an absolute ``Link`` to the next one."""
        try:
            limit = int(request.query.get("max", "2000"))
            start = int(request.query.get("start", "0"))
        except ValueError:
            return self._error(request, 400, "max and start must be whole numbers.")
        if limit < 1 or start < 0:
            return self._error(request, 400, "max must be at least 1 and start at least 0.")
        if self.page_size_cap:
            limit = min(limit, self.page_size_cap)
        page = items[start : start + limit]
        headers: dict[str, str] = {}
        if start + limit < len(items):
            query = {**request.query, "start": str(start + limit), "max": str(limit)}
            url = f"{request.scheme}://{request.host}{request.path}?{urllib.parse.urlencode(query)}"
            headers["link"] = f'<{url}>; rel="next"'
        return Response.json({key: page}, 200, headers)

    def _people(self) -> list[dict[str, Any]]:
        return [person for _key, person in self.state.items(PEOPLE)]

    def _holder(self, number: str, people: list[dict[str, Any]] | None = None) -> dict[str, Any] | None:
        digits = number_digits(number)
        for person in people if people is not None else self._people():
            if any(number_digits(e.get("value")) == digits for e in person.get("phoneNumbers") or []):
                return person
        return None

    @staticmethod
    def _view(person: dict[str, Any], calling: bool) -> dict[str, Any]:
        # Without callingData=true Webex leaves out the calling fields.
        return {k: v for k, v in person.items() if calling or k not in ("extension", "locationId")}

    # --- routes -----------------------------------------------------------------------------

    async def _available_numbers(self, request: Request) -> Response:
        location_id = request.query.get("locationId")
        if location_id and len(location_id) > 36:
            return self._error(request, 400, "locationId: the maximum length is 36.", code=25008)
        if location_id and location_id not in LOCATIONS_BY_ID:
            return self._error(request, 404, f"Location {location_id} was not found.", code=4008)
        wanted = {number_digits(n) for n in request.query.get("phoneNumber", "").split(",") if number_digits(n)}
        taken = {number_digits(e.get("value")) for p in self._people() for e in p.get("phoneNumbers") or []}
        items = []
        for item in INVENTORY:
            digits = number_digits(item["phoneNumber"])
            if digits in taken or (location_id and item["locationId"] != location_id):
                continue
            if wanted and digits not in wanted:
                continue
            shown = {k: v for k, v in item.items() if k != "locationId"}
            location = LOCATIONS_BY_ID[item["locationId"]]
            shown["location"] = {"id": location["id"], "name": location["name"]}
            items.append(shown)
        return self._page(request, items, "phoneNumbers")

    async def _locations(self, request: Request) -> Response:
        return self._page(request, LOCATIONS, "items")

    async def _list_people(self, request: Request) -> Response:
        calling = request.query.get("callingData") == "true"
        email = request.query.get("email")
        ids = {i for i in request.query.get("id", "").split(",") if i}
        people = self._people()
        if email:
            people = [p for p in people if email.casefold() in (e.casefold() for e in p.get("emails") or [])]
        if ids:
            people = [p for p in people if p["id"] in ids]
        return Response.json({"items": [self._view(p, calling) for p in people], "notFoundIds": None})

    async def _me(self, request: Request) -> Response:
        admin = self.state.get(PEOPLE, webex_id("PEOPLE", "admin"))
        return Response.json(self._view(admin, request.query.get("callingData") == "true"))

    async def _get_person(self, request: Request) -> Response:
        person = self.state.get(PEOPLE, request.params["person_id"])
        if person is None:
            return self._error(request, 404, "Person not found.", code=4008)
        return Response.json(self._view(person, request.query.get("callingData") == "true"))

    async def _put_person(self, request: Request) -> Response:
        stored = self.state.get(PEOPLE, request.params["person_id"])
        if stored is None:
            return self._error(request, 404, "Person not found.", code=4008)
        if "json" not in request.headers.get("content-type", ""):
            return self._error(request, 415, "Content type must be application/json.")
        try:
            body = request.json()
        except ValueError:
            return self._error(request, 400, "The request body is not valid JSON.")
        if not isinstance(body, dict):
            return self._error(request, 400, "The request body must be a person object.")
        if not str(body.get("displayName") or "").strip():
            return self._error(request, 400, "displayName: may not be empty.", code=7101)
        calling = request.query.get("callingData") == "true"

        if calling and stored.get("locationId") and body.get("locationId") not in (None, stored["locationId"]):
            return self._error(request, 400, LOCATION_LOCKED)
        updated = {k: stored[k] for k in READ_ONLY_FIELDS if k in stored}
        for field in WRITABLE_FIELDS:
            if not calling and field in CALLING_FIELDS:
                if field in stored:  # without callingData=true Webex ignores the calling fields
                    updated[field] = stored[field]
            elif field in body:
                updated[field] = body[field]  # full replace: what the body leaves out is cleared
            elif field in KEPT_WHEN_OMITTED and field in stored:
                updated[field] = stored[field]

        entries = updated.get("phoneNumbers") or []
        if not isinstance(entries, list) or not all(isinstance(e, dict) and e.get("value") for e in entries):
            return self._error(request, 400, "phoneNumbers must be a list of {type, value}.")
        refusal = self._work_number_refusal(request, stored, updated, entries)
        if refusal is not None:
            return refusal
        updated["lastModified"] = self.clock.now().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        self.state.put(PEOPLE, stored["id"], updated)
        return Response.json(self._view(updated, calling))

    def _work_number_refusal(
        self, request: Request, stored: dict[str, Any], updated: dict[str, Any], entries: list[dict[str, Any]]
    ) -> Response | None:
        """Why Webex would refuse the work number a PUT gives the person, or None."""
        others = [p for p in self._people() if p["id"] != stored["id"]]
        for entry in entries:
            if entry.get("type") != "work":
                continue
            item = INVENTORY_BY_DIGITS.get(number_digits(entry["value"]))
            if item is None:
                return self._error(
                    request,
                    400,
                    f"Phone number {entry['value']} does not belong to the organization.",
                    code=9553,
                )
            if self._holder(entry["value"], others) is not None:
                return self._error(
                    request,
                    409,
                    f"Phone number {entry['value']} is already assigned to another user or workspace.",
                    code=9551,
                )
            if not updated.get("locationId"):
                return self._error(
                    request,
                    400,
                    "The person has no Webex Calling location; a number cannot be assigned.",
                    code=9560,
                )
            if item["locationId"] != updated["locationId"]:
                location = LOCATIONS_BY_ID[item["locationId"]]["name"]
                return self._error(
                    request,
                    400,
                    f"Phone number {entry['value']} belongs to location {location}, not the person's location.",
                    code=9552,
                )
        return None


def create_webex_sandbox(
    state: SandboxState | None = None,
    clock: Clock | None = None,
    *,
    access_token: str = SANDBOX_WEBEX_TOKEN,
    throttle_every: int = 0,
    page_size_cap: int | None = None,
) -> WebexSandbox:
    return WebexSandbox(
        state, clock, access_token=access_token, throttle_every=throttle_every, page_size_cap=page_size_cap
    )

