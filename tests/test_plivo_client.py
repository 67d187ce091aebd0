"""PlivoProvider through its public methods: against the simulated Plivo over
HTTP (ASGITransport) and against recorded-shape bodies (MockTransport)."""

from __future__ import annotations

import base64
import json
import re
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from bot.domain.errors import OutcomeUnknown, ProviderAuthError, ProviderError, ProviderUnavailable, UsageError
from bot.providers.base import Done, Failed, Job, OfferDraft, Provider, ProviderPending, Requester, SearchQuery
from bot.providers.plivo import PlivoProvider
from bot.sandbox.plivo import (
    SANDBOX_PLIVO_API_URL,
    SANDBOX_PLIVO_AUTH_ID,
    SANDBOX_PLIVO_AUTH_TOKEN,
    create_plivo_sandbox,
)

SEARCH_PATH = rf"^/v1/Account/{SANDBOX_PLIVO_AUTH_ID}/AvailableNumberGroup/$"
RENT_PATH = rf"^/v1/Account/{SANDBOX_PLIVO_AUTH_ID}/AvailableNumberGroup/\d+/$"
CONSOLE_HINT = "check the Plivo console (Numbers) before renting again"


@pytest.fixture
def app():
    return create_plivo_sandbox()


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
async def make_provider(app, sleeps):
    made = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    def make(**kw) -> PlivoProvider:
        kw.setdefault("api_url", SANDBOX_PLIVO_API_URL)
        kw.setdefault("transport", httpx.ASGITransport(app=app))
        kw.setdefault("sleep", fake_sleep)
        provider = PlivoProvider(
            kw.pop("auth_id", SANDBOX_PLIVO_AUTH_ID), kw.pop("auth_token", SANDBOX_PLIVO_AUTH_TOKEN), **kw
        )
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.aclose()


@pytest.fixture
def provider(make_provider):
    return make_provider()


def job(group_id: str, quantity: int) -> Job:
    return Job(
        request_id=1,
        provider="plivo",
        kind="rent",
        ref={"group_id": group_id},
        quantity=quantity,
        numbers=[],
        requester=Requester("U012ABC"),
    )


def searches(app) -> list[dict[str, str]]:
    return [r.query for r in app.requests if r.method == "GET" and re.search(SEARCH_PATH, r.path)]


async def find_offer(provider, country="US", number_type="local", prefix=None, **match) -> OfferDraft:
    offers = await provider.search(SearchQuery(country, number_type, prefix))
    for offer in offers:
        if all(offer.details.get(k) == v or getattr(offer, k, None) == v for k, v in match.items()):
            return offer
    raise AssertionError(f"no offer matching {match} in {offers}")


# --- search against the sandbox ----------------------------------------------------


async def test_search_follows_meta_next_across_pages(provider, app):
    offers = await provider.search(SearchQuery("US", "local"))

    assert [q["offset"] for q in searches(app)] == ["0", "20", "40"]
    assert all(q["limit"] == "20" for q in searches(app))
    # 45 US local groups, one of them sold out.
    assert len(offers) == 44
    assert len({o.ref["group_id"] for o in offers}) == 44
    assert {(o.provider, o.kind, o.currency, o.expires_at) for o in offers} == {("plivo", "rent", "USD", None)}
    assert all(o.numbers == [] for o in offers)


@pytest.mark.parametrize(
    "max_groups, limit, offsets, count",
    [
        (60, "20", ["0", "20", "40"], 44),
        (40, "20", ["0", "20"], 39),  # the sold-out 702 group is among the first 40
        (25, "20", ["0", "20"], 25),
        (20, "20", ["0"], 20),
        (5, "5", ["0"], 5),
    ],
)
async def test_search_stops_once_max_groups_are_gathered(make_provider, app, max_groups, limit, offsets, count):
    provider = make_provider(max_groups=max_groups)
    offers = await provider.search(SearchQuery("US", "local"))
    assert [q["offset"] for q in searches(app)] == offsets
    assert {q["limit"] for q in searches(app)} == {limit}
    assert len(offers) == count


