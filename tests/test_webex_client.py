"""WebexProvider against recorded-shape bodies (httpx.MockTransport): parsing, errors, throttling, paging."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest

from bot.domain.errors import (
    NotAllowed,
    OutcomeUnknown,
    ProviderAuthError,
    ProviderError,
    ProviderUnavailable,
)
from bot.domain.offers import SearchQuery
from bot.domain.steps import Done, Job, Requester
from bot.providers.webex import WebexProvider

TOKEN = "NmQ3ZjUxYjQtc2VjcmV0LXdlYmV4LXRva2Vu_PF84_test"
API = "https://webexapis.com/v1"
SEED_PAGE = Path("/work/shared/seeds/003_0424257699ccd90c.txt")

# The sample body of the Webex API page (seed 003), verbatim: its first item says
# includedTelephonyTypes where the others say telephonyType.
SEED_BODY = """{ "phoneNumbers": [ { "phoneNumber": "+12056350001", "state": "ACTIVE", "isMainNumber": false, "includedTelephonyTypes": "MOBILE_NUMBER", "mobileNetwork" : "mobileNetwork", "routingProfile" : "AttRtPf", "isServiceNumber": false }, { "phoneNumber": "+12056350002", "state": "ACTIVE", "isMainNumber": true, "telephonyType": "PSTN_NUMBER", "isServiceNumber": false }, { "phoneNumber": "+12056350003", "state": "INACTIVE", "isMainNumber": false, "telephonyType": "PSTN_NUMBER", "isServiceNumber": false } ] }"""

PERSON = {
    "id": "Y2lzY29zcGFyazovL3VzL1BFT1BMRS9hbGljZQ",
    "emails": ["alice@example.com"],
    "phoneNumbers": [{"type": "mobile", "value": "+14085559001"}],
    "extension": "1001",
    "locationId": "loc-sj",
    "displayName": "Alice Anders",
    "firstName": "Alice",
    "lastName": "Anders",
    "orgId": "org-1",
    "roles": [],
    "licenses": ["lic-calling"],
    "created": "2023-02-14T09:30:00.000Z",
}


def error_body(description: str, tracking_id: str = "ROUTER_abc-123", code: int | None = None) -> dict:
    err: dict = {"description": description}
    if code is not None:
        err["errorCode"] = code
    return {"message": description, "errors": [err], "trackingId": tracking_id}


class Recorder:
    """Async sleep stand-in: records the waits instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def make_provider(handler, **kw) -> tuple[WebexProvider, Recorder, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def recording(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    sleep = Recorder()
    provider = WebexProvider(TOKEN, api_url=API, transport=httpx.MockTransport(recording), sleep=sleep, **kw)
    return provider, sleep, seen


def numbers_page(*numbers: str) -> dict:
    return {
        "phoneNumbers": [
            {"phoneNumber": n, "state": "ACTIVE", "telephonyType": "PSTN_NUMBER"} for n in numbers
        ]
    }


def assign_job(number: str = "+14085550101") -> Job:
    return Job(
        request_id=7,
        provider="webex",
        kind="assign",
        ref={
            "number": number,
            "location_id": "loc-sj",
            "person_id": PERSON["id"],
            "email": "alice@example.com",
        },
        quantity=1,
        numbers=[number],
        requester=Requester("U1", "alice@example.com"),
    )


# --- parsing --------------------------------------------------------------------------


async def test_seed_sample_body_gives_offers_whichever_telephony_type_field_is_used():
    provider, _, _ = make_provider(
        lambda r: httpx.Response(200, text=SEED_BODY, headers={"content-type": "application/json"})
    )
    offers = await provider.search(SearchQuery(country="US"))
    assert [o.numbers for o in offers] == [["+12056350001"], ["+12056350002"], ["+12056350003"]]
    mobile, main, inactive = offers
    assert mobile.details["telephony_type"] == "MOBILE_NUMBER"  # from includedTelephonyTypes
    assert mobile.details["mobile_network"] == "mobileNetwork"
    assert mobile.details["routing_profile"] == "AttRtPf"
    assert main.details["telephony_type"] == "PSTN_NUMBER"
    assert main.details["is_main_number"] is True
    assert inactive.details["state"] == "INACTIVE"
    for offer in offers:
        assert (offer.provider, offer.kind, offer.currency) == ("webex", "assign", "USD")
        assert offer.unit_monthly_cost == Decimal("0")
        assert (offer.quantity, offer.max_quantity, offer.voice, offer.sms) == (1, 1, True, False)
        assert offer.ref == {"number": offer.numbers[0], "location_id": None}
    await provider.aclose()


def test_embedded_sample_body_is_the_seed_pages_own():
    if not SEED_PAGE.exists():
        pytest.skip(f"{SEED_PAGE} is not on this machine (the seed pages live outside the product)")
    page = SEED_PAGE.read_text()
    sample = page[page.index('{ "phoneNumbers"') :].strip()
    assert json.loads(sample) == json.loads(SEED_BODY)


async def test_owned_numbers_are_skipped_and_inactive_ones_come_last():
    body = {
        "phoneNumbers": [
            {"phoneNumber": "+14085550001", "state": "INACTIVE", "telephonyType": "PSTN_NUMBER"},
            {"phoneNumber": "+14085550002", "state": "ACTIVE", "owner": {"id": "p1", "type": "PEOPLE"}},
            {
                "phoneNumber": "+14085550003",
                "state": "ACTIVE",
                "telephonyType": "PSTN_NUMBER",
                "extension": "1003",
                "tollFreeNumber": False,
                "isServiceNumber": True,
                "location": {"id": "loc-sj", "name": "San Jose"},
            },
        ]
    }
    provider, _, _ = make_provider(lambda r: httpx.Response(200, json=body))
    offers = await provider.search(SearchQuery(country="US"))
    assert [o.numbers[0] for o in offers] == ["+14085550003", "+14085550001"]
    assert offers[0].ref == {"number": "+14085550003", "location_id": "loc-sj"}
    assert offers[0].details["location_name"] == "San Jose"
    assert offers[0].details["extension"] == "1003"
    assert offers[0].details["is_service_number"] is True
    await provider.aclose()


async def test_every_request_carries_the_bearer_token_and_its_own_tracking_id():
    provider, _, seen = make_provider(lambda r: httpx.Response(200, json=numbers_page("+14085550001")))
    await provider.search(SearchQuery(country="US"))
    await provider.search(SearchQuery(country="US"))
    assert len(seen) == 2
    ids = [r.headers["TrackingID"] for r in seen]
    assert all(
        re.fullmatch(r"NUMBERSBOT_[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", i)
        for i in ids
    )
    assert ids[0] != ids[1]
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in seen)
    await provider.aclose()


async def test_query_carries_org_location_max_phone_numbers_and_license_type():
    provider, _, seen = make_provider(
        lambda r: httpx.Response(200, json={"phoneNumbers": []}), org_id="org-1", page_size=25
    )
    await provider.available_numbers(
        location_id="loc-sj",
        phone_numbers=["+14085550001", "+14085550002"],
        license_type="Webex Calling Professional",
    )
    params = dict(seen[0].url.params)
    assert seen[0].url.path == "/v1/telephony/config/people/primary/availableNumbers"
    assert params == {
        "max": "25",
        "orgId": "org-1",
        "locationId": "loc-sj",
        "phoneNumber": "+14085550001,+14085550002",
        "licenseType": "Webex Calling Professional",
    }
    await provider.aclose()


# --- paging ------------------------------------------------------------------------------


async def test_start_max_is_the_fallback_when_full_pages_come_without_a_link():
    def handler(request: httpx.Request) -> httpx.Response:
        start = int(request.url.params.get("start", "0"))
        remaining = [f"+1408555{n:04d}" for n in range(5)][start : start + 2]
        return httpx.Response(200, json=numbers_page(*remaining))

    provider, _, seen = make_provider(handler, page_size=2)
    offers = await provider.search(SearchQuery(country="US"))
    assert len(offers) == 5
    assert [r.url.params.get("start") for r in seen] == [None, "2", "4"]
    await provider.aclose()


async def test_a_next_link_to_another_host_is_not_followed_with_the_token():
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.host == "webexapis.com", "the bearer token went to another host"
        if request.url.params.get("start") is None:
            link = '<https://evil.invalid/v1/telephony/config/people/primary/availableNumbers?start=2&max=2>; rel="next"'
            return httpx.Response(
                200, json=numbers_page("+14085550001", "+14085550002"), headers={"Link": link}
            )
        return httpx.Response(200, json=numbers_page("+14085550003"))

    provider, _, seen = make_provider(handler, page_size=2)
    offers = await provider.search(SearchQuery(country="US"))
    assert [o.numbers[0] for o in offers] == ["+14085550001", "+14085550002", "+14085550003"]
    assert {r.url.host for r in seen} == {"webexapis.com"}
    await provider.aclose()


async def test_paging_stops_after_a_bounded_number_of_pages():
    def handler(request: httpx.Request) -> httpx.Response:
        start = int(request.url.params.get("start", "0"))
        link = f'<{API}/telephony/config/people/primary/availableNumbers?start={start + 1}&max=1>; rel="next"'
        return httpx.Response(200, json=numbers_page(f"+1408555{start:04d}"), headers={"Link": link})

    provider, _, seen = make_provider(handler, page_size=1)
    offers = await provider.search(SearchQuery(country="US"))
    assert len(seen) == 50 and len(offers) == 50
    await provider.aclose()


# --- throttling and retries -----------------------------------------------------------------


def throttled_then_ok(statuses: list[tuple[int, dict]]):
    answers = list(statuses)

    def handler(request: httpx.Request) -> httpx.Response:
        if answers:
            status, headers = answers.pop(0)
            return httpx.Response(status, json=error_body("Too many requests"), headers=headers)
        return httpx.Response(200, json=numbers_page("+14085550001"))

    return handler


@pytest.mark.parametrize(
    "status, headers, expected_wait",
    [
        (429, {"Retry-After": "3"}, 3.0),
        (429, {}, 5.0),  # Webex's default when the header is absent
        (429, {"Retry-After": "3600"}, 60.0),  # capped at max_wait
        (423, {"Retry-After": "2"}, 2.0),
        (423, {}, 5.0),
    ],
)
async def test_throttling_is_waited_out_per_retry_after(status, headers, expected_wait):
    provider, sleep, seen = make_provider(throttled_then_ok([(status, headers)]))
    offers = await provider.search(SearchQuery(country="US"))
    assert [o.numbers[0] for o in offers] == ["+14085550001"]
    assert sleep.waits == [expected_wait]
    assert len(seen) == 2
    await provider.aclose()


async def test_retry_after_as_an_http_date_is_waited_until_that_time():
    when = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=20), usegmt=True)
    provider, sleep, _ = make_provider(throttled_then_ok([(429, {"Retry-After": when})]))
    await provider.search(SearchQuery(country="US"))
    assert len(sleep.waits) == 1 and 17.0 <= sleep.waits[0] <= 20.0
    await provider.aclose()


