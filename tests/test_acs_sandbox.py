"""The simulated ACS service at the HTTP level: does it answer like the recorded traffic?"""

from __future__ import annotations

import base64
import re
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from bot.providers.acs import AcsAuth, parse_acs_time
from bot.sandbox.acs import (
    SANDBOX_ACS_ACCESS_KEY,
    SANDBOX_ACS_ENDPOINT,
    AcsSandbox,
    create_acs_sandbox,
    sandbox_connection_string,
)
from bot.sandbox.common import Clock, SandboxState

V = "api-version=2021-03-07"
TIMESTAMP_7 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}\+00:00$")
TOLLFREE = {"phoneNumberType": "tollFree", "assignmentType": "application",
            "capabilities": {"calling": "inbound", "sms": "inbound+outbound"}, "areaCode": "833", "quantity": 1}


@pytest.fixture
def app() -> AcsSandbox:
    return create_acs_sandbox()


@pytest.fixture
async def client(app):
    async with httpx.AsyncClient(
        base_url=SANDBOX_ACS_ENDPOINT, transport=httpx.ASGITransport(app=app), auth=AcsAuth(SANDBOX_ACS_ACCESS_KEY)
    ) as c:
        yield c


async def start_search(client, body=None, country="US") -> str:
    r = await client.post(f"/availablePhoneNumbers/countries/{country}/:search?{V}", json=body or TOLLFREE)
    assert r.status_code == 202, r.text
    return r.headers["search-id"]


async def poll(client, operation_id: str) -> list[str]:
    statuses = []
    while True:
        r = await client.get(f"/phoneNumbers/operations/{operation_id}?{V}")
        assert r.status_code == 200, r.text
        statuses.append(r.json()["status"])
        if statuses[-1].lower() in ("succeeded", "failed"):
            return statuses
        assert len(statuses) < 20


async def held_search(client, body=None) -> str:
    search_id = await start_search(client, body)
    await poll(client, f"search_{search_id}")
    return search_id


async def test_search_answers_202_with_empty_body_and_relative_locations(client):
    r = await client.post(f"/availablePhoneNumbers/countries/US/:search?{V}", json=TOLLFREE)
    assert r.status_code == 202 and r.content == b"" and r.headers["content-length"] == "0"
    search_id = r.headers["search-id"]
    assert r.headers["operation-id"] == f"search_{search_id}"
    assert r.headers["operation-location"] == f"/phoneNumbers/operations/search_{search_id}?{V}"
    assert r.headers["location"] == f"/availablePhoneNumbers/searchResults/{search_id}?{V}"
    names = [k for k, _ in r.headers.raw]
    assert b"Operation-Location" in names and b"operation-id" in names  # letter case as the service sent it


async def test_search_operation_progresses_and_result_has_the_recorded_shape(client):
    search_id = await start_search(client)
    assert await poll(client, f"search_{search_id}") == ["NotStarted", "Running", "Succeeded"]
    r = await client.get(f"/phoneNumbers/operations/search_{search_id}?{V}")
    op = r.json()
    assert op["operationType"] == "Search" and op["id"] == f"search_{search_id}"
    assert op["resourceLocation"] == f"/availablePhoneNumbers/searchResults/{search_id}?{V}"
    assert TIMESTAMP_7.match(op["createdDateTime"])

    result = (await client.get(op["resourceLocation"])).json()
    assert result["searchId"] == search_id
    assert result["phoneNumbers"] == ["+18335550100"]
    assert result["phoneNumberType"] == "TollFree" and result["assignmentType"] == "Application"
    assert result["capabilities"] == TOLLFREE["capabilities"]
    assert result["cost"] == {"amount": 2.0, "currencyCode": "USD", "billingFrequency": "monthly"}
    assert TIMESTAMP_7.match(result["searchExpiresBy"])
    held_for = parse_acs_time(result["searchExpiresBy"]) - parse_acs_time(op["createdDateTime"])
    assert held_for == timedelta(seconds=960)


async def test_lower_camel_values_on_request(client, app):
    app.set_value_case("camel")
    search_id = await start_search(client)
    assert await poll(client, f"search_{search_id}") == ["notStarted", "running", "succeeded"]
    result = (await client.get(f"/availablePhoneNumbers/searchResults/{search_id}?{V}")).json()
    assert result["phoneNumberType"] == "tollFree"