async def test_search_money_is_exact_decimal(provider):
    offers = await provider.search(SearchQuery("US", "local", "212"))
    by_rent = {o.unit_monthly_cost: o for o in offers}

    assert set(by_rent) == {Decimal("0.80000"), Decimal("0.50000"), Decimal("1.20000")}
    for offer in offers:
        assert type(offer.unit_monthly_cost) is Decimal and type(offer.unit_setup_cost) is Decimal
    standard = by_rent[Decimal("0.80000")]
    assert str(standard.unit_monthly_cost) == "0.80000"
    assert standard.unit_setup_cost == Decimal("0.00000")
    assert standard.details["voice_rate"] == "0.00850"
    assert standard.details["sms_rate"] == "0.0055"
    assert (standard.sms, standard.voice) == (True, True)
    premium = by_rent[Decimal("1.20000")]
    assert premium.unit_setup_cost == Decimal("1.00000")
    voice_only = by_rent[Decimal("0.50000")]
    # sms_rate -1 means "no SMS": shown as not offered, never as a price of -1.
    assert (voice_only.sms, voice_only.details["sms_rate"]) == (False, None)
    assert standard.details | {"stock": 0} == {
        "region": "NEW YORK, UNITED STATES",
        "prefix": "212",
        "stock": 0,
        "number_type": "local",
        "voice_rate": "0.00850",
        "sms_rate": "0.0055",
        "country": "US",
    }


async def test_search_skips_sold_out_groups_and_caps_quantity_at_stock(provider):
    las_vegas = await provider.search(SearchQuery("US", "local", "702", quantity=5))
    assert len(las_vegas) == 2  # the third 702 group has stock 0
    assert all(o.max_quantity > 0 for o in las_vegas)

    miami = await provider.search(SearchQuery("US", "local", "305", quantity=5))
    small = [o for o in miami if o.max_quantity == 3]
    assert len(small) == 1
    assert small[0].quantity == 3
    assert all(o.quantity == 5 for o in miami if o.max_quantity >= 5)


@pytest.mark.parametrize(
    "query, sent",
    [
        (SearchQuery("us", "local"), {"country_iso": "US", "number_type": "local"}),
        (SearchQuery("US", "tollfree", "833"), {"number_type": "tollfree", "prefix": "833"}),
        (SearchQuery("US", "local", sms=True), {"services": "sms"}),
        (SearchQuery("US", "local", voice=True), {"services": "voice"}),
        (SearchQuery("US", "local", sms=True, voice=True), {"services": "voice,sms"}),
        (SearchQuery("US", "local", location="BOSTON"), {"region": "BOSTON"}),
        (SearchQuery("GB", "national", "3"), {"country_iso": "GB", "number_type": "national", "prefix": "3"}),
    ],
)
async def test_search_sends_plivo_parameters(provider, app, query, sent):
    offers = await provider.search(query)
    first = searches(app)[0]
    assert {k: first.get(k) for k in sent} == sent
    assert offers, "the sandbox has groups for every query in this table"


@pytest.mark.parametrize(
    "query, absent",
    [
        (SearchQuery("US", "local"), {"services", "region", "prefix"}),
        # Plivo refuses region for anything but local numbers: the location is dropped.
        (SearchQuery("US", "tollfree", location="BOSTON"), {"region"}),
        (SearchQuery("GB", "national", location="LONDON"), {"region"}),
    ],
)
async def test_search_leaves_out_parameters_plivo_would_refuse(provider, app, query, absent):
    await provider.search(query)
    assert absent.isdisjoint(searches(app)[0])


async def test_search_filters_by_services_and_region(provider):
    sms = await provider.search(SearchQuery("US", "local", "212", sms=True))
    assert len(sms) == 2 and all(o.sms for o in sms)
    boston = await provider.search(SearchQuery("US", "local", location="BOSTON"))
    assert {o.details["prefix"] for o in boston} == {"617"}


@pytest.mark.parametrize(
    "query, words",
    [
        (SearchQuery("USA"), "two-letter country code"),
        (SearchQuery("1"), "two-letter country code"),
        (SearchQuery(""), "two-letter country code"),
        (SearchQuery("US", "local", "4155551"), "at most 5"),
        (SearchQuery("US", "local", "123456"), "at most 5"),
        (SearchQuery("US", "local", "41a"), "digits only"),
        (SearchQuery("US", "local", "+1415"), "digits only"),
        (SearchQuery("US", "local", "٤١٥"), "digits only"),  # Arabic-Indic digits: isdigit() but not Plivo's
        (SearchQuery("US", "mobile"), "number types"),
        (SearchQuery("US", "local", quantity=0), "at least 1"),
    ],
)
async def test_search_rejects_bad_queries_before_any_call(provider, app, query, words):
    with pytest.raises(UsageError) as err:
        await provider.search(query)
    assert words in str(err.value)
    assert app.requests == []


