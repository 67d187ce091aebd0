"""The simulated Plivo account's legacy number-group API (the current phone-number API is
added by ``bot.sandbox.plivo_numbers``; ``bot.sandbox.plivo`` builds the account with both).

Routes (all under ``/v1/Account/{auth_id}/``, every path ending in ``/``, HTTP
Basic auth ``auth_id:auth_token``):

* ``GET  /v1/Account/{auth_id}/``                           account details
* ``GET  AvailableNumberGroup/``                           search groups (Plivo validation, paging by
  ``limit``/``offset`` with ``meta.next`` a *relative* URL, as the real service answers)
* ``POST AvailableNumberGroup/{group_id}/``                rent ``quantity`` numbers: ``201 fulfilled``
  with the numbers, or ``201 pending`` for regulated countries (FR, DE), where no number exists yet
* ``GET  Number/``                                         the numbers this account rents
* ``DELETE Number/{number}/``                              unrent one (``204``; ``404`` if not ours)

Errors come as ``{"api_id": ..., "error": ...}`` like Plivo's. Stock, rented
numbers, pending orders and the knobs live in ``app.state`` so separate CLI
processes sharing a state file see the same account.

Knob: ``app.fail_numbers_next_rent(k)`` makes the last ``k`` numbers of the next
fulfilled rent come back with status ``"Failed"`` (a partial success, as Plivo
reports one); those numbers are not rented and take no stock.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import urllib.parse
from typing import Any, Iterator

from bot.sandbox.common import Clock, Request, Response, SandboxApp, SandboxState
from bot.sandbox._plivo_account import (
    checked_country,
    ACCOUNT,
    GROUPS,
    KNOBS,
    MAX_LIMIT,
    NUMBERS,
    NUMBER_TYPES,
    ORDERS,
    REGULATED_COUNTRIES,
    SANDBOX_PLIVO_AUTH_ID,
    SANDBOX_PLIVO_AUTH_TOKEN,
    SERVICES,
    api_id,
    initial_groups,
    plivo_error,
)

__all__ = ["PlivoSandboxApp"]


class PlivoSandboxApp(SandboxApp):
    name = "plivo"

    def __init__(
        self,
        state: SandboxState | None = None,
        clock: Clock | None = None,
        *,
        auth_id: str = SANDBOX_PLIVO_AUTH_ID,
        auth_token: str = SANDBOX_PLIVO_AUTH_TOKEN,
    ):
        super().__init__(state, clock)
        self._auth_id = auth_id
        self._auth_token = auth_token
        if not self.state.has(GROUPS):
            for group in initial_groups():
                self.state.put(GROUPS, group["group_id"], group)
        self.route("GET", ACCOUNT + r"/")(self._account)
        self.route("GET", ACCOUNT + r"/AvailableNumberGroup/")(self._search)
        self.route("POST", ACCOUNT + r"/AvailableNumberGroup/(?P<group_id>[^/]+)/")(self._rent)
        self.route("GET", ACCOUNT + r"/Number/")(self._list_numbers)
        self.route("DELETE", ACCOUNT + r"/Number/(?P<number>[^/]+)/")(self._unrent)

    # --- knobs ----------------------------------------------------------------

    def fail_numbers_next_rent(self, k: int) -> None:
        """The next fulfilled rent reports its last ``k`` numbers as ``"Failed"``."""
        self.state.put(KNOBS, "fail_next_rent", int(k))

    def stock(self, group_id: str) -> int:
        return int(self.state.get(GROUPS, group_id)["stock"])

    def rented_numbers(self) -> list[str]:
        return [n for n, doc in self.state.items(NUMBERS) if doc["account"] == self._auth_id]

    # --- plumbing -----------------------------------------------------------------

    def not_found(self, request: Request) -> Response:
        # Plivo's words, and never the path: it carries the auth id.
        return plivo_error(404, "not found")

    def method_not_allowed(self, request: Request) -> Response:
        return plivo_error(405, f"Method '{request.method}' not allowed.")

    async def dispatch(self, request: Request) -> Response:
        match = re.match(ACCOUNT + "/", request.path)
        if match and not self._authorised(request, urllib.parse.unquote(match.group("auth_id"))):
            return plivo_error(401, "Authentication credentials invalid")
        return await super().dispatch(request)

    def _authorised(self, request: Request, path_auth_id: str) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, sep, password = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        ok_user = hmac.compare_digest(user.encode(), self._auth_id.encode())
        ok_password = hmac.compare_digest(password.encode(), self._auth_token.encode())
        return bool(sep) and ok_user and ok_password and path_auth_id == user

    def _page_meta(self, request: Request, total: int, offset: int, limit: int) -> dict[str, Any]:
        """``meta`` as Plivo sends it: ``next``/``previous`` are relative URLs or null."""

        def link(new_offset: int) -> str:
            query = dict(request.query)
            query["limit"] = str(limit)
            query["offset"] = str(new_offset)
            return f"{request.path}?{urllib.parse.urlencode(query)}"

        return {
            "previous": link(max(0, offset - limit)) if offset > 0 else None,
            "next": link(offset + limit) if offset + limit < total else None,
            "total_count": total,
            "offset": offset,
            "limit": limit,
        }

    @staticmethod
    def _paging(request: Request) -> tuple[int, int] | Response:
        try:
            limit = int(request.query.get("limit", MAX_LIMIT))
            offset = int(request.query.get("offset", 0))
        except ValueError:
            return plivo_error(400, "limit and offset must be integers")
        if limit < 1 or limit > MAX_LIMIT:
            return plivo_error(400, f"limit must be between 1 and {MAX_LIMIT}")
        if offset < 0:
            return plivo_error(400, "offset must be 0 or more")
        return limit, offset

    # --- handlers -------------------------------------------------------------------

    async def _account(self, request: Request) -> Response:
        auth_id = request.params["auth_id"]
        return Response.json(
            {
                "account_type": "standard",
                "address": "201 Mission Street",
                "api_id": api_id(),
                "auth_id": auth_id,
                "auto_recharge": False,
                "billing_mode": "prepaid",
                "cash_credits": "100.00000",
                "city": "San Francisco",
                "name": "numbers-bot sandbox",
                "resource_uri": f"/v1/Account/{auth_id}/",
                "state": "California",
                "timezone": "America/Los_Angeles",
            }
        )

    async def _search(self, request: Request) -> Response:
        q = request.query
        country = checked_country(q)
        if isinstance(country, Response):
            return country
        number_type = q.get("number_type", "local") or "local"
        if number_type not in NUMBER_TYPES:
            return plivo_error(400, f"number_type '{number_type}' is invalid; use local, national or tollfree")
        prefix = q.get("prefix")
        if prefix is not None and not re.fullmatch(r"[0-9]{1,5}", prefix):
            return plivo_error(400, "prefix must be numeric and at most 5 digits long")
        region = q.get("region")
        if region and number_type != "local":
            return plivo_error(400, "region can only be used with number_type local")
        wanted: list[str] = []
        if q.get("services"):
            wanted = [s.strip().lower() for s in q["services"].split(",")]
            if any(s not in SERVICES for s in wanted):
                return plivo_error(400, f"services '{q['services']}' is invalid; use voice, sms, mms or a comma-separated mix")
        paging = self._paging(request)
        if isinstance(paging, Response):
            return paging
        limit, offset = paging

        found = [
            self._group_object(request.params["auth_id"], g)
            for g in self._matching_groups(country, number_type, region, wanted)
            if not prefix or g["prefix"].startswith(prefix)
        ]
        return self._page(request, found, offset, limit)

    def _matching_groups(
        self, country: str, number_type: str, region: str | None, wanted: list[str]
    ) -> Iterator[dict[str, Any]]:
        """The groups of a country and type, in a region (any part of its name) with the services wanted."""
        for _, g in self.state.items(GROUPS):
            if g["country_iso"] != country or g["number_type"] != number_type:
                continue
            if region and region.strip().lower() not in g["region"].lower():
                continue
            if "voice" in wanted and not g["voice_enabled"]:
                continue
            if ("sms" in wanted or "mms" in wanted) and not g["sms_enabled"]:
                continue
            yield g

    def _page(self, request: Request, found: list[dict[str, Any]], offset: int, limit: int) -> Response:
        """One page of a search's objects, with Plivo's ``meta``."""
        return Response.json(
            {
                "api_id": api_id(),
                "meta": self._page_meta(request, len(found), offset, limit),
                "objects": found[offset : offset + limit],
            }
        )

    @staticmethod
    def _group_object(auth_id: str, g: dict[str, Any]) -> dict[str, Any]:
        return {
            "group_id": g["group_id"],
            "number_type": g["number_type"],
            "prefix": g["prefix"],
            "region": g["region"],
            "rental_rate": g["rental_rate"],
            "resource_uri": f"/v1/Account/{auth_id}/AvailableNumberGroup/{g['group_id']}/",
            "setup_rate": g["setup_rate"],
            "sms_enabled": g["sms_enabled"],
            "sms_rate": g["sms_rate"],
            "stock": g["stock"],
            "voice_enabled": g["voice_enabled"],
            "voice_rate": g["voice_rate"],
        }

    async def _rent(self, request: Request) -> Response:
        group = self.state.get(GROUPS, request.params["group_id"])
        if group is None:
            return plivo_error(404, f"Number group {request.params['group_id']} not found")
        try:
            body = request.json() or {}
        except ValueError:
            return plivo_error(400, "the request body is not valid JSON")
        if not isinstance(body, dict):
            return plivo_error(400, "the request body must be a JSON object")
        quantity = body.get("quantity", 1)
        if isinstance(quantity, str) and quantity.isdigit():
            quantity = int(quantity)
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
            return plivo_error(400, "quantity must be a positive integer")
        app_id = body.get("app_id")
        if app_id is not None and not (isinstance(app_id, str) and app_id.strip()):
            return plivo_error(400, "app_id must be a non-empty string")
        if quantity > group["stock"]:
            return plivo_error(
                400,
                f"Requested quantity {quantity} is more than the {group['stock']} numbers in stock for this group",
            )

        if group["country_iso"] in REGULATED_COUNTRIES:
            return self._pending_order(request, group, quantity, app_id)
        failing = min(quantity, max(0, int(self.state.get(KNOBS, "fail_next_rent", 0))))
        self.state.put(KNOBS, "fail_next_rent", 0)
        width = len(group["next_number"])
        serial = int(group["next_number"])
        answered: list[dict[str, str]] = []
        while len(answered) < quantity:
            number = f"{serial:0{width}d}"
            serial += 1
            if self.state.get(NUMBERS, number) is not None:
                continue  # bought on its own through PhoneNumber/
            ok = len(answered) < quantity - failing
            answered.append({"number": number, "status": "Success" if ok else "Failed"})
            if ok:
                self._record_number(request.params["auth_id"], group, number, app_id)
        group["next_number"] = f"{serial:0{width}d}"
        group["stock"] -= quantity - failing
        self.state.put(GROUPS, group["group_id"], group)
        return Response.json({"api_id": api_id(), "message": "created", "numbers": answered, "status": "fulfilled"}, 201)

    def _pending_order(self, request: Request, group: dict[str, Any], quantity: int, app_id: str | None) -> Response:
        """A rent in a regulated country: the stock is taken and the order waits for Plivo's people."""
        group["stock"] -= quantity
        self.state.put(GROUPS, group["group_id"], group)
        order_id = api_id()
        self.state.put(
            ORDERS,
            order_id,
            {
                "account": request.params["auth_id"],
                "group_id": group["group_id"],
                "quantity": quantity,
                "app_id": app_id,
                "status": "pending",
                "created": self.clock.now().isoformat(),
            },
        )
        details = (
            f"Order for {quantity} numbers(Region: {group['region']}, number_type: {group['number_type']}, "
            f"Prefix: {group['prefix']}) initiated. For this order, some additional information is required "
            "by the telecom regulatory authorities. Our support team will get in touch with you soon."
        )
        return Response.json({"api_id": api_id(), "details": details, "message": "created", "status": "pending"}, 201)

    def _record_number(self, auth_id: str, group: dict[str, Any], number: str, app_id: str | None) -> None:
        today = self.clock.now().date().isoformat()
        self.state.put(
            NUMBERS,
            number,
            {
                "account": auth_id,
                "added_on": today,
                "alias": None,
                "application": f"/v1/Account/{auth_id}/Application/{app_id}/" if app_id else None,
                "carrier": "Plivo",
                "monthly_rental_rate": group["rental_rate"],
                "number": number,
                "number_type": group["number_type"],
                "region": group["region"],
                "sms_enabled": group["sms_enabled"],
                "sms_rate": f"{max(group['sms_rate'], 0):.5f}",
                "voice_enabled": group["voice_enabled"],
                "voice_rate": group["voice_rate"],
                "group_id": group["group_id"],
            },
        )

    async def _list_numbers(self, request: Request) -> Response:
        paging = self._paging(request)
        if isinstance(paging, Response):
            return paging
        limit, offset = paging
        auth_id = request.params["auth_id"]
        mine = []
        for number, doc in self.state.items(NUMBERS):
            if doc["account"] != auth_id:
                continue
            shown = {k: v for k, v in doc.items() if k not in ("account", "group_id")}
            shown.setdefault("active", True)
            shown["resource_uri"] = f"/v1/Account/{auth_id}/Number/{number}/"
            mine.append(shown)
        return Response.json(
            {
                "api_id": api_id(),
                "meta": self._page_meta(request, len(mine), offset, limit),
                "objects": mine[offset : offset + limit],
            }
        )

    async def _unrent(self, request: Request) -> Response:
        number = request.params["number"]
        doc = self.state.get(NUMBERS, number)
        if doc is None or doc["account"] != request.params["auth_id"]:
            return plivo_error(404, "Number not found")
        self.state.delete(NUMBERS, number)
        return Response.empty(204)