async def test_purchase_is_not_monotonic_and_then_the_numbers_are_owned(client, app):
    search_id = await held_search(client)
    r = await client.post(f"/availablePhoneNumbers/:purchase?{V}", json={"searchId": search_id})
    assert r.status_code == 202 and r.content == b""
    assert r.headers["operation-id"] == f"purchase_{search_id}" and r.headers["purchase-id"] == search_id
    assert r.headers["operation-location"] == f"/phoneNumbers/operations/purchase_{search_id}?{V}"
    statuses = await poll(client, f"purchase_{search_id}")
    assert statuses == ["Running", "Running", "NotStarted", "NotStarted", "Succeeded"]
    op = (await client.get(f"/phoneNumbers/operations/purchase_{search_id}?{V}")).json()
    assert op["operationType"] == "Purchase" and op["resourceLocation"] is None
    listed = (await client.get(f"/phoneNumbers?{V}")).json()["phoneNumbers"]
    assert [n["phoneNumber"] for n in listed] == ["+18335550100"]
    one = await client.get(f"/phoneNumbers/%2B18335550100?{V}")
    assert one.json()["phoneNumberType"] == "TollFree"


@pytest.mark.parametrize("polls, expected", [(0, ["Succeeded"]), (1, ["Running", "Succeeded"]),
                                             (6, ["Running"] * 3 + ["NotStarted"] * 3 + ["Succeeded"])])
async def test_purchase_polls_knob(polls, expected):
    app = create_acs_sandbox(purchase_polls=polls, search_polls=0)
    async with httpx.AsyncClient(base_url=SANDBOX_ACS_ENDPOINT, transport=httpx.ASGITransport(app=app),
                                 auth=AcsAuth(SANDBOX_ACS_ACCESS_KEY)) as client:
        search_id = await start_search(client)
        assert await poll(client, f"search_{search_id}") == ["Succeeded"]
        await client.post(f"/availablePhoneNumbers/:purchase?{V}", json={"searchId": search_id})
        assert await poll(client, f"purchase_{search_id}") == expected


async def test_holds_expire(client, app):
    search_id = await held_search(client)
    app.clock.advance(961)
    r = await client.get(f"/availablePhoneNumbers/searchResults/{search_id}?{V}")
    assert r.status_code == 404 and "expired" in r.json()["error"]["message"]
    r = await client.post(f"/availablePhoneNumbers/:purchase?{V}", json={"searchId": search_id})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "SearchExpired" and "Search again" in r.json()["error"]["message"]
    # The number is offered again.
    other = await held_search(client)
    result = (await client.get(f"/availablePhoneNumbers/searchResults/{other}?{V}")).json()
    assert result["phoneNumbers"] == ["+18335550100"]


async def test_second_purchase_is_a_conflict(client):
    search_id = await held_search(client)
    first = await client.post(f"/availablePhoneNumbers/:purchase?{V}", json={"searchId": search_id})
    second = await client.post(f"/availablePhoneNumbers/:purchase?{V}", json={"searchId": search_id})
    assert first.status_code == 202 and second.status_code == 409
    assert "already submitted" in second.json()["error"]["message"]


@pytest.mark.parametrize(
    "body, message",
    [
        ({}, "searchId is required."),
        ({"searchId": "b8db86ec-0000-0000-0000-000000000000"}, "was not found"),
    ],
)
async def test_purchase_of_nothing(client, body, message):
    r = await client.post(f"/availablePhoneNumbers/:purchase?{V}", json=body)
    assert r.status_code in (400, 404) and message in r.json()["error"]["message"]


async def test_purchase_before_the_search_completed_is_refused(client):
    search_id = await start_search(client)
    r = await client.post(f"/availablePhoneNumbers/:purchase?{V}", json={"searchId": search_id})
    assert r.status_code == 400 and "not completed" in r.json()["error"]["message"]


