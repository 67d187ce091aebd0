"""The HTTP plumbing every adapter shares: bounded in-flight requests, Retry-After, bounded read retries,
changes sent once, a status classed as its error."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest

from bot.domain.errors import OutcomeUnknown, ProviderAuthError, ProviderError, ProviderUnavailable
from bot.providers._http import (
    BoundedClient,
    bounded_client,
    parse_retry_after,
    provider_error,
    send_once,
    send_read,
    spend_error_class,
    status_class,
)


async def test_at_most_max_in_flight_requests_reach_the_pool():
    in_flight = peak = 0

    async def handler(request):
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return httpx.Response(200, json={"ok": True})

    async with BoundedClient(transport=httpx.MockTransport(handler), max_in_flight=3) as client:
        answers = await asyncio.gather(*(client.get(f"http://provider.test/{i}") for i in range(20)))
    assert [a.status_code for a in answers] == [200] * 20
    assert peak == 3


async def test_a_failing_request_gives_its_slot_back():
    async def handler(request):
        raise httpx.ConnectError("refused", request=request)

    async with BoundedClient(transport=httpx.MockTransport(handler), max_in_flight=1) as client:
        for _ in range(3):
            with pytest.raises(httpx.ConnectError):
                await client.get("http://provider.test/")


NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "value,expected",
    [
        ("3", 3.0),
        ("0.5", 0.5),
        ("-4", 0.0),
        (format_datetime(NOW + timedelta(seconds=30), usegmt=True), 30.0),
        (format_datetime(NOW - timedelta(seconds=30), usegmt=True), 0.0),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_in_seconds_or_as_a_date(value, expected):
    assert parse_retry_after(value, now=NOW) == expected


async def test_reads_retry_then_say_what_failed():
    calls = []
    waits = []

    async def handler(request):
        calls.append(request)
        return httpx.Response(503 if len(calls) < 3 else 200, headers={"Retry-After": "2"})

    async def sleep(seconds):
        waits.append(seconds)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        answer = await send_read(client, client.build_request("GET", "http://p.test/x"), provider="p", sleep=sleep)
    assert answer.status_code == 200 and len(calls) == 3 and waits == [2.0, 2.0]

    async def down(request):
        raise httpx.ConnectTimeout("slow", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(down)) as client:
        with pytest.raises(ProviderUnavailable, match="GET /x timed out after 4 attempts"):
            await send_read(client, client.build_request("GET", "http://p.test/x"), provider="p", sleep=sleep)


async def test_a_change_is_sent_once_and_a_lost_answer_is_an_unknown_outcome():
    calls = []

    def lost(exc):
        return f"the buy {'timed out' if isinstance(exc, httpx.TimeoutException) else 'broke'}"

    async def slow(request):
        calls.append(request)
        raise httpx.ReadTimeout("slow", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(slow)) as client:
        with pytest.raises(OutcomeUnknown, match="the buy timed out"):
            await send_once(client, client.build_request("POST", "http://p.test/buy"), provider="p", lost=lost)
    assert len(calls) == 1  # never retried

    async def refused(request):
        calls.append(request)
        raise httpx.ConnectError("refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refused)) as client:
        # Nothing left: with ``unsent`` that is certain, so the provider is only unavailable.
        with pytest.raises(ProviderUnavailable, match="nothing was sent"):
            await send_once(client, client.build_request("POST", "http://p.test/buy"), provider="p", lost=lost,
                            unsent="nothing was sent")
        # Without it the adapter's words for an unknown outcome stand.
        with pytest.raises(OutcomeUnknown, match="the buy broke"):
            await send_once(client, client.build_request("POST", "http://p.test/buy"), provider="p", lost=lost)
    assert len(calls) == 3


@pytest.mark.parametrize(
    "status, auth_failed, expected",
    [(401, False, ProviderAuthError), (403, False, ProviderAuthError), (400, True, ProviderAuthError),
     (429, False, ProviderUnavailable), (503, False, ProviderUnavailable), (404, False, ProviderError)],
)
def test_a_status_is_classed_as_its_error(status, auth_failed, expected):
    assert status_class(status, auth_failed=auth_failed) is expected
    response = httpx.Response(status, headers={"Retry-After": "7"}, request=httpx.Request("GET", "http://p.test/x"))
    error = provider_error("p", response, "no", code=21, auth_failed=auth_failed, check="P_TOKEN")
    assert type(error) is expected and error.status == status and error.code == "21" and error.retry_after == 7.0
    assert ("(check P_TOKEN)" in error.message) == (expected is ProviderAuthError)


def test_a_spending_calls_status_says_refused_or_unknown():
    assert spend_error_class(429) is ProviderUnavailable  # throttled: refused, nothing spent
    assert spend_error_class(500) is OutcomeUnknown and spend_error_class(504) is OutcomeUnknown
    assert spend_error_class(409) is None and spend_error_class(400) is None


async def test_every_adapter_client_is_bounded_and_says_who_it_is():
    seen = []

    async def handler(request):
        seen.append(request.headers)
        return httpx.Response(200)

    async with bounded_client(user_agent="numbers-bot (p)", timeout=3.0, transport=httpx.MockTransport(handler),
                              base_url="http://p.test/v1/") as client:
        assert isinstance(client, BoundedClient) and client.timeout.read == 3.0
        await client.get("x")
    assert seen[0]["user-agent"] == "numbers-bot (p)" and seen[0]["accept"] == "application/json"
