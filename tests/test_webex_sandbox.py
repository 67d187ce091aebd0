"""WebexProvider against the simulated Webex service over the real HTTP protocol (ASGITransport)."""

from __future__ import annotations

import json

import httpx
import pytest

from bot.domain.errors import NotAllowed, NotFound, OutcomeUnknown, ProviderAuthError, ProviderError
from bot.domain.offers import OfferDraft, SearchQuery
from bot.domain.steps import Done, Failed, Job, Requester
from bot.providers.webex import WebexProvider
from bot.sandbox.common import SandboxState
from bot.sandbox.webex import SANDBOX_WEBEX_API_URL, SANDBOX_WEBEX_TOKEN, create_webex_sandbox
from bot.sandbox.webex_org import LOCATION_LONDON, LOCATION_SAN_JOSE, SANDBOX_WEBEX_ORG_ID

NUMBERS_PATH = r"/v1/telephony/config/people/primary/availableNumbers$"
PEOPLE_PUT = r"/v1/people/[^/]+$"


class Recorder:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def app():
    return create_webex_sandbox()


@pytest.fixture
def sleep():
    return Recorder()


@pytest.fixture
async def webex(app, sleep):
    provider = WebexProvider(
        SANDBOX_WEBEX_TOKEN,
        api_url=SANDBOX_WEBEX_API_URL,
        org_id=SANDBOX_WEBEX_ORG_ID,
        transport=httpx.ASGITransport(app=app),
        sleep=sleep,
        page_size=10,
    )
    yield provider
    await provider.aclose()


