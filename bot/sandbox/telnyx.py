"""A simulated Telnyx account: search, reservations, number orders and phone numbers (API v2).

Routes (``Authorization: Bearer <key>``; JSON; answers wrapped in ``{"data": …}``):

* ``GET  /v2/available_phone_numbers``   ``filter[country_code]``, ``filter[phone_number_type]``,
  ``filter[national_destination_code]``, ``filter[features][]``, ``filter[limit]``,
  ``filter[reservable]``, ``filter[exclude_held_numbers]``; each with ``cost_information``
* ``POST /v2/number_reservations``, ``GET /v2/number_reservations[/{id}]``,
  ``POST /v2/number_reservations/{id}/actions/extend``: 30-minute holds, per-number ``expired_at``
* ``POST /v2/number_orders``, ``GET /v2/number_orders[?filter[customer_reference]=…]``,
  ``GET /v2/number_orders/{id}``: ``pending`` → ``success`` after ``app.polls_to_complete``
  reads (``failure`` after ``app.fail_next_order()``); numbers in DE and FR stay ``pending`` with ``requirements_met: false`` and
  their regulatory requirements (as Telnyx's regulated sub-orders do)
* ``GET /v2/phone_numbers[?filter[phone_number]=…]``, ``DELETE /v2/phone_numbers/{id}``

Errors are ``{"errors":[{code, title, detail}]}``: 10009 wrong key, 10005 not found,
85000 ordering a number no search offered, 85001 a number someone else has
(``app.take(number)``), 10015 a bad filter.
"""

from __future__ import annotations

import hmac
import json
import urllib.parse
import uuid
from datetime import datetime, timedelta
from typing import Any

from bot.sandbox._telnyx_stock import REGULATED, catalogue, requirement_id
from bot.sandbox.common import Clock, Request, Response, SandboxApp, SandboxState

__all__ = [
    "SANDBOX_TELNYX_API_KEY",
    "SANDBOX_TELNYX_API_URL",
    "HOLD_MINUTES",
    "TelnyxSandboxApp",
    "create_telnyx_sandbox",
]

SANDBOX_TELNYX_API_KEY = "KEYSANDBOX0TELNYX0NOT0A0SECRET0000"
SANDBOX_TELNYX_API_URL = "https://telnyx.sandbox.invalid"
HOLD_MINUTES = 30

RESERVATIONS = "telnyx_reservations"
ORDERS = "telnyx_orders"
NUMBERS = "telnyx_numbers"  # phone number id -> record
TAKEN = "telnyx_taken"
KNOBS = "telnyx_knobs"


def _error(status: int, code: str, title: str, detail: str | None = None) -> Response:
    error: dict[str, Any] = {"code": code, "title": title}
    if detail:
        error["detail"] = detail
    return Response.json({"errors": [error]}, status)