async def test_search_finding_nothing_is_an_empty_list(provider):
    assert await provider.search(SearchQuery("US", "local", "999")) == []
    assert await provider.search(SearchQuery("JP", "local")) == []


# --- reads: retries and errors ---------------------------------------------------------


async def test_search_is_retried_on_503_and_a_dropped_connection(provider, app, sleeps):
    app.faults.add("status", method="GET", path=SEARCH_PATH, times=1, status=503,
                   body={"api_id": "a1", "error": "Service unavailable"})
    app.faults.add("drop", method="GET", path=SEARCH_PATH, times=1)
    offers = await provider.search(SearchQuery("US", "tollfree"))
    assert len(offers) == 7
    assert app.count("GET", SEARCH_PATH) == 3
    assert len(sleeps) == 2


async def test_search_gives_up_after_bounded_retries_with_plivos_words(provider, app, sleeps):
    app.faults.add("status", method="GET", path=SEARCH_PATH, times=-1, status=500,
                   body={"api_id": "a1", "error": "Internal server error, please retry"})
    with pytest.raises(ProviderUnavailable) as err:
        await provider.search(SearchQuery("US", "tollfree"))
    assert "Internal server error, please retry" in str(err.value)
    assert err.value.status == 500
    assert app.count("GET", SEARCH_PATH) == 4
    assert SANDBOX_PLIVO_AUTH_ID not in str(err.value)


async def test_search_unreachable_names_no_auth_id(provider, app):
    app.faults.add("drop", method="GET", path=SEARCH_PATH, times=-1)
    with pytest.raises(ProviderUnavailable) as err:
        await provider.search(SearchQuery("US", "tollfree"))
    assert "GET AvailableNumberGroup/ could not be reached" in str(err.value)
    assert SANDBOX_PLIVO_AUTH_ID not in str(err.value)


async def test_search_body_that_is_not_json_is_reported(provider, app):
    app.faults.add("malformed", method="GET", path=SEARCH_PATH, times=1)
    with pytest.raises(ProviderUnavailable) as err:
        await provider.search(SearchQuery("US", "tollfree"))
    assert "not JSON" in str(err.value)


@pytest.mark.parametrize(
    "status, body, expected_type, words",
    [
        (400, {"api_id": "x", "error": "prefix 833 is not valid for number_type local"}, ProviderError,
         "plivo said (400): prefix 833 is not valid for number_type local"),
        (404, {"api_id": "x", "error": "not found"}, ProviderError, "plivo said (404): not found"),
        (405, {"api_id": "x", "error": "Method 'GET' not allowed."}, ProviderError, "Method 'GET' not allowed."),
        (401, {"api_id": "x", "error": "Authentication credentials invalid"}, ProviderAuthError,
         "Authentication credentials invalid (check PLIVO_AUTH_ID and PLIVO_AUTH_TOKEN)"),
    ],
)
async def test_error_bodies_become_readable_messages(provider, app, status, body, expected_type, words):
    app.faults.add("status", method="GET", path=SEARCH_PATH, times=1, status=status, body=body)
    with pytest.raises(ProviderError) as err:
        await provider.search(SearchQuery("US", "local"))
    assert type(err.value) is expected_type
    assert words in str(err.value)
    assert err.value.status == status
    assert app.count("GET", SEARCH_PATH) == 1  # 4xx are not retried


# --- wrong credentials: ProviderAuthError, and no secret in any text ---------------------


WRONG_TOKEN = "WrongTokenZZZ0123456789abcdefWrongToken0"


@pytest.mark.parametrize(
    "call",
    [
        lambda p: p.search(SearchQuery("US", "tollfree")),
        lambda p: p.check(),
        lambda p: p.submit(job("55350421590053", 1)),
        lambda p: p.release("+12125550100", {}),
    ],
    ids=["search", "check", "submit", "release"],
)
async def test_wrong_credentials_raise_auth_error_without_secrets(make_provider, app, call):
    provider = make_provider(auth_token=WRONG_TOKEN)
    with pytest.raises(ProviderAuthError) as err:
        await call(provider)
    text = str(err.value) + repr(err.value) + repr(provider) + str(vars(err.value))
    assert "Authentication credentials invalid" in text
    assert WRONG_TOKEN not in text
    assert SANDBOX_PLIVO_AUTH_ID not in text
    assert SANDBOX_PLIVO_AUTH_TOKEN not in text
    assert app.stock("55350421590053") == 9731


