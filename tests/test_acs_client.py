"""AcsProvider through its public methods against the simulated ACS service
over the real HTTP protocol (httpx.ASGITransport), plus request signing."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest

from bot.domain.errors import (
    HoldExpired,
    ConfigError,
    OutcomeUnknown,
    ProviderAuthError,
    ProviderError,
    ProviderUnavailable,
    UsageError,
)
from bot.providers.acs import (
    EMPTY_BODY_HASH,
    AcsAuth,
    AcsProvider,
    compute_signature,
    content_hash,
    parse_connection_string,
)
from bot.providers.base import Done, Failed, InProgress, Job, OfferDraft, Provider, Requester, SearchQuery
from bot.sandbox.acs import (
    SANDBOX_ACS_ACCESS_KEY,
    SANDBOX_ACS_ENDPOINT,
    create_acs_sandbox,
    sandbox_connection_string,
)

PURCHASE = r"^/availablePhoneNumbers/:purchase$"
OPERATIONS = r"^/phoneNumbers/operations/"
WRONG_KEY = base64.b64encode(b"definitely not the sandbox key!!").decode()


@pytest.fixture
def app():
    return create_acs_sandbox()


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
async def make_provider(app, sleeps):
    """Providers whose sleeps are recorded and move the sandbox clock instead of waiting."""
    made = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        app.clock.advance(seconds)

    def make(**kw) -> AcsProvider:
        kw.setdefault("transport", httpx.ASGITransport(app=app))
        kw.setdefault("sleep", fake_sleep)
        endpoint = kw.pop("endpoint", SANDBOX_ACS_ENDPOINT)
        provider = AcsProvider(endpoint, kw.pop("access_key", SANDBOX_ACS_ACCESS_KEY), **kw)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.aclose()


@pytest.fixture
def provider(make_provider) -> AcsProvider:
    return make_provider()


def job_for(offer: OfferDraft) -> Job:
    return Job(
        request_id=7, provider="acs", kind="purchase", ref=dict(offer.ref), quantity=offer.quantity,
        numbers=list(offer.numbers), requester=Requester("U012ABC", "ann@example.com"),
    )


async def poll_to_end(provider: AcsProvider, job: Job, step) -> list:
    steps = []
    while isinstance(step, InProgress):
        step = await provider.poll(job, step.ref)
        steps.append(step)
        assert len(steps) < 20
    return steps


async def search_one(provider: AcsProvider, **kw) -> OfferDraft:
    [offer] = await provider.search(SearchQuery(**{"country": "US", "number_type": "tollfree", "prefix": "833", **kw}))
    return offer


# --- signing ---------------------------------------------------------------------------

SIGNING_KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="  # base64("0123456789abcdef0123456789abcdef")
SIGNING_DATE = datetime(2022, 12, 8, 23, 9, 33, tzinfo=timezone.utc)
# The request body recorded by the Azure SDK (131 bytes), with the hash the SDK sent for it.
RECORDED_BODY = (
    b'{"phoneNumberType": "tollFree", "assignmentType": "application", '
    b'"capabilities": {"calling": "inbound", "sms": "inbound+outbound"}}'
)


@pytest.mark.parametrize(
    "body, expected",
    [
        (b"", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="),
        (RECORDED_BODY, "ecyowPPqS6i2jEjg4ZPaHAki9yDR8IHa8lF+VXRefVM="),
        (b'{"searchId": "8c02bbe5-42c9-46f3-bcda-56bc547f1dee"}', "0KsYU0jki/uCZkTES6HsyTmkhxqcr6Ka9p9Ilx98Bi8="),
    ],
)
def test_content_hash_matches_the_hashes_in_recorded_traffic(body, expected):
    assert content_hash(body) == expected


@pytest.mark.parametrize(
    "method, url, body, host, signature",
    [
        (
            "POST", "http://127.0.0.1:8443/availablePhoneNumbers/countries/US/:search?api-version=2021-03-07",
            RECORDED_BODY, "127.0.0.1:8443", "3WVZSLN0oJ8fHYT8KGaiDQpDoEO3J5fq68MjzZ0uVWI=",
        ),
        (
            "GET",
            "https://acs.example.communication.azure.com/phoneNumbers/operations/"
            "search_8c02bbe5-42c9-46f3-bcda-56bc547f1dee?api-version=2021-03-07",
            b"", "acs.example.communication.azure.com", "aD312w8QI41oIP4d80zZojvJS8dLJoReJ3wnep2riJQ=",
        ),
    ],
)
def test_signature_of_a_known_request(method, url, body, host, signature):
    x_ms_date = "Thu, 08 Dec 2022 23:09:33 GMT" if method == "POST" else "Thu, 08 Dec 2022 23:09:35 GMT"
    path_and_query = url.split(host, 1)[1]
    body_hash = base64.b64encode(hashlib.sha256(body).digest()).decode()
    # The documented formula, by hand:
    by_hand = base64.b64encode(hmac.new(
        base64.b64decode(SIGNING_KEY),
        f"{method}\n{path_and_query}\n{x_ms_date};{host};{body_hash}".encode(),
        hashlib.sha256,
    ).digest()).decode()
    assert by_hand == signature
    assert compute_signature(SIGNING_KEY, method, path_and_query, x_ms_date, host, body_hash) == signature

    when = SIGNING_DATE if method == "POST" else SIGNING_DATE + timedelta(seconds=2)
    request = httpx.Request(method, url, content=body)
    signed = next(AcsAuth(SIGNING_KEY, now=lambda: when).auth_flow(request))
    assert signed.headers["x-ms-date"] == x_ms_date
    assert signed.headers["x-ms-content-sha256"] == body_hash
    assert signed.headers["authorization"] == (
        f"HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={signature}"
    )


def test_empty_body_hash_constant():
    assert EMPTY_BODY_HASH == base64.b64encode(hashlib.sha256(b"").digest()).decode()


# --- connection string -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, endpoint",
    [
        (sandbox_connection_string(), SANDBOX_ACS_ENDPOINT + "/"),
        (f"Endpoint=https://res.communication.azure.com/;AccessKey={SANDBOX_ACS_ACCESS_KEY};",
         "https://res.communication.azure.com/"),
        (f" accesskey={SANDBOX_ACS_ACCESS_KEY} ; endpoint=http://127.0.0.1:8080 ", "http://127.0.0.1:8080"),
    ],
)
def test_parse_connection_string(text, endpoint):
    assert parse_connection_string(text) == (endpoint, SANDBOX_ACS_ACCESS_KEY)


@pytest.mark.parametrize(
    "text, complaint",
    [
        ("", "no endpoint"),
        (f"accesskey={SANDBOX_ACS_ACCESS_KEY}", "no endpoint"),
        ("endpoint=https://res.communication.azure.com/", "no accesskey"),
        (f"endpoint=res.communication.azure.com;accesskey={SANDBOX_ACS_ACCESS_KEY}", "must start with https://"),
        ("endpoint=https://res.communication.azure.com/;accesskey=not*base64*secretvalue", "not valid base64"),
        (f"{SANDBOX_ACS_ACCESS_KEY[:10]}", "not of the form"),
    ],
)
def test_bad_connection_strings_say_what_is_wrong_without_the_key(text, complaint):
    with pytest.raises(ConfigError) as caught:
        parse_connection_string(text)
    assert complaint in str(caught.value)
    assert "secretvalue" not in str(caught.value)
    assert SANDBOX_ACS_ACCESS_KEY[:10] not in str(caught.value)


async def test_from_connection_string_talks_to_the_sandbox(app):
    provider = AcsProvider.from_connection_string(
        sandbox_connection_string(), transport=httpx.ASGITransport(app=app)
    )
    assert isinstance(provider, Provider)
    assert "purchased number" in await provider.check()
    assert SANDBOX_ACS_ACCESS_KEY not in repr(provider)
    await provider.aclose()


# --- search ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query, prefix, cost, number_type, sms, voice",
    [
        (SearchQuery("US", "tollfree", "833", 2, sms=True), "+1833", "2.0", "tollFree", True, False),
        (SearchQuery("US", "local", "206", 3, voice=True), "+1206", "1.0", "geographic", False, True),
        (SearchQuery("US", "national", "425", 1), "+1425", "1.0", "geographic", False, True),
        (SearchQuery("CA", "tollfree", "877", 1, sms=True, voice=True), "+1877", "2.0", "tollFree", True, True),
        (SearchQuery("GB", "local", "20", 2), "+4420", "1.0", "geographic", False, True),
        (SearchQuery("us", "tollfree", None, 1), "+1", "2.0", "tollFree", False, True),
    ],
)
async def test_search_returns_one_held_offer(provider, app, sleeps, query, prefix, cost, number_type, sms, voice):
    before = app.clock.now()
    [offer] = await provider.search(query)
    assert offer.provider == "acs" and offer.kind == "purchase"
    assert len(offer.numbers) == query.quantity == offer.quantity == offer.max_quantity
    assert all(n.startswith(prefix) for n in offer.numbers)
    assert offer.unit_monthly_cost == Decimal(cost) and isinstance(offer.unit_monthly_cost, Decimal)
    assert offer.currency == "USD"
    assert (offer.sms, offer.voice) == (sms, voice)
    assert offer.details["number_type"] == number_type
    assert offer.details["area_code"] == query.prefix
    # US toll-free needs the do-not-resell agreement at the default api-version (as recorded); nothing else does.
    needs_agreement = (query.country.upper(), number_type) == ("US", "tollFree")
    assert offer.ref == {"search_id": offer.ref["search_id"], **({"agree_to_not_resell": True} if needs_agreement else {})}
    assert offer.details.get("agreement_to_not_resell_required", False) is needs_agreement
    assert offer.expires_at.tzinfo is not None
    assert timedelta(seconds=955) < offer.expires_at - before < timedelta(seconds=965)
    assert sleeps == [2.0, 2.0]  # notStarted, running, then succeeded


async def test_search_request_body_maps_the_query(provider, app):
    await provider.search(SearchQuery("US", "local", "415", 2, sms=True, voice=True))
    [post] = [r for r in app.requests if r.method == "POST"]
    assert post.json() == {
        "phoneNumberType": "geographic",
        "assignmentType": "application",
        "capabilities": {"calling": "inbound+outbound", "sms": "inbound+outbound"},
        "quantity": 2,
        "areaCode": "415",
    }


async def test_fewer_numbers_than_asked_is_offered_as_found(provider):
    offer = await search_one(provider, prefix="800", quantity=5)  # the 800 pool holds two
    assert len(offer.numbers) == offer.quantity == offer.max_quantity == 2


async def test_empty_pool_means_no_offers(provider):
    assert await provider.search(SearchQuery("US", "local", "907")) == []


async def test_held_and_purchased_numbers_are_not_offered_again(provider, app):
    first = await search_one(provider, quantity=3)
    second = await search_one(provider, quantity=3)
    assert not set(first.numbers) & set(second.numbers)

    job = job_for(first)
    await poll_to_end(provider, job, await provider.submit(job))
    app.clock.advance(1000)  # every hold has expired; purchased numbers stay taken
    third = await search_one(provider, quantity=10)
    assert not set(first.numbers) & set(third.numbers)
    assert set(second.numbers) <= set(third.numbers)  # expired holds go back to stock


@pytest.mark.parametrize(
    "query, words, code",
    [
        (SearchQuery("XX"), "Unable to parse country code.", "InvalidInput"),
        (SearchQuery("DE"), "not offered in country DE", "InvalidInput"),
        (SearchQuery("US", "local", "999"), "999 is not a valid area code", "InvalidInput"),
        (SearchQuery("US", "tollfree", "822"), "822 is not a valid toll-free prefix", "InvalidInput"),
        (SearchQuery("US", "tollfree", "833", 25), "Quantity must be between 1 and 20", "InvalidInput"),
    ],
)
async def test_provider_refusals_read_well(provider, query, words, code):
    with pytest.raises(ProviderError) as caught:
        await provider.search(query)
    err = caught.value
    assert type(err) is ProviderError
    assert (err.status, err.code) == (400, code)
    assert words in str(err) and str(err).startswith("acs said (400, InvalidInput): ")


@pytest.mark.parametrize(
    "query, words",
    [
        (SearchQuery("US", "tollfree", "833", 0), "at least 1"),
        (SearchQuery("US", "mobile", None, 1), "'mobile'"),
    ],
)
async def test_obviously_wrong_queries_are_refused_before_any_call(provider, app, query, words):
    with pytest.raises(UsageError, match=words):
        await provider.search(query)
    assert app.requests == []


# --- purchase ----------------------------------------------------------------------------------


async def test_purchase_polls_through_non_monotonic_statuses_to_done(provider, app):
    offer = await search_one(provider, quantity=2)
    job = job_for(offer)
    step = await provider.submit(job)
    assert step == InProgress(
        ref={
            "operation_id": f"purchase_{offer.ref['search_id']}",
            "location": f"/phoneNumbers/operations/purchase_{offer.ref['search_id']}?api-version=2025-06-01",
        },
        retry_after=2.0,
    )
    steps = await poll_to_end(provider, job, step)
    assert steps[-1] == Done(numbers=offer.numbers)
    assert len(steps) == 5  # running, running, notStarted, notStarted, Succeeded
    assert app.count("POST", PURCHASE) == 1
    assert sorted(app.purchased()) == sorted(offer.numbers)
    assert sorted(await provider.purchased_numbers()) == sorted(offer.numbers)


async def test_recover_before_submit_says_safe_to_submit(provider, app):
    offer = await search_one(provider)
    assert await provider.recover(job_for(offer)) is None
    assert app.count("POST", PURCHASE) == 0


async def test_recover_after_submit_follows_the_purchase(provider):
    offer = await search_one(provider)
    job = job_for(offer)
    await provider.submit(job)  # and then the bot crashed before recording the answer
    step = await provider.recover(job)
    assert isinstance(step, InProgress)
    assert step.ref["operation_id"] == f"purchase_{offer.ref['search_id']}"
    steps = await poll_to_end(provider, job, step)
    assert steps[-1] == Done(numbers=offer.numbers)
    assert await provider.recover(job) == Done(numbers=offer.numbers)


async def test_expired_hold_cannot_be_purchased(provider, app):
    offer = await search_one(provider)
    app.clock.advance(961)
    with pytest.raises(ProviderError) as caught:
        await provider.submit(job_for(offer))
    err = caught.value
    assert type(err) is HoldExpired and err.status == 400 and err.code == "SearchExpired"
    assert "expired" in str(err) and "Search again" in str(err)


async def test_second_purchase_of_one_search_is_refused(provider, app):
    offer = await search_one(provider)
    job = job_for(offer)
    await provider.submit(job)
    with pytest.raises(ProviderError) as caught:
        await provider.submit(job)
    assert type(caught.value) is ProviderError and caught.value.status == 409
    assert "already submitted" in str(caught.value)
    assert app.count("POST", PURCHASE) == 2


async def test_purchase_that_fails_at_the_provider(provider, app):
    offer = await search_one(provider)
    app.fail_next_purchase("Your subscription is not eligible to purchase toll-free numbers.")
    job = job_for(offer)
    steps = await poll_to_end(provider, job, await provider.submit(job))
    assert steps[-1] == Failed(reason="Your subscription is not eligible to purchase toll-free numbers.")
    assert app.purchased() == []
    # The numbers are free again.
    again = await search_one(provider)
    assert again.numbers == offer.numbers


@pytest.mark.parametrize(
    "fault",
    [
        dict(kind="status", status=500, body={"error": {"code": "InternalServerError", "message": "Oops."}}),
        dict(kind="status", status=503),
        dict(kind="drop"),
        dict(kind="after", status=502),
    ],
    ids=["500", "503", "drop", "acted-then-502"],
)
async def test_purchase_fault_is_outcome_unknown_and_never_resent(provider, app, fault):
    offer = await search_one(provider)
    job = job_for(offer)
    app.faults.add(method="POST", path=PURCHASE, **fault)
    with pytest.raises(OutcomeUnknown):
        await provider.submit(job)
    assert app.count("POST", PURCHASE) == 1
    # recover() tells what happened: only the "after" fault let the purchase through.
    step = await provider.recover(job)
    if fault["kind"] == "after":
        assert isinstance(step, InProgress)
    else:
        assert step is None


class TimingOutASGITransport(httpx.ASGITransport):
    """ASGITransport ignores timeouts; a real socket would not."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        read_timeout = request.extensions.get("timeout", {}).get("read")
        try:
            return await asyncio.wait_for(super().handle_async_request(request), read_timeout)
        except asyncio.TimeoutError:
            raise httpx.ReadTimeout("timed out", request=request) from None


