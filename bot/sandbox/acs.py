"""A simulated ACS Phone Numbers service that behaves like the recorded traffic.

What it does, as the real service did in the recordings (``PROVIDERS.md``):

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
import email.utils
import hashlib
import hmac
import re
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import phonenumbers

from bot.sandbox.common import Clock, Request, Response, SandboxApp, SandboxState, utcnow

SANDBOX_ACS_ENDPOINT = "https://acs.sandbox.invalid"
# Public and fixed on purpose: the sandbox is not a secret store.
SANDBOX_ACS_ACCESS_KEY = "Qdunp77fukdc0EKEHtA212rMUAsYrPtjfsy5TMyJpaetSBmcm/bk1Y79qk9tWQ4VDywSPx+Z1ZCjREtKo5ODHw=="

SUPPORTED_API_VERSIONS = (
    "2021-03-07",
    "2022-01-11-preview2",
    "2022-06-01-preview",
    "2022-12-01",
    "2023-05-01-preview",
    "2024-03-01-preview",
    "2025-02-11",
    "2025-04-01",
    "2025-06-01",
)
# Versions whose search result and purchase know the do-not-resell agreement.
AGREEMENT_API_VERSIONS = frozenset(SUPPORTED_API_VERSIONS) - {"2021-03-07", "2022-01-11-preview2", "2022-06-01-preview"}
# Pools whose purchase needs the agreement: French toll-free (2025-06-01 recording), US toll-free (2023).
AGREEMENT_REQUIRED = {("US", "tollFree"), ("FR", "tollFree")}
NOT_RESELL_REFUSAL = "Do not resell agreement was not provided and it is required for this purchase."
MAX_DATE_SKEW = timedelta(minutes=15)
MAX_QUANTITY = 20
MONTHLY_COST = {"geographic": 1.0, "tollFree": 2.0}  # USD per number, as ACS charged in the US

# (country, phoneNumberType) → {area code: numbers in stock}. 907 is a real US
# area code with an empty pool (the "nothing found" case); 800 holds only two.
CATALOGUE: dict[tuple[str, str], dict[str, int]] = {
    ("US", "geographic"): {"206": 25, "212": 25, "312": 25, "415": 25, "425": 25, "646": 25, "907": 0},
    ("US", "tollFree"): {"800": 2, "833": 25, "844": 25, "855": 25, "866": 25, "877": 25, "888": 25},
    ("CA", "geographic"): {"416": 25, "514": 25, "604": 25},
    ("CA", "tollFree"): {"833": 25, "844": 25, "855": 25, "866": 25, "877": 25, "888": 25},
    ("GB", "geographic"): {"20": 25, "121": 25, "161": 25},
    ("GB", "tollFree"): {"800": 25, "808": 25},
    ("FR", "tollFree"): {"805": 25},
}
# GB numbers come from Ofcom's ranges for drama (never assigned to anyone).
_GB_MIDDLE = {"20": "7946", "121": "496", "161": "496", "800": "157", "808": "157"}

_NUMBERS = "acs_numbers"  # number → {state: held|purchasing|purchased|releasing, search_id, until, …}
_SEARCHES = "acs_searches"
_OPERATIONS = "acs_operations"
_KNOBS = "acs_knobs"

_CAPABILITY_VALUES = ("none", "inbound", "outbound", "inbound+outbound")


def sandbox_connection_string(endpoint: str = SANDBOX_ACS_ENDPOINT, access_key: str = SANDBOX_ACS_ACCESS_KEY) -> str:
    return f"endpoint={endpoint.rstrip('/')}/;accesskey={access_key}"


def pool_numbers(country: str, area_code: str, stock: int) -> list[str]:
    """The E.164 numbers of one pool, in a fixed order."""
    if country in ("US", "CA"):
        return [f"+1{area_code}555{100 + i:04d}" for i in range(stock)]  # 555-01xx: fictional
    if country == "FR":
        return [f"+33{area_code}99{i:04d}" for i in range(stock)]
    middle = _GB_MIDDLE[area_code]
    width = 10 - len(area_code) - len(middle)
    return [f"+44{area_code}{middle}{i:0{width}d}" for i in range(stock)]


def acs_timestamp(when: datetime) -> str:
    """``2021-02-09T23:28:47.6393852+00:00``: 7 fractional digits, like the service."""
    when = when.astimezone(timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond:06d}0+00:00"


def _parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", value))


def _error(
    status: int, code: str, message: str, target: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if target:
        error["target"] = target
    return Response.json({"error": error}, status, headers)


def _find(mapping: dict[str, Any], value: Any) -> str | None:
    """Case-insensitive enum match: the service accepts ``TollFree`` and ``tollFree``."""
    if not isinstance(value, str):
        return None
    for canonical in mapping:
        if canonical.lower() == value.lower():
            return canonical
    return None


class AcsSandbox(SandboxApp):
    name = "acs"

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

    def fail_next_purchase(
        self, message: str = "The purchase could not be completed.", code: str = "PurchaseFailed"
    ) -> None:
        """The next purchase operation accepted ends ``failed`` with this error."""
        self.state.put(_KNOBS, "fail_next_purchase", {"code": code, "message": message})

    def set_retry_after(self, seconds: float | None) -> None:
        """Operation GETs carry ``Retry-After: seconds`` (the real service sent none)."""
        self.state.put(_KNOBS, "retry_after", seconds)

    def set_release_status(self, status: int) -> None:
        """Answer releases ``202`` (default) or ``204`` with the same operation headers (Feb 2021 traffic)."""
        if status not in (202, 204):
            raise ValueError("status must be 202 or 204")
        self.state.put(_KNOBS, "release_status", status)

    def set_value_case(self, style: str) -> None:
        """``capitalised`` (2021 traffic: ``Succeeded``, ``TollFree``) or ``camel`` (2022: ``succeeded``)."""
        if style not in ("capitalised", "camel"):
            raise ValueError("style must be 'capitalised' or 'camel'")
        self.state.put(_KNOBS, "value_case", style)

    # --- inspection helpers for tests and the CLI -------------------------------------

    def available(self, country: str, number_type: str, area_code: str) -> list[str]:
        """Numbers of one pool that a search could hold right now."""
        taken = self._taken()
        stock = CATALOGUE.get((country, number_type), {}).get(area_code, 0)
        return [n for n in pool_numbers(country, area_code, stock) if n not in taken]

    def purchased(self) -> list[str]:
        return [n for n, doc in self.state.items(_NUMBERS) if doc["state"] in ("purchased", "releasing")]

    # --- plumbing -------------------------------------------------------------------------

    def _now(self) -> datetime:
        return self.clock.now()

    def _case(self, value: str) -> str:
        if self.state.get(_KNOBS, "value_case", "capitalised") == "camel":
            return value
        return value[0].upper() + value[1:]

    def not_found(self, request: Request) -> Response:
        return _error(404, "NotFound", f"No resource at {request.path}.")

    def method_not_allowed(self, request: Request) -> Response:
        return _error(405, "MethodNotAllowed", f"{request.method} is not supported on {request.path}.")

    async def dispatch(self, request: Request) -> Response:
        if request.path.startswith("/_sandbox/"):  # the admin routes of SandboxApp are not part of ACS
            return await super().dispatch(request)
        refusal = self._authenticate(request) or self._check_api_version(request)
        if refusal is not None:
            return refusal
        return await super().dispatch(request)

    def _authenticate(self, request: Request) -> Response | None:
        h = request.headers
        date_text = h.get("x-ms-date")
        body_hash = h.get("x-ms-content-sha256")
        authorization = h.get("authorization", "")
        if not date_text or not body_hash or not authorization:
            return _error(401, "Denied", "Denied by the resource provider: the request is not signed "
                          "(x-ms-date, x-ms-content-sha256 and Authorization are required).")
        expected_hash = base64.b64encode(hashlib.sha256(request.body).digest()).decode()
        if not hmac.compare_digest(body_hash, expected_hash):
            return _error(
                401, "Denied", "Denied by the resource provider: x-ms-content-sha256 does not match the body."
            )
        m = re.fullmatch(r"HMAC-SHA256 SignedHeaders=([^&]+)&Signature=(\S+)", authorization.strip())
        if not m or m.group(1).lower() != "x-ms-date;host;x-ms-content-sha256":
            return _error(401, "Denied", "Denied by the resource provider: the Authorization header is not "
                          "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=….")
        try:
            sent_at = email.utils.parsedate_to_datetime(date_text)
        except (TypeError, ValueError):
            sent_at = None
        if sent_at is None:
            return _error(401, "Denied", "Denied by the resource provider: x-ms-date is not an RFC 1123 date.")
        if sent_at.tzinfo is None:
            sent_at = sent_at.replace(tzinfo=timezone.utc)
        # Tests move app.clock forward to expire holds while clients sign with
        # the wall clock: a date close to either is accepted.
        if min(abs(sent_at - self._now()), abs(sent_at - utcnow())) > MAX_DATE_SKEW:
            return _error(401, "Denied", "Denied by the resource provider: x-ms-date is more than 15 minutes "
                          "away from the service's time; check the clock of the calling machine.")
        to_sign = f"{request.method}\n{request.path_and_query}\n{date_text};{request.host};{body_hash}"
        signature = base64.b64encode(hmac.new(self._key, to_sign.encode(), hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(signature, m.group(2)):
            return _error(401, "Denied", "Denied by the resource provider.")
        return None

    def _check_api_version(self, request: Request) -> Response | None:
        version = request.query.get("api-version")
        if not version:
            return _error(400, "MissingApiVersionParameter",
                          "The api-version query parameter (?api-version=) is required for all requests.")
        if version not in SUPPORTED_API_VERSIONS:
            return _error(400, "UnsupportedApiVersion", f"The api-version '{version}' is not supported. "
                          f"Supported versions: {', '.join(SUPPORTED_API_VERSIONS)}.")
        return None

    def _taken(self) -> set[str]:
        now = self._now()
        taken = set()
        for number, doc in self.state.items(_NUMBERS):
            if doc["state"] != "held" or _parse_ts(doc["until"]) > now:
                taken.add(number)
        return taken

    def _new_operation(self, operation_id: str, kind: str, subject: str, plan: list[str], outcome: str,
                       error: dict[str, str] | None = None, resource_location: str | None = None,
                       created: datetime | None = None) -> dict[str, Any]:
        doc = {
            "id": operation_id,
            "kind": kind,
            "subject": subject,
            "plan": plan,
            "polls": 0,
            "done": False,
            "status": "notStarted",
            "outcome": outcome,
            "error": error,
            "resource_location": resource_location,
            "created": acs_timestamp(created or self._now()),
            "last_action": None,
        }
        self.state.put(_OPERATIONS, operation_id, doc)
        return doc

    # --- search -------------------------------------------------------------------------------

    async def _search(self, request: Request) -> Response:
        raw_country = request.params.get("country", "")
        country = raw_country.upper()
        if not re.fullmatch(r"[A-Z]{2}", country) or country not in phonenumbers.SUPPORTED_REGIONS:
            return _error(400, "InvalidInput", "Unable to parse country code.", "countrycode")
        if not any(c == country for c, _ in CATALOGUE):
            return _error(400, "InvalidInput", f"Phone numbers are not offered in country {country}.", "countrycode")
        try:
            body = request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _error(400, "InvalidInput", "The request body must be a JSON object.", "body")

        number_type = _find({"geographic": 1, "tollFree": 1}, body.get("phoneNumberType"))
        if number_type is None:
            return _error(400, "InvalidInput", "phoneNumberType must be geographic or tollFree.", "phoneNumberType")
        assignment_type = _find({"application": 1, "person": 1}, body.get("assignmentType"))
        if assignment_type is None:
            return _error(400, "InvalidInput", "assignmentType must be person or application.", "assignmentType")
        capabilities = body.get("capabilities")
        if not isinstance(capabilities, dict):
            return _error(400, "InvalidInput", "capabilities is required.", "capabilities")
        calling = _find(dict.fromkeys(_CAPABILITY_VALUES), capabilities.get("calling"))
        sms = _find(dict.fromkeys(_CAPABILITY_VALUES), capabilities.get("sms"))
        if calling is None or sms is None:
            return _error(400, "InvalidInput", "capabilities.calling and capabilities.sms must each be one of "
                          + ", ".join(_CAPABILITY_VALUES) + ".", "capabilities")
        if calling == "none" and sms == "none":
            return _error(
                400, "InvalidInput", "At least one capability (calling or sms) must be requested.", "capabilities"
            )
        quantity = body.get("quantity", 1)
        if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= MAX_QUANTITY:
            return _error(400, "InvalidInput", f"Quantity must be between 1 and {MAX_QUANTITY}.", "quantity")
        pools = CATALOGUE.get((country, number_type))
        if not pools:
            return _error(
                400, "InvalidInput", f"{number_type} numbers are not offered in {country}.", "phoneNumberType"
            )
        area_code = body.get("areaCode")
        if area_code is not None:
            area_code = str(area_code)
            if area_code not in pools:
                kind = "toll-free prefix" if number_type == "tollFree" else "area code"
                return _error(400, "InvalidInput", f"{area_code} is not a valid {kind} for {number_type} numbers "
                              f"in {country}. Valid: {', '.join(sorted(pools))}.", "areaCode")
            chosen_pools = [area_code]
        else:
            chosen_pools = list(pools)

        taken = self._taken()
        numbers: list[str] = []
        for pool in chosen_pools:
            for number in pool_numbers(country, pool, pools[pool]):
                if len(numbers) < quantity and number not in taken:
                    numbers.append(number)

        now = self._now()
        search_id = str(uuid.uuid4())
        expires = now + timedelta(seconds=self.hold_seconds)
        version = request.query["api-version"]
        results_path = f"/availablePhoneNumbers/searchResults/{search_id}?api-version={version}"
        search = {
            "searchId": search_id,
            "country": country,
            "phoneNumbers": numbers,
            "phoneNumberType": number_type,
            "assignmentType": assignment_type,
            "capabilities": {"calling": calling, "sms": sms},
            "cost": {"amount": MONTHLY_COST[number_type], "currencyCode": "USD", "billingFrequency": "monthly"},
            "searchExpiresBy": acs_timestamp(expires),
            "state": "held" if numbers else "empty",
            "agreement_required": (country, number_type) in AGREEMENT_REQUIRED,
        }
        self.state.put(_SEARCHES, search_id, search)
        for number in numbers:
            self.state.put(_NUMBERS, number, {"state": "held", "search_id": search_id, "until": acs_timestamp(expires)})
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
        # Header names in the mix of letter cases the service used.
        return Response.empty(202, {
            "Operation-Location": f"/phoneNumbers/operations/search_{search_id}?api-version={version}",
            "Location": results_path,
            "operation-id": f"search_{search_id}",
            "search-id": search_id,
            "Access-Control-Expose-Headers": "Location,Operation-Location,operation-id,search-id",
        })

    async def _search_result(self, request: Request) -> Response:
        search_id = request.params["search_id"]
        search = self.state.get(_SEARCHES, search_id)
        if search is None:
            return _error(404, "NotFound", f"Search {search_id} was not found.")
        if _parse_ts(search["searchExpiresBy"]) <= self._now():
            return _error(404, "NotFound", f"Search {search_id} has expired; its numbers are no longer held.")
        operation = self.state.get(_OPERATIONS, f"search_{search_id}")
        if operation is None or not operation["done"] or operation["outcome"] != "succeeded":
            return _error(404, "NotFound", f"Search {search_id} has no results (yet).")
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
            return _error(400, "InvalidInput", "searchId is required.", "searchId")
        search = self.state.get(_SEARCHES, search_id)
        if search is None:
            return _error(404, "NotFound", f"Search {search_id} was not found.", "searchId")
        operation_id = f"purchase_{search_id}"
        if self.state.get(_OPERATIONS, operation_id) is not None:
            return _error(409, "Conflict", f"A purchase of search {search_id} was already submitted "
                          f"(operation {operation_id}); a search can be purchased once.", "searchId")
        if _parse_ts(search["searchExpiresBy"]) <= self._now():
            return _error(400, "SearchExpired", f"Search {search_id} expired at {search['searchExpiresBy']}; "
                          "its numbers are no longer held. Search again.", "searchId")
        search_operation = self.state.get(_OPERATIONS, f"search_{search_id}")
        if search_operation is None or search_operation["status"] == "failed" or search["state"] != "held":
            return _error(400, "InvalidInput", f"Search {search_id} holds no numbers to purchase.", "searchId")
        if not search_operation["done"]:
            return _error(400, "InvalidInput", f"Search {search_id} has not completed yet.", "searchId")
        agreed = body.get("agreeToNotResell", False)
        if not isinstance(agreed, bool):
            return _error(400, "InvalidInput", "agreeToNotResell must be a boolean.", "agreeToNotResell")
        version = request.query["api-version"]
        if search.get("agreement_required") and version in AGREEMENT_API_VERSIONS and not agreed:
            return _error(400, "BadRequest", NOT_RESELL_REFUSAL)

        failure = self.state.get(_KNOBS, "fail_next_purchase")
        if failure:
            self.state.delete(_KNOBS, "fail_next_purchase")
        # As recorded: running first, then notStarted again, then succeeded.
        running = max(1, self.purchase_polls // 2)
        plan = ["running" if i < running else "notStarted" for i in range(self.purchase_polls)]
        self._new_operation(operation_id, "purchase", search_id, plan,
                            "failed" if failure else "succeeded", error=failure or None)
        search["state"] = "purchasing"
        search["agreed_to_not_resell"] = agreed
        self.state.put(_SEARCHES, search_id, search)
        for number in search["phoneNumbers"]:
            self.state.put(_NUMBERS, number, {"state": "purchasing", "search_id": search_id})
        return Response.empty(202, {
            "Operation-Location": f"/phoneNumbers/operations/{operation_id}?api-version={version}",
            "operation-id": operation_id,
            "purchase-id": search_id,
            "Access-Control-Expose-Headers": "Operation-Location,operation-id,purchase-id",
        })

    # --- operations ----------------------------------------------------------------------------------

    def _finish(self, operation: dict[str, Any]) -> None:
        """Carry out what an operation does when it reaches its outcome."""
        operation["done"] = True
        operation["status"] = operation["outcome"]
        operation["last_action"] = acs_timestamp(self._now())
        kind, subject = operation["kind"], operation["subject"]
        if kind == "purchase":
            search = self.state.get(_SEARCHES, subject)
            succeeded = operation["outcome"] == "succeeded"
            search["state"] = "purchased" if succeeded else "purchase_failed"
            self.state.put(_SEARCHES, subject, search)
            for number in search["phoneNumbers"]:
                if succeeded:
                    self.state.put(_NUMBERS, number, {
                        "state": "purchased",
                        "search_id": subject,
                        "country": search["country"],
                        "phoneNumberType": search["phoneNumberType"],
                        "assignmentType": search["assignmentType"],
                        "capabilities": search["capabilities"],
                        "cost": search["cost"],
                        "purchaseDate": acs_timestamp(self._now()),
                    })
                else:
                    self._free(number, subject)
        elif kind == "release":
            if operation["outcome"] == "succeeded":
                self.state.delete(_NUMBERS, subject)  # back in stock
            else:
                self._set_number_state(subject, "purchased")

    def _free(self, number: str, search_id: str) -> None:
        doc = self.state.get(_NUMBERS, number)
        if doc is not None and doc.get("search_id") == search_id and doc["state"] in ("held", "purchasing"):
            self.state.delete(_NUMBERS, number)

    def _set_number_state(self, number: str, state: str) -> None:
        doc = self.state.get(_NUMBERS, number)
        if doc is not None:
            doc["state"] = state
            self.state.put(_NUMBERS, number, doc)

    def _operation_body(self, operation: dict[str, Any]) -> dict[str, Any]:
        kind = {"search": "search", "purchase": "purchase", "release": "releasePhoneNumber"}[operation["kind"]]
        body = {
            "id": operation["id"],
            "operationType": self._case(kind),
            "status": self._case(operation["status"]),
            "resourceLocation": operation["resource_location"],
            "createdDateTime": operation["created"],
            "lastActionDateTime": operation["last_action"] or "0001-01-01T00:00:00+00:00",
        }
        if operation["status"] == "failed" and operation["error"]:
            body["error"] = operation["error"]
        return body

    async def _get_operation(self, request: Request) -> Response:
        operation_id = request.params["operation_id"]
        operation = self.state.get(_OPERATIONS, operation_id)
        if operation is None:
            return _error(404, "NotFound", f"Operation {operation_id} was not found.")
        self._step(operation)
        headers: dict[str, str] = {}
        if operation["resource_location"]:
            headers["Location"] = operation["resource_location"]
        retry_after = self.state.get(_KNOBS, "retry_after")
        if retry_after is not None:
            headers["Retry-After"] = f"{retry_after:g}"
        return Response.json(self._operation_body(operation), 200, headers)

    def _step(self, operation: dict[str, Any]) -> None:
        """One step of progress; the real service moves on whether or not anyone polls,
        so reading the operation's subject (a number being released) moves it too."""
        if operation["done"]:
            return
        if operation["polls"] < len(operation["plan"]):
            operation["status"] = operation["plan"][operation["polls"]]
            operation["polls"] += 1
        else:
            self._finish(operation)
        self.state.put(_OPERATIONS, operation["id"], operation)

    async def _cancel_operation(self, request: Request) -> Response:
        operation_id = request.params["operation_id"]
        operation = self.state.get(_OPERATIONS, operation_id)
        if operation is None:
            return _error(404, "NotFound", f"Operation {operation_id} was not found.")
        if not operation["done"]:
            operation["outcome"] = "failed"
            operation["error"] = {"code": "Cancelled", "message": "The operation was cancelled."}
            self._finish(operation)
            self.state.put(_OPERATIONS, operation_id, operation)
        if operation["kind"] == "search":
            # Cancelling a search gives its held numbers back.
            search = self.state.get(_SEARCHES, operation["subject"])
            if search is not None and search["state"] == "held":
                search["state"] = "cancelled"
                self.state.put(_SEARCHES, operation["subject"], search)
                for number in search["phoneNumbers"]:
                    self._free(number, operation["subject"])
        return Response.empty(204)

    # --- purchased numbers ---------------------------------------------------------------------------------

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
            for n, d in self.state.items(_NUMBERS)
            if d["state"] in ("purchased", "releasing")
        ]
        return Response.json({"phoneNumbers": items, "nextLink": None})

    async def _get_number(self, request: Request) -> Response:
        number = request.params["number"]
        doc = self.state.get(_NUMBERS, number)
        if doc is not None and doc["state"] == "releasing":
            for _, operation in self.state.items(_OPERATIONS):
                if operation["kind"] == "release" and operation["subject"] == number and not operation["done"]:
                    self._step(operation)
            doc = self.state.get(_NUMBERS, number)
        if doc is None or doc["state"] not in ("purchased", "releasing"):
            return _error(404, "NotFound", f"Input phoneNumber {number} cannot be found.", "phoneNumber")
        return Response.json(self._purchased_body(number, doc))

    async def _release(self, request: Request) -> Response:
        number = request.params["number"]
        doc = self.state.get(_NUMBERS, number)
        if doc is None or doc["state"] not in ("purchased", "releasing"):
            return _error(404, "NotFound", f"Input phoneNumber {number} cannot be found.", "phoneNumber")
        if doc["state"] == "releasing":
            return _error(409, "Conflict", f"Phone number {number} is already being released.", "phoneNumber")
        release_id = str(uuid.uuid4())
        operation_id = f"release_{release_id}"
        self._new_operation(operation_id, "release", number, ["running"] * self.release_polls, "succeeded")
        self._set_number_state(number, "releasing")
        version = request.query["api-version"]
        return Response.empty(self.state.get(_KNOBS, "release_status", 202), {
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