async def test_auth_id_for_another_account_is_refused(make_provider):
    provider = make_provider(auth_id="MAOTHERACCOUNT000002")
    with pytest.raises(ProviderAuthError) as err:
        await provider.check()
    assert "MAOTHERACCOUNT000002" not in str(err.value)


def test_provider_satisfies_the_protocol_and_hides_credentials(provider):
    assert isinstance(provider, Provider) and provider.name == "plivo"
    assert SANDBOX_PLIVO_AUTH_TOKEN not in repr(provider) and SANDBOX_PLIVO_AUTH_ID not in repr(provider)


async def test_check_names_the_account(provider, app):
    assert await provider.check() == "auth ok (account numbers-bot sandbox)"
    assert [r.path for r in app.requests] == [f"/v1/Account/{SANDBOX_PLIVO_AUTH_ID}/"]


# --- prepare -------------------------------------------------------------------------------


@pytest.mark.parametrize("quantity, ok", [(0, False), (-2, False), (1, True), (3, True), (4, False)])
async def test_prepare_checks_quantity_against_stock(provider, app, quantity, ok):
    offer = OfferDraft(provider="plivo", kind="rent", numbers=[], unit_monthly_cost=Decimal("0.8"),
                       max_quantity=3, ref={"group_id": "1"})
    if ok:
        assert await provider.prepare(offer, quantity, Requester("U1")) == {}
    else:
        with pytest.raises(UsageError) as err:
            await provider.prepare(offer, quantity, Requester("U1"))
        assert ("3 or fewer" if quantity > 3 else "at least 1") in str(err.value)
    assert app.requests == []


# --- rent against the sandbox ---------------------------------------------------------------


async def test_rent_fulfilled_returns_e164_numbers_and_takes_stock(provider, app):
    offer = await find_offer(provider, "US", "local", "212", unit_monthly_cost=Decimal("0.80000"))
    before = offer.max_quantity

    step = await provider.submit(job(offer.ref["group_id"], 2))

    assert isinstance(step, Done)
    assert len(step.numbers) == 2 and all(re.fullmatch(r"\+1212\d{7}", n) for n in step.numbers)
    assert step.failed_numbers == [] and step.note is None
    assert sorted("+" + n for n in app.rented_numbers()) == sorted(step.numbers)
    posts = [r for r in app.requests if r.method == "POST"]
    assert len(posts) == 1 and json.loads(posts[0].body) == {"quantity": 2}
    again = await find_offer(provider, "US", "local", "212", unit_monthly_cost=Decimal("0.80000"))
    assert again.max_quantity == before - 2


async def test_rent_sends_the_app_id_when_configured(make_provider, app):
    provider = make_provider(app_id="24680135792468013")
    step = await provider.submit(job("55350421590053", 1))
    assert isinstance(step, ProviderPending)
    posts = [r for r in app.requests if r.method == "POST"]
    assert json.loads(posts[0].body) == {"quantity": 1, "app_id": "24680135792468013"}


@pytest.mark.parametrize(
    "country, prefix, region",
    [("FR", "3", "AMIENS, FRANCE"), ("DE", "30", "BERLIN, GERMANY")],
)
async def test_rent_in_regulated_country_is_pending(provider, app, country, prefix, region):
    offer = await find_offer(provider, country, "local", prefix)
    step = await provider.submit(job(offer.ref["group_id"], 2))
    assert isinstance(step, ProviderPending)
    assert step.details.startswith(f"Order for 2 numbers(Region: {region}, number_type: local, Prefix: {prefix})")
    assert "Our support team will get in touch with you soon." in step.details
    assert app.rented_numbers() == []
    assert app.stock(offer.ref["group_id"]) == offer.max_quantity - 2


@pytest.mark.parametrize(
    "asked, failing, rented, note_start",
    [
        (3, 1, 2, "2 of 3 numbers rented; 1 not: "),
        (4, 2, 2, "2 of 4 numbers rented; 2 not: "),
        (2, 0, 2, None),
    ],
)
async def test_partial_rent_is_reported_truthfully(provider, app, asked, failing, rented, note_start):
    offer = await find_offer(provider, "BR", "local", "31")
    app.fail_numbers_next_rent(failing)

    step = await provider.submit(job(offer.ref["group_id"], asked))

    assert isinstance(step, Done)
    assert len(step.numbers) == rented and len(step.failed_numbers) == failing
    assert step.numbers[0] == "+553139560512"  # the seed's numbers, now with "+"
    if note_start is None:
        assert step.note is None
    else:
        assert step.note == note_start + ", ".join(f"{n} (Failed)" for n in step.failed_numbers)
    assert sorted("+" + n for n in app.rented_numbers()) == sorted(step.numbers)
    assert app.stock(offer.ref["group_id"]) == offer.max_quantity - rented