async def test_purchase_timeout_is_outcome_unknown(make_provider, app):
    provider = make_provider(timeout=0.05, transport=TimingOutASGITransport(app=app))
    offer = await search_one(provider)
    app.faults.add("delay", method="POST", path=PURCHASE, seconds=0.3)
    with pytest.raises(OutcomeUnknown, match="timed out"):
        await provider.submit(job_for(offer))
    assert app.count("POST", PURCHASE) == 1
    assert await provider.recover(job_for(offer)) is None  # the answer never came: nothing was bought


async def test_an_operation_acs_no_longer_knows_is_not_a_failure(provider):
    """A 404 on an accepted purchase's operation is not ACS's word on the purchase: the bot
    cannot tell yet (and retries), unless the resource already holds the numbers."""
    job = Job(1, "acs", "purchase", {"search_id": "nope"}, 1, ["+18005550199"], Requester("U1"))
    with pytest.raises(ProviderUnavailable, match="not found and the resource holds 0 of 1"):
        await provider.poll(job, {"operation_id": "purchase_nope"})


async def test_an_operation_acs_no_longer_knows_is_done_when_the_numbers_are_held(provider, app):
    offer = await search_one(provider)
    job = job_for(offer)
    first = await provider.submit(job)
    done = await provider.poll(job, first.ref)
    while not isinstance(done, Done):
        done = await provider.poll(job, first.ref)
    app.faults.add("status", method="GET", path=r"/phoneNumbers/operations/", status=404, times=1,
                   body={"error": {"code": "NotFound", "message": "gone"}})
    again = await provider.poll(job, first.ref)
    assert isinstance(again, Done) and sorted(again.numbers) == sorted(offer.numbers)