async def test_fail_next_purchase_knob(client, app):
    app.fail_next_purchase("Purchase blocked for this subscription.")
    search_id = await held_search(client)
    await client.post(f"/availablePhoneNumbers/:purchase?{V}", json={"searchId": search_id})
    assert (await poll(client, f"purchase_{search_id}"))[-1] == "Failed"
    op = (await client.get(f"/phoneNumbers/operations/purchase_{search_id}?{V}")).json()
    assert op["error"] == {"code": "PurchaseFailed", "message": "Purchase blocked for this subscription."}
    assert app.purchased() == [] and "+18335550100" in app.available("US", "tollFree", "833")
    # Only the next one.
    again = await held_search(client)
    await client.post(f"/availablePhoneNumbers/:purchase?{V}", json={"searchId": again})
    assert (await poll(client, f"purchase_{again}"))[-1] == "Succeeded"


async def test_empty_stock_fails_the_search_operation(client):
    body = {**TOLLFREE, "phoneNumberType": "geographic", "areaCode": "907"}
    search_id = await start_search(client, body)
    assert (await poll(client, f"search_{search_id}"))[-1] == "Failed"
    op = (await client.get(f"/phoneNumbers/operations/search_{search_id}?{V}")).json()
    assert op["error"]["code"] == "NoAvailableNumbers" and "907" in op["error"]["message"]


async def test_stock_runs_out(client):
    body = {**TOLLFREE, "areaCode": "800", "quantity": 2}
    first = await held_search(client, body)
    assert len((await client.get(f"/availablePhoneNumbers/searchResults/{first}?{V}")).json()["phoneNumbers"]) == 2
    second = await start_search(client, body)
    assert (await poll(client, f"search_{second}"))[-1] == "Failed"


@pytest.mark.parametrize(
    "country, body, target, words",
    [
        ("XX", TOLLFREE, "countrycode", "Unable to parse country code."),
        ("USA", TOLLFREE, "countrycode", "Unable to parse country code."),
        ("DE", TOLLFREE, "countrycode", "not offered in country DE"),
        ("US", {**TOLLFREE, "phoneNumberType": "mobile"}, "phoneNumberType", "geographic or tollFree"),
        ("US", {**TOLLFREE, "assignmentType": "robot"}, "assignmentType", "person or application"),
        ("US", {**TOLLFREE, "capabilities": {"calling": "loud", "sms": "none"}}, "capabilities", "must each be"),
        ("US", {**TOLLFREE, "capabilities": {"calling": "none", "sms": "none"}}, "capabilities", "At least one"),
        ("US", {**TOLLFREE, "areaCode": "999"}, "areaCode", "999 is not a valid toll-free prefix"),
        ("US", {**TOLLFREE, "phoneNumberType": "geographic", "areaCode": "833"}, "areaCode", "not a valid area code"),
        ("GB", {**TOLLFREE, "areaCode": "833"}, "areaCode", "Valid: 800, 808"),
        ("US", {**TOLLFREE, "quantity": 0}, "quantity", "between 1 and 20"),
        ("US", {**TOLLFREE, "quantity": 21}, "quantity", "between 1 and 20"),
        ("US", {**TOLLFREE, "quantity": "2"}, "quantity", "between 1 and 20"),
    ],
)
async def test_bad_search_input_is_a_400_communication_error(client, app, country, body, target, words):
    r = await client.post(f"/availablePhoneNumbers/countries/{country}/:search?{V}", json=body)
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "InvalidInput" and error["target"] == target and words in error["message"]
    assert not app.state.items("acs_numbers")  # nothing was held


async def test_recorded_bad_country_error_verbatim(client):
    r = await client.post(f"/availablePhoneNumbers/countries/XX/:search?{V}", json=TOLLFREE)
    assert r.json() == {
        "error": {"code": "InvalidInput", "message": "Unable to parse country code.", "target": "countrycode"}
    }


# --- authentication ----------------------------------------------------------------------


def _signed(method: str, path: str, *, key: str = SANDBOX_ACS_ACCESS_KEY, when: datetime | None = None,
            body: bytes = b"") -> httpx.Request:
    request = httpx.Request(method, SANDBOX_ACS_ENDPOINT + path, content=body)
    return next(AcsAuth(key, now=lambda: when or datetime.now(timezone.utc)).auth_flow(request))


async def _send(app, request: httpx.Request) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as raw:
        return await raw.send(request)


