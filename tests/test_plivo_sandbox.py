"""The simulated Plivo service, spoken to over HTTP as any Plivo client would."""

from __future__ import annotations

import re
import urllib.parse

import httpx
import pytest

from bot.sandbox.common import SandboxState
from bot.sandbox.plivo import (
    SANDBOX_PLIVO_API_URL,
    SANDBOX_PLIVO_AUTH_ID,
    SANDBOX_PLIVO_AUTH_TOKEN,
    create_plivo_sandbox,
)

BASE = f"/v1/Account/{SANDBOX_PLIVO_AUTH_ID}/"
SEARCH = BASE + "AvailableNumberGroup/"
AUTH = (SANDBOX_PLIVO_AUTH_ID, SANDBOX_PLIVO_AUTH_TOKEN)
AMIENS = "55350421590053"


@pytest.fixture
def app():
    return create_plivo_sandbox()


@pytest.fixture
async def client(app):
    async with httpx.AsyncClient(
        base_url=SANDBOX_PLIVO_API_URL, transport=httpx.ASGITransport(app=app), auth=AUTH
    ) as c:
        yield c


async def all_groups(client, **params) -> list[dict]:
    """Every group for a query, following meta.next the way Plivo hands it out."""
    groups = []
    url = SEARCH + "?" + urllib.parse.urlencode(params)
    while url:
        answer = await client.get(url)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        groups.extend(body["objects"])
        url = body["meta"]["next"]
    return groups


async def group_for(client, country, number_type="local", prefix=None) -> dict:
    params = {"country_iso": country, "number_type": number_type}
    if prefix:
        params["prefix"] = prefix
    return (await all_groups(client, **params))[0]


def test_constants_look_like_plivo_credentials():
    assert len(SANDBOX_PLIVO_AUTH_ID) == 20 and SANDBOX_PLIVO_AUTH_ID.startswith("MA")
    assert SANDBOX_PLIVO_AUTH_TOKEN and SANDBOX_PLIVO_AUTH_TOKEN != SANDBOX_PLIVO_AUTH_ID
    assert SANDBOX_PLIVO_API_URL == "https://plivo.sandbox.invalid"


# --- authentication ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "auth, path",
    [
        (None, SEARCH),
        ((SANDBOX_PLIVO_AUTH_ID, "wrong-token"), SEARCH),
        (("MAOTHERACCOUNT000002", SANDBOX_PLIVO_AUTH_TOKEN), SEARCH),
        # Right credentials, another account's path.
        (AUTH, "/v1/Account/MAOTHERACCOUNT000002/AvailableNumberGroup/"),
        (AUTH, "/v1/Account/MAOTHERACCOUNT000002/"),
    ],
)
async def test_unauthorised_requests_get_401_in_plivo_shape(app, auth, path):
    async with httpx.AsyncClient(base_url=SANDBOX_PLIVO_API_URL, transport=httpx.ASGITransport(app=app), auth=auth) as c:
        answer = await c.get(path, params={"country_iso": "US"})
    assert answer.status_code == 401
    body = answer.json()
    assert set(body) == {"api_id", "error"}
    assert body["error"] == "Authentication credentials invalid"


async def test_broken_basic_header_is_401(app):
    async with httpx.AsyncClient(base_url=SANDBOX_PLIVO_API_URL, transport=httpx.ASGITransport(app=app)) as c:
        answer = await c.get(BASE, headers={"Authorization": "Basic !!!not-base64"})
    assert answer.status_code == 401


async def test_account_details(client):
    answer = await client.get(BASE)
    assert answer.status_code == 200
    body = answer.json()
    assert body["auth_id"] == SANDBOX_PLIVO_AUTH_ID
    assert body["resource_uri"] == BASE
    assert re.fullmatch(r"\d+\.\d{5}", body["cash_credits"])