async def test_throttling_gives_up_after_max_attempts_with_a_clear_message():
    provider, sleep, seen = make_provider(
        lambda r: httpx.Response(429, json=error_body("Too many requests"), headers={"Retry-After": "1"}),
        max_attempts=4,
    )
    with pytest.raises(ProviderUnavailable) as info:
        await provider.search(SearchQuery(country="US"))
    assert len(seen) == 4 and sleep.waits == [1.0, 1.0, 1.0]
    text = str(info.value)
    assert "rate-limiting" in text and "after 4 attempts" in text and "listing available numbers" in text
    await provider.aclose()


async def test_server_errors_on_reads_are_retried_with_backoff():
    answers = [503, 502]

    def handler(request: httpx.Request) -> httpx.Response:
        if answers:
            return httpx.Response(answers.pop(0), json=error_body("busy"))
        return httpx.Response(200, json=numbers_page("+14085550001"))

    provider, sleep, seen = make_provider(handler)
    assert len(await provider.search(SearchQuery(country="US"))) == 1
    assert sleep.waits == [0.5, 1.0] and len(seen) == 3
    await provider.aclose()


async def test_timeouts_on_reads_are_retried_then_reported():
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    provider, sleep, seen = make_provider(handler, max_attempts=3)
    with pytest.raises(ProviderUnavailable, match="timed out 3 times"):
        await provider.search(SearchQuery(country="US"))
    assert len(seen) == 3 and len(sleep.waits) == 2
    await provider.aclose()