async def test_rent_where_every_number_failed_is_failed(provider, app):
    offer = await find_offer(provider, "BR", "local", "31")
    app.fail_numbers_next_rent(5)
    step = await provider.submit(job(offer.ref["group_id"], 2))
    assert isinstance(step, Failed)
    assert step.reason == "Plivo rented none of the 2 numbers asked for: +553139560512 (Failed), +553139560513 (Failed)"
    assert app.stock(offer.ref["group_id"]) == offer.max_quantity


async def test_rent_more_than_stock_is_refused_with_plivos_words(provider, app):
    offer = await find_offer(provider, "US", "local", "305", max_quantity=3)
    with pytest.raises(ProviderError) as err:
        await provider.submit(job(offer.ref["group_id"], 4))
    assert type(err.value) is ProviderError and err.value.status == 400
    assert "Requested quantity 4 is more than the 3 numbers in stock" in str(err.value)
    assert app.stock(offer.ref["group_id"]) == 3


async def test_rent_from_unknown_group_is_not_found(provider):
    with pytest.raises(ProviderError) as err:
        await provider.submit(job("12345678901234", 1))
    assert err.value.status == 404
    assert "Number group 12345678901234 not found" in str(err.value)


@pytest.mark.parametrize(
    "fault, rented",
    [
        (dict(kind="status", status=500, body={"api_id": "x", "error": "Internal error"}), False),
        (dict(kind="status", status=503, body="<html>Service Unavailable</html>"), False),
        (dict(kind="drop"), False),
        # Plivo rented, then the answer was lost: exactly why a retry would be wrong.
        (dict(kind="after", status=502, body={"api_id": "x", "error": "Bad gateway"}), True),
    ],
    ids=["500", "503-html", "drop", "acted-then-502"],
)
async def test_rent_5xx_or_lost_answer_is_outcome_unknown_and_sent_once(provider, app, sleeps, fault, rented):
    offer = await find_offer(provider, "BR", "local", "31")
    group_id = offer.ref["group_id"]
    kind = fault.pop("kind")
    app.faults.add(kind, method="POST", path=RENT_PATH, times=-1, **fault)

    with pytest.raises(OutcomeUnknown) as err:
        await provider.submit(job(group_id, 2))

    assert app.count("POST", RENT_PATH) == 1
    assert sleeps == []
    assert CONSOLE_HINT in str(err.value)
    assert SANDBOX_PLIVO_AUTH_ID not in str(err.value)
    assert (len(app.rented_numbers()) == 2) is rented


async def test_recover_cannot_tell_and_asks_for_a_person(provider, app):
    with pytest.raises(OutcomeUnknown) as err:
        await provider.recover(job("55350421590053", 1))
    assert str(err.value) == (
        "plivo said: Plivo cannot say whether the rent was carried out; "
        "check the Plivo console (Numbers) before renting again"
    )
    assert app.requests == []


async def test_poll_explains_there_is_nothing_to_poll(provider, app):
    with pytest.raises(ProviderError) as err:
        await provider.poll(job("55350421590053", 1), {})
    assert not isinstance(err.value, OutcomeUnknown)
    assert "no operation to poll" in str(err.value)
    assert app.requests == []


@pytest.mark.parametrize("bad", ["", "../Number", "12 34"])
async def test_submit_without_a_valid_group_sends_nothing(provider, app, bad):
    with pytest.raises(ProviderError):
        await provider.submit(job(bad, 1))
    assert app.requests == []


# --- release -------------------------------------------------------------------------------