def _tamper(request: httpx.Request, **headers) -> httpx.Request:
    for name, value in headers.items():
        name = name.replace("_", "-")
        if value is None:
            del request.headers[name]
        else:
            request.headers[name] = value
    return request


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: _signed("GET", f"/phoneNumbers?{V}", key=base64.b64encode(b"x" * 32).decode()),
         "Denied by the resource provider."),
        (lambda: _tamper(_signed("GET", f"/phoneNumbers?{V}"), authorization=None), "not signed"),
        (lambda: _tamper(_signed("GET", f"/phoneNumbers?{V}"), x_ms_date=None), "not signed"),
        (lambda: _tamper(_signed("GET", f"/phoneNumbers?{V}"), x_ms_content_sha256=None), "not signed"),
        (lambda: _tamper(_signed("GET", f"/phoneNumbers?{V}"), authorization="Bearer abc"), "HMAC-SHA256"),
        (lambda: _tamper(_signed("GET", f"/phoneNumbers?{V}"), x_ms_date="yesterday"), "RFC 1123"),
        (lambda: _tamper(_signed("GET", f"/phoneNumbers?{V}"), x_ms_date="Thu, 08 Dec 2022 23:09:33 GMT"),
         "more than 15 minutes"),
        (lambda: _signed("GET", f"/phoneNumbers?{V}", when=datetime.now(timezone.utc) - timedelta(minutes=16)),
         "more than 15 minutes"),
        (lambda: _tamper(_signed("POST", f"/availablePhoneNumbers/:purchase?{V}", body=b'{"searchId": "a"}'),
                         x_ms_content_sha256="47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="),
         "does not match the body"),
        (lambda: _tamper(_signed("GET", f"/phoneNumbers?{V}"), host="elsewhere.example"),
         "Denied by the resource provider."),
    ],
    ids=["wrong-key", "no-authorization", "no-date", "no-hash", "not-hmac", "bad-date", "stale-date",
         "signed-16-min-ago", "body-changed", "other-host"],
)
async def test_unauthenticated_requests_get_401(app, make, words):
    r = await _send(app, make())
    assert r.status_code == 401
    error = r.json()["error"]
    assert error["code"] == "Denied" and words in error["message"]


async def test_signature_is_checked_against_host_with_port():
    app = create_acs_sandbox()
    endpoint = "http://127.0.0.1:8765"
    async with httpx.AsyncClient(base_url=endpoint, transport=httpx.ASGITransport(app=app),
                                 auth=AcsAuth(SANDBOX_ACS_ACCESS_KEY)) as client:
        assert (await client.get(f"/phoneNumbers?{V}")).status_code == 200
    request = _signed("GET", f"/phoneNumbers?{V}")  # signed for acs.sandbox.invalid
    request.url = httpx.URL(endpoint + f"/phoneNumbers?{V}")
    request.headers["host"] = "127.0.0.1:8765"
    assert (await _send(app, request)).status_code == 401


async def test_moving_the_sandbox_clock_does_not_lock_out_wall_clock_clients(client, app):
    app.clock.advance(3600)
    assert (await client.get(f"/phoneNumbers?{V}")).status_code == 200


@pytest.mark.parametrize(
    "query, code", [("", "MissingApiVersionParameter"), ("?api-version=1999-01-01", "UnsupportedApiVersion")]
)
async def test_api_version_is_required(client, query, code):
    r = await client.get(f"/phoneNumbers{query}")
    assert r.status_code == 400 and r.json()["error"]["code"] == code


async def test_newer_api_versions_are_accepted_and_echoed(client):
    r = await client.post("/availablePhoneNumbers/countries/US/:search?api-version=2022-01-11-preview2", json=TOLLFREE)
    assert r.headers["operation-location"].endswith("?api-version=2022-01-11-preview2")


# --- operations, release, listing ------------------------------------------------------------


async def test_unknown_operation_is_404(client):
    r = await client.get(f"/phoneNumbers/operations/purchase_nothing?{V}")
    assert r.status_code == 404 and r.json()["error"]["code"] == "NotFound"


