"""What the simulated Telnyx account sells: its stock of numbers by country, type and area (with
prices and features), and the regulatory requirements of the countries that have them."""

from __future__ import annotations

import uuid
from typing import Any

__all__ = ["CALLING", "REGULATED", "STOCK", "catalogue", "requirement_id", "stock_number"]

# (country, type, national destination code, region, monthly, upfront, count, features)
STOCK = [
    ("US", "local", "415", "SAN FRANCISCO", "1.00", "1.00", 30, ("sms", "voice")),
    ("US", "local", "312", "CHICAGO", "1.00", "1.00", 30, ("sms", "voice")),
    ("US", "local", "702", "LAS VEGAS", "0.80", "0.00", 10, ("voice",)),
    ("US", "toll_free", "888", "", "1.50", "0.00", 20, ("sms", "voice")),
    ("GB", "local", "20", "LONDON", "1.10", "0.00", 20, ("voice",)),
    ("DE", "local", "30", "BERLIN", "1.20", "1.00", 20, ("voice",)),
    ("FR", "local", "1", "PARIS", "1.30", "1.00", 20, ("voice",)),
    ("GB", "national", "3", "UNITED KINGDOM", "1.60", "0.00", 10, ("voice",)),
]
CALLING = {"US": "1", "GB": "44", "DE": "49", "FR": "33"}
# country -> [(field_type, name, description)], as GET /v2/regulatory_requirements describes them
REGULATED = {
    "DE": [("address", "Local address", "Proof of a local address in Germany (utility bill or lease, under 3 months old)")],
    "FR": [
        ("address", "Address in France", "Proof of address in France"),
        ("document", "Identity document", "Copy of a valid identity document of the end user"),
    ],
}


def requirement_id(country: str, name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"telnyx-requirement/{country}/{name}"))


def stock_number(country: str, ndc: str, i: int) -> str:
    if country == "US":
        return f"+1{ndc}555{200 + i:04d}"
    width = {"GB": 10, "DE": 10, "FR": 9}[country]
    rest = width - len(ndc)
    return f"+{CALLING[country]}{ndc}{10 ** (rest - 1) * 8 + 300 + i}"


def catalogue() -> dict[str, dict[str, Any]]:
    out = {}
    for country, kind, ndc, region, monthly, upfront, count, features in STOCK:
        for i in range(count):
            out[stock_number(country, ndc, i)] = {
                "country": country,
                "type": kind,
                "ndc": ndc,
                "region": region,
                "monthly": monthly,
                "upfront": upfront,
                "features": list(features),
            }
    return out

