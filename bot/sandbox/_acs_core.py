"""The simulated ACS service's machinery: its catalogue and state tables, the knobs tests turn,
request authentication (HMAC-SHA256, ``x-ms-date`` skew), api-versions, and long-running
operations that progress one step per GET. ``AcsSandbox`` (``bot.sandbox.acs``) adds the routes.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import re
from datetime import datetime, timedelta, timezone
from typing import Any

from bot.sandbox.common import Request, Response, SandboxApp, utcnow

__all__ = [
    "AGREEMENT_API_VERSIONS", "AGREEMENT_REQUIRED", "CAPABILITY_VALUES", "CATALOGUE", "KNOBS", "MAX_QUANTITY",
    "MONTHLY_COST", "NOT_RESELL_REFUSAL", "NUMBERS", "OPERATIONS", "SEARCHES", "SUPPORTED_API_VERSIONS", "AcsCore",
    "acs_error", "acs_timestamp", "find_enum", "parse_acs_ts", "pool_numbers",
]

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

NUMBERS = "acs_numbers"  # number → {state: held|purchasing|purchased|releasing, search_id, until, …}
SEARCHES = "acs_searches"
OPERATIONS = "acs_operations"
KNOBS = "acs_knobs"

CAPABILITY_VALUES = ("none", "inbound", "outbound", "inbound+outbound")


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


def parse_acs_ts(value: str) -> datetime:
    return datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", value))


def acs_error(
    status: int, code: str, message: str, target: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if target:
        error["target"] = target
    return Response.json({"error": error}, status, headers)


def find_enum(mapping: dict[str, Any], value: Any) -> str | None:
    """Case-insensitive enum match: the service accepts ``TollFree`` and ``tollFree``."""
    if not isinstance(value, str):
        return None
    for canonical in mapping:
        if canonical.lower() == value.lower():
            return canonical
    return None


class AcsCore(SandboxApp):
    """The simulated service's state, knobs, authentication, api-versions and long-running operations."""

    name = "acs"
    _key: bytes
    hold_seconds: float
    search_polls: int
    purchase_polls: int
    release_polls: int

    def fail_next_purchase(
        self, message: str = "The purchase could not be completed.", code: str = "PurchaseFailed"
    ) -> None:
        """The next purchase operation accepted ends ``failed`` with this error."""
        self.state.put(KNOBS, "fail_next_purchase", {"code": code, "message": message})

    def set_retry_after(self, seconds: float | None) -> None:
        """Operation GETs carry ``Retry-After: seconds`` (the real service sent none)."""
        self.state.put(KNOBS, "retry_after", seconds)

    def set_release_status(self, status: int) -> None:
        """Answer releases ``202`` (default) or ``204`` with the same operation headers (Feb 2021 traffic)."""
        if status not in (202, 204):
            raise ValueError("status must be 202 or 204")
        self.state.put(KNOBS, "release_status", status)

    def set_value_case(self, style: str) -> None:
        """``capitalised`` (2021 traffic: ``Succeeded``, ``TollFree``) or ``camel`` (2022: ``succeeded``)."""
        if style not in ("capitalised", "camel"):
            raise ValueError("style must be 'capitalised' or 'camel'")
        self.state.put(KNOBS, "value_case", style)

    # --- inspection helpers for tests and the CLI -------------------------------------

    def available(self, country: str, number_type: str, area_code: str) -> list[str]:
        """Numbers of one pool that a search could hold right now."""
        taken = self._taken()
        stock = CATALOGUE.get((country, number_type), {}).get(area_code, 0)
        return [n for n in pool_numbers(country, area_code, stock) if n not in taken]

    def purchased(self) -> list[str]:
        return [n for n, doc in self.state.items(NUMBERS) if doc["state"] in ("purchased", "releasing")]

    # --- plumbing -------------------------------------------------------------------------

    def _now(self) -> datetime:
        return self.clock.now()

    def _case(self, value: str) -> str:
        if self.state.get(KNOBS, "value_case", "capitalised") == "camel":
            return value
        return value[0].upper() + value[1:]

    def not_found(self, request: Request) -> Response:
        return acs_error(404, "NotFound", f"No resource at {request.path}.")

    def method_not_allowed(self, request: Request) -> Response:
        return acs_error(405, "MethodNotAllowed", f"{request.method} is not supported on {request.path}.")

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
            return acs_error(401, "Denied", "Denied by the resource provider: the request is not signed "
                          "(x-ms-date, x-ms-content-sha256 and Authorization are required).")
        expected_hash = base64.b64encode(hashlib.sha256(request.body).digest()).decode()
        if not hmac.compare_digest(body_hash, expected_hash):
            return acs_error(
                401, "Denied", "Denied by the resource provider: x-ms-content-sha256 does not match the body."
            )
        m = re.fullmatch(r"HMAC-SHA256 SignedHeaders=([^&]+)&Signature=(\S+)", authorization.strip())
        if not m or m.group(1).lower() != "x-ms-date;host;x-ms-content-sha256":
            return acs_error(401, "Denied", "Denied by the resource provider: the Authorization header is not "
                          "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=….")
        try:
            sent_at = email.utils.parsedate_to_datetime(date_text)
        except (TypeError, ValueError):
            sent_at = None
        if sent_at is None:
            return acs_error(401, "Denied", "Denied by the resource provider: x-ms-date is not an RFC 1123 date.")
        if sent_at.tzinfo is None:
            sent_at = sent_at.replace(tzinfo=timezone.utc)
        # Tests move app.clock forward to expire holds while clients sign with
        # the wall clock: a date close to either is accepted.
        if min(abs(sent_at - self._now()), abs(sent_at - utcnow())) > MAX_DATE_SKEW:
            return acs_error(401, "Denied", "Denied by the resource provider: x-ms-date is more than 15 minutes "
                          "away from the service's time; check the clock of the calling machine.")
        to_sign = f"{request.method}\n{request.path_and_query}\n{date_text};{request.host};{body_hash}"
        signature = base64.b64encode(hmac.new(self._key, to_sign.encode(), hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(signature, m.group(2)):
            return acs_error(401, "Denied", "Denied by the resource provider.")
        return None

    def _check_api_version(self, request: Request) -> Response | None:
        version = request.query.get("api-version")
        if not version:
            return acs_error(400, "MissingApiVersionParameter",
                          "The api-version query parameter (?api-version=) is required for all requests.")
        if version not in SUPPORTED_API_VERSIONS:
            return acs_error(400, "UnsupportedApiVersion", f"The api-version '{version}' is not supported. "
                          f"Supported versions: {', '.join(SUPPORTED_API_VERSIONS)}.")
        return None

    def _taken(self) -> set[str]:
        now = self._now()
        taken = set()
        for number, doc in self.state.items(NUMBERS):
            if doc["state"] != "held" or parse_acs_ts(doc["until"]) > now:
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
        self.state.put(OPERATIONS, operation_id, doc)
        return doc

    # --- search -------------------------------------------------------------------------------


    def _finish(self, operation: dict[str, Any]) -> None:
        """Carry out what an operation does when it reaches its outcome."""
        operation["done"] = True
        operation["status"] = operation["outcome"]
        operation["last_action"] = acs_timestamp(self._now())
        kind, subject = operation["kind"], operation["subject"]
        if kind == "purchase":
            search = self.state.get(SEARCHES, subject)
            succeeded = operation["outcome"] == "succeeded"
            search["state"] = "purchased" if succeeded else "purchase_failed"
            self.state.put(SEARCHES, subject, search)
            for number in search["phoneNumbers"]:
                if succeeded:
                    self.state.put(NUMBERS, number, {
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
                self.state.delete(NUMBERS, subject)  # back in stock
            else:
                self._set_number_state(subject, "purchased")

    def _free(self, number: str, search_id: str) -> None:
        doc = self.state.get(NUMBERS, number)
        if doc is not None and doc.get("search_id") == search_id and doc["state"] in ("held", "purchasing"):
            self.state.delete(NUMBERS, number)

    def _set_number_state(self, number: str, state: str) -> None:
        doc = self.state.get(NUMBERS, number)
        if doc is not None:
            doc["state"] = state
            self.state.put(NUMBERS, number, doc)

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
        operation = self.state.get(OPERATIONS, operation_id)
        if operation is None:
            return acs_error(404, "NotFound", f"Operation {operation_id} was not found.")
        self._step(operation)
        headers: dict[str, str] = {}
        if operation["resource_location"]:
            headers["Location"] = operation["resource_location"]
        retry_after = self.state.get(KNOBS, "retry_after")
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
        self.state.put(OPERATIONS, operation["id"], operation)

    async def _cancel_operation(self, request: Request) -> Response:
        operation_id = request.params["operation_id"]
        operation = self.state.get(OPERATIONS, operation_id)
        if operation is None:
            return acs_error(404, "NotFound", f"Operation {operation_id} was not found.")
        if not operation["done"]:
            operation["outcome"] = "failed"
            operation["error"] = {"code": "Cancelled", "message": "The operation was cancelled."}
            self._finish(operation)
            self.state.put(OPERATIONS, operation_id, operation)
        if operation["kind"] == "search":
            # Cancelling a search gives its held numbers back.
            search = self.state.get(SEARCHES, operation["subject"])
            if search is not None and search["state"] == "held":
                search["state"] = "cancelled"
                self.state.put(SEARCHES, operation["subject"], search)
                for number in search["phoneNumbers"]:
                    self._free(number, operation["subject"])
        return Response.empty(204)

    # --- purchased numbers ---------------------------------------------------------------------------------