@pytest.fixture
async def raw(app):
    """A plain client for checking the sandbox's protocol itself."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=SANDBOX_WEBEX_API_URL + "/",
        headers={"Authorization": f"Bearer {SANDBOX_WEBEX_TOKEN}", "TrackingID": "TEST_tracking-1"},
    ) as client:
        yield client


def stored_person(app, email: str) -> dict:
    person = app.person_by_email(email)
    assert person is not None
    return person


def work_number(person: dict) -> str | None:
    return next((e["value"] for e in person.get("phoneNumbers") or [] if e["type"] == "work"), None)


async def listed(webex: WebexProvider, location_id: str | None = None) -> list[str]:
    return [i["phoneNumber"] for i in await webex.available_numbers(location_id=location_id)]


async def offer_for(webex: WebexProvider, number: str, location: str = "San Jose") -> OfferDraft:
    offers = await webex.search(SearchQuery(country="US", location=location))
    return next(o for o in offers if o.numbers == [number])


async def approved_job(webex: WebexProvider, number: str, email: str, location: str = "San Jose") -> Job:
    offer = await offer_for(webex, number, location)
    requester = Requester("U1", email)
    prepared = await webex.prepare(offer, 1, requester)
    return Job(1, "webex", "assign", {**offer.ref, **prepared}, 1, list(offer.numbers), requester)


# --- search ---------------------------------------------------------------------------------


async def test_search_follows_the_link_header_across_every_page(webex, app):
    offers = await webex.search(SearchQuery(country="US", location="San Jose"))
    numbers = [o.numbers[0] for o in offers]
    assert len(numbers) == len(set(numbers)) == 34
    pages = [r for r in app.requests if r.path.endswith("/availableNumbers")]
    assert [r.query.get("start") for r in pages] == [None, "10", "20", "30"]
    assert all(r.query["locationId"] == LOCATION_SAN_JOSE and r.query["max"] == "10" for r in pages)
    states = [o.details["state"] for o in offers]
    assert states == sorted(states, key=lambda s: s == "INACTIVE") and "INACTIVE" in states
    by_number = {o.numbers[0]: o for o in offers}
    assert by_number["+14085550100"].details["is_main_number"] is True
    assert by_number["+14085550190"].details["telephony_type"] == "MOBILE_NUMBER"
    assert by_number["+14085550190"].details["routing_profile"] == "AttRtPf"
    assert by_number["+14085550199"].details["is_service_number"] is True
    assert by_number["+18885550123"].details["toll_free"] is True
    assert all(o.details["location_name"] == "San Jose" for o in offers)
    assert all(o.ref["location_id"] == LOCATION_SAN_JOSE for o in offers)


async def test_the_link_is_absolute_and_carries_the_whole_query(raw):
    response = await raw.get(
        "telephony/config/people/primary/availableNumbers",
        params={"locationId": LOCATION_SAN_JOSE, "max": 10},
    )
    assert response.links["next"]["url"] == (
        f"{SANDBOX_WEBEX_API_URL}/telephony/config/people/primary/availableNumbers"
        f"?locationId={LOCATION_SAN_JOSE}&max=10&start=10"
    )
    last = await raw.get(
        "telephony/config/people/primary/availableNumbers",
        params={"locationId": LOCATION_SAN_JOSE, "max": 10, "start": 30},
    )
    assert len(last.json()["phoneNumbers"]) == 4 and "link" not in last.headers


@pytest.mark.parametrize("location", ["london", "LONDON", LOCATION_LONDON])
async def test_a_location_is_named_by_name_in_any_case_or_by_id(webex, location):
    offers = await webex.search(SearchQuery(country="GB", location=location))
    numbers = [o.numbers[0] for o in offers]
    assert numbers[0] == "+442071838000" and "+442071838001" not in numbers  # bob has that one
    assert len(numbers) == 8 and all(n.startswith("+44") for n in numbers)
    assert {o.ref["location_id"] for o in offers} == {LOCATION_LONDON}


async def test_an_unknown_location_names_the_known_ones(webex, app):
    with pytest.raises(NotFound, match="Known locations: London, San Jose"):
        await webex.search(SearchQuery(country="US", location="Paris"))
    assert app.count("GET", NUMBERS_PATH) == 0


async def test_the_configured_location_is_the_default_and_no_location_lists_all(app, sleep):
    transport = httpx.ASGITransport(app=app)
    london = WebexProvider(
        SANDBOX_WEBEX_TOKEN, api_url=SANDBOX_WEBEX_API_URL, location_id=LOCATION_LONDON, transport=transport
    )
    everywhere = WebexProvider(SANDBOX_WEBEX_TOKEN, api_url=SANDBOX_WEBEX_API_URL, transport=transport)
    assert len(await london.search(SearchQuery(country="GB"))) == 8
    assert len(await everywhere.search(SearchQuery(country="US"))) == 42
    await london.aclose()
    await everywhere.aclose()


async def test_a_server_that_caps_its_pages_is_still_read_to_the_end(sleep):
    app = create_webex_sandbox(page_size_cap=7)
    provider = WebexProvider(
        SANDBOX_WEBEX_TOKEN,
        api_url=SANDBOX_WEBEX_API_URL,
        transport=httpx.ASGITransport(app=app),
        sleep=sleep,
    )
    assert len(await provider.search(SearchQuery(country="US", location="San Jose"))) == 34
    assert app.count("GET", NUMBERS_PATH) == 5
    await provider.aclose()


async def test_the_sandbox_throttles_and_the_client_waits_it_out(sleep):
    app = create_webex_sandbox(throttle_every=3)
    provider = WebexProvider(
        SANDBOX_WEBEX_TOKEN,
        api_url=SANDBOX_WEBEX_API_URL,
        transport=httpx.ASGITransport(app=app),
        sleep=sleep,
        page_size=10,
    )
    offers = await provider.search(SearchQuery(country="US", location="San Jose"))
    assert len(offers) == 34
    assert sleep.waits and set(sleep.waits) == {1.0}
    assert app.count("GET", NUMBERS_PATH) > 4  # some pages were asked for twice
    await provider.aclose()


async def test_injected_throttle_with_an_http_date_is_waited_out(webex, app, sleep):
    app.faults.add(
        "status",
        method="GET",
        path=NUMBERS_PATH,
        times=2,
        status=429,
        body={"message": "slow", "errors": [{"description": "slow"}], "trackingId": "T"},
        headers={"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"},  # already past: no wait
    )
    assert len(await listed(webex, LOCATION_LONDON)) == 8
    assert sleep.waits == [0.0, 0.0]


async def test_a_wrong_org_id_is_reported_in_webexs_words(app):
    provider = WebexProvider(
        SANDBOX_WEBEX_TOKEN,
        api_url=SANDBOX_WEBEX_API_URL,
        org_id="not-our-org",
        transport=httpx.ASGITransport(app=app),
    )
    with pytest.raises(ProviderError, match="Organization not-our-org was not found"):
        await provider.search(SearchQuery(country="US"))
    await provider.aclose()


# --- prepare --------------------------------------------------------------------------------


async def test_prepare_finds_the_requesters_person_by_email(webex, app):
    offer = await offer_for(webex, "+14085550101")
    prepared = await webex.prepare(offer, 1, Requester("U1", "Alice@Example.com"))
    assert prepared == {
        "person_id": stored_person(app, "alice@example.com")["id"],
        "email": "Alice@Example.com",
        "replaces": None,
    }
    london = await offer_for(webex, "+442071838002", "London")
    bob = await webex.prepare(london, 1, Requester("U2", "bob@example.com"))
    assert bob["replaces"] == "+442071838001"


async def test_prepare_refuses_an_unknown_email(webex):
    offer = await offer_for(webex, "+14085550101")
    with pytest.raises(NotFound) as info:
        await webex.prepare(offer, 1, Requester("U9", "x@y.example"))
    assert str(info.value) == (
        "No Webex person has the e-mail x@y.example; ask an admin to add you to Webex Calling before requesting a number."
    )


async def test_prepare_refuses_a_person_without_webex_calling(webex):
    offer = await offer_for(webex, "+14085550101")
    with pytest.raises(NotAllowed, match="carol@example.com has no Webex Calling"):
        await webex.prepare(offer, 1, Requester("U3", "carol@example.com"))


async def test_prepare_refuses_more_than_one_number(webex):
    offer = await offer_for(webex, "+14085550101")
    with pytest.raises(NotAllowed, match="quantity must be 1"):
        await webex.prepare(offer, 2, Requester("U1", "alice@example.com"))


# --- submit, recover, release ------------------------------------------------------------------


async def test_assignment_changes_only_the_number_and_location(webex, app):
    job = await approved_job(webex, "+14085550105", "alice@example.com")
    before = stored_person(app, "alice@example.com")
    assert await webex.submit(job) == Done(["+14085550105"])
    after = stored_person(app, "alice@example.com")
    untouched = set(before) | set(after)
    untouched -= {"phoneNumbers", "locationId", "lastModified"}  # lastModified is Webex's own stamp
    assert {k: before.get(k) for k in untouched} == {k: after.get(k) for k in untouched}
    assert len(untouched) > 15
    assert after["phoneNumbers"] == [
        {"type": "mobile", "value": "+14085559001"},
        {"type": "work", "value": "+14085550105"},
    ]
    assert after["locationId"] == LOCATION_SAN_JOSE
    assert "+14085550105" not in await listed(webex, LOCATION_SAN_JOSE)
    assert app.count("PUT", PEOPLE_PUT) == 1


async def test_a_number_of_another_location_is_refused_before_approval_with_the_reason(webex, app):
    offer = await offer_for(webex, "+14085550110")  # San Jose; bob calls from London
    with pytest.raises(NotAllowed) as info:
        await webex.prepare(offer, 1, Requester("U2", "bob@example.com"))
    assert "belongs to the Webex location San Jose" in str(info.value)
    assert "cannot move a calling user to another location" in str(info.value)
    assert app.count("PUT", PEOPLE_PUT) == 0


async def test_assignment_keeps_the_persons_location_and_frees_their_old_number(webex, app):
    job = await approved_job(webex, "+442071838005", "bob@example.com", "London")
    assert await webex.submit(job) == Done(["+442071838005"])
    bob = stored_person(app, "bob@example.com")
    assert work_number(bob) == "+442071838005" and bob["locationId"] == LOCATION_LONDON
    assert "+442071838001" in await listed(webex, LOCATION_LONDON)
    put = json.loads([r for r in app.requests if r.method == "PUT"][-1].body)
    assert not set(put) & {"id", "created", "lastModified", "status", "type", "sipAddresses", "invitePending",
                           "loginEnabled", "timezone", "lastActivity"}
    assert bob["loginEnabled"] is True  # not sent, kept


async def test_a_job_for_another_location_fails_without_a_put(webex, app):
    """Defence in depth: even a job that got past prepare never moves a calling user."""
    job = await approved_job(webex, "+442071838006", "bob@example.com", "London")
    job.ref["person_id"] = stored_person(app, "alice@example.com")["id"]  # alice calls from San Jose
    step = await webex.submit(job)
    assert isinstance(step, Failed) and "cannot move a calling user" in step.reason
    assert app.count("PUT", PEOPLE_PUT) == 0


async def test_a_number_taken_meanwhile_fails_with_the_reason_and_sends_no_put(webex, app):
    job = await approved_job(webex, "+14085550120", "alice@example.com")
    app.assign_elsewhere("+14085550120")
    step = await webex.submit(job)
    assert step == Failed("+14085550120 is no longer available: it was assigned elsewhere meanwhile")
    assert app.count("PUT", PEOPLE_PUT) == 0
    assert work_number(stored_person(app, "alice@example.com")) is None


async def test_a_put_applied_but_unanswered_is_unknown_then_recovered_as_done(webex, app):
    job = await approved_job(webex, "+14085550111", "alice@example.com")
    app.faults.add("after", method="PUT", path=PEOPLE_PUT, status=504)
    with pytest.raises(OutcomeUnknown):
        await webex.submit(job)
    assert await webex.recover(job) == Done(["+14085550111"])
    # submitting again (as a worker might) sees it done and changes nothing
    step = await webex.submit(job)
    assert isinstance(step, Done) and step.numbers == ["+14085550111"]
    assert app.count("PUT", PEOPLE_PUT) == 1


async def test_a_dropped_put_is_unknown_and_recover_says_safe_to_submit_again(webex, app):
    job = await approved_job(webex, "+14085550112", "alice@example.com")
    app.faults.add("drop", method="PUT", path=PEOPLE_PUT)
    with pytest.raises(OutcomeUnknown, match="may or may not have applied"):
        await webex.submit(job)
    assert await webex.recover(job) is None
    assert await webex.submit(job) == Done(["+14085550112"])
    assert work_number(stored_person(app, "alice@example.com")) == "+14085550112"


async def test_release_gives_the_number_back_to_the_organisation(webex, app):
    job = await approved_job(webex, "+14085550113", "alice@example.com")
    await webex.submit(job)
    person_id = job.ref["person_id"]
    assert await webex.release("+14085550113", {"person_id": person_id}) == Done(["+14085550113"])
    alice = stored_person(app, "alice@example.com")
    assert (
        alice["phoneNumbers"] == [{"type": "mobile", "value": "+14085559001"}]
        and alice["extension"] == "1001"
    )
    assert "+14085550113" in await listed(webex, LOCATION_SAN_JOSE)
    again = await webex.release("+14085550113", {"person_id": person_id})
    assert again.numbers == ["+14085550113"] and "no longer had" in (again.note or "")
    assert app.count("PUT", PEOPLE_PUT) == 2


async def test_a_release_that_names_no_person_is_refused_before_any_call(webex, app):
    with pytest.raises(ProviderError, match="names no Webex person"):
        await webex.release("+14085550113", {"number_id": 7})
    assert app.count("GET", PEOPLE_PUT) == 0 and app.count("PUT", PEOPLE_PUT) == 0


async def test_a_deleted_person_fails_the_assignment_in_webexs_words(webex, app):
    job = await approved_job(webex, "+14085550114", "alice@example.com")
    app.state.delete("webex_people", job.ref["person_id"])
    with pytest.raises(ProviderError, match="Person not found"):
        await webex.submit(job)


# --- check and credentials -------------------------------------------------------------------------


async def test_check_names_the_token_owner(webex):
    assert await webex.check() == "token ok (Numbers Admin)"


async def test_a_wrong_token_is_refused_without_repeating_it(app):
    wrong = "wrong-token-0123456789abcdef"
    provider = WebexProvider(wrong, api_url=SANDBOX_WEBEX_API_URL, transport=httpx.ASGITransport(app=app))
    errors = []
    for call in (
        provider.check(),
        provider.search(SearchQuery(country="US")),
        provider.recover(
            Job(1, "webex", "assign", {"number": "+14085550101", "person_id": "p"}, 1, [], Requester("U1"))
        ),
    ):
        with pytest.raises(ProviderAuthError) as info:
            await call
        errors.append(info.value)
    tracking_ids = [r.headers["trackingid"] for r in app.requests]
    for err, tracking_id in zip(errors, tracking_ids, strict=True):
        assert "missing, wrong or expired" in str(err) and f"(tracking id {tracking_id})" in str(err)
        assert wrong not in str(err) and wrong not in repr(err)
    await provider.aclose()


# --- the service's protocol ---------------------------------------------------------------------------


async def test_unauthenticated_calls_get_webexs_error_shape_with_the_tracking_id(raw):
    response = await raw.get("people/me", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    body = response.json()
    assert body["trackingId"] == "TEST_tracking-1" and body["errors"][0]["description"]
    assert response.headers["trackingid"] == "TEST_tracking-1"


async def test_put_is_a_full_replace_and_needs_a_display_name(raw, app):
    alice = (await raw.get("people", params={"email": "alice@example.com", "callingData": "true"})).json()[
        "items"
    ][0]
    path = f"people/{alice['id']}"
    missing = await raw.put(
        path, params={"callingData": "true"}, json={k: v for k, v in alice.items() if k != "displayName"}
    )
    assert missing.status_code == 400 and "displayName" in missing.json()["errors"][0]["description"]

    slim = {k: alice[k] for k in ("displayName", "emails", "phoneNumbers", "extension", "locationId")}
    assert (await raw.put(path, params={"callingData": "true"}, json=slim)).status_code == 200
    after = stored_person(app, "alice@example.com")
    assert "licenses" not in after and "title" not in after and "firstName" not in after
    assert after["id"] == alice["id"] and after["created"] == alice["created"]  # Webex keeps its own fields


async def test_put_without_calling_data_leaves_the_calling_fields_alone(raw, app):
    alice = (await raw.get("people", params={"email": "alice@example.com", "callingData": "true"})).json()[
        "items"
    ][0]
    body = {**alice, "phoneNumbers": [], "locationId": LOCATION_LONDON, "title": "Lead"}
    assert (await raw.put(f"people/{alice['id']}", json=body)).status_code == 200
    after = stored_person(app, "alice@example.com")
    assert after["locationId"] == LOCATION_SAN_JOSE and after["phoneNumbers"] == alice["phoneNumbers"]
    assert after["title"] == "Lead"


@pytest.mark.parametrize(
    "number, location, status, words",
    [
        ("+442071838001", LOCATION_SAN_JOSE, 409, "already assigned"),  # bob's
        ("+14085550101", LOCATION_LONDON, 400, "cannot be changed if a user is already an existing calling user"),
        ("+442071838002", LOCATION_SAN_JOSE, 400, "belongs to location London"),
        ("+15550000000", LOCATION_SAN_JOSE, 400, "does not belong to the organization"),
    ],
)
async def test_put_refuses_numbers_that_cannot_be_assigned(raw, number, location, status, words):
    alice = (await raw.get("people", params={"email": "alice@example.com", "callingData": "true"})).json()[
        "items"
    ][0]
    body = {**alice, "phoneNumbers": [{"type": "work", "value": number}], "locationId": location}
    response = await raw.put(f"people/{alice['id']}", params={"callingData": "true"}, json=body)
    assert response.status_code == status
    assert words in response.json()["errors"][0]["description"]
    assert response.json()["trackingId"] == "TEST_tracking-1"


async def test_put_needs_json(raw, app):
    alice = stored_person(app, "alice@example.com")
    response = await raw.put(
        f"people/{alice['id']}", content=json.dumps(alice), headers={"content-type": "text/plain"}
    )
    assert response.status_code == 415


@pytest.mark.parametrize(
    "params, status",
    [({"locationId": "x" * 37}, 400), ({"locationId": "no-such-location"}, 404), ({"max": "lots"}, 400)],
)
async def test_available_numbers_rejects_bad_queries(raw, params, status):
    response = await raw.get("telephony/config/people/primary/availableNumbers", params=params)
    assert response.status_code == status and response.json()["errors"][0]["description"]


async def test_phone_number_filter_and_unknown_routes(raw):
    response = await raw.get(
        "telephony/config/people/primary/availableNumbers",
        params={"phoneNumber": "+14085550101,+442071838001"},
    )
    assert [i["phoneNumber"] for i in response.json()["phoneNumbers"]] == [
        "+14085550101"
    ]  # bob owns the other
    item = response.json()["phoneNumbers"][0]
    assert item["location"] == {"id": LOCATION_SAN_JOSE, "name": "San Jose"} and "owner" not in item
    missing = await raw.get("no/such/thing")
    assert missing.status_code == 404 and missing.json()["trackingId"] == "TEST_tracking-1"
    assert (await raw.delete("people/me")).status_code == 405


def test_assign_elsewhere_refuses_numbers_it_cannot_take(app):
    with pytest.raises(ValueError, match="already assigned"):
        app.assign_elsewhere("+442071838001")
    with pytest.raises(ValueError, match="not in the sandbox inventory"):
        app.assign_elsewhere("+15550000000")


async def test_processes_sharing_a_state_file_see_the_same_assignments(tmp_path, sleep):
    path = str(tmp_path / "sandbox.db")
    first = create_webex_sandbox(SandboxState(path))
    first.assign_elsewhere("+14085550102")
    second = create_webex_sandbox(SandboxState(path))  # does not seed the people again
    provider = WebexProvider(
        SANDBOX_WEBEX_TOKEN,
        api_url=SANDBOX_WEBEX_API_URL,
        transport=httpx.ASGITransport(app=second),
        sleep=sleep,
    )
    numbers = await listed(provider, LOCATION_SAN_JOSE)
    assert "+14085550102" not in numbers and "+14085550101" in numbers
    assert len(second.state.items("webex_people")) == 5
    await provider.aclose()


# --- the location rule at search time ---------------------------------------------------------


async def test_a_known_requester_is_offered_only_numbers_of_their_own_location(webex, app):
    offers = await webex.search(SearchQuery(country="US", requester_email="bob@example.com"))
    assert offers and {o.details["location_name"] for o in offers} == {"London"}
    assert {o.ref["location_id"] for o in offers} == {LOCATION_LONDON}
    everyone = await webex.search(SearchQuery(country="US"))  # nobody known: every location, as before
    assert {o.details["location_name"] for o in everyone} == {"London", "San Jose"}


async def test_asking_for_another_location_than_ones_own_is_refused_with_the_reason(webex):
    with pytest.raises(NotAllowed, match="cannot move a calling user to another location"):
        await webex.search(SearchQuery(country="US", location="San Jose", requester_email="bob@example.com"))


async def test_a_requester_without_calling_sees_the_usual_listing(webex):
    offers = await webex.search(SearchQuery(country="US", location="San Jose", requester_email="carol@example.com"))
    assert offers and {o.details["location_name"] for o in offers} == {"San Jose"}