# --- transient faults and Retry-After -------------------------------------------------------------------


async def test_5xx_on_reads_is_retried(provider, app, sleeps):
    app.faults.add("status", method="GET", path=OPERATIONS, status=503, times=2)
    app.faults.add("drop", method="GET", path=r"^/availablePhoneNumbers/searchResults/", times=1)
    offer = await search_one(provider)
    assert offer.numbers
    assert app.count("GET", OPERATIONS) == 2 + 3  # two faults, then notStarted, running, succeeded
    assert len(sleeps) == 2 + 2 + 1  # backoff x2, poll interval x2, backoff after the drop


async def test_persistent_5xx_on_poll_is_unavailable(provider, app):
    offer = await search_one(provider)
    job = job_for(offer)
    step = await provider.submit(job)
    app.faults.add("status", method="GET", path=OPERATIONS, status=500, times=-1)
    with pytest.raises(ProviderUnavailable):
        await provider.poll(job, step.ref)
    app.faults.clear()
    assert isinstance(await provider.poll(job, step.ref), InProgress)


async def test_unreachable_during_recover_is_unavailable(provider, app):
    offer = await search_one(provider)
    app.faults.add("drop", method="GET", path=OPERATIONS, times=-1)
    with pytest.raises(ProviderUnavailable):
        await provider.recover(job_for(offer))


