"""A simulated Twilio account: available numbers, incoming numbers and the Pricing API.

Routes (HTTP Basic ``AccountSid:AuthToken``; form-encoded posts; JSON answers):

* ``GET    /2010-04-01/Accounts/{Sid}.json``                                  the account
* ``GET    /2010-04-01/Accounts/{Sid}/AvailablePhoneNumbers/{CC}/{Local|TollFree}.json``
  with ``AreaCode``, ``Contains``, ``SmsEnabled``, ``VoiceEnabled``, ``PageSize``
* ``GET    /2010-04-01/Accounts/{Sid}/IncomingPhoneNumbers.json[?PhoneNumber=+E164]``
* ``POST   /2010-04-01/Accounts/{Sid}/IncomingPhoneNumbers.json``  ``PhoneNumber``, ``FriendlyName``,
  ``AddressSid``, ``BundleSid`` → ``201`` with the ``PN…`` resource
* ``GET|DELETE /2010-04-01/Accounts/{Sid}/IncomingPhoneNumbers/{PNsid}.json``
* ``GET    /v1/PhoneNumbers/Countries/{CC}``        prices (``pricing.twilio.com``; no entry for CA,
  so "see Twilio pricing" can be seen)

Errors are Twilio's ``{code, message, more_info, status}``: 20003 wrong credentials,
20404 not found, 21421 not a valid number, 21422 not available (bought meanwhile:
``app.take(number)`` makes a number go to "someone else"), 21631 address
required (DE, without ``AddressSid``), 21649 bundle required (DE and FR, without
``BundleSid``), 21650 identity document missing (FR with ``INCOMPLETE_BUNDLE_SID``).
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
import hmac
import re
import urllib.parse
from typing import Any

from bot.sandbox.common import Clock, Request, Response, SandboxApp, SandboxState

__all__ = [
    "SANDBOX_TWILIO_ACCOUNT_SID",
    "SANDBOX_TWILIO_AUTH_TOKEN",
    "SANDBOX_TWILIO_API_URL",
    "INCOMPLETE_BUNDLE_SID",
    "TwilioSandboxApp",
    "create_twilio_sandbox",
]

SANDBOX_TWILIO_ACCOUNT_SID = "AC" + "5a" * 16
SANDBOX_TWILIO_AUTH_TOKEN = "sandbox0twilio0token0not0secret"
SANDBOX_TWILIO_API_URL = "https://twilio.sandbox.invalid"
INCOMPLETE_BUNDLE_SID = "BU" + "0" * 32

NUMBERS = "twilio_numbers"  # PNsid -> resource
TAKEN = "twilio_taken"  # E.164 -> who took it (someone else)

_ACCOUNT = r"/2010-04-01/Accounts/(?P<sid>AC[0-9a-fA-F]{32})"
_DOCS = "https://www.twilio.com/docs/errors/"

# (country, type, prefix) -> (region, locality, first number, count)
_STOCK: list[tuple[str, str, str, str, str, int]] = [
    ("US", "Local", "415", "CA", "San Francisco", 40),
    ("US", "Local", "212", "NY", "New York", 40),
    ("US", "Local", "512", "TX", "Austin", 12),
    ("US", "TollFree", "833", "", "", 30),
    ("US", "TollFree", "844", "", "", 30),
    ("CA", "Local", "416", "ON", "Toronto", 20),
    ("GB", "Local", "20", "", "London", 20),
    ("DE", "Local", "30", "", "Berlin", 20),
    ("FR", "Local", "1", "", "Paris", 20),
]
_CALLING = {"US": "1", "CA": "1", "GB": "44", "DE": "49", "FR": "33"}
_PRICES = {
    "US": [("local", "1.15"), ("toll free", "2.15"), ("mobile", "1.15")],
    "GB": [("local", "1.15"), ("mobile", "1.15")],
    "DE": [("local", "1.50")],
    "FR": [("local", "2.00")],
}
_ADDRESS_REQUIRED = {"DE": "local"}
_BUNDLE_REQUIRED = ("DE", "FR")


def _numbers_for(country: str, kind: str, prefix: str, count: int) -> list[str]:
    code = _CALLING[country]
    if country in ("US", "CA"):
        return [f"+1{prefix}555{100 + i:04d}" for i in range(count)]
    width = {"GB": 10, "DE": 10, "FR": 9}[country]
    rest = width - len(prefix)
    base = 10 ** (rest - 1) * 7
    return [f"+{code}{prefix}{base + 4600 + i}" for i in range(count)]


def _catalogue() -> dict[str, dict[str, Any]]:
    out = {}
    for country, kind, prefix, region, locality, count in _STOCK:
        for number in _numbers_for(country, kind, prefix, count):
            voice_only = country in ("DE", "FR")
            out[number] = {
                "country": country,
                "kind": kind,
                "region": region,
                "locality": locality,
                "postal_code": None,
                "sms": not voice_only,
                "voice": True,
                "address_requirements": _ADDRESS_REQUIRED.get(country, "none"),
            }
    return out


def _error(status: int, code: int, message: str) -> Response:
    return Response.json({"code": code, "message": message, "more_info": _DOCS + str(code), "status": status}, status)


def _pn_sid(number: str) -> str:
    return "PN" + hashlib.sha256(number.encode()).hexdigest()[:32]


def _rfc2822(when: Any) -> str:
    return email.utils.format_datetime(when, usegmt=True)


class TwilioSandboxApp(SandboxApp):
    name = "twilio"

    def __init__(
        self,
        state: SandboxState | None = None,
        clock: Clock | None = None,
        *,
        account_sid: str = SANDBOX_TWILIO_ACCOUNT_SID,
        auth_token: str = SANDBOX_TWILIO_AUTH_TOKEN,
    ):
        super().__init__(state, clock)
        self._sid = account_sid
        self._token = auth_token
        self.catalogue = _catalogue()
        self.route("GET", _ACCOUNT + r"\.json")(self._account)
        self.route("GET", _ACCOUNT + r"/AvailablePhoneNumbers/(?P<cc>[^/]+)/(?P<kind>[^/]+)\.json")(self._search)
        self.route("GET", _ACCOUNT + r"/IncomingPhoneNumbers\.json")(self._list)
        self.route("POST", _ACCOUNT + r"/IncomingPhoneNumbers\.json")(self._buy)
        self.route("GET", _ACCOUNT + r"/IncomingPhoneNumbers/(?P<pn>PN[0-9a-f]{32})\.json")(self._fetch)
        self.route("DELETE", _ACCOUNT + r"/IncomingPhoneNumbers/(?P<pn>PN[0-9a-f]{32})\.json")(self._delete)
        self.route("GET", r"/v1/PhoneNumbers/Countries/(?P<cc>[^/]+)")(self._pricing)

    # --- knobs ------------------------------------------------------------------

    def take(self, number: str) -> None:
        """Someone else buys ``number``: it leaves the search, and buying it answers 21422."""
        self.state.put(TAKEN, number, {"by": "another Twilio customer"})

    def owned_numbers(self) -> list[str]:
        return [doc["phone_number"] for _, doc in self.state.items(NUMBERS)]

    # --- plumbing ------------------------------------------------------------------

    def not_found(self, request: Request) -> Response:
        return _error(404, 20404, f"The requested resource {self._hide(request.path)} was not found")

    def method_not_allowed(self, request: Request) -> Response:
        return _error(405, 20004, "Method not allowed")

    def _hide(self, path: str) -> str:
        return path.replace(self._sid, "{AccountSid}")

    async def dispatch(self, request: Request) -> Response:
        if not request.path.startswith("/_sandbox/") and not self._authorised(request):
            return _error(401, 20003, "Authenticate")
        match = re.match(_ACCOUNT, request.path)
        if match and match.group("sid") != self._sid:
            return _error(404, 20404, "The requested resource was not found")
        return await super().dispatch(request)

    def _authorised(self, request: Request) -> bool:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, sep, password = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return bool(sep) and hmac.compare_digest(user.encode(), self._sid.encode()) and hmac.compare_digest(
            password.encode(), self._token.encode()
        )

    def _form(self, request: Request) -> dict[str, str]:
        return dict(urllib.parse.parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))

    def _owner_of(self, number: str) -> dict[str, Any] | None:
        return self.state.get(NUMBERS, _pn_sid(number))

    def _available(self, number: str) -> bool:
        return number in self.catalogue and self._owner_of(number) is None and self.state.get(TAKEN, number) is None

    # --- handlers ----------------------------------------------------------------------

    async def _account(self, request: Request) -> Response:
        return Response.json(
            {
                "sid": self._sid,
                "friendly_name": "numbers-bot sandbox",
                "status": "active",
                "type": "Full",
                "date_created": _rfc2822(self.clock.now()),
                "uri": f"/2010-04-01/Accounts/{self._sid}.json",
            }
        )

    async def _search(self, request: Request) -> Response:
        country, kind, q = request.params["cc"].upper(), request.params["kind"], request.query
        if kind not in ("Local", "TollFree", "Mobile"):
            return _error(404, 20404, f"The requested resource {self._hide(request.path)} was not found")
        if country not in _CALLING:
            return _error(404, 20404, f"Country {country} is not supported for AvailablePhoneNumbers")
        try:
            page_size = int(q.get("PageSize", 50))
        except ValueError:
            return _error(400, 20001, "PageSize must be an integer")
        if not 1 <= page_size <= 1000:
            return _error(400, 20001, "PageSize must be between 1 and 1000")
        area, contains = q.get("AreaCode"), q.get("Contains")
        if area is not None and not re.fullmatch(r"\d{3}", area):
            return _error(400, 21450, f"AreaCode {area} is invalid")
        if contains is not None and not re.fullmatch(r"[0-9A-Za-z*+]{1,16}", contains):
            return _error(400, 21451, f"Contains {contains} is invalid")
        found = []
        for number, doc in self.catalogue.items():
            national = number[1 + len(_CALLING[doc["country"]]) :]
            if doc["country"] != country or doc["kind"] != kind or not self._available(number):
                continue
            if area and not national.startswith(area):
                continue
            if contains and not re.match(contains.lstrip("+").replace("*", r"\d"), national):
                continue
            if q.get("SmsEnabled", "").lower() == "true" and not doc["sms"]:
                continue
            if q.get("VoiceEnabled", "").lower() == "true" and not doc["voice"]:
                continue
            found.append(self._available_object(number, doc))
            if len(found) >= page_size:
                break
        return Response.json({"available_phone_numbers": found, "uri": request.path_and_query})

    @staticmethod
    def _available_object(number: str, doc: dict[str, Any]) -> dict[str, Any]:
        return {
            "friendly_name": number,
            "phone_number": number,
            "lata": None,
            "locality": doc["locality"] or None,
            "rate_center": None,
            "latitude": None,
            "longitude": None,
            "region": doc["region"] or None,
            "postal_code": doc["postal_code"],
            "iso_country": doc["country"],
            "address_requirements": doc["address_requirements"],
            "beta": False,
            "capabilities": {"voice": doc["voice"], "SMS": doc["sms"], "MMS": False},
        }

    def _resource(self, number: str, form: dict[str, str]) -> dict[str, Any]:
        doc = self.catalogue[number]
        now = _rfc2822(self.clock.now())
        sid = _pn_sid(number)
        return {
            "sid": sid,
            "account_sid": self._sid,
            "friendly_name": form.get("FriendlyName") or number,
            "phone_number": number,
            "origin": "twilio",
            "status": "in-use",
            "address_sid": form.get("AddressSid"),
            "bundle_sid": form.get("BundleSid"),
            "address_requirements": doc["address_requirements"],
            "beta": False,
            "capabilities": {"voice": doc["voice"], "sms": doc["sms"], "mms": False, "fax": False},
            "date_created": now,
            "date_updated": now,
            "api_version": "2010-04-01",
            "uri": f"/2010-04-01/Accounts/{self._sid}/IncomingPhoneNumbers/{sid}.json",
        }

    async def _buy(self, request: Request) -> Response:
        form = self._form(request)
        number = form.get("PhoneNumber", "")
        if not number:
            return _error(400, 21452, "No phone numbers found: either PhoneNumber or AreaCode is required")
        if not re.fullmatch(r"\+\d{6,15}", number):
            return _error(400, 21421, f"PhoneNumber {number} is invalid")
        if not self._available(number):
            return _error(400, 21422, f"PhoneNumber {number} is not available")
        country = self.catalogue[number]["country"]
        if country in _ADDRESS_REQUIRED and not form.get("AddressSid"):
            return _error(400, 21631, "Phone Number Requires an Address but the 'AddressSid' parameter was empty.")
        if country in _BUNDLE_REQUIRED and not form.get("BundleSid"):
            return _error(400, 21649, "Phone Number Requires a Bundle but the 'BundleSid' parameter was empty.")
        if country == "FR" and form.get("BundleSid") == INCOMPLETE_BUNDLE_SID:
            return _error(400, 21650, "The Bundle provided is missing a required identity document.")
        resource = self._resource(number, form)
        self.state.put(NUMBERS, resource["sid"], resource)
        return Response.json(resource, 201)

    def _page(self, request: Request, items: list[dict[str, Any]]) -> dict[str, Any]:
        uri = self._hide(request.path).replace("{AccountSid}", self._sid)
        return {
            "incoming_phone_numbers": items,
            "end": max(0, len(items) - 1),
            "first_page_uri": uri + "?PageSize=50&Page=0",
            "next_page_uri": None,
            "page": 0,
            "page_size": 50,
            "previous_page_uri": None,
            "start": 0,
            "uri": request.path_and_query,
        }

    async def _list(self, request: Request) -> Response:
        wanted = request.query.get("PhoneNumber")
        items = [doc for _, doc in self.state.items(NUMBERS) if wanted in (None, doc["phone_number"])]
        return Response.json(self._page(request, items))

    async def _fetch(self, request: Request) -> Response:
        doc = self.state.get(NUMBERS, request.params["pn"])
        if doc is None:
            return self.not_found(request)
        return Response.json(doc)

    async def _delete(self, request: Request) -> Response:
        if self.state.get(NUMBERS, request.params["pn"]) is None:
            return self.not_found(request)
        self.state.delete(NUMBERS, request.params["pn"])
        return Response.empty(204)

    async def _pricing(self, request: Request) -> Response:
        country = request.params["cc"].upper()
        if country not in _PRICES:
            return _error(404, 20404, f"The requested resource /v1/PhoneNumbers/Countries/{country} was not found")
        return Response.json(
            {
                "country": country,
                "iso_country": country,
                "phone_number_prices": [
                    {"number_type": t, "base_price": p, "current_price": p} for t, p in _PRICES[country]
                ],
                "price_unit": "USD",
                "url": f"https://pricing.twilio.com/v1/PhoneNumbers/Countries/{country}",
            }
        )


def create_twilio_sandbox(state: SandboxState | None = None, clock: Clock | None = None, **kw: Any) -> SandboxApp:
    """A simulated Twilio account; see the module docstring for its routes and knobs."""
    return TwilioSandboxApp(state, clock, **kw)