# --- the error table -------------------------------------------------------------------------

# status → (exception class, words the user must see, requests sent with max_attempts=3)
ERROR_TABLE = [
    (400, ProviderError, ["invalid", "Invalid locationId"], 1),
    (401, ProviderAuthError, ["access token is missing, wrong or expired"], 1),
    (403, ProviderAuthError, ["not allowed", "spark-admin:telephony_config_read"], 1),
    (404, ProviderError, ["no such resource"], 1),
    (405, ProviderError, ["method"], 1),
    (409, ProviderError, ["conflict"], 1),
    (410, ProviderError, ["gone"], 1),
    (415, ProviderError, ["media type"], 1),
    (423, ProviderUnavailable, ["locked", "after 3 attempts"], 3),
    (428, ProviderError, ["precondition"], 1),
    (429, ProviderUnavailable, ["rate-limiting", "after 3 attempts"], 3),
    (500, ProviderUnavailable, ["internal error"], 3),
    (502, ProviderUnavailable, ["gateway"], 3),
    (503, ProviderUnavailable, ["overloaded"], 3),
    (504, ProviderUnavailable, ["did not answer in time", "smaller page size (max)"], 3),
]


@pytest.mark.parametrize(
    "status, error_class, words, sent", ERROR_TABLE, ids=[str(row[0]) for row in ERROR_TABLE]
)
async def test_every_documented_status_becomes_a_clear_error(status, error_class, words, sent):
    description = "Invalid locationId" if status == 400 else f"Webex says {status}"
    provider, _, seen = make_provider(
        lambda r: httpx.Response(status, json=error_body(description, "ROUTER_track-42", code=4000 + status)),
        max_attempts=3,
    )
    with pytest.raises(ProviderError) as info:
        await provider.search(SearchQuery(country="US"))
    err = info.value
    assert type(err) is error_class
    assert err.status == status and err.code == str(4000 + status)
    text = str(err)
    for word in words:
        assert word.lower() in text.lower()
    assert description in text and "(tracking id ROUTER_track-42)" in text
    assert TOKEN not in text and TOKEN not in repr(err)
    assert len(seen) == sent
    await provider.aclose()