async def test_release_unrents_and_a_second_release_is_done_with_a_note(provider, app):
    offer = await find_offer(provider, "US", "tollfree", "833")
    rented = await provider.submit(job(offer.ref["group_id"], 1))
    number = rented.numbers[0]
    spaced = f"{number[:2]} {number[2:5]} {number[5:8]} {number[8:]}"

    released = await provider.release(spaced, {})

    assert released == Done([number])
    assert app.rented_numbers() == []
    deletes = [r.path for r in app.requests if r.method == "DELETE"]
    assert deletes == [f"/v1/Account/{SANDBOX_PLIVO_AUTH_ID}/Number/{number[1:]}/"]
    # Sent again (after a crash, say): the number is gone already, which is what was asked.
    again = await provider.release(number, {})
    assert isinstance(again, Done) and again.numbers == [number]
    assert again.note.startswith(f"Plivo no longer lists {number}")


@pytest.mark.parametrize(
    "fault, expected",
    [
        (dict(kind="status", status=500), OutcomeUnknown),
        (dict(kind="drop"), OutcomeUnknown),
        (dict(kind="status", status=400, body={"api_id": "x", "error": "Number is linked to a campaign"}), ProviderError),
    ],
)
async def test_release_faults(provider, app, fault, expected):
    kind = fault.pop("kind")
    app.faults.add(kind, method="DELETE", path="/Number/", times=-1, **fault)
    with pytest.raises(ProviderError) as err:
        await provider.release("+12125550100", {})
    assert type(err.value) is expected
    assert app.count("DELETE", "/Number/") == 1
    assert SANDBOX_PLIVO_AUTH_ID not in str(err.value)


async def test_release_of_nothing_is_a_usage_error(provider, app):
    with pytest.raises(UsageError):
        await provider.release("not a number", {})
    assert app.requests == []


# --- recorded-shape bodies (MockTransport) -----------------------------------------------------

# Plivo's API page (seeds/002). Its search example has unquoted keys; this is the
# same object as valid JSON (test_seed_bodies_match_the_api_page checks that).
SEED_AUTH_ID = "MAC4NMQ3YJVHYJM0N2Y1"
SEED_SEARCH = {
    "meta": {"previous": None, "total_count": 1, "offset": 0, "limit": 20, "next": None},
    "api_id": "26590c12-5831-11e1-86da-6ff39efcb949",
    "objects": [
        {
            "group_id": "55350421590053",
            "number_type": "local",
            "prefix": "3",
            "region": "AMIENS, FRANCE",
            "rental_rate": "0.80000",
            "resource_uri": "/v1/Account/MAC4NMQ3YJVHYJM0N2Y1/AvailableNumberGroup/55350421590053/",
            "setup_rate": "0.80000",
            "sms_enabled": False,
            "sms_rate": -1,
            "stock": 9731,
            "voice_enabled": True,
            "voice_rate": "0.00700",
        }
    ],
}
SEED_RENT_FULFILLED = (
    '{\n"numbers": [{"number": "553139560512", "status": "Success"}, '
    '{"number": "553139560513", "status": "Success"}],\n"status": "fulfilled"\n}'
)
SEED_PENDING_DETAILS = (
    "Order for 2 numbers(Region: AMIENS, FRANCE, number_type: local, Prefix: 3) initiated. For this order, "
    "some additional information is required by the telecom regulatory authorities. Our support team will "
    "get in touch with you soon."
)
SEED_RENT_PENDING = json.dumps({"details": SEED_PENDING_DETAILS, "message": "created", "status": "pending"})
SEED_PAGE = Path("/work/shared/seeds/002_d658c811fffa5c54.txt")


def mock_provider(handler, **kw) -> PlivoProvider:
    kw.setdefault("api_url", "https://api.plivo.com")
    kw.setdefault("sleep", _no_sleep)
    return PlivoProvider(SEED_AUTH_ID, "SeedTokenXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", transport=httpx.MockTransport(handler), **kw)


async def _no_sleep(seconds: float) -> None:
    return None


def _json(status: int, body) -> httpx.Response:
    text = body if isinstance(body, str) else json.dumps(body)
    return httpx.Response(status, content=text.encode(), headers={"content-type": "application/json"})


def test_seed_bodies_match_the_api_page():
    if not SEED_PAGE.exists():
        pytest.skip("the Plivo API page (shared seeds) is not present")
    page = SEED_PAGE.read_text()
    search_text = page[page.index("{", page.index("HTTP status: 200")): page.index("Rent a Number")]
    search_text = re.sub(r"^(\s*)([a-z_]+):", r'\1"\2":', search_text.strip(), flags=re.M)
    assert json.loads(search_text) == SEED_SEARCH
    assert SEED_RENT_FULFILLED in page
    assert SEED_PENDING_DETAILS in page


