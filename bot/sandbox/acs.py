"""A simulated ACS Phone Numbers service that behaves like the recorded traffic.

What it does, as the real service did in the recordings (the recorded traffic):

* Verifies the HMAC-SHA256 signature of every request (401 with a
  CommunicationErrorResponse otherwise) and rejects an ``x-ms-date`` more than
  15 minutes away from its time.
* ``POST /availablePhoneNumbers/countries/{CC}/:search`` answers ``202`` with an
  empty body and relative ``Operation-Location`` / ``Location`` headers that
  carry ``?api-version``; the numbers found are held for ``hold_seconds``
  (960 s by default: the recordings show ~16 minutes, the docs say under 15).
* Operations progress one step per GET: a search goes ``notStarted, running,
  succeeded``; a purchase goes ``running, running, notStarted, notStarted, …,
  succeeded`` (not monotonic). Values are capitalised as in the 2021 traffic
  (``"Succeeded"``, ``"TollFree"``) unless ``app.set_value_case("camel")``.
* Holds expire: purchasing an expired search is a 400, reading its results a
  404. A search can be purchased once (a second attempt is a 409). Held and
  purchased numbers are not offered to other searches.
* When a pool is empty the search operation ends ``failed`` with code
  ``NoAvailableNumbers``; when it holds fewer numbers than asked, the result
  has fewer numbers (the spec: "can be fewer than the desired quantity").
  Neither the spec nor the recordings show the empty case; this is our choice.
* It accepts the api-versions the live service lists (2021-03-07 to
  2025-06-01, as in the June 2025 recordings' ``api-supported-versions``).
  From 2022-12-01 on, a search result says ``isAgreementToNotResellRequired``
  (true for US and French toll-free, as recorded; false elsewhere) and a
  purchase of such a search without ``agreeToNotResell: true`` is refused with
  the service's ``400 BadRequest``. At 2021-03-07 the agreement cannot be
  expressed, so the sandbox neither reports nor enforces it there (the live
  service's behaviour at that version is not known).
* ``set_release_status(204)`` answers a release ``204`` that still names the
  operation, as a Feb 2021 recording did.

Every bit of mutable state (holds, operations, purchased numbers, knobs)
lives in ``app.state`` so that CLI processes sharing a sandbox file agree.
The inventory itself is a fixed catalogue; only who holds what is state.
"""

from __future__ import annotations

import base64
import re
import uuid
from datetime import timedelta
from typing import Any

import phonenumbers

from bot.sandbox.common import Clock, Request, Response, SandboxState
from bot.sandbox._acs_core import (
    AGREEMENT_API_VERSIONS,
    AGREEMENT_REQUIRED,
    CAPABILITY_VALUES,
    CATALOGUE,
    KNOBS,
    MAX_QUANTITY,
    MONTHLY_COST,
    NOT_RESELL_REFUSAL,
    NUMBERS,
    OPERATIONS,
    SEARCHES,
    AcsCore,
    acs_error,
    acs_timestamp,
    find_enum,
    parse_acs_ts,
    pool_numbers,
)

__all__ = ["SANDBOX_ACS_ACCESS_KEY", "SANDBOX_ACS_ENDPOINT", "AcsSandbox", "create_acs_sandbox", "sandbox_connection_string"]

SANDBOX_ACS_ENDPOINT = "https://acs.sandbox.invalid"
# Public and fixed on purpose: the sandbox is not a secret store.
SANDBOX_ACS_ACCESS_KEY = "Qdunp77fukdc0EKEHtA212rMUAsYrPtjfsy5TMyJpaetSBmcm/bk1Y79qk9tWQ4VDywSPx+Z1ZCjREtKo5ODHw=="


def sandbox_connection_string(endpoint: str = SANDBOX_ACS_ENDPOINT, access_key: str = SANDBOX_ACS_ACCESS_KEY) -> str:
    return f"endpoint={endpoint.rstrip('/')}/;accesskey={access_key}"


