"""PlivoNumbersProvider's answers to each shape Plivo's PhoneNumber buy and Number look-up can take."""

from __future__ import annotations

import httpx
import pytest

from bot.domain.errors import OutcomeUnknown, ProviderError, UsageError
from bot.domain.offers import OfferDraft, SearchQuery
from bot.domain.steps import Done, Failed, Job, ProviderPending, Requester
from bot.providers.plivo import PlivoProvider
from bot.providers.plivo_numbers import PlivoNumbersProvider, plivo_provider

AUTH_ID = "MAAAAAAAAAAAAAAAAAAA"
TOKEN = "token-for-tests-only-000000000000000000"
JOB = Job(1, "plivo", "purchase", {"number": "4930991234"}, 1, ["+4930991234"], Requester("U1"))


def provider_answering(status: int, body=None, *, app_id: str | None = None) -> tuple[PlivoNumbersProvider, list]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if body is None:
            return httpx.Response(status)
        return httpx.Response(status, json=body)

    return PlivoNumbersProvider(AUTH_ID, TOKEN, app_id=app_id, transport=httpx.MockTransport(handler)), seen


async def test_a_pending_number_is_provider_pending_with_plivos_words_never_failed():
    provider, seen = provider_answering(
        201, {"api_id": "a", "message": "created", "numbers": [{"number": "4930991234", "status": "pending"}],
              "status": "pending"}, app_id="12345",
    )
    step = await provider.submit(JOB)
    assert isinstance(step, ProviderPending) and "+4930991234" in step.details and "pending" in step.details
    assert seen[0].method == "POST" and seen[0].url.path.endswith("/PhoneNumber/4930991234/")
    assert seen[0].content == b'{"app_id":"12345"}'


async def test_a_number_plivo_did_not_sell_fails_with_its_status():
    provider, _ = provider_answering(201, {"numbers": [{"number": "4930991234", "status": "Failed"}], "status": "failed"})
    assert await provider.submit(JOB) == Failed("Plivo did not sell +4930991234: failed")


@pytest.mark.parametrize("status, body", [(201, {"message": "created"}), (201, None), (500, {"error": "oops"})])
async def test_an_answer_that_does_not_tell_is_an_unknown_outcome(status, body):
    provider, _ = provider_answering(status, body)
    with pytest.raises(OutcomeUnknown):
        await provider.submit(JOB)


async def test_a_refusal_is_a_provider_error_in_plivos_words():
    provider, _ = provider_answering(404, {"api_id": "a", "error": "Number 4930991234 is not available for purchase"})
    with pytest.raises(ProviderError, match="not available for purchase") as info:
        await provider.submit(JOB)
    assert not isinstance(info.value, OutcomeUnknown)


async def test_recovery_404_means_not_bought_and_an_inactive_number_is_pending():
    provider, seen = provider_answering(404, {"error": "not found"})
    assert await provider.recover(JOB) is None
    assert seen[0].method == "GET" and seen[0].url.path.endswith("/Number/4930991234/")
    provider, _ = provider_answering(200, {"number": "4930991234", "active": False, "compliance_status": "pending"})
    assert isinstance(await provider.recover(JOB), ProviderPending)
    provider, _ = provider_answering(200, {"number": "4930991234", "active": True})
    assert await provider.recover(JOB) == Done(numbers=["+4930991234"])
    provider, _ = provider_answering(200, {"number": "1555"})
    with pytest.raises(OutcomeUnknown):
        await provider.recover(JOB)


async def test_one_number_per_request_and_a_pattern_of_digits():
    provider, _ = provider_answering(200, {"objects": [], "meta": {}})
    offer = OfferDraft("plivo", "purchase", ["+14155550100"], None)
    with pytest.raises(UsageError, match="one at a time"):
        await provider.prepare(offer, 2, Requester("U1"))
    with pytest.raises(UsageError, match="pattern of digits"):
        await provider.search(SearchQuery("US", "local", "41a"))


def test_plivo_api_picks_the_adapter():
    assert type(plivo_provider(AUTH_ID, TOKEN)) is PlivoNumbersProvider
    assert type(plivo_provider(AUTH_ID, TOKEN, api="groups")) is PlivoProvider
    with pytest.raises(UsageError):
        plivo_provider(AUTH_ID, TOKEN, api="both")