async def test_an_error_without_webex_shape_still_reads_well_and_names_our_tracking_id():
    provider, _, seen = make_provider(lambda r: httpx.Response(404, text="<html>nope</html>"))
    with pytest.raises(ProviderError) as info:
        await provider.search(SearchQuery(country="US"))
    assert "no such resource" in str(info.value)
    assert seen[0].headers["TrackingID"] in str(info.value)
    await provider.aclose()


async def test_the_token_never_appears_in_error_text_even_when_the_server_echoes_it():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json=error_body(f"bad header {request.headers['Authorization']}"))

    provider, _, _ = make_provider(handler)
    with pytest.raises(ProviderError) as info:
        await provider.search(SearchQuery(country="US"))
    assert TOKEN not in str(info.value) and "[redacted]" in str(info.value)
    assert TOKEN not in repr(provider)
    await provider.aclose()


async def test_check_names_the_token_owner_and_refuses_a_bad_token():
    provider, _, seen = make_provider(
        lambda r: httpx.Response(200, json={**PERSON, "displayName": "Numbers Admin"})
    )
    assert await provider.check() == "token ok (Numbers Admin)"
    assert seen[0].url.path == "/v1/people/me"
    await provider.aclose()

    provider, _, _ = make_provider(
        lambda r: httpx.Response(401, json=error_body("The request requires a valid access token"))
    )
    with pytest.raises(ProviderAuthError, match="missing, wrong or expired"):
        await provider.check()
    await provider.aclose()


async def test_poll_says_there_is_nothing_to_poll():
    provider, _, seen = make_provider(lambda r: httpx.Response(500))
    with pytest.raises(ProviderError, match="nothing to poll"):
        await provider.poll(assign_job(), {})
    assert seen == []
    await provider.aclose()