class TelnyxSandboxApp(SandboxApp):
    name = "telnyx"

    def __init__(self, state: SandboxState | None = None, clock: Clock | None = None, *, api_key: str = SANDBOX_TELNYX_API_KEY):
        super().__init__(state, clock)
        self._key = api_key
        self.polls_to_complete = 2
        self.catalogue = catalogue()
        self.route("GET", r"/v2/available_phone_numbers")(self._search)
        self.route("POST", r"/v2/number_reservations")(self._reserve)
        self.route("GET", r"/v2/number_reservations")(self._list_reservations)
        self.route("GET", r"/v2/number_reservations/(?P<id>[^/]+)")(self._get_reservation)
        self.route("POST", r"/v2/number_reservations/(?P<id>[^/]+)/actions/extend")(self._extend)
        self.route("POST", r"/v2/number_orders")(self._order)
        self.route("GET", r"/v2/number_orders")(self._list_orders)
        self.route("GET", r"/v2/number_orders/(?P<id>[^/]+)")(self._get_order)
        self.route("GET", r"/v2/phone_numbers")(self._list_numbers)
        self.route("GET", r"/v2/regulatory_requirements")(self._requirements)
        self.route("DELETE", r"/v2/phone_numbers/(?P<id>[^/]+)")(self._delete_number)

    # --- knobs -----------------------------------------------------------------------

    def take(self, number: str) -> None:
        """Another customer orders ``number``: it leaves the search, and ordering it answers 85001."""
        self.state.put(TAKEN, number, True)

    def fail_next_order(self) -> None:
        """The next order ends ``failure`` (its numbers ``failed``) instead of ``success``."""
        self.state.put(KNOBS, "fail_next_order", True)

    def owned_numbers(self) -> list[str]:
        return [doc["phone_number"] for _, doc in self.state.items(NUMBERS) if doc["status"] != "deleted"]

    def reservation(self, reservation_id: str) -> dict[str, Any] | None:
        return self.state.get(RESERVATIONS, reservation_id)

    # --- plumbing --------------------------------------------------------------------

    def not_found(self, request: Request) -> Response:
        return _error(404, "10005", "Resource not found", "The requested resource or URL could not be found.")

    def method_not_allowed(self, request: Request) -> Response:
        return _error(405, "10006", "Method not allowed")

    async def dispatch(self, request: Request) -> Response:
        header = request.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        if not request.path.startswith("/_sandbox/") and not (
            scheme.lower() == "bearer" and hmac.compare_digest(key.strip().encode(), self._key.encode())
        ):
            return _error(401, "10009", "Authentication failed", "The API key looks malformed. Check that you copied it correctly.")
        return await super().dispatch(request)

    def _now(self) -> datetime:
        return self.clock.now()

    def _iso(self, when: datetime) -> str:
        return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def _held_until(self, number: str) -> datetime | None:
        """When the active reservation on ``number`` ends (any customer's), or None."""
        now = self._now()
        for _, res in self.state.items(RESERVATIONS):
            for entry in res["phone_numbers"]:
                if entry["phone_number"] == number and entry["status"] == "success":
                    ends = datetime.fromisoformat(entry["expired_at"].replace("Z", "+00:00"))
                    if ends > now:
                        return ends
        return None

    def _available(self, number: str) -> bool:
        owned = any(d["phone_number"] == number and d["status"] != "deleted" for _, d in self.state.items(NUMBERS))
        return number in self.catalogue and not owned and not self.state.get(TAKEN, number)

    def _body(self, request: Request) -> dict[str, Any] | Response:
        try:
            body = request.json()
        except ValueError:
            return _error(400, "10015", "Bad Request", "The request body is not valid JSON.")
        if not isinstance(body, dict):
            return _error(400, "10015", "Bad Request", "The request body must be a JSON object.")
        numbers = body.get("phone_numbers")
        if not isinstance(numbers, list) or not numbers or not all(
            isinstance(n, dict) and isinstance(n.get("phone_number"), str) for n in numbers
        ):
            return _error(422, "10015", "Invalid parameter", "phone_numbers must list objects with a phone_number.")
        return body

    # --- search -------------------------------------------------------------------------

    async def _search(self, request: Request) -> Response:
        pairs = _pairs(request.raw_query)
        first = {k: v for k, v in reversed(pairs)}
        country = first.get("filter[country_code]", "").upper()
        kind = first.get("filter[phone_number_type]", "local")
        ndc = first.get("filter[national_destination_code]")
        # Both spellings the service takes: filter[features][]=sms (its docs) and filter[features]=sms,voice (its SDK).
        features = [v for k, v in pairs if k == "filter[features][]"]
        features += [f for k, v in pairs if k == "filter[features]" for f in v.split(",") if f]
        try:
            limit = int(first.get("filter[limit]", "50"))
        except ValueError:
            return _error(400, "10015", "Invalid filter", "filter[limit] must be an integer.")
        if not 1 <= limit <= 250:
            return _error(400, "10015", "Invalid filter", "filter[limit] must be between 1 and 250.")
        exclude_held = first.get("filter[exclude_held_numbers]", "false") == "true"
        found = []
        for number, doc in self.catalogue.items():
            if doc["country"] != country or doc["type"] != kind or not self._available(number):
                continue
            if ndc and doc["ndc"] != ndc:
                continue
            if any(f not in doc["features"] for f in features):
                continue
            if exclude_held and self._held_until(number) is not None:
                continue
            found.append(self._available_object(number, doc))
            if len(found) >= limit:
                break
        return Response.json({"data": found, "metadata": {"total_results": len(found), "best_effort_results": 0}})

    @staticmethod
    def _available_object(number: str, doc: dict[str, Any]) -> dict[str, Any]:
        return {
            "record_type": "available_phone_number",
            "phone_number": number,
            "vanity_format": None,
            "best_effort": False,
            "quickship": True,
            "reservable": True,
            "region_information": [{"region_type": "location", "region_name": doc["region"]}] if doc["region"] else [],
            "cost_information": {"upfront_cost": doc["upfront"], "monthly_cost": doc["monthly"], "currency": "USD"},
            "features": [{"name": f} for f in doc["features"]],
        }

    # --- reservations -----------------------------------------------------------------------

    async def _reserve(self, request: Request) -> Response:
        body = self._body(request)
        if isinstance(body, Response):
            return body
        now = self._now()
        entries = []
        for item in body["phone_numbers"]:
            number = item["phone_number"]
            if not self._available(number) or self._held_until(number) is not None:
                return _error(422, "85001", "Number not available", f"{number} is not available to reserve.")
            entries.append(
                {
                    "id": str(uuid.uuid4()),
                    "record_type": "reserved_phone_number",
                    "phone_number": number,
                    "status": "success",
                    "created_at": self._iso(now),
                    "updated_at": self._iso(now),
                    "expired_at": self._iso(now + timedelta(minutes=HOLD_MINUTES)),
                }
            )
        reservation: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "record_type": "number_reservation",
            "status": "success",
            "phone_numbers": entries,
            "customer_reference": body.get("customer_reference"),
            "created_at": self._iso(now),
            "updated_at": self._iso(now),
        }
        self.state.put(RESERVATIONS, reservation["id"], reservation)
        return Response.json({"data": reservation}, 201)

    async def _list_reservations(self, request: Request) -> Response:
        return Response.json({"data": [r for _, r in self.state.items(RESERVATIONS)], "meta": {"total_results": 0}})

    async def _get_reservation(self, request: Request) -> Response:
        reservation = self.state.get(RESERVATIONS, request.params["id"])
        return Response.json({"data": reservation}) if reservation else self.not_found(request)

    async def _extend(self, request: Request) -> Response:
        reservation = self.state.get(RESERVATIONS, request.params["id"])
        if reservation is None:
            return self.not_found(request)
        now = self._now()
        for entry in reservation["phone_numbers"]:
            ends = datetime.fromisoformat(entry["expired_at"].replace("Z", "+00:00"))
            if ends <= now:
                return _error(422, "85002", "Reservation expired", f"The reservation of {entry['phone_number']} has expired.")
        for entry in reservation["phone_numbers"]:
            entry["expired_at"] = self._iso(now + timedelta(minutes=HOLD_MINUTES))
            entry["updated_at"] = self._iso(now)
        reservation["updated_at"] = self._iso(now)
        self.state.put(RESERVATIONS, reservation["id"], reservation)
        return Response.json({"data": reservation})

    # --- orders ------------------------------------------------------------------------------

    async def _order(self, request: Request) -> Response:
        body = self._body(request)
        if isinstance(body, Response):
            return body
        numbers = [n["phone_number"] for n in body["phone_numbers"]]
        for number in numbers:
            if number not in self.catalogue:
                return _error(422, "85000", "Number not from a search", f"{number} did not come from a number search.")
            if not self._available(number):
                return _error(422, "85001", "Number not available", f"{number} is no longer available.")
        now = self._now()
        regulated = [n for n in numbers if self.catalogue[n]["country"] in REGULATED]
        order_id = str(uuid.uuid4())
        entries = []
        for number in numbers:
            entry: dict[str, Any] = {
                "id": str(uuid.uuid4()),
                "record_type": "number_order_phone_number",
                "phone_number": number,
                "status": "pending",
                "requirements_met": number not in regulated,
                "requirements_status": "requirement-info-pending" if number in regulated else "approved",
                # As Telnyx answers: ids and types only; the words are at GET /v2/regulatory_requirements.
                "regulatory_requirements": [
                    {
                        "requirement_id": requirement_id(self.catalogue[number]["country"], name),
                        "field_type": field_type,
                        "field_value": None,
                        "record_type": "phone_number_regulatory_requirement",
                    }
                    for field_type, name, _ in REGULATED.get(self.catalogue[number]["country"], [])
                ],
            }
            entries.append(entry)
            # The number is the customer's from the moment it is ordered: nobody else can order it.
            self.state.put(NUMBERS, entry["id"], {**self._number_record(entry["id"], number, body), "status": "purchase-pending"})
        order = {
            "id": order_id,
            "record_type": "number_order",
            "status": "pending",
            "phone_numbers": entries,
            "phone_numbers_count": len(entries),
            "customer_reference": body.get("customer_reference"),
            "connection_id": body.get("connection_id"),
            "messaging_profile_id": body.get("messaging_profile_id"),
            "billing_group_id": body.get("billing_group_id"),
            "sub_number_orders_ids": [str(uuid.uuid5(uuid.NAMESPACE_URL, order_id + c)) for c in sorted({self.catalogue[n]["country"] for n in numbers})],
            "requirements_met": not regulated,
            "created_at": self._iso(now),
            "updated_at": self._iso(now),
            "_reads": 0,
            "_fail": bool(self.state.get(KNOBS, "fail_next_order", False)),
        }
        self.state.put(KNOBS, "fail_next_order", False)
        self.state.put(ORDERS, order_id, order)
        return Response.json({"data": _shown(order)}, 201)

    def _number_record(self, number_id: str, number: str, body: dict[str, Any]) -> dict[str, Any]:
        doc = self.catalogue[number]
        return {
            "id": number_id,
            "record_type": "phone_number",
            "phone_number": number,
            "status": "active",
            "connection_id": body.get("connection_id"),
            "messaging_profile_id": body.get("messaging_profile_id"),
            "customer_reference": body.get("customer_reference"),
            "phone_number_type": doc["type"],
            "deletion_lock_enabled": False,
            "created_at": self._iso(self._now()),
        }

    def _advance(self, order: dict[str, Any]) -> dict[str, Any]:
        """One read of a pending order: after ``polls_to_complete`` reads its numbers are active."""
        if order["status"] != "pending" or not order["requirements_met"]:
            return order
        order["_reads"] += 1
        if order["_reads"] >= self.polls_to_complete:
            order["status"] = "failure" if order.get("_fail") else "success"
            for entry in order["phone_numbers"]:
                entry["status"] = "failed" if order.get("_fail") else "success"
                record = self.state.get(NUMBERS, entry["id"])
                if record is not None:
                    record["status"] = "deleted" if order.get("_fail") else "active"
                    self.state.put(NUMBERS, entry["id"], record)
        order["updated_at"] = self._iso(self._now())
        self.state.put(ORDERS, order["id"], order)
        return order

    async def _get_order(self, request: Request) -> Response:
        order = self.state.get(ORDERS, request.params["id"])
        if order is None:
            return self.not_found(request)
        return Response.json({"data": _shown(self._advance(order))})

    async def _list_orders(self, request: Request) -> Response:
        wanted = request.query.get("filter[customer_reference]")
        orders = [_shown(o) for _, o in self.state.items(ORDERS) if wanted in (None, o["customer_reference"])]
        return Response.json({"data": orders, "meta": {"total_results": len(orders), "page_number": 1, "page_size": 20, "total_pages": 1}})

    async def _requirements(self, request: Request) -> Response:
        """What ordering a number (``filter[phone_number]``) or a country (``filter[country_code]``) needs."""
        number = request.query.get("filter[phone_number]")
        country = request.query.get("filter[country_code]", "").upper()
        if number:
            if number not in self.catalogue:
                return _error(422, "10015", "Invalid filter", f"{number} is not a number Telnyx offers.")
            country = self.catalogue[number]["country"]
        needed = [
            {"id": requirement_id(country, name), "name": name, "description": text, "field_type": field_type, "example": None}
            for field_type, name, text in REGULATED.get(country, [])
        ]
        return Response.json({"data": [{"action": "ordering", "country_code": country, "phone_number_type": "local",
                                        "regulatory_requirements": needed}]})

    # --- phone numbers -----------------------------------------------------------------------

    async def _list_numbers(self, request: Request) -> Response:
        wanted = request.query.get("filter[phone_number]")
        items = [
            d for _, d in self.state.items(NUMBERS) if d["status"] == "active" and wanted in (None, d["phone_number"])
        ]
        return Response.json({"data": items, "meta": {"total_results": len(items), "page_number": 1, "page_size": 250, "total_pages": 1}})

    async def _delete_number(self, request: Request) -> Response:
        record = self.state.get(NUMBERS, request.params["id"])
        if record is None or record["status"] == "deleted":
            return self.not_found(request)
        record["status"] = "deleted"
        self.state.put(NUMBERS, record["id"], record)
        return Response.json({"data": record})


def _pairs(raw_query: str) -> list[tuple[str, str]]:
    return urllib.parse.parse_qsl(raw_query, keep_blank_values=True)


def _shown(order: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps({k: v for k, v in order.items() if not k.startswith("_")}))


def create_telnyx_sandbox(state: SandboxState | None = None, clock: Clock | None = None, **kw: Any) -> SandboxApp:
    """A simulated Telnyx account; see the module docstring for its routes and knobs."""
    return TelnyxSandboxApp(state, clock, **kw)
