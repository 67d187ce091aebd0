"""AcsProvider against the real service's recorded traffic (httpx.MockTransport).

Every replayed request is checked for a valid HMAC signature over exactly the
bytes sent, and the replay must be consumed completely.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.acs_recordings import (
    NUMBER_2021,
    NUMBER_2022,
    PURCHASE_STATUSES_2022,
    RELEASE_ID_2021,
    RELEASE_ID_2022,
    SEARCH_ID_2021,
    SEARCH_ID_2022,
    recording_2021,
    recording_2022,
    recording_bad_country,
)
from bot.domain.errors import OutcomeUnknown, ProviderError, ProviderUnavailable
from bot.providers.acs import AcsProvider, parse_acs_time
from bot.providers.base import Done, Failed, InProgress, Job, Requester, SearchQuery

ENDPOINT = "https://sanitized.communication.azure.com/"
# The recordings were replayed by the official SDK at 2021-03-07: the client speaks it when told to.
RECORDED_VERSION = "2021-03-07"
KEY = base64.b64encode(b"recorded-traffic test key, 32 b.").decode()
QUERY = SearchQuery(country="US", number_type="tollfree", prefix="833", quantity=1, sms=True, voice=True)
QUERY_BODY = {
    "phoneNumberType": "tollFree",
    "assignmentType": "application",
    "capabilities": {"calling": "inbound+outbound", "sms": "inbound+outbound"},
    "quantity": 1,
    "areaCode": "833",
}


def assert_signed(request: httpx.Request) -> None:
    body = request.content
    assert request.headers["x-ms-content-sha256"] == base64.b64encode(hashlib.sha256(body).digest()).decode()
    to_sign = (
        f"{request.method}\n{request.url.raw_path.decode()}\n"
        f"{request.headers['x-ms-date']};{request.url.netloc.decode()};{request.headers['x-ms-content-sha256']}"
    )
    signature = base64.b64encode(hmac.new(base64.b64decode(KEY), to_sign.encode(), hashlib.sha256).digest()).decode()
    assert request.headers["authorization"] == (
        f"HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={signature}"
    )


class Replay:
    """Answers each request with the next recorded response, after checking it is the recorded request."""

    def __init__(self, exchanges: list[dict[str, Any]]):
        self.pending = list(exchanges)
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert self.pending, f"unexpected request {request.method} {request.url}"
        expected = self.pending.pop(0)
        assert (request.method, request.url.raw_path.decode()) == (expected["method"], expected["path"])
        assert request.url.host == "sanitized.communication.azure.com"
        assert_signed(request)
        if expected["request_json"] is not None:
            assert json.loads(request.content) == expected["request_json"]
        self.seen.append(request)
        body = expected["body"]
        content = b"" if body is None else json.dumps(body).encode()
        return httpx.Response(expected["status"], headers=expected["headers"], content=content)


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
async def replay_provider(sleeps):
    made = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    def make(exchanges: list[dict[str, Any]]) -> tuple[AcsProvider, Replay]:
        replay = Replay(exchanges)
        provider = AcsProvider(ENDPOINT, KEY, api_version=RECORDED_VERSION, transport=httpx.MockTransport(replay), sleep=fake_sleep)
        made.append(provider)
        return provider, replay

    yield make
    for provider in made:
        await provider.aclose()


def job_for(offer) -> Job:
    return Job(
        request_id=1, provider="acs", kind="purchase", ref=dict(offer.ref), quantity=offer.quantity,
        numbers=list(offer.numbers), requester=Requester("U012ABC"),
    )


async def poll_to_end(provider: AcsProvider, job: Job, step):
    steps = []
    while isinstance(step, InProgress):
        step = await provider.poll(job, step.ref)
        steps.append(step)
        assert len(steps) < 50
    return steps


async def test_2021_recording_capitalised_values_null_cost_and_only_operation_location(replay_provider, sleeps):
    provider, replay = replay_provider(recording_2021(QUERY_BODY))

    [offer] = await provider.search(QUERY)
    assert offer.numbers == [NUMBER_2021]
    assert offer.unit_monthly_cost is None  # "cost": null
    assert offer.expires_at == datetime(2021, 2, 9, 23, 28, 47, 639385, tzinfo=timezone.utc)
    assert offer.ref == {"search_id": SEARCH_ID_2021}  # derived from the operation path: no search-id header
    assert offer.details["number_type"] == "tollFree"  # recorded as "TollFree"
    assert offer.details["assignment_type"] == "application"  # recorded as "Application"
    assert (offer.sms, offer.voice, offer.quantity, offer.max_quantity) == (True, True, 1, 1)
    assert sleeps == []  # the first poll already said "Succeeded"

    job = job_for(offer)
    step = await provider.submit(job)
    assert isinstance(step, InProgress)
    assert step.ref["operation_id"] == f"purchase_{SEARCH_ID_2021}"  # no operation-id header: derived
    assert step.ref["location"] == f"/phoneNumbers/operations/purchase_{SEARCH_ID_2021}?api-version=2021-03-07"
    assert await poll_to_end(provider, job, step) == [Done(numbers=[NUMBER_2021])]

    # The recorded 204 still names the release operation: followed, not taken as done.
    step = await provider.release(NUMBER_2021, {})
    assert isinstance(step, InProgress)
    assert step.ref["location"] == f"/phoneNumbers/operations/release_{RELEASE_ID_2021}?api-version=2021-03-07"
    assert step.ref["number"] == NUMBER_2021
    assert replay.pending == []


async def test_2022_recording_lower_camel_values_and_non_monotonic_purchase(replay_provider, sleeps):
    provider, replay = replay_provider(recording_2022(QUERY_BODY))

    [offer] = await provider.search(QUERY)
    assert offer.numbers == [NUMBER_2022]
    assert offer.unit_monthly_cost == Decimal("2.0") and isinstance(offer.unit_monthly_cost, Decimal)
    assert offer.currency == "USD"
    assert offer.expires_at == datetime(2022, 12, 8, 23, 25, 37, 199185, tzinfo=timezone.utc)
    assert offer.ref == {"search_id": SEARCH_ID_2022}
    assert sleeps == [2.0]  # one "notStarted", then the SDK's 2 s interval
    # The result was read from the Location header, api-version and all.
    assert replay.seen[3].url.params["api-version"] == "2022-01-11-preview2"

    job = job_for(offer)
    step = await provider.submit(job)
    assert step.ref["operation_id"] == f"purchase_{SEARCH_ID_2022}"
    steps = await poll_to_end(provider, job, step)
    assert [type(s).__name__ for s in steps] == ["InProgress"] * (len(PURCHASE_STATUSES_2022) - 1) + ["Done"]
    assert steps[-1] == Done(numbers=[NUMBER_2022])
    assert all(s.retry_after == 2.0 for s in steps[:-1])  # no Retry-After recorded: the poll interval

    step = await provider.release(NUMBER_2022, {})
    assert isinstance(step, InProgress) and step.ref["operation_id"] == f"release_{RELEASE_ID_2022}"
    steps = await poll_to_end(provider, job, step)
    assert steps[-1] == Done(numbers=[NUMBER_2022])
    assert replay.pending == []


async def test_recorded_bad_country_becomes_the_services_words_without_retry(replay_provider):
    provider, replay = replay_provider(recording_bad_country({**QUERY_BODY}))
    with pytest.raises(ProviderError) as caught:
        await provider.search(SearchQuery(country="XX", number_type="tollfree", prefix="833", sms=True, voice=True))
    err = caught.value
    assert (err.status, err.code) == (400, "InvalidInput")
    assert str(err) == "acs said (400, InvalidInput): Unable to parse country code. (target: countrycode)"
    assert len(replay.seen) == 1 and replay.pending == []


# --- header and value variants ----------------------------------------------------

SID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
OP_PATH = f"/phoneNumbers/operations/search_{SID}?api-version=2021-03-07"


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param([("operation-location", OP_PATH)], id="lower-case-operation-location-only"),
        pytest.param([("OPERATION-LOCATION", OP_PATH), ("Operation-Id", f"search_{SID}")], id="upper-case"),
        pytest.param([("Operation-Location", f"https://sanitized.communication.azure.com{OP_PATH}")], id="absolute"),
        pytest.param([("operation-id", f"search_{SID}")], id="operation-id-only"),
        pytest.param(
            [("Operation-Location", f"/phoneNumbers/operations/search_{SID}"), ("search-id", SID)],
            id="location-without-api-version",
        ),
    ],
)
@pytest.mark.parametrize("status_text", ["Succeeded", "succeeded", "SUCCEEDED"])
async def test_search_follows_any_operation_header_shape(replay_provider, headers, status_text):
    exchanges = [
        {"method": "POST", "path": "/availablePhoneNumbers/countries/US/:search?api-version=2021-03-07",
         "status": 202, "headers": [("Content-Length", "0"), *headers], "body": None, "request_json": QUERY_BODY},
        {"method": "GET", "path": OP_PATH, "status": 200, "headers": [], "request_json": None,
         "body": {"status": status_text, "id": "sanitized", "resourceLocation": None}},
        {"method": "GET", "path": f"/availablePhoneNumbers/searchResults/{SID}?api-version=2021-03-07",
         "status": 200, "headers": [], "request_json": None,
         "body": {"searchId": SID, "phoneNumbers": ["+18335550100"], "phoneNumberType": "tollFree",
                  "capabilities": {"calling": "inbound+outbound", "sms": "none"},
                  "searchExpiresBy": "2024-05-01T10:00:00.1234567Z"}},
    ]
    provider, replay = replay_provider(exchanges)
    [offer] = await provider.search(QUERY)
    assert offer.ref == {"search_id": SID}
    assert offer.unit_monthly_cost is None  # cost missing altogether
    assert (offer.sms, offer.voice) == (False, True)
    assert offer.expires_at == datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=timezone.utc)
    assert replay.pending == []


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2021-02-09T23:28:47.6393852+00:00", datetime(2021, 2, 9, 23, 28, 47, 639385, tzinfo=timezone.utc)),
        ("2020-11-19T16:31:49.048Z", datetime(2020, 11, 19, 16, 31, 49, 48000, tzinfo=timezone.utc)),
        ("2022-12-08T23:25:37.1991858+01:00", datetime(2022, 12, 8, 22, 25, 37, 199185, tzinfo=timezone.utc)),
        ("2022-12-08T23:25:37", datetime(2022, 12, 8, 23, 25, 37, tzinfo=timezone.utc)),
        ("not a time", None),
        (None, None),
    ],
)
def test_acs_timestamps_become_aware_utc(text, expected):
    parsed = parse_acs_time(text)
    assert parsed == expected
    if parsed is not None:
        assert parsed.utcoffset().total_seconds() == 0


def _search_then(operation_bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    exchanges = [
        {"method": "POST", "path": "/availablePhoneNumbers/countries/US/:search?api-version=2021-03-07",
         "status": 202, "headers": [("operation-location", OP_PATH)], "body": None, "request_json": None},
    ]
    for body in operation_bodies:
        exchanges.append({"method": "GET", "path": OP_PATH, "status": 200, "headers": [], "body": body,
                          "request_json": None})
    return exchanges


async def test_failed_search_operation_reports_the_services_message(replay_provider):
    provider, _ = replay_provider(_search_then([
        {"status": "Running"},
        {"status": "Failed", "error": {"code": "InternalError", "message": "Phone number inventory is unavailable."}},
    ]))
    with pytest.raises(ProviderError) as caught:
        await provider.search(QUERY)
    assert caught.value.code == "InternalError"
    assert "Phone number inventory is unavailable." in str(caught.value)


async def test_search_with_no_numbers_left_is_an_empty_answer(replay_provider):
    provider, _ = replay_provider(_search_then([
        {"status": "failed", "error": {"code": "NoAvailableNumbers", "message": "No tollFree numbers are available."}},
    ]))
    assert await provider.search(QUERY) == []


async def test_search_gives_up_after_search_timeout(sleeps):
    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(202, headers={"operation-location": OP_PATH})
        return httpx.Response(200, json={"status": "notStarted"})

    provider = AcsProvider(ENDPOINT, KEY, api_version=RECORDED_VERSION, transport=httpx.MockTransport(handler), sleep=fake_sleep,
                           search_timeout=10, poll_interval=2)
    with pytest.raises(ProviderUnavailable, match="did not finish within 10 seconds"):
        await provider.search(QUERY)
    assert sum(sleeps) <= 10 and len(sleeps) == 5
    await provider.aclose()


@pytest.mark.parametrize(
    "response, expected",
    [
        (httpx.Response(500, json={"error": {"code": "InternalServerError", "message": "boom"}}), OutcomeUnknown),
        (httpx.Response(503), OutcomeUnknown),
        (
            httpx.Response(400, json={"error": {"code": "InvalidInput", "message": "searchId is invalid."}}),
            ProviderError,
        ),
        (httpx.Response(429, headers={"Retry-After": "30"}), ProviderUnavailable),
    ],
)
async def test_purchase_answers_map_to_definite_or_unknown_outcomes(response, expected):
    posts = []

    def handler(request: httpx.Request) -> httpx.Response:
        posts.append(request)
        return response

    provider = AcsProvider(ENDPOINT, KEY, api_version=RECORDED_VERSION, transport=httpx.MockTransport(handler))
    job = Job(1, "acs", "purchase", {"search_id": SID}, 1, ["+18335550100"], Requester("U1"))
    with pytest.raises(ProviderError) as caught:
        await provider.submit(job)
    assert type(caught.value) is expected
    assert len(posts) == 1  # a spending call is never repeated
    if response.status_code == 429:
        assert caught.value.retry_after == 30
    await provider.aclose()


async def test_failed_purchase_operation_becomes_failed_with_its_message():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={
            "status": "Failed", "operationType": "Purchase",
            "error": {"code": "PurchaseFailed", "message": "Payment method declined."},
        })

    provider = AcsProvider(ENDPOINT, KEY, api_version=RECORDED_VERSION, transport=httpx.MockTransport(handler))
    job = Job(1, "acs", "purchase", {"search_id": SID}, 1, ["+18335550100"], Requester("U1"))
    assert await provider.poll(job, {"operation_id": f"purchase_{SID}"}) == Failed(reason="Payment method declined.")
    assert await provider.recover(job) == Failed(reason="Payment method declined.")
    await provider.aclose()