async def test_prepare_refuses_a_requester_without_email_before_asking_webex():
    provider, _, seen = make_provider(lambda r: httpx.Response(500))
    with pytest.raises(NotAllowed, match="your Slack profile has no e-mail address"):
        await provider.prepare(None, 1, Requester("U1", None))  # type: ignore[arg-type]
    assert seen == []
    await provider.aclose()


# --- the assignment PUT -----------------------------------------------------------------------


def assignment_server(put_answer):
    """GET person → PERSON; availableNumbers → the number; PUT → ``put_answer(request)``."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "PUT":
            return put_answer(request)
        if request.url.path.endswith("/availableNumbers"):
            return httpx.Response(200, json=numbers_page(request.url.params["phoneNumber"]))
        return httpx.Response(200, json=PERSON)

    return handler


async def test_assignment_sends_the_whole_person_back_with_the_work_number():
    provider, _, seen = make_provider(
        assignment_server(lambda r: httpx.Response(200, json=json.loads(r.content)))
    )
    assert await provider.submit(assign_job()) == Done(["+14085550101"])
    put = seen[-1]
    assert put.method == "PUT" and put.url.path == f"/v1/people/{PERSON['id']}"
    assert put.url.params["callingData"] == "true"
    body = json.loads(put.content)
    # Everything the person has, less the read-only fields (id, created: as wxc_sdk leaves them out).
    assert body == {
        **{k: v for k, v in PERSON.items() if k not in ("id", "created")},
        "phoneNumbers": [
            {"type": "mobile", "value": "+14085559001"},
            {"type": "work", "value": "+14085550101"},
        ],
        "locationId": "loc-sj",
    }
    await provider.aclose()


@pytest.mark.parametrize("status", [400, 409])
async def test_a_refused_put_is_a_provider_error_in_webexs_words(status):
    provider, _, seen = make_provider(
        assignment_server(
            lambda r: httpx.Response(status, json=error_body("Phone number is already assigned"))
        )
    )
    with pytest.raises(ProviderError) as info:
        await provider.submit(assign_job())
    assert not isinstance(info.value, OutcomeUnknown)
    assert "Phone number is already assigned" in str(info.value)
    assert sum(r.method == "PUT" for r in seen) == 1
    await provider.aclose()


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_a_put_answered_with_a_server_error_is_an_unknown_outcome_never_resent(status):
    provider, sleep, seen = make_provider(
        assignment_server(lambda r: httpx.Response(status, json=error_body("oops")))
    )
    with pytest.raises(OutcomeUnknown, match="may or may not have applied"):
        await provider.submit(assign_job())
    assert sum(r.method == "PUT" for r in seen) == 1 and sleep.waits == []
    await provider.aclose()


@pytest.mark.parametrize(
    "exc", [httpx.ReadTimeout("slow"), httpx.ReadError("connection reset"), httpx.RemoteProtocolError("eof")]
)
async def test_a_put_lost_in_transit_is_an_unknown_outcome(exc):
    def put_answer(request: httpx.Request) -> httpx.Response:
        raise exc

    provider, _, seen = make_provider(assignment_server(put_answer))
    with pytest.raises(OutcomeUnknown):
        await provider.submit(assign_job())
    assert sum(r.method == "PUT" for r in seen) == 1
    await provider.aclose()


async def test_a_put_that_never_left_is_unavailable_not_unknown():
    def put_answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    provider, _, _ = make_provider(assignment_server(put_answer), max_attempts=2)
    with pytest.raises(ProviderUnavailable) as info:
        await provider.submit(assign_job())
    assert not isinstance(info.value, OutcomeUnknown)
    await provider.aclose()


async def test_a_throttled_put_is_sent_again_after_the_wait():
    answers = [httpx.Response(429, json=error_body("slow down"), headers={"Retry-After": "2"})]

    def put_answer(request: httpx.Request) -> httpx.Response:
        return answers.pop(0) if answers else httpx.Response(200, json=json.loads(request.content))

    provider, sleep, seen = make_provider(assignment_server(put_answer))
    assert await provider.submit(assign_job()) == Done(["+14085550101"])
    assert sleep.waits == [2.0] and sum(r.method == "PUT" for r in seen) == 2
    await provider.aclose()