async def test_retry_after_on_429_is_waited_out(provider, app, sleeps):
    app.faults.add("status", method="POST", path=r":search$", status=429, headers={"Retry-After": "7"},
                   body={"error": {"code": "TooManyRequests", "message": "Request limit exceeded."}})
    await search_one(provider)
    assert sleeps[0] == 7.0


async def test_retry_after_on_operations_sets_the_poll_pace(provider, app, sleeps):
    app.set_retry_after(3)
    offer = await search_one(provider)
    assert sleeps == [3.0, 3.0]
    job = job_for(offer)
    step = await provider.poll(job, (await provider.submit(job)).ref)
    assert step.retry_after == 3.0


async def test_throttled_until_giving_up_is_unavailable_with_its_words(provider, app):
    app.faults.add("status", method="POST", path=r":search$", status=429, times=-1, headers={"Retry-After": "1"},
                   body={"error": {"code": "TooManyRequests", "message": "Request limit exceeded."}})
    with pytest.raises(ProviderUnavailable) as caught:
        await search_one(provider)
    assert "Request limit exceeded." in str(caught.value) and caught.value.retry_after == 1


# --- credentials and secrets --------------------------------------------------------------------------------


async def test_wrong_key_is_an_auth_error_that_never_shows_the_key(make_provider, app, caplog):
    caplog.set_level(logging.DEBUG)
    provider = make_provider(access_key=WRONG_KEY)
    texts = []
    for call in (provider.check(), provider.search(SearchQuery("US", "tollfree", "833"))):
        with pytest.raises(ProviderAuthError) as caught:
            await call
        assert caught.value.status == 401
        assert "ACS_CONNECTION_STRING" in str(caught.value)
        texts += [str(caught.value), repr(caught.value), caught.value.message]
    texts += [repr(provider), caplog.text]
    for secret in (WRONG_KEY, SANDBOX_ACS_ACCESS_KEY, base64.b64decode(WRONG_KEY).decode()):
        assert all(secret not in text for text in texts)


