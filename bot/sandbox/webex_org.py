"""The simulated Webex organisation: its ids (shaped like Webex's), locations, the numbers it owns
(San Jose, enough for several pages, and London), the people it starts with, and which person
fields a PUT may write."""

from __future__ import annotations

import base64
import uuid
from typing import Any

__all__ = [
    "CALLING_FIELDS",
    "INVENTORY",
    "INVENTORY_BY_DIGITS",
    "KEPT_WHEN_OMITTED",
    "LICENSE_CALLING",
    "LICENSE_MEETINGS",
    "LOCATIONS",
    "LOCATIONS_BY_ID",
    "LOCATION_LOCKED",
    "LOCATION_LONDON",
    "LOCATION_SAN_JOSE",
    "META",
    "NAMESPACE",
    "PEOPLE",
    "READ_ONLY_FIELDS",
    "SANDBOX_WEBEX_ORG_ID",
    "WRITABLE_FIELDS",
    "build_inventory",
    "number_digits",
    "new_person",
    "number_item",
    "seed_people",
    "webex_id",
]

NAMESPACE = uuid.UUID("8f1d2c4e-5b6a-4e7f-9a0b-1c2d3e4f5a6b")


def webex_id(kind: str, key: str) -> str:
    """An id shaped like Webex's: base64 of ``ciscospark://us/<KIND>/<uuid>``, no padding."""
    raw = f"ciscospark://us/{kind}/{uuid.uuid5(NAMESPACE, key)}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


SANDBOX_WEBEX_ORG_ID = webex_id("ORGANIZATION", "numbers-bot sandbox org")
# The available-numbers API takes locationId of at most 36 characters.
LOCATION_SAN_JOSE = str(uuid.uuid5(NAMESPACE, "location San Jose"))
LOCATION_LONDON = str(uuid.uuid5(NAMESPACE, "location London"))

LOCATIONS: list[dict[str, Any]] = [
    {
        "id": LOCATION_SAN_JOSE,
        "name": "San Jose",
        "orgId": SANDBOX_WEBEX_ORG_ID,
        "timeZone": "America/Los_Angeles",
        "preferredLanguage": "en_us",
        "address": {
            "address1": "170 West Tasman Dr",
            "city": "San Jose",
            "state": "CA",
            "postalCode": "95134",
            "country": "US",
        },
    },
    {
        "id": LOCATION_LONDON,
        "name": "London",
        "orgId": SANDBOX_WEBEX_ORG_ID,
        "timeZone": "Europe/London",
        "preferredLanguage": "en_gb",
        "address": {
            "address1": "10 New Square Park",
            "city": "London",
            "postalCode": "EC2A 3AB",
            "country": "GB",
        },
    },
]
LOCATIONS_BY_ID = {loc["id"]: loc for loc in LOCATIONS}


def number_item(phone: str, location_id: str, **fields: Any) -> dict[str, Any]:
    item = {
        "phoneNumber": phone,
        "state": "ACTIVE",
        "isMainNumber": False,
        "tollFreeNumber": False,
        "telephonyType": "PSTN_NUMBER",
        "isServiceNumber": False,
        "locationId": location_id,
    }
    item.update(fields)
    return item


def build_inventory() -> list[dict[str, Any]]:
    numbers = [number_item("+14085550100", LOCATION_SAN_JOSE, isMainNumber=True)]
    for n in range(101, 131):
        # every seventh number has not been activated at the carrier yet
        numbers.append(
            number_item(f"+1408555{n:04d}", LOCATION_SAN_JOSE, state="INACTIVE" if n % 7 == 0 else "ACTIVE")
        )
    numbers += [
        number_item(
            "+14085550190",
            LOCATION_SAN_JOSE,
            telephonyType="MOBILE_NUMBER",
            mobileNetwork="AT&T",
            routingProfile="AttRtPf",
        ),
        number_item("+14085550199", LOCATION_SAN_JOSE, isServiceNumber=True),
        number_item("+18885550123", LOCATION_SAN_JOSE, tollFreeNumber=True),
        number_item("+442071838000", LOCATION_LONDON, isMainNumber=True),
    ]
    numbers += [
        number_item(f"+44207183800{n}", LOCATION_LONDON, state="INACTIVE" if n == 8 else "ACTIVE")
        for n in range(1, 9)
    ]
    return numbers


