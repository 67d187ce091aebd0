"""Recorded answers of the current services (the APIs as they are now, not as the first version knew them),
replayed through our clients with httpx.MockTransport.

* ACS 2025-06-01: the purchase refused for a missing do-not-resell agreement
  (French toll-free), and 2023-10-01-preview's consent refusal with its target;
* ACS: a search that finds nothing answered as success with an empty list (azure-sdk-for-js #22415);
* Plivo: plivo-python's fixtures of the PhoneNumber search and buy and of the
  account's numbers (``reference/plivo/``), when the shared folder is present.
"""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from bot.domain.errors import ProviderError
from bot.providers.acs import AcsProvider
from bot.domain.offers import SearchQuery
from bot.domain.steps import Done, Job, Requester
from bot.providers.plivo_numbers import PlivoNumbersProvider

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
PLIVO_REFERENCE = SHARED / "reference" / "plivo"
ENDPOINT = "https://sanitized.communication.azure.com/"
KEY = base64.b64encode(b"recorded-traffic test key, 32 b.").decode()
AUTH_ID = "MANWVLYTK4ZWU1YTY4ZT"  # the fixtures' account
TOKEN = "recorded-fixture-token-0000000000000000"

AGREEMENT_REFUSAL = {
    "error": {
        "code": "BadRequest",
        "message": "Do not resell agreement was not provided and it is required for this purchase.",
    }
}
CONSENT_REFUSAL = {
    "error": {
        "code": "BadRequest",
        "message": "Consent not provided to not resell the phone numbers",
        "target": "isconsentprovided",
    }
}


def purchase_job(ref: dict) -> Job:
    return Job(1, "acs", "purchase", ref, 1, ["+33805990000"], Requester("U1"), approved_by=["UAPPROVER1"])


@pytest.mark.parametrize(
    "answer, words",
    [
        (AGREEMENT_REFUSAL, "Do not resell agreement was not provided and it is required for this purchase."),
        (CONSENT_REFUSAL, "Consent not provided to not resell the phone numbers (target: isconsentprovided)"),
    ],
)
async def test_acs_refusal_for_a_missing_agreement_reads_in_the_services_words(answer, words):
    sent: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.params["api-version"] == "2025-06-01"
        sent.append(json.loads(request.content))
        return httpx.Response(400, json=answer)

    provider = AcsProvider(ENDPOINT, KEY, transport=httpx.MockTransport(handler))
    with pytest.raises(ProviderError) as info:
        await provider.submit(purchase_job({"search_id": "s-1"}))
    assert str(info.value).endswith(words)
    assert info.value.status == 400
    assert sent == [{"searchId": "s-1", "agreeToNotResell": False}]
    await provider.aclose()


async def test_acs_search_answered_with_success_and_no_numbers_is_no_offer():
    op = "/phoneNumbers/operations/search_e1?api-version=2025-06-01"
    results = "/availablePhoneNumbers/searchResults/e1?api-version=2025-06-01"

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.raw_path.decode()
        if request.method == "POST":
            return httpx.Response(202, headers={"operation-location": op, "location": results, "operation-id": "search_e1"})
        if path == op:
            return httpx.Response(200, json={"id": "search_e1", "operationType": "search", "status": "succeeded",
                                             "resourceLocation": results})
        assert path == results
        return httpx.Response(200, json={"searchId": "e1", "phoneNumbers": [], "phoneNumberType": "tollFree",
                                         "assignmentType": "application", "isAgreementToNotResellRequired": False,
                                         "capabilities": {"calling": "inbound", "sms": "none"}})

    provider = AcsProvider(ENDPOINT, KEY, transport=httpx.MockTransport(handler))
    assert await provider.search(SearchQuery("US", "tollfree", "888")) == []
    await provider.aclose()


def _fixture(name: str) -> dict:
    path = PLIVO_REFERENCE / name
    if not path.exists():
        pytest.skip(f"the shared Plivo reference {name} is not present")
    return json.loads(path.read_text())


def plivo_with(handler) -> PlivoNumbersProvider:
    return PlivoNumbersProvider(AUTH_ID, TOKEN, transport=httpx.MockTransport(handler))


async def test_plivo_recorded_search_becomes_offers_with_costs_and_restriction_fields():
    listing = _fixture("phoneNumberListResponse.json")
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=listing)

    provider = plivo_with(handler)
    offers = await provider.search(SearchQuery("US", "local", "415", sms=True))
    assert [o.numbers for o in offers] == [[f"+{o['number']}"] for o in listing["objects"]]
    assert offers[0].unit_monthly_cost == Decimal("0.80000") and offers[0].unit_setup_cost == Decimal("0.00000")
    assert offers[0].kind == "purchase" and offers[0].ref == {"number": "14154009186"}
    [request] = seen
    assert request.url.path == f"/v1/Account/{AUTH_ID}/PhoneNumber/"
    assert dict(request.url.params) == {"country_iso": "US", "type": "local", "limit": "20", "pattern": "415",
                                        "services": "sms", "offset": "0"}
    await provider.aclose()


async def test_plivo_recorded_buy_is_done_and_a_recorded_number_answers_recovery():
    created = _fixture("phoneNumberCreateResponse.json")
    held = _fixture("numberListResponse.json")["objects"][0]
    number = held["number"]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            assert request.url.path == f"/v1/Account/{AUTH_ID}/PhoneNumber/14154009186/"
            return httpx.Response(201, json=created)
        assert request.url.path == f"/v1/Account/{AUTH_ID}/Number/{number}/"
        return httpx.Response(200, json=held)

    provider = plivo_with(handler)
    job = Job(1, "plivo", "purchase", {"number": "14154009186"}, 1, ["+14154009186"], Requester("U1"))
    assert await provider.submit(job) == Done(numbers=["+14154009186"])
    recovered = Job(2, "plivo", "purchase", {"number": number}, 1, [f"+{number}"], Requester("U1"))
    assert await provider.recover(recovered) == Done(numbers=[f"+{number}"])
    await provider.aclose()