async def test_seed_search_body():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return _json(200, SEED_SEARCH)

    provider = mock_provider(handler)
    offers = await provider.search(SearchQuery("FR", "local", "3", quantity=2))
    await provider.aclose()

    assert len(seen) == 1
    request = seen[0]
    assert request.url.path == f"/v1/Account/{SEED_AUTH_ID}/AvailableNumberGroup/"
    assert dict(request.url.params) == {
        "country_iso": "FR", "number_type": "local", "prefix": "3", "limit": "20", "offset": "0"
    }
    expected_auth = base64.b64encode(f"{SEED_AUTH_ID}:SeedTokenXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX".encode()).decode()
    assert request.headers["authorization"] == f"Basic {expected_auth}"
    assert offers == [
        OfferDraft(
            provider="plivo",
            kind="rent",
            numbers=[],
            unit_monthly_cost=Decimal("0.80000"),
            currency="USD",
            unit_setup_cost=Decimal("0.80000"),
            quantity=2,
            max_quantity=9731,
            sms=False,
            voice=True,
            expires_at=None,
            ref={"group_id": "55350421590053"},
            details={
                "region": "AMIENS, FRANCE",
                "prefix": "3",
                "stock": 9731,
                "number_type": "local",
                "voice_rate": "0.00700",
                "sms_rate": None,
                "country": "FR",
            },
        )
    ]


@pytest.mark.parametrize(
    "body, expected",
    [
        (SEED_RENT_FULFILLED, Done(["+553139560512", "+553139560513"])),
        (SEED_RENT_PENDING, ProviderPending(SEED_PENDING_DETAILS)),
        (
            '{"api_id": "aa52882c", "message": "created", "numbers": [{"number": "553139560512", "status": "Success"},'
            ' {"number": "553139560513", "status": "Success"}, {"number": "553139560514", "status": "Failed"}],'
            ' "status": "fulfilled"}',
            Done(
                ["+553139560512", "+553139560513"],
                note="2 of 3 numbers rented; 1 not: +553139560514 (Failed)",
                failed_numbers=["+553139560514"],
            ),
        ),
    ],
    ids=["fulfilled", "pending", "partial"],
)
async def test_seed_rent_bodies(body, expected):
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return _json(201, body)

    provider = mock_provider(handler)
    quantity = 3 if "553139560514" in body else 2
    step = await provider.submit(job("55350421590053", quantity))
    await provider.aclose()

    assert step == expected
    assert [(r.method, r.url.path) for r in seen] == [
        ("POST", f"/v1/Account/{SEED_AUTH_ID}/AvailableNumberGroup/55350421590053/")
    ]
    assert json.loads(seen[0].content) == {"quantity": quantity}


@pytest.mark.parametrize(
    "body",
    [
        '{"status": "fulfilled", "numbers": []}',
        '{"status": "fulfilled"}',
        '{"status": "processing"}',
        "not json at all",
    ],
)
async def test_rent_answer_that_cannot_be_understood_is_outcome_unknown(body):
    provider = mock_provider(lambda request: _json(201, body))
    with pytest.raises(OutcomeUnknown) as err:
        await provider.submit(job("55350421590053", 1))
    await provider.aclose()
    assert CONSOLE_HINT in str(err.value)


async def test_rent_fewer_numbers_listed_than_asked_says_so():
    body = '{"numbers": [{"number": "553139560512", "status": "Success"}], "status": "fulfilled"}'
    provider = mock_provider(lambda request: _json(201, body))
    step = await provider.submit(job("55350421590053", 2))
    await provider.aclose()
    assert step == Done(["+553139560512"], note="1 of 2 numbers rented; Plivo said nothing about 1 more")


@pytest.mark.parametrize(
    "exc, expected, words",
    [
        (httpx.ReadTimeout("timed out"), OutcomeUnknown, "timed out after it was sent"),
        (httpx.WriteTimeout("timed out"), OutcomeUnknown, "timed out after it was sent"),
        (httpx.RemoteProtocolError("peer closed"), OutcomeUnknown, "the connection broke"),
        # Nothing left the machine: certainly not rented.
        (httpx.ConnectError("refused"), ProviderUnavailable, "nothing was sent"),
        (httpx.ConnectTimeout("timed out"), ProviderUnavailable, "nothing was sent"),
    ],
)
async def test_rent_transport_failures(exc, expected, words):
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise exc

    provider = mock_provider(handler)
    with pytest.raises(ProviderError) as err:
        await provider.submit(job("55350421590053", 1))
    await provider.aclose()
    assert type(err.value) is expected
    assert words in str(err.value)
    assert len(calls) == 1
    assert SEED_AUTH_ID not in str(err.value)