# --- search -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, words",
    [
        ({}, "country_iso is required"),
        ({"country_iso": "USA"}, "not a valid ISO 3166 alpha-2 code"),
        ({"country_iso": "US", "prefix": "41a"}, "prefix must be numeric and at most 5 digits"),
        ({"country_iso": "US", "prefix": "123456"}, "prefix must be numeric and at most 5 digits"),
        ({"country_iso": "US", "limit": "21"}, "limit must be between 1 and 20"),
        ({"country_iso": "US", "limit": "0"}, "limit must be between 1 and 20"),
        ({"country_iso": "US", "limit": "ten"}, "must be integers"),
        ({"country_iso": "US", "offset": "-1"}, "offset must be 0 or more"),
        ({"country_iso": "US", "number_type": "tollfree", "region": "BOSTON"}, "region can only be used with number_type local"),
        ({"country_iso": "US", "number_type": "mobile"}, "number_type 'mobile' is invalid"),
        ({"country_iso": "US", "services": "fax"}, "services 'fax' is invalid"),
    ],
)
async def test_search_validation_errors(client, params, words):
    answer = await client.get(SEARCH, params=params)
    assert answer.status_code == 400
    body = answer.json()
    assert set(body) == {"api_id", "error"}
    assert words in body["error"]


async def test_search_pages_with_relative_next_links(client):
    first = (await client.get(SEARCH, params={"country_iso": "US", "number_type": "local"})).json()
    assert first["meta"]["previous"] is None
    assert first["meta"]["total_count"] == 45
    assert (first["meta"]["offset"], first["meta"]["limit"]) == (0, 20)
    nxt = first["meta"]["next"]
    assert nxt.startswith(SEARCH + "?") and "offset=20" in nxt and "country_iso=US" in nxt
    assert not nxt.startswith("http")

    last = (await client.get(SEARCH, params={"country_iso": "US", "number_type": "local", "offset": "40"})).json()
    assert last["meta"]["next"] is None
    assert "offset=20" in last["meta"]["previous"]
    assert len(last["objects"]) == 5

    groups = await all_groups(client, country_iso="US", number_type="local")
    assert len(groups) == 45
    assert len({g["group_id"] for g in groups}) == 45


@pytest.mark.parametrize(
    "country, number_type, at_least",
    [("US", "local", 45), ("US", "tollfree", 7), ("GB", "local", 3), ("GB", "national", 1),
     ("FR", "local", 3), ("DE", "local", 3), ("BR", "local", 3)],
)
async def test_catalogue_groups_have_plivo_shapes(client, country, number_type, at_least):
    groups = await all_groups(client, country_iso=country, number_type=number_type)
    assert len(groups) >= at_least
    for g in groups:
        assert re.fullmatch(r"\d{14}", g["group_id"])
        assert g["number_type"] == number_type
        for rate in ("rental_rate", "setup_rate", "voice_rate"):
            assert re.fullmatch(r"\d+\.\d{5}", g[rate]), (rate, g[rate])
        assert isinstance(g["sms_rate"], (int, float)) and not isinstance(g["sms_rate"], bool)
        assert (g["sms_rate"] == -1) is (not g["sms_enabled"])
        assert isinstance(g["stock"], int)
        assert g["resource_uri"] == f"{SEARCH}{g['group_id']}/"


async def test_the_api_page_group_is_there_as_documented(client):
    [amiens] = await all_groups(client, country_iso="FR", prefix="3")
    assert {k: v for k, v in amiens.items() if k != "resource_uri"} == {
        "group_id": AMIENS,
        "number_type": "local",
        "prefix": "3",
        "region": "AMIENS, FRANCE",
        "rental_rate": "0.80000",
        "setup_rate": "0.80000",
        "sms_enabled": False,
        "sms_rate": -1,
        "stock": 9731,
        "voice_enabled": True,
        "voice_rate": "0.00700",
    }


@pytest.mark.parametrize(
    "params, check",
    [
        ({"prefix": "4"}, lambda g: g["prefix"].startswith("4")),
        ({"region": "boston"}, lambda g: "BOSTON" in g["region"]),
        ({"services": "sms"}, lambda g: g["sms_enabled"]),
        ({"services": "voice,sms"}, lambda g: g["sms_enabled"] and g["voice_enabled"]),
    ],
)
async def test_search_filters(client, params, check):
    groups = await all_groups(client, country_iso="US", **params)
    assert groups and all(check(g) for g in groups)
    everything = await all_groups(client, country_iso="US")
    assert len(groups) < len(everything)


async def test_search_for_a_country_without_groups_is_empty(client):
    body = (await client.get(SEARCH, params={"country_iso": "JP"})).json()
    assert body["objects"] == [] and body["meta"]["total_count"] == 0 and body["meta"]["next"] is None


# --- rent ------------------------------------------------------------------------------------


