"""The HTTP plumbing every adapter shares: bounded in-flight requests, Retry-After, bounded read retries."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest

from bot.domain.errors import ProviderUnavailable
from bot.providers._http import BoundedClient, parse_retry_after, send_read


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