@pytest.mark.parametrize(
    "next_url, second_offset",
    [
        # Relative, as Plivo sends it (reference numberListResponse.json has the same form).
        (f"/v1/Account/{SEED_AUTH_ID}/AvailableNumberGroup/?country_iso=US&limit=20&offset=20", "20"),
        (f"https://api.plivo.com/v1/Account/{SEED_AUTH_ID}/AvailableNumberGroup/?limit=20&offset=20", "20"),
        # No offset in it: the next page starts after what we got.
        (f"/v1/Account/{SEED_AUTH_ID}/AvailableNumberGroup/?limit=20", "2"),
    ],
)
async def test_search_follows_any_form_of_meta_next(next_url, second_offset):
    seen = []

    def group(i: int) -> dict:
        return {**SEED_SEARCH["objects"][0], "group_id": str(1000 + i)}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(dict(request.url.params))
        if request.url.params["offset"] == "0":
            return _json(200, {"meta": {"next": next_url, "offset": 0, "limit": 20}, "objects": [group(0), group(1)]})
        return _json(200, {"meta": {"next": None}, "objects": [group(2)]})

    provider = mock_provider(handler, api_url="https://proxy.example/plivo")
    offers = await provider.search(SearchQuery("FR", "local"))
    await provider.aclose()
    assert [p["offset"] for p in seen] == ["0", second_offset]
    assert [o.ref["group_id"] for o in offers] == ["1000", "1001", "1002"]


async def test_search_stops_when_meta_next_does_not_move_forward():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return _json(200, {"meta": {"next": "/v1/x/?offset=0"}, "objects": SEED_SEARCH["objects"]})

    provider = mock_provider(handler)
    offers = await provider.search(SearchQuery("FR", "local"))
    await provider.aclose()
    assert len(seen) == 1 and len(offers) == 1


async def test_rates_sent_as_json_numbers_stay_exact():
    body = '{"meta": {"next": null}, "objects": [{"group_id": "7", "rental_rate": 0.1, "setup_rate": "0.30000",' \
           ' "voice_rate": 0.0065, "sms_rate": 0.0045, "sms_enabled": true, "voice_enabled": true, "stock": 5}]}'
    provider = mock_provider(lambda request: _json(200, body))
    [offer] = await provider.search(SearchQuery("US", "local"))
    await provider.aclose()
    assert offer.unit_monthly_cost == Decimal("0.1") and str(offer.unit_monthly_cost) == "0.1"
    assert offer.details["voice_rate"] == "0.0065" and offer.details["sms_rate"] == "0.0045"


@pytest.mark.parametrize(
    "status, body, content_type, expected_type, words",
    [
        # The error-body shape of Plivo's SDK fixtures (reference/plivo/campaign*Response.json).
        (400, '{"api_id": "ca143ac8-072d-11ed-ab02-0242ac110004", "error": "The number xxxxxx is not linked to this campaign"}',
         "application/json", ProviderError, "plivo said (400): The number xxxxxx is not linked to this campaign"),
        (400, '{"api_id": "1", "error": {"prefix": ["Ensure this value has at most 5 characters."]}}',
         "application/json", ProviderError, "prefix: Ensure this value has at most 5 characters."),
        (401, "Could not verify your access level for that URL.\nYou have to login with proper credentials",
         "text/plain", ProviderAuthError, "Could not verify your access level for that URL. You have to login"),
        (403, "<html><body>Forbidden</body></html>", "text/html", ProviderAuthError, "Forbidden"),
        (404, f'{{"api_id": "1", "error": "resource /v1/Account/{SEED_AUTH_ID}/X/ not found"}}',
         "application/json", ProviderError, "resource /v1/Account/[auth id]/X/ not found"),
    ],
)
async def test_recorded_error_shapes(status, body, content_type, expected_type, words):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body.encode(), headers={"content-type": content_type})

    provider = mock_provider(handler)
    with pytest.raises(ProviderError) as err:
        await provider.search(SearchQuery("US", "local"))
    await provider.aclose()
    assert type(err.value) is expected_type
    assert words in str(err.value)
    assert SEED_AUTH_ID not in str(err.value)
    assert "SeedToken" not in str(err.value)