async def test_delete_on_a_search_operation_cancels_the_hold(client, app):
    search_id = await start_search(client)
    r = await client.delete(f"/phoneNumbers/operations/search_{search_id}?{V}")
    assert r.status_code == 204
    op = (await client.get(f"/phoneNumbers/operations/search_{search_id}?{V}")).json()
    assert op["status"] == "Failed" and op["error"]["code"] == "Cancelled"
    assert "+18335550100" in app.available("US", "tollFree", "833")
    assert (await client.delete(f"/phoneNumbers/operations/search_nothing?{V}")).status_code == 404


async def test_release_is_an_operation_and_returns_the_number(client, app):
    search_id = await held_search(client)
    await client.post(f"/availablePhoneNumbers/:purchase?{V}", json={"searchId": search_id})
    await poll(client, f"purchase_{search_id}")
    r = await client.delete(f"/phoneNumbers/%2B18335550100?{V}")
    assert r.status_code == 202
    operation_id = r.headers["operation-id"]
    assert operation_id.startswith("release_") and r.headers["release-id"] == operation_id.removeprefix("release_")
    assert (await client.delete(f"/phoneNumbers/%2B18335550100?{V}")).status_code == 409
    assert await poll(client, operation_id) == ["Running", "Running", "Succeeded"]
    op = (await client.get(f"/phoneNumbers/operations/{operation_id}?{V}")).json()
    assert op["operationType"] == "ReleasePhoneNumber"
    assert (await client.get(f"/phoneNumbers?{V}")).json() == {"phoneNumbers": [], "nextLink": None}
    r = await client.delete(f"/phoneNumbers/%2B18335550100?{V}")
    assert r.status_code == 404 and r.json()["error"]["message"] == "Input phoneNumber +18335550100 cannot be found."


async def test_admin_routes_need_no_signature(app):
    async with httpx.AsyncClient(base_url=SANDBOX_ACS_ENDPOINT, transport=httpx.ASGITransport(app=app)) as raw:
        fault = {"kind": "status", "method": "GET", "path": "^/phoneNumbers$", "status": 503}
        r = await raw.post("/_sandbox/faults", json=fault)
        assert r.status_code == 201
    async with httpx.AsyncClient(base_url=SANDBOX_ACS_ENDPOINT, transport=httpx.ASGITransport(app=app),
                                 auth=AcsAuth(SANDBOX_ACS_ACCESS_KEY)) as client:
        assert (await client.get(f"/phoneNumbers?{V}")).status_code == 503


async def test_two_sandboxes_sharing_a_state_file_agree(tmp_path):
    path = str(tmp_path / "sandbox.db")
    first, second = create_acs_sandbox(SandboxState(path)), create_acs_sandbox(SandboxState(path))

    def client_for(app):
        return httpx.AsyncClient(base_url=SANDBOX_ACS_ENDPOINT, transport=httpx.ASGITransport(app=app),
                                 auth=AcsAuth(SANDBOX_ACS_ACCESS_KEY))

    async with client_for(first) as a, client_for(second) as b:
        search_id = await held_search(a)  # one process searches …
        other = await held_search(b)  # … another does not get the held number …
        numbers = (await b.get(f"/availablePhoneNumbers/searchResults/{other}?{V}")).json()["phoneNumbers"]
        assert numbers == ["+18335550101"]
        second.fail_next_purchase("from the other process")
        # … and buys the first.
        r = await b.post(f"/availablePhoneNumbers/:purchase?{V}", json={"searchId": search_id})
        assert r.status_code == 202
        assert (await poll(a, f"purchase_{search_id}"))[-1] == "Failed"


async def test_custom_access_key_and_connection_string():
    key = base64.b64encode(b"another sandbox key for this test").decode()
    app = create_acs_sandbox(access_key=key, clock=Clock())
    assert sandbox_connection_string("http://127.0.0.1:9000", key) == f"endpoint=http://127.0.0.1:9000/;accesskey={key}"
    async with httpx.AsyncClient(base_url=SANDBOX_ACS_ENDPOINT, transport=httpx.ASGITransport(app=app),
                                 auth=AcsAuth(key)) as client:
        assert (await client.get(f"/phoneNumbers?{V}")).status_code == 200
    assert (await _send(app, _signed("GET", f"/phoneNumbers?{V}"))).status_code == 401
