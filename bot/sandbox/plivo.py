"""A simulated Plivo account speaking the legacy number-group API (the current
phone-number API is added by ``bot.sandbox.plivo_numbers``).

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
import hashlib
import hmac
import re
import urllib.parse
import uuid
from typing import Any

from bot.sandbox.common import Clock, Request, Response, SandboxApp, SandboxState

SANDBOX_PLIVO_AUTH_ID = "MASANDBOXPLIVO000001"
SANDBOX_PLIVO_AUTH_TOKEN = "SbxPlivoToken0notAsecret0ZmFrZXRva2VuMDA"
SANDBOX_PLIVO_API_URL = "https://plivo.sandbox.invalid"

GROUPS = "plivo_groups"
NUMBERS = "plivo_numbers"
ORDERS = "plivo_orders"
KNOBS = "plivo_knobs"

MAX_LIMIT = 20
NUMBER_TYPES = ("local", "national", "tollfree")
SERVICES = ("voice", "sms", "mms")
# Countries with address regulations: Plivo answers the rent with "pending" and
# a person follows up; no number is handed out at once.
REGULATED_COUNTRIES = ("FR", "DE")

_ACCOUNT = r"/v1/Account/(?P<auth_id>[^/]+)"

# country -> (calling code, digits in the national significant number)
_NUMBERING = {"US": ("1", 10), "GB": ("44", 10), "FR": ("33", 9), "DE": ("49", 10), "BR": ("55", 10)}

_US_AREA_CODES = [
    ("212", "NEW YORK"),
    ("646", "NEW YORK"),
    ("312", "CHICAGO"),
    ("305", "MIAMI"),
    ("415", "SAN FRANCISCO"),
    ("408", "SAN JOSE"),
    ("512", "AUSTIN"),
    ("617", "BOSTON"),
    ("206", "SEATTLE"),
    ("303", "DENVER"),
    ("404", "ATLANTA"),
    ("213", "LOS ANGELES"),
    ("702", "LAS VEGAS"),
    ("713", "HOUSTON"),
    ("215", "PHILADELPHIA"),
]

# The three kinds of US local group each area code offers (Plivo groups numbers
# by prefix *and* pricing): (sms, rental, setup, voice rate, sms rate).
_US_LOCAL_TIERS = [
    (True, "0.80000", "0.00000", "0.00850", 0.0055),
    (False, "0.50000", "0.00000", "0.01000", -1),
    (True, "1.20000", "1.00000", "0.00650", 0.0045),
]


def _group_id(*parts: str) -> str:
    digest = hashlib.sha256("|".join(parts).encode()).hexdigest()
    return str(10**13 + int(digest, 16) % (9 * 10**13))  # 14 digits, like Plivo's


def _first_number(country: str, prefix: str, variant: int, seed: str) -> str:
    code, nsn_len = _NUMBERING[country]
    rest = nsn_len - len(prefix) - 1
    # Start in the lower half of the range so a group never runs out of digits.
    start = int(hashlib.sha256(seed.encode()).hexdigest(), 16) % (10**rest // 2)
    return f"{code}{prefix}{2 + variant}{start:0{rest}d}"


def _group(
    country: str,
    number_type: str,
    prefix: str,
    region: str,
    *,
    variant: int = 0,
    sms: bool = True,
    voice: bool = True,
    rental: str = "0.80000",
    setup: str = "0.00000",
    voice_rate: str = "0.00850",
    sms_rate: float = 0.0055,
    stock: int = 100,
    group_id: str | None = None,
    first_number: str | None = None,
) -> dict[str, Any]:
    key = f"{country}|{number_type}|{prefix}|{variant}"
    return {
        "group_id": group_id or _group_id(key),
        "country_iso": country,
        "number_type": number_type,
        "prefix": prefix,
        "region": region,
        "rental_rate": rental,
        "setup_rate": setup,
        "voice_rate": voice_rate,
        "sms_rate": sms_rate if sms else -1,
        "sms_enabled": sms,
        "voice_enabled": voice,
        "stock": stock,
        "next_number": first_number or _first_number(country, prefix, variant, key),
    }


def initial_groups() -> list[dict[str, Any]]:
    """The catalogue a fresh sandbox starts with (deterministic)."""
    groups: list[dict[str, Any]] = []
    for i, (area, city) in enumerate(_US_AREA_CODES):
        for variant, (sms, rental, setup, voice_rate, sms_rate) in enumerate(_US_LOCAL_TIERS):
            stock = 40 + (i * 53 + variant * 17) % 400
            if (area, variant) == ("305", 0):
                stock = 3  # a nearly sold-out group: "more than in stock" is easy to reach
            if (area, variant) == ("702", 1):
                stock = 0  # sold out: Plivo still lists it
            groups.append(
                _group(
                    "US",
                    "local",
                    area,
                    f"{city}, UNITED STATES",
                    variant=variant,
                    sms=sms,
                    rental=rental,
                    setup=setup,
                    voice_rate=voice_rate,
                    sms_rate=sms_rate,
                    stock=stock,
                )
            )
    for j, prefix in enumerate(["800", "833", "844", "855", "866", "877", "888"]):
        groups.append(
            _group(
                "US",
                "tollfree",
                prefix,
                "UNITED STATES",
                rental="1.00000",
                voice_rate="0.02000",
                sms_rate=0.0058,
                stock=150 + 31 * j,
            )
        )
    for prefix, city, stock in [("20", "LONDON", 220), ("161", "MANCHESTER", 75), ("121", "BIRMINGHAM", 60)]:
        groups.append(
            _group(
                "GB",
                "local",
                prefix,
                f"{city}, UNITED KINGDOM",
                sms=False,
                rental="0.50000",
                voice_rate="0.01200",
                stock=stock,
            )
        )
    groups.append(
        _group(
            "GB", "national", "3", "UNITED KINGDOM", sms=False, rental="1.50000", voice_rate="0.01500", stock=90
        )
    )
    # AMIENS is the group of Plivo's own API page, kept as it is there.
    for prefix, city, stock, gid in [("1", "PARIS", 480, None), ("3", "AMIENS", 9731, "55350421590053"), ("4", "MARSEILLE", 310, None)]:
        groups.append(
            _group(
                "FR",
                "local",
                prefix,
                f"{city}, FRANCE",
                sms=False,
                rental="0.80000",
                setup="0.80000",
                voice_rate="0.00700",
                stock=stock,
                group_id=gid,
            )
        )
    for prefix, city, stock in [("30", "BERLIN", 260), ("89", "MUNICH", 140), ("40", "HAMBURG", 95)]:
        groups.append(
            _group(
                "DE",
                "local",
                prefix,
                f"{city}, GERMANY",
                sms=False,
                rental="0.90000",
                setup="1.00000",
                voice_rate="0.00800",
                stock=stock,
            )
        )
    # BELO HORIZONTE hands out the numbers of Plivo's API page (553139560512, …).
    for prefix, city, stock, first in [
        ("31", "BELO HORIZONTE", 500, "553139560512"),
        ("11", "SAO PAULO", 800, None),
        ("21", "RIO DE JANEIRO", 350, None),
    ]:
        groups.append(
            _group(
                "BR",
                "local",
                prefix,
                f"{city}, BRAZIL",
                sms=False,
                rental="2.00000",
                setup="0.00000",
                voice_rate="0.01500",
                stock=stock,
                first_number=first,
            )
        )
    return groups


def _api_id() -> str:
    return str(uuid.uuid1())


def _error(status: int, message: str) -> Response:
    return Response.json({"api_id": _api_id(), "error": message}, status)


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
        self.route("GET", _ACCOUNT + r"/")(self._account)
        self.route("GET", _ACCOUNT + r"/AvailableNumberGroup/")(self._search)
        self.route("POST", _ACCOUNT + r"/AvailableNumberGroup/(?P<group_id>[^/]+)/")(self._rent)
        self.route("GET", _ACCOUNT + r"/Number/")(self._list_numbers)
        self.route("DELETE", _ACCOUNT + r"/Number/(?P<number>[^/]+)/")(self._unrent)

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
        return _error(404, "not found")

    def method_not_allowed(self, request: Request) -> Response:
        return _error(405, f"Method '{request.method}' not allowed.")

    async def dispatch(self, request: Request) -> Response:
        match = re.match(_ACCOUNT + "/", request.path)
        if match and not self._authorised(request, urllib.parse.unquote(match.group("auth_id"))):
            return _error(401, "Authentication credentials invalid")
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
            return _error(400, "limit and offset must be integers")
        if limit < 1 or limit > MAX_LIMIT:
            return _error(400, f"limit must be between 1 and {MAX_LIMIT}")
        if offset < 0:
            return _error(400, "offset must be 0 or more")
        return limit, offset

    # --- handlers -------------------------------------------------------------------

    async def _account(self, request: Request) -> Response:
        auth_id = request.params["auth_id"]
        return Response.json(
            {
                "account_type": "standard",
                "address": "201 Mission Street",
                "api_id": _api_id(),
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
        country = q.get("country_iso", "").strip().upper()
        if not country:
            return _error(400, "country_iso is required")
        if not re.fullmatch(r"[A-Z]{2}", country):
            return _error(400, f"country_iso '{q['country_iso']}' is not a valid ISO 3166 alpha-2 code")
        number_type = q.get("number_type", "local") or "local"
        if number_type not in NUMBER_TYPES:
            return _error(400, f"number_type '{number_type}' is invalid; use local, national or tollfree")
        prefix = q.get("prefix")
        if prefix is not None and not re.fullmatch(r"[0-9]{1,5}", prefix):
            return _error(400, "prefix must be numeric and at most 5 digits long")
        region = q.get("region")
        if region and number_type != "local":
            return _error(400, "region can only be used with number_type local")
        wanted: list[str] = []
        if q.get("services"):
            wanted = [s.strip().lower() for s in q["services"].split(",")]
            if any(s not in SERVICES for s in wanted):
                return _error(400, f"services '{q['services']}' is invalid; use voice, sms, mms or a comma-separated mix")
        paging = self._paging(request)
        if isinstance(paging, Response):
            return paging
        limit, offset = paging

        found = []
        for group_id, g in self.state.items(GROUPS):
            if g["country_iso"] != country or g["number_type"] != number_type:
                continue
            if prefix and not g["prefix"].startswith(prefix):
                continue
            if region and region.strip().lower() not in g["region"].lower():
                continue
            if "voice" in wanted and not g["voice_enabled"]:
                continue
            if ("sms" in wanted or "mms" in wanted) and not g["sms_enabled"]:
                continue
            found.append(self._group_object(request.params["auth_id"], g))
        return Response.json(
            {
                "api_id": _api_id(),
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
            return _error(404, f"Number group {request.params['group_id']} not found")
        try:
            body = request.json() or {}
        except ValueError:
            return _error(400, "the request body is not valid JSON")
        if not isinstance(body, dict):
            return _error(400, "the request body must be a JSON object")
        quantity = body.get("quantity", 1)
        if isinstance(quantity, str) and quantity.isdigit():
            quantity = int(quantity)
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
            return _error(400, "quantity must be a positive integer")
        app_id = body.get("app_id")
        if app_id is not None and not (isinstance(app_id, str) and app_id.strip()):
            return _error(400, "app_id must be a non-empty string")
        if quantity > group["stock"]:
            return _error(
                400,
                f"Requested quantity {quantity} is more than the {group['stock']} numbers in stock for this group",
            )

        if group["country_iso"] in REGULATED_COUNTRIES:
            group["stock"] -= quantity
            self.state.put(GROUPS, group["group_id"], group)
            order_id = _api_id()
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
            return Response.json({"api_id": _api_id(), "details": details, "message": "created", "status": "pending"}, 201)

        failing = min(quantity, max(0, int(self.state.get(KNOBS, "fail_next_rent", 0))))
        self.state.put(KNOBS, "fail_next_rent", 0)
        width = len(group["next_number"])
        serial = int(group["next_number"])
        answered = []
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
        return Response.json({"api_id": _api_id(), "message": "created", "numbers": answered, "status": "fulfilled"}, 201)

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
                "api_id": _api_id(),
                "meta": self._page_meta(request, len(mine), offset, limit),
                "objects": mine[offset : offset + limit],
            }
        )

    async def _unrent(self, request: Request) -> Response:
        number = request.params["number"]
        doc = self.state.get(NUMBERS, number)
        if doc is None or doc["account"] != request.params["auth_id"]:
            return _error(404, "Number not found")
        self.state.delete(NUMBERS, number)
        return Response.empty(204)


def create_plivo_sandbox(
    state: SandboxState | None = None,
    clock: Clock | None = None,
    *,
    auth_id: str = SANDBOX_PLIVO_AUTH_ID,
    auth_token: str = SANDBOX_PLIVO_AUTH_TOKEN,
) -> SandboxApp:
    """A simulated Plivo account with both APIs (this module's group API and
    ``plivo_numbers``' phone-number API); see the modules' docstrings for routes and knobs."""
    from bot.sandbox.plivo_numbers import PlivoNumbersSandbox  # it builds on this module

    return PlivoNumbersSandbox(state, clock, auth_id=auth_id, auth_token=auth_token)