INVENTORY: list[dict[str, Any]] = build_inventory()
INVENTORY_BY_DIGITS = {"".join(c for c in i["phoneNumber"] if c.isdigit()): i for i in INVENTORY}

# Person fields a PUT replaces (absent from the body → cleared) and those Webex keeps whatever is sent.
WRITABLE_FIELDS = (
    "emails",
    "phoneNumbers",
    "extension",
    "locationId",
    "displayName",
    "nickName",
    "firstName",
    "lastName",
    "avatar",
    "roles",
    "licenses",
    "department",
    "manager",
    "managerId",
    "title",
    "addresses",
    "siteUrls",
    "loginEnabled",
)
# Writable fields a PUT may leave out without clearing them: the official SDK never sends
# loginEnabled, and a calling user's locationId cannot change anyway.
KEPT_WHEN_OMITTED = ("loginEnabled", "locationId")
LOCATION_LOCKED = "locationId cannot be changed if a user is already an existing calling user."
CALLING_FIELDS = ("phoneNumbers", "extension", "locationId")
READ_ONLY_FIELDS = (
    "id",
    "orgId",
    "created",
    "lastModified",
    "lastActivity",
    "status",
    "invitePending",
    "type",
    "timezone",
    "sipAddresses",
)
PEOPLE = "webex_people"
META = "webex_meta"
LICENSE_CALLING = webex_id("LICENSE", "Webex Calling Professional")
LICENSE_MEETINGS = webex_id("LICENSE", "Webex Meetings")


def new_person(key: str, email: str, first: str, last: str, **fields: Any) -> dict[str, Any]:
    person = {
        "id": webex_id("PEOPLE", key),
        "emails": [email],
        "phoneNumbers": [],
        "displayName": f"{first} {last}",
        "nickName": first,
        "firstName": first,
        "lastName": last,
        "avatar": f"https://avatar.sandbox.invalid/{key}~1600",
        "orgId": SANDBOX_WEBEX_ORG_ID,
        "roles": [],
        "licenses": [LICENSE_MEETINGS],
        "created": "2023-02-14T09:30:00.000Z",
        "lastModified": "2024-01-10T12:00:00.000Z",
        "timezone": "UTC",
        "status": "active",
        "invitePending": False,
        "loginEnabled": True,
        "type": "person",
        "sipAddresses": [
            {"type": "personal-room", "value": f"{key}@sandbox.webex.invalid", "primary": False}
        ],
    }
    person.update(fields)
    return person


def seed_people() -> list[dict[str, Any]]:
    return [
        new_person("admin", "admin@example.com", "Numbers", "Admin", roles=[webex_id("ROLE", "id_full_admin")]),
        new_person(
            "alice",
            "alice@example.com",
            "Alice",
            "Anders",
            extension="1001",
            locationId=LOCATION_SAN_JOSE,
            licenses=[LICENSE_MEETINGS, LICENSE_CALLING],
            phoneNumbers=[{"type": "mobile", "value": "+14085559001"}],
            department="Support",
            title="Support engineer",
            addresses=[{"type": "work", "country": "US", "locality": "San Jose", "region": "CA"}],
            manager="Numbers Admin",
            managerId=webex_id("PEOPLE", "admin"),
        ),
        new_person(
            "bob",
            "bob@example.com",
            "Bob",
            "Brown",
            extension="2001",
            locationId=LOCATION_LONDON,
            licenses=[LICENSE_MEETINGS, LICENSE_CALLING],
            phoneNumbers=[{"type": "work", "value": "+442071838001"}],
            title="Sales",
        ),
        new_person("carol", "carol@example.com", "Carol", "Chen", title="Contractor"),  # no Webex Calling
    ]


def number_digits(number: Any) -> str:
    return "".join(c for c in str(number or "") if c.isdigit())