class AcsSandbox(AcsCore):
    def __init__(
        self,
        state: SandboxState | None = None,
        clock: Clock | None = None,
        *,
        access_key: str = SANDBOX_ACS_ACCESS_KEY,
        hold_seconds: float = 960,
        search_polls: int = 2,
        purchase_polls: int = 4,
        release_polls: int = 2,
    ):
        super().__init__(state, clock)
        self._key = base64.b64decode(access_key)
        self.hold_seconds = hold_seconds
        self.search_polls = search_polls
        self.purchase_polls = purchase_polls
        self.release_polls = release_polls
        self.route("POST", r"/availablePhoneNumbers/countries/(?P<country>[^/]*)/:search")(self._search)
        self.route("GET", r"/availablePhoneNumbers/searchResults/(?P<search_id>[^/]+)")(self._search_result)
        self.route("POST", r"/availablePhoneNumbers/:purchase")(self._purchase)
        self.route("GET", r"/phoneNumbers/operations/(?P<operation_id>[^/]+)")(self._get_operation)
        self.route("DELETE", r"/phoneNumbers/operations/(?P<operation_id>[^/]+)")(self._cancel_operation)
        self.route("GET", r"/phoneNumbers")(self._list_numbers)
        self.route("GET", r"/phoneNumbers/(?P<number>[^/]+)")(self._get_number)
        self.route("DELETE", r"/phoneNumbers/(?P<number>[^/]+)")(self._release)

    def __repr__(self) -> str:
        return (
            f"AcsSandbox(hold_seconds={self.hold_seconds}, search_polls={self.search_polls}, "
            f"purchase_polls={self.purchase_polls})"
        )

    # --- knobs (kept in state so every process sharing the file sees them) --------


    async def _search(self, request: Request) -> Response:
        asked = self._search_asked(request)
        if isinstance(asked, Response):
            return asked
        pools = self._search_pools(asked)
        if isinstance(pools, Response):
            return pools
        taken = self._taken()
        numbers: list[str] = []
        for pool in pools:
            for number in pool_numbers(asked["country"], pool, CATALOGUE[(asked["country"], asked["number_type"])][pool]):
                if len(numbers) < asked["quantity"] and number not in taken:
                    numbers.append(number)
        version = request.query["api-version"]
        search_id = self._hold(asked, numbers, version)
        # Header names in the mix of letter cases the service used.
        return Response.empty(202, {
            "Operation-Location": f"/phoneNumbers/operations/search_{search_id}?api-version={version}",
            "Location": f"/availablePhoneNumbers/searchResults/{search_id}?api-version={version}",
            "operation-id": f"search_{search_id}",
            "search-id": search_id,
            "Access-Control-Expose-Headers": "Location,Operation-Location,operation-id,search-id",
        })

    @staticmethod
    def _search_asked(request: Request) -> dict[str, Any] | Response:
        """What a search asks for, checked as the service checks it (or its 400)."""
        country = request.params.get("country", "").upper()
        if not re.fullmatch(r"[A-Z]{2}", country) or country not in phonenumbers.SUPPORTED_REGIONS:
            return acs_error(400, "InvalidInput", "Unable to parse country code.", "countrycode")
        if not any(c == country for c, _ in CATALOGUE):
            return acs_error(400, "InvalidInput", f"Phone numbers are not offered in country {country}.", "countrycode")
        try:
            body = request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return acs_error(400, "InvalidInput", "The request body must be a JSON object.", "body")
        number_type = find_enum({"geographic": 1, "tollFree": 1}, body.get("phoneNumberType"))
        if number_type is None:
            return acs_error(400, "InvalidInput", "phoneNumberType must be geographic or tollFree.", "phoneNumberType")
        assignment_type = find_enum({"application": 1, "person": 1}, body.get("assignmentType"))
        if assignment_type is None:
            return acs_error(400, "InvalidInput", "assignmentType must be person or application.", "assignmentType")
        capabilities = body.get("capabilities")
        if not isinstance(capabilities, dict):
            return acs_error(400, "InvalidInput", "capabilities is required.", "capabilities")
        calling = find_enum(dict.fromkeys(CAPABILITY_VALUES), capabilities.get("calling"))
        sms = find_enum(dict.fromkeys(CAPABILITY_VALUES), capabilities.get("sms"))
        if calling is None or sms is None:
            return acs_error(400, "InvalidInput", "capabilities.calling and capabilities.sms must each be one of "
                          + ", ".join(CAPABILITY_VALUES) + ".", "capabilities")
        if calling == "none" and sms == "none":
            return acs_error(
                400, "InvalidInput", "At least one capability (calling or sms) must be requested.", "capabilities"
            )
        quantity = body.get("quantity", 1)
        if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= MAX_QUANTITY:
            return acs_error(400, "InvalidInput", f"Quantity must be between 1 and {MAX_QUANTITY}.", "quantity")
        return {
            "country": country, "number_type": number_type, "assignment_type": assignment_type,
            "calling": calling, "sms": sms, "quantity": quantity, "area_code": body.get("areaCode"),
        }

    @staticmethod
    def _search_pools(asked: dict[str, Any]) -> list[str] | Response:
        """The pools (area codes) a search draws from: the one it names, or all of its country and type."""
        country, number_type = asked["country"], asked["number_type"]
        pools = CATALOGUE.get((country, number_type))
        if not pools:
            return acs_error(
                400, "InvalidInput", f"{number_type} numbers are not offered in {country}.", "phoneNumberType"
            )
        if asked["area_code"] is None:
            return list(pools)
        area_code = asked["area_code"] = str(asked["area_code"])
        if area_code not in pools:
            kind = "toll-free prefix" if number_type == "tollFree" else "area code"
            return acs_error(400, "InvalidInput", f"{area_code} is not a valid {kind} for {number_type} numbers "
                          f"in {country}. Valid: {', '.join(sorted(pools))}.", "areaCode")
        return [area_code]

    def _hold(self, asked: dict[str, Any], numbers: list[str], version: str) -> str:
        """Record the search, hold its numbers, and start its operation; the search id."""
        country, number_type, area_code = asked["country"], asked["number_type"], asked["area_code"]
        now = self._now()
        search_id = str(uuid.uuid4())
        expires = now + timedelta(seconds=self.hold_seconds)
        results_path = f"/availablePhoneNumbers/searchResults/{search_id}?api-version={version}"
        search = {
            "searchId": search_id,
            "country": country,
            "phoneNumbers": numbers,
            "phoneNumberType": number_type,
            "assignmentType": asked["assignment_type"],
            "capabilities": {"calling": asked["calling"], "sms": asked["sms"]},
            "cost": {"amount": MONTHLY_COST[number_type], "currencyCode": "USD", "billingFrequency": "monthly"},
            "searchExpiresBy": acs_timestamp(expires),
            "state": "held" if numbers else "empty",
            "agreement_required": (country, number_type) in AGREEMENT_REQUIRED,
        }
        self.state.put(SEARCHES, search_id, search)
        for number in numbers:
            self.state.put(NUMBERS, number, {"state": "held", "search_id": search_id, "until": acs_timestamp(expires)})
        plan = (["notStarted"] + ["running"] * max(0, self.search_polls - 1))[: self.search_polls]
        if numbers:
            self._new_operation(f"search_{search_id}", "search", search_id, plan, "succeeded",
                                resource_location=results_path, created=now)
        else:
            self._new_operation(f"search_{search_id}", "search", search_id, plan, "failed", created=now, error={
                "code": "NoAvailableNumbers",
                "message": f"No {number_type} numbers are available"
                + (f" in area code {area_code}" if area_code else "") + f" in {country} right now.",
            })
        return search_id

    async def _search_result(self, request: Request) -> Response:
        search_id = request.params["search_id"]
        search = self.state.get(SEARCHES, search_id)
        if search is None:
            return acs_error(404, "NotFound", f"Search {search_id} was not found.")
        if parse_acs_ts(search["searchExpiresBy"]) <= self._now():
            return acs_error(404, "NotFound", f"Search {search_id} has expired; its numbers are no longer held.")
        operation = self.state.get(OPERATIONS, f"search_{search_id}")
        if operation is None or not operation["done"] or operation["outcome"] != "succeeded":
            return acs_error(404, "NotFound", f"Search {search_id} has no results (yet).")
        result = {
            "searchId": search_id,
            "phoneNumbers": search["phoneNumbers"],
            "phoneNumberType": self._case(search["phoneNumberType"]),
            "assignmentType": self._case(search["assignmentType"]),
            "capabilities": search["capabilities"],
            "cost": search["cost"],
            "searchExpiresBy": search["searchExpiresBy"],
        }
        if request.query["api-version"] in AGREEMENT_API_VERSIONS:
            result["isAgreementToNotResellRequired"] = bool(search.get("agreement_required"))
        return Response.json(result)

    # --- purchase -------------------------------------------------------------------------------

    async def _purchase(self, request: Request) -> Response:
        try:
            body = request.json()
        except ValueError:
            body = None
        search_id = body.get("searchId") if isinstance(body, dict) else None
        if not isinstance(search_id, str) or not search_id:
            return acs_error(400, "InvalidInput", "searchId is required.", "searchId")
        search = self.state.get(SEARCHES, search_id)
        if search is None:
            return acs_error(404, "NotFound", f"Search {search_id} was not found.", "searchId")
        operation_id = f"purchase_{search_id}"
        if self.state.get(OPERATIONS, operation_id) is not None:
            return acs_error(409, "Conflict", f"A purchase of search {search_id} was already submitted "
                          f"(operation {operation_id}); a search can be purchased once.", "searchId")
        if parse_acs_ts(search["searchExpiresBy"]) <= self._now():
            return acs_error(400, "SearchExpired", f"Search {search_id} expired at {search['searchExpiresBy']}; "
                          "its numbers are no longer held. Search again.", "searchId")
        search_operation = self.state.get(OPERATIONS, f"search_{search_id}")
        if search_operation is None or search_operation["status"] == "failed" or search["state"] != "held":
            return acs_error(400, "InvalidInput", f"Search {search_id} holds no numbers to purchase.", "searchId")
        if not search_operation["done"]:
            return acs_error(400, "InvalidInput", f"Search {search_id} has not completed yet.", "searchId")
        agreed = body.get("agreeToNotResell", False)
        if not isinstance(agreed, bool):
            return acs_error(400, "InvalidInput", "agreeToNotResell must be a boolean.", "agreeToNotResell")
        version = request.query["api-version"]
        if search.get("agreement_required") and version in AGREEMENT_API_VERSIONS and not agreed:
            return acs_error(400, "BadRequest", NOT_RESELL_REFUSAL)

        failure = self.state.get(KNOBS, "fail_next_purchase")
        if failure:
            self.state.delete(KNOBS, "fail_next_purchase")
        # As recorded: running first, then notStarted again, then succeeded.
        running = max(1, self.purchase_polls // 2)
        plan = ["running" if i < running else "notStarted" for i in range(self.purchase_polls)]
        self._new_operation(operation_id, "purchase", search_id, plan,
                            "failed" if failure else "succeeded", error=failure or None)
        search["state"] = "purchasing"
        search["agreed_to_not_resell"] = agreed
        self.state.put(SEARCHES, search_id, search)
        for number in search["phoneNumbers"]:
            self.state.put(NUMBERS, number, {"state": "purchasing", "search_id": search_id})
        return Response.empty(202, {
            "Operation-Location": f"/phoneNumbers/operations/{operation_id}?api-version={version}",
            "operation-id": operation_id,
            "purchase-id": search_id,
            "Access-Control-Expose-Headers": "Operation-Location,operation-id,purchase-id",
        })

    # --- operations ----------------------------------------------------------------------------------


    def _purchased_body(self, number: str, doc: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": number.lstrip("+"),
            "phoneNumber": number,
            "countryCode": doc["country"],
            "phoneNumberType": self._case(doc["phoneNumberType"]),
            "capabilities": doc["capabilities"],
            "assignmentType": self._case(doc["assignmentType"]),
            "purchaseDate": doc["purchaseDate"],
            "cost": doc["cost"],
        }

    async def _list_numbers(self, request: Request) -> Response:
        items = [
            self._purchased_body(n, d)
            for n, d in self.state.items(NUMBERS)
            if d["state"] in ("purchased", "releasing")
        ]
        return Response.json({"phoneNumbers": items, "nextLink": None})

    async def _get_number(self, request: Request) -> Response:
        number = request.params["number"]
        doc = self.state.get(NUMBERS, number)
        if doc is not None and doc["state"] == "releasing":
            for _, operation in self.state.items(OPERATIONS):
                if operation["kind"] == "release" and operation["subject"] == number and not operation["done"]:
                    self._step(operation)
            doc = self.state.get(NUMBERS, number)
        if doc is None or doc["state"] not in ("purchased", "releasing"):
            return acs_error(404, "NotFound", f"Input phoneNumber {number} cannot be found.", "phoneNumber")
        return Response.json(self._purchased_body(number, doc))

    async def _release(self, request: Request) -> Response:
        number = request.params["number"]
        doc = self.state.get(NUMBERS, number)
        if doc is None or doc["state"] not in ("purchased", "releasing"):
            return acs_error(404, "NotFound", f"Input phoneNumber {number} cannot be found.", "phoneNumber")
        if doc["state"] == "releasing":
            return acs_error(409, "Conflict", f"Phone number {number} is already being released.", "phoneNumber")
        release_id = str(uuid.uuid4())
        operation_id = f"release_{release_id}"
        self._new_operation(operation_id, "release", number, ["running"] * self.release_polls, "succeeded")
        self._set_number_state(number, "releasing")
        version = request.query["api-version"]
        return Response.empty(self.state.get(KNOBS, "release_status", 202), {
            "Operation-Location": f"/phoneNumbers/operations/{operation_id}?api-version={version}",
            "operation-id": operation_id,
            "release-id": release_id,
            "Access-Control-Expose-Headers": "Operation-Location,operation-id,release-id",
        })


def create_acs_sandbox(
    state: SandboxState | None = None,
    clock: Clock | None = None,
    *,
    access_key: str = SANDBOX_ACS_ACCESS_KEY,
    hold_seconds: float = 960,
    search_polls: int = 2,
    purchase_polls: int = 4,
) -> AcsSandbox:
    """The simulated ACS service; serve it with ``httpx.ASGITransport(app=…)`` or uvicorn."""
    return AcsSandbox(
        state,
        clock,
        access_key=access_key,
        hold_seconds=hold_seconds,
        search_polls=search_polls,
        purchase_polls=purchase_polls,
    )