async def test_rent_fulfilled_hands_out_the_api_page_numbers_and_takes_stock(client, app):
    group = await group_for(client, "BR", prefix="31")
    answer = await client.post(f"{SEARCH}{group['group_id']}/", json={"quantity": 2})
    assert answer.status_code == 201
    body = answer.json()
    assert body["status"] == "fulfilled"
    assert body["numbers"] == [
        {"number": "553139560512", "status": "Success"},
        {"number": "553139560513", "status": "Success"},
    ]
    after = await group_for(client, "BR", prefix="31")
    assert after["stock"] == group["stock"] - 2

    third = (await client.post(f"{SEARCH}{group['group_id']}/", json={})).json()  # quantity defaults to 1
    assert third["numbers"] == [{"number": "553139560514", "status": "Success"}]


@pytest.mark.parametrize("country, prefix", [("FR", "3"), ("DE", "89")])
async def test_rent_in_regulated_country_is_pending(client, app, country, prefix):
    group = await group_for(client, country, prefix=prefix)
    answer = await client.post(f"{SEARCH}{group['group_id']}/", json={"quantity": 2})
    assert answer.status_code == 201
    body = answer.json()
    assert (body["status"], body["message"]) == ("pending", "created")
    assert "numbers" not in body
    assert body["details"] == (
        f"Order for 2 numbers(Region: {group['region']}, number_type: local, Prefix: {prefix}) initiated. "
        "For this order, some additional information is required by the telecom regulatory authorities. "
        "Our support team will get in touch with you soon."
    )
    assert (await client.get(BASE + "Number/")).json()["objects"] == []
    assert app.stock(group["group_id"]) == group["stock"] - 2


@pytest.mark.parametrize(
    "group_id, body, status, words",
    [
        ("99999999999999", {"quantity": 1}, 404, "Number group 99999999999999 not found"),
        ("SMALL", {"quantity": 4}, 400, "Requested quantity 4 is more than the 3 numbers in stock"),
        ("SMALL", {"quantity": 0}, 400, "quantity must be a positive integer"),
        ("SMALL", {"quantity": "two"}, 400, "quantity must be a positive integer"),
        ("SMALL", {"quantity": True}, 400, "quantity must be a positive integer"),
        ("SMALL", {"quantity": 1, "app_id": ""}, 400, "app_id must be a non-empty string"),
        ("SMALL", [1, 2], 400, "must be a JSON object"),
    ],
)
async def test_rent_refusals(client, app, group_id, body, status, words):
    small = next(g for g in await all_groups(client, country_iso="US", prefix="305") if g["stock"] == 3)
    gid = small["group_id"] if group_id == "SMALL" else group_id
    answer = await client.post(f"{SEARCH}{gid}/", json=body)
    assert answer.status_code == status
    assert words in answer.json()["error"]
    assert app.stock(small["group_id"]) == 3


async def test_sold_out_group_is_listed_but_cannot_be_rented(client):
    [sold_out] = [g for g in await all_groups(client, country_iso="US", prefix="702") if g["stock"] == 0]
    answer = await client.post(f"{SEARCH}{sold_out['group_id']}/", json={"quantity": 1})
    assert answer.status_code == 400


async def test_fail_numbers_knob_applies_to_the_next_rent_only(client, app):
    group = await group_for(client, "US", "tollfree", "833")
    app.fail_numbers_next_rent(1)
    first = (await client.post(f"{SEARCH}{group['group_id']}/", json={"quantity": 3})).json()
    assert [n["status"] for n in first["numbers"]] == ["Success", "Success", "Failed"]
    second = (await client.post(f"{SEARCH}{group['group_id']}/", json={"quantity": 2})).json()
    assert [n["status"] for n in second["numbers"]] == ["Success", "Success"]
    # A failed number is not rented and takes no stock.
    assert app.stock(group["group_id"]) == group["stock"] - 4
    rented = {o["number"] for o in (await client.get(BASE + "Number/")).json()["objects"]}
    assert rented == {n["number"] for n in first["numbers"][:2] + second["numbers"]}
    assert len(set(n["number"] for n in first["numbers"] + second["numbers"])) == 5


async def test_app_id_is_recorded_on_the_numbers(client):
    group = await group_for(client, "US", "tollfree", "888")
    await client.post(f"{SEARCH}{group['group_id']}/", json={"quantity": 1, "app_id": "11122233344455"})
    [number] = (await client.get(BASE + "Number/")).json()["objects"]
    assert number["application"] == f"{BASE}Application/11122233344455/"