async def test_errors_and_logs_never_carry_the_key(provider, app, caplog):
    caplog.set_level(logging.DEBUG)
    texts = []
    offer = await search_one(provider)
    job = job_for(offer)
    app.faults.add("drop", method="POST", path=PURCHASE)
    app.faults.add("status", method="DELETE", path=r"/phoneNumbers/", status=400,
                   body={"error": {"code": "BadRequest", "message": "Release refused."}})
    for call in (provider.submit(job), provider.search(SearchQuery("XX")), provider.release("+19999999999", {})):
        with pytest.raises(ProviderError) as caught:
            await call
        texts += [str(caught.value), repr(caught.value)]
    texts += [repr(provider), caplog.text]
    signature_headers = [r.headers["authorization"] for r in app.requests]
    assert all(SANDBOX_ACS_ACCESS_KEY not in t for t in texts)
    assert not any(sig.split("Signature=")[1] in t for sig in signature_headers for t in texts)


# --- release -----------------------------------------------------------------------------------------------------


async def test_release_returns_the_number_to_stock(provider, app):
    offer = await search_one(provider, quantity=1)
    job = job_for(offer)
    await poll_to_end(provider, job, await provider.submit(job))
    [number] = offer.numbers

    step = await provider.release(number, {})
    assert isinstance(step, InProgress) and step.ref["operation_id"].startswith("release_")
    steps = await poll_to_end(provider, job, step)
    assert steps[-1] == Done(numbers=[number])
    assert await provider.purchased_numbers() == []
    assert number in app.available("US", "tollFree", "833")


