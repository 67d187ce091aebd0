"""The simulated Plivo account's current phone-number API, beside the legacy group API.

Routes (under ``/v1/Account/{auth_id}/``, shapes as in plivo-python's fixtures
``phoneNumberListResponse.json``, ``phoneNumberCreateResponse.json`` and
``numberListResponse.json``):

* ``GET  PhoneNumber/?country_iso=&type=&pattern=&region=&services=&limit=&offset=``
  single numbers for sale, taken from the same catalogue as the groups (the
  first few free numbers of every group that matches), each with
  ``monthly_rental_rate``, ``setup_rate`` and ``restriction``/``restriction_text``
  (German and French numbers need a local address: Plivo's ``city-address``);
* ``POST PhoneNumber/{number}/`` (JSON ``{app_id?}``) buys it: ``201 fulfilled``
  with ``status: "Success"``, or in regulated countries (FR, DE) ``201`` with
  the number's ``status: "pending"``; the account then lists the number as not
  yet ``active`` with ``compliance_status: "pending"`` (our choice: Plivo's
  documents do not say how a pending number shows);
* ``GET Number/{number}/``: the account's number (``404`` when it holds none).

A number bought here leaves its group's stock, and the group API never hands it out again.
"""

from __future__ import annotations

import re
from typing import Any

from bot.sandbox.common import Request, Response
from bot.sandbox._plivo_account import (
    checked_country,
    ACCOUNT,
    GROUPS,
    NUMBERING,
    NUMBERS,
    REGULATED_COUNTRIES,
    SERVICES,
    api_id,
    plivo_error,
)
from bot.sandbox._plivo_groups import PlivoSandboxApp

NUMBERS_PER_GROUP = 3  # how many free numbers of each group a search shows
SEARCH_TYPES = ("local", "fixed", "tollfree", "national", "mobile")
RESTRICTIONS = {
    "DE": ("city-address", "This number requires a local address in the city of the number (Germany)."),
    "FR": ("city-address", "This number requires a local address in the city of the number (France)."),
}


def _national(country: str, number: str) -> str:
    return number[len(NUMBERING[country][0]) :]


