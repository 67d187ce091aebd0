"""Webex's JSON and the domain's values: offers from available numbers, people and their work
number, error details, and what each refusal means in words a user can act on."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx

from bot.domain.kinds import Kind
from bot.domain.errors import ProviderError
from bot.domain.offers import OfferDraft
from bot.domain.steps import Job

__all__ = [
    "AVAILABLE_NUMBERS_PATH", "DEFAULT_API_URL", "DEFAULT_THROTTLE_WAIT", "MAX_PAGES", "READ_ONLY_PERSON_FIELDS",
    "SCOPE_LOCATIONS_READ", "SCOPE_NUMBERS_READ", "SCOPE_PEOPLE_READ", "SCOPE_PEOPLE_WRITE", "STATUS_MEANINGS",
    "THROTTLE_STATUSES", "TRACKING_PREFIX", "number_digits", "error_details", "job_target", "offer_from", "origin",
    "same_number", "telephony_type", "with_work_number", "work_number", "writable_person",
]

DEFAULT_API_URL = "https://webexapis.com/v1"
AVAILABLE_NUMBERS_PATH = "/telephony/config/people/primary/availableNumbers"
TRACKING_PREFIX = "NUMBERSBOT"
# Webex's documented default when a 429/423 carries no Retry-After.
DEFAULT_THROTTLE_WAIT = 5.0
# A listing longer than this many pages is cut short rather than followed forever.
MAX_PAGES = 50

SCOPE_NUMBERS_READ = "spark-admin:telephony_config_read"
SCOPE_LOCATIONS_READ = "spark-admin:locations_read"
SCOPE_PEOPLE_READ = "spark-admin:people_read"
SCOPE_PEOPLE_WRITE = "spark-admin:people_write"

# What each refusal means, in words a Slack user can act on. 423 and 429 are
# waited out first; these texts apply once the bot gives up.
STATUS_MEANINGS: dict[int, str] = {
    400: "Webex refused the request as invalid",
    401: "the Webex access token is missing, wrong or expired (set WEBEX_ACCESS_TOKEN to a valid admin token)",
    403: "the Webex token is not allowed to do this: it needs an administrator token with scope {scope}",
    404: "Webex has no such resource (a person, location or number that does not exist in this organisation)",
    405: "Webex does not allow this HTTP method on this resource",
    409: "Webex refused it as a conflict with the current state (for example, the number is taken)",
    410: "the resource is gone from Webex",
    415: "Webex did not accept the request's media type",
    423: "the resource stayed locked at Webex",
    428: "Webex requires a precondition the bot cannot meet (428 Precondition Required)",
    429: "Webex kept rate-limiting the bot (429 Too Many Requests)",
    500: "Webex had an internal error; if it persists, contact Webex developer support",
    502: "Webex's gateway got an invalid answer from an upstream server; try again later",
    503: "Webex is overloaded; try again later",
    504: "an upstream Webex server did not answer in time; a smaller page size (max) may help",
}
THROTTLE_STATUSES = (423, 429)
# What a person PUT must not send (Webex sets them; wxc_sdk's Person.create_update leaves them out).
READ_ONLY_PERSON_FIELDS = frozenset(
    ("id", "created", "lastModified", "status", "type", "sipAddresses", "invitePending", "loginEnabled",
     "timezone", "lastActivity")
)


def origin(url: str) -> tuple[str, str, int | None]:
    parsed = httpx.URL(url)
    return parsed.scheme, parsed.host, parsed.port


def error_details(response: httpx.Response) -> tuple[str, str | None, str | None]:
    """The provider's own words, its error code and the tracking id from ``{message, errors[], trackingId}``."""
    tracking_id = response.headers.get("trackingid") or response.request.headers.get("trackingid")
    try:
        data = response.json()
    except ValueError:
        text = response.text.strip()
        return (text[:300] if text and not text.lstrip().startswith("<") else ""), None, tracking_id
    if not isinstance(data, dict):
        return "", None, tracking_id
    descriptions: list[str] = []
    code: str | None = None
    for err in data.get("errors") or []:
        if isinstance(err, dict):
            if err.get("description") and err["description"] not in descriptions:
                descriptions.append(str(err["description"]))
            if code is None and err.get("errorCode") is not None:
                code = str(err["errorCode"])
    words = "; ".join(descriptions) or str(data.get("message") or data.get("error") or "")
    return words, code, data.get("trackingId") or tracking_id


def telephony_type(item: dict[str, Any]) -> str | None:
    # The API page's own sample names it includedTelephonyTypes (sometimes a list); the spec says telephonyType.
    value = item.get("telephonyType") or item.get("includedTelephonyTypes")
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or None
    return value


def offer_from(item: dict[str, Any], *, location_id: str | None, location_name: str | None) -> OfferDraft:
    number = item["phoneNumber"]
    location = item.get("location") or {}
    return OfferDraft(
        provider="webex",
        kind=Kind.ASSIGN,
        numbers=[number],
        unit_monthly_cost=Decimal("0"),  # the organisation already owns it
        currency="USD",
        quantity=1,
        max_quantity=1,
        voice=True,
        sms=False,
        ref={"number": number, "location_id": location.get("id") or location_id},
        details={
            "state": item.get("state"),
            "is_main_number": bool(item.get("isMainNumber")),
            "telephony_type": telephony_type(item),
            "mobile_network": item.get("mobileNetwork"),
            "routing_profile": item.get("routingProfile"),
            "is_service_number": bool(item.get("isServiceNumber")),
            "toll_free": bool(item.get("tollFreeNumber")),
            "location_name": location.get("name") or location_name,
            "extension": item.get("extension"),
        },
    )


def job_target(job: Job) -> tuple[str, str | None, str]:
    number = job.ref.get("number") or (job.numbers[0] if job.numbers else None)
    person_id = job.ref.get("person_id")
    if not number or not person_id:
        raise ProviderError("webex", "the request lacks the number or the Webex person to assign it to")
    return number, job.ref.get("location_id"), person_id


def number_digits(number: Any) -> str:
    return "".join(ch for ch in str(number or "") if ch.isdigit())


def same_number(a: Any, b: Any) -> bool:
    return bool(number_digits(a)) and number_digits(a) == number_digits(b)


def work_number(person: dict[str, Any]) -> str | None:
    for entry in person.get("phoneNumbers") or []:
        if entry.get("type") == "work":
            return entry.get("value")
    return None


def writable_person(person: dict[str, Any]) -> dict[str, Any]:
    """The person as read, less the fields a PUT must not send."""
    return {k: v for k, v in person.items() if k not in READ_ONLY_PERSON_FIELDS}


def with_work_number(person: dict[str, Any], number: str, location_id: str | None) -> dict[str, Any]:
    """The writable person as read, with ``number`` as its work number (other entries kept in place).
    ``locationId`` is only ever set for a person who has none: a calling user's cannot change."""
    body = writable_person(person)
    entries = [dict(e) for e in person.get("phoneNumbers") or []]
    work = {"type": "work", "value": number}
    for i, entry in enumerate(entries):
        if entry.get("type") == "work":
            entries[i] = work
            break
    else:
        entries.append(work)
    body["phoneNumbers"] = entries
    if location_id and not person.get("locationId"):
        body["locationId"] = location_id
    return body