async def test_state_is_shared_through_the_state_file(tmp_path):
    path = str(tmp_path / "sandbox.db")
    first = create_plivo_sandbox(SandboxState(path))
    async with httpx.AsyncClient(base_url=SANDBOX_PLIVO_API_URL, transport=httpx.ASGITransport(app=first), auth=AUTH) as c:
        group = await group_for(c, "US", "tollfree", "844")
        rented = (await c.post(f"{SEARCH}{group['group_id']}/", json={"quantity": 2})).json()
        first.fail_numbers_next_rent(1)

    # Another process opening the same file: same stock, same numbers, same knob.
    second = create_plivo_sandbox(SandboxState(path))
    assert second.stock(group["group_id"]) == group["stock"] - 2
    assert sorted(second.rented_numbers()) == sorted(n["number"] for n in rented["numbers"])
    async with httpx.AsyncClient(base_url=SANDBOX_PLIVO_API_URL, transport=httpx.ASGITransport(app=second), auth=AUTH) as c:
        more = (await c.post(f"{SEARCH}{group['group_id']}/", json={"quantity": 1})).json()
    assert more["numbers"][0]["status"] == "Failed"
    assert more["numbers"][0]["number"] not in {n["number"] for n in rented["numbers"]}


async def test_injected_fault_after_acting_still_rents(client, app):
    group = await group_for(client, "US", "tollfree", "855")
    app.faults.add("after", method="POST", path=r"/AvailableNumberGroup/\d+/$", status=500,
                   body={"api_id": "x", "error": "Internal error"})
    answer = await client.post(f"{SEARCH}{group['group_id']}/", json={"quantity": 1})
    assert answer.status_code == 500
    assert len(app.rented_numbers()) == 1


# --- rented numbers --------------------------------------------------------------------------


async def test_number_list_pages_and_unrent(client, app):
    group = await group_for(client, "US", "local", "617")
    numbers = [n["number"] for n in (await client.post(f"{SEARCH}{group['group_id']}/", json={"quantity": 5})).json()["numbers"]]

    page = (await client.get(BASE + "Number/", params={"limit": 2})).json()
    assert page["meta"]["total_count"] == 5
    assert page["meta"]["next"] == f"{BASE}Number/?limit=2&offset=2"
    listed = []
    url = BASE + "Number/?limit=2"
    while url:
        body = (await client.get(url)).json()
        listed += [o["number"] for o in body["objects"]]
        url = body["meta"]["next"]
    assert listed == numbers
    first = page["objects"][0]
    assert first["monthly_rental_rate"] == group["rental_rate"]
    assert first["resource_uri"] == f"{BASE}Number/{numbers[0]}/"
    assert "account" not in first

    assert (await client.delete(f"{BASE}Number/{numbers[0]}/")).status_code == 204
    gone = await client.delete(f"{BASE}Number/{numbers[0]}/")
    assert gone.status_code == 404 and gone.json()["error"] == "Number not found"
    assert numbers[0] not in app.rented_numbers()


async def test_another_account_cannot_unrent_our_numbers(app):
    other_id, other_token = "MAOTHERACCOUNT000002", "OtherToken"
    other = create_plivo_sandbox(app.state, auth_id=other_id, auth_token=other_token)
    async with httpx.AsyncClient(base_url=SANDBOX_PLIVO_API_URL, transport=httpx.ASGITransport(app=app), auth=AUTH) as c:
        group = await group_for(c, "US", "tollfree", "877")
        [number] = [n["number"] for n in (await c.post(f"{SEARCH}{group['group_id']}/", json={})).json()["numbers"]]
    async with httpx.AsyncClient(
        base_url=SANDBOX_PLIVO_API_URL, transport=httpx.ASGITransport(app=other), auth=(other_id, other_token)
    ) as c:
        assert (await c.get(f"/v1/Account/{other_id}/Number/")).json()["objects"] == []
        assert (await c.delete(f"/v1/Account/{other_id}/Number/{number}/")).status_code == 404
    assert number in app.rented_numbers()


async def test_unknown_routes_and_methods_answer_in_plivo_shape_without_the_auth_id(client):
    missing = await client.get(BASE + "NoSuchThing/")
    assert missing.status_code == 404
    assert set(missing.json()) == {"api_id", "error"}
    assert SANDBOX_PLIVO_AUTH_ID not in missing.text
    wrong_method = await client.put(SEARCH)
    assert wrong_method.status_code == 405
    assert set(wrong_method.json()) == {"api_id", "error"}