async def test_release_of_a_number_not_owned_is_done_with_a_note(provider):
    """Idempotent: a release sent again after a crash must not turn a released number into a failure."""
    step = await provider.release("+18335550199", {})
    assert isinstance(step, Done) and step.numbers == ["+18335550199"]
    assert "no longer lists" in step.note


async def test_release_already_under_way_is_watched_to_the_end(provider, app):
    offer = await search_one(provider)
    number = offer.numbers[0]
    job = job_for(offer)
    step = await provider.submit(job)
    while not isinstance(step, Done):
        step = await provider.poll(job, step.ref)
    first = await provider.release(number, {})
    assert isinstance(first, InProgress)
    again = await provider.release(number, {})  # e.g. sent again after a crash
    assert again.ref == {"watch_number": number}
    for _ in range(20):
        again = await provider.poll(job, again.ref)
        if isinstance(again, Done):
            break
    assert isinstance(again, Done) and again.numbers == [number]
    assert number not in app.purchased()


async def test_check_reports_a_short_line(provider):
    text = await provider.check()
    assert text == "access key accepted by acs.sandbox.invalid at api-version 2025-06-01; 0 purchased number(s) listed"


async def test_signatures_can_be_dated_by_a_given_clock(make_provider, app):
    app.clock.advance(7200)  # far beyond the 15 minutes allowed against the wall clock alone
    provider = make_provider(now=app.clock.now)
    await provider.check()
    sent = app.requests[-1].headers["x-ms-date"]
    dated = datetime.strptime(sent, "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=timezone.utc)
    assert abs(dated - app.clock.now()) < timedelta(seconds=5)
