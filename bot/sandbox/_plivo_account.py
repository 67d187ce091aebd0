"""What the simulated Plivo account's two APIs share: its credentials, state tables, numbering
plan and catalogue of number groups, the account route, and Plivo's error shape."""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Any

from bot.sandbox.common import Response

__all__ = [
    "ACCOUNT",
    "GROUPS",
    "KNOBS",
    "MAX_LIMIT",
    "NUMBERING",
    "NUMBERS",
    "NUMBER_TYPES",
    "ORDERS",
    "REGULATED_COUNTRIES",
    "SANDBOX_PLIVO_API_URL",
    "SANDBOX_PLIVO_AUTH_ID",
    "SANDBOX_PLIVO_AUTH_TOKEN",
    "SERVICES",
    "api_id",
    "checked_country",
    "initial_groups",
    "plivo_error",
]

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

ACCOUNT = r"/v1/Account/(?P<auth_id>[^/]+)"

# country -> (calling code, digits in the national significant number)
NUMBERING = {"US": ("1", 10), "GB": ("44", 10), "FR": ("33", 9), "DE": ("49", 10), "BR": ("55", 10)}

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
    code, nsn_len = NUMBERING[country]
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
    return _us_groups() + _european_groups() + _brazilian_groups()


def _us_groups() -> list[dict[str, Any]]:
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
    return groups


def _european_groups() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = []
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
    return groups


def _brazilian_groups() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = []
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


def api_id() -> str:
    return str(uuid.uuid1())


def plivo_error(status: int, message: str) -> Response:
    return Response.json({"api_id": api_id(), "error": message}, status)


def checked_country(query: dict[str, str]) -> str | Response:
    """A search's ``country_iso``, upper case, or Plivo's 400 when it is missing or not ISO 3166 alpha-2."""
    country = query.get("country_iso", "").strip().upper()
    if not country:
        return plivo_error(400, "country_iso is required")
    if not re.fullmatch(r"[A-Z]{2}", country):
        return plivo_error(400, f"country_iso '{query['country_iso']}' is not a valid ISO 3166 alpha-2 code")
    return country