class PlivoNumbersSandbox(PlivoSandboxApp):
    """The Plivo sandbox with both APIs; ``create_plivo_sandbox`` builds this one."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.route("GET", ACCOUNT + r"/PhoneNumber/")(self._search_numbers)
        self.route("POST", ACCOUNT + r"/PhoneNumber/(?P<number>[^/]+)/")(self._buy_number)
        self.route("GET", ACCOUNT + r"/Number/(?P<number>[^/]+)/")(self._get_number)

    # --- the numbers a group still has ---------------------------------------------------

    def free_numbers(self, group: dict[str, Any], limit: int) -> list[str]:
        """The next free numbers of a group, skipping any already on some account."""
        width = len(group["next_number"])
        serial = int(group["next_number"])
        out: list[str] = []
        i = 0
        while len(out) < min(limit, group["stock"]) and i < group["stock"] + 1000:
            number = f"{serial + i:0{width}d}"
            if self.state.get(NUMBERS, number) is None:
                out.append(number)
            i += 1
        return out

    def _group_of(self, number: str) -> dict[str, Any] | None:
        for _, group in self.state.items(GROUPS):
            if group["stock"] > 0 and number in self.free_numbers(group, NUMBERS_PER_GROUP):
                return group
        return None

    # --- handlers ------------------------------------------------------------------------

    async def _search_numbers(self, request: Request) -> Response:
        q = request.query
        country = checked_country(q)
        if isinstance(country, Response):
            return country
        number_type = q.get("type", "local") or "local"
        if number_type not in SEARCH_TYPES:
            return plivo_error(400, f"type '{number_type}' is invalid; use local, fixed, mobile, national or tollfree")
        pattern = q.get("pattern")
        if pattern is not None and not re.fullmatch(r"[0-9]{1,10}", pattern):
            return plivo_error(400, "pattern must be digits only")
        region = q.get("region")
        wanted = [s.strip().lower() for s in q.get("services", "").split(",") if s.strip()]
        if any(s not in SERVICES for s in wanted):
            return plivo_error(400, f"services '{q['services']}' is invalid; use voice, sms, mms or a comma-separated mix")
        paging = self._paging(request)
        if isinstance(paging, Response):
            return paging
        limit, offset = paging
        group_type = "local" if number_type == "fixed" else number_type
        auth_id = request.params["auth_id"]
        found: list[dict[str, Any]] = []
        for g in self._matching_groups(country, group_type, region, wanted):
            for number in self.free_numbers(g, NUMBERS_PER_GROUP):
                if pattern and not _national(country, number).startswith(pattern):
                    continue
                found.append(self._number_object(auth_id, g, number))
        return self._page(request, found, offset, limit)

    @staticmethod
    def _number_object(auth_id: str, g: dict[str, Any], number: str) -> dict[str, Any]:
        restriction, restriction_text = RESTRICTIONS.get(g["country_iso"], (None, None))
        city, _, country_name = g["region"].rpartition(", ")
        return {
            "city": city.title() if city else None,
            "country": country_name or g["region"],
            "lata": None,
            "monthly_rental_rate": g["rental_rate"],
            "number": number,
            "prefix": _national(g["country_iso"], number)[: len(g["prefix"])],
            "rate_center": None,
            "region": g["region"],
            "resource_uri": f"/v1/Account/{auth_id}/PhoneNumber/{number}/",
            "restriction": restriction,
            "restriction_text": restriction_text,
            "setup_rate": g["setup_rate"],
            "sms_enabled": g["sms_enabled"],
            "sms_rate": f"{max(g['sms_rate'], 0):.5f}",
            "type": "fixed" if g["number_type"] == "local" else g["number_type"],
            "voice_enabled": g["voice_enabled"],
            "voice_rate": g["voice_rate"],
            "mms_enabled": False,
            "mms_rate": "0.00000",
        }

    async def _buy_number(self, request: Request) -> Response:
        number = re.sub(r"\D", "", request.params["number"])
        try:
            body = request.json() or {}
        except ValueError:
            return plivo_error(400, "the request body is not valid JSON")
        if not isinstance(body, dict):
            return plivo_error(400, "the request body must be a JSON object")
        app_id = body.get("app_id")
        if app_id is not None and not (isinstance(app_id, str) and app_id.strip()):
            return plivo_error(400, "app_id must be a non-empty string")
        group = self._group_of(number)
        if group is None:
            return plivo_error(404, f"Number {number} is not available for purchase")
        auth_id = request.params["auth_id"]
        self._record_number(auth_id, group, number, app_id)
        group["stock"] -= 1
        self.state.put(GROUPS, group["group_id"], group)
        if group["country_iso"] in REGULATED_COUNTRIES:
            doc = self.state.get(NUMBERS, number)
            doc.update(active=False, compliance_status="pending")
            self.state.put(NUMBERS, number, doc)
            answer = {"number": number, "status": "pending"}
            return Response.json(
                {"api_id": api_id(), "message": "created", "numbers": [answer], "status": "pending"}, 201
            )
        return Response.json(
            {"api_id": api_id(), "message": "created", "numbers": [{"number": number, "status": "Success"}],
             "status": "fulfilled"},
            201,
        )

    async def _get_number(self, request: Request) -> Response:
        number = re.sub(r"\D", "", request.params["number"])
        auth_id = request.params["auth_id"]
        doc = self.state.get(NUMBERS, number)
        if doc is None or doc["account"] != auth_id:
            return plivo_error(404, "Number not found")
        return Response.json({"api_id": api_id(), **self.shown(auth_id, number, doc)})

    @staticmethod
    def shown(auth_id: str, number: str, doc: dict[str, Any]) -> dict[str, Any]:
        """A number as ``GET Number/`` and ``GET Number/{number}/`` show it."""
        shown = {k: v for k, v in doc.items() if k not in ("account", "group_id")}
        shown.setdefault("active", True)
        shown.setdefault("compliance_status", None)
        shown["resource_uri"] = f"/v1/Account/{auth_id}/Number/{number}/"
        return shown


__all__ = ["PlivoNumbersSandbox"]
