"""The sandbox against the providers' official SDKs, served over HTTP on 127.0.0.1.

Each SDK makes its own calls (its own URLs, bodies, signing, parsing and
polling) against ``numbers-bot sandbox --port N``: a sandbox answer an official
client would reject turns a test red. The recipes are the ones the served
sandbox prints (``bot.sandbox.sdk_hints``).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from bot.sandbox.acs import SANDBOX_ACS_ACCESS_KEY
from bot.sandbox.plivo import SANDBOX_PLIVO_AUTH_ID, SANDBOX_PLIVO_AUTH_TOKEN
from bot.sandbox.webex import SANDBOX_WEBEX_TOKEN
from tests.conftest import clean_env

phonenumbers_sdk = pytest.importorskip("azure.communication.phonenumbers", reason="the test extra installs it")
plivo = pytest.importorskip("plivo", reason="the test extra installs it")
wxc_sdk = pytest.importorskip("wxc_sdk", reason="the test extra installs it")

from azure.core.credentials import AzureKeyCredential  # noqa: E402
from azure.core.exceptions import HttpResponseError  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """``numbers-bot sandbox`` on a free loopback port; yields its base URL."""
    port = _free_port()
    state = tmp_path_factory.mktemp("sdk") / "sandbox.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "sandbox", "--host", "127.0.0.1", "--port", str(port), "--state", str(state)],
        env=clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(proc.stderr.read()) from None
            if time.monotonic() > deadline:
                proc.kill()
                raise AssertionError("the sandbox did not start listening") from None
            time.sleep(0.1)
    base = f"http://127.0.0.1:{port}"
    yield base
    proc.terminate()
    try:
        _, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    # It told how to point each official SDK at it, with the recipes these tests used.
    assert f"PhoneNumbersClient('{base}', AzureKeyCredential(" in err
    assert f"PLIVO_API_BASE_URI = '{base}/v1/Account'" in err
    assert f"RestSession.BASE = '{base}/v1'" in err


# --- ACS: azure-communication-phonenumbers ---------------------------------------------------


def acs_client(base: str, api_version: str):
    # from_connection_string forces https://; the endpoint and key are given apart for a plain-HTTP sandbox.
    return phonenumbers_sdk.PhoneNumbersClient(
        base, AzureKeyCredential(SANDBOX_ACS_ACCESS_KEY), api_version=api_version
    )


def acs_search(client, country: str, number_type, area_code: str | None = None):
    capabilities = phonenumbers_sdk.PhoneNumberCapabilities(
        calling=phonenumbers_sdk.PhoneNumberCapabilityType.INBOUND_OUTBOUND,
        sms=phonenumbers_sdk.PhoneNumberCapabilityType.INBOUND_OUTBOUND,
    )
    poller = client.begin_search_available_phone_numbers(
        country,
        number_type,
        phonenumbers_sdk.PhoneNumberAssignmentType.APPLICATION,
        capabilities,
        area_code=area_code,
        quantity=1,
        polling_interval=0,
    )
    return poller.result(timeout=30)


@pytest.mark.parametrize("api_version", ["2025-06-01", "2025-04-01", "2022-12-01", "2021-03-07"])
def test_acs_sdk_searches_purchases_lists_and_releases(served, api_version):
    base = served
    client = acs_client(base, api_version)
    result = acs_search(client, "CA", phonenumbers_sdk.PhoneNumberType.TOLL_FREE, "833")
    assert len(result.phone_numbers) == 1 and result.phone_numbers[0].startswith("+1833")
    assert result.cost.amount == 2.0 and result.cost.currency_code == "USD"
    # Canadian toll-free needs no agreement (as recorded); versions that know the field say so.
    if api_version != "2021-03-07":
        assert result.is_agreement_to_not_resell_required is False
    client.begin_purchase_phone_numbers(result.search_id, polling_interval=0).result(timeout=60)

    number = result.phone_numbers[0]
    owned = [n.phone_number for n in client.list_purchased_phone_numbers()]
    assert number in owned
    assert client.get_purchased_phone_number(number).phone_number == number

    client.begin_release_phone_number(number, polling_interval=0).result(timeout=60)
    assert number not in [n.phone_number for n in client.list_purchased_phone_numbers()]


def test_acs_sdk_purchase_without_the_agreement_is_refused_in_the_services_words(served):
    base = served
    client = acs_client(base, "2025-06-01")
    result = acs_search(client, "US", phonenumbers_sdk.PhoneNumberType.TOLL_FREE, "844")
    assert result.is_agreement_to_not_resell_required is True
    with pytest.raises(HttpResponseError) as info:
        # The SDK sends "agreeToNotResell": false unless told otherwise.
        client.begin_purchase_phone_numbers(result.search_id, polling_interval=0).result(timeout=30)
    assert info.value.status_code == 400
    assert "Do not resell agreement was not provided and it is required for this purchase." in str(info.value)

    client.begin_purchase_phone_numbers(result.search_id, agree_to_not_resell=True, polling_interval=0).result(
        timeout=60
    )
    assert result.phone_numbers[0] in [n.phone_number for n in client.list_purchased_phone_numbers()]


def test_acs_sdk_default_version_is_one_the_sandbox_serves(served):
    base = served
    client = phonenumbers_sdk.PhoneNumbersClient(base, AzureKeyCredential(SANDBOX_ACS_ACCESS_KEY))
    result = acs_search(client, "US", phonenumbers_sdk.PhoneNumberType.GEOGRAPHIC, "206")
    assert result.phone_numbers and result.is_agreement_to_not_resell_required is False


# --- Plivo: plivo ------------------------------------------------------------------------------


@pytest.fixture
def plivo_client(served, monkeypatch):
    base = served
    # The SDK resets its base URL from this module constant before every request.
    monkeypatch.setattr(plivo.rest.client, "PLIVO_API_BASE_URI", base + "/v1/Account")
    client = plivo.RestClient(SANDBOX_PLIVO_AUTH_ID, SANDBOX_PLIVO_AUTH_TOKEN)
    yield client
    client.session.close()


def test_plivo_sdk_searches_buys_gets_and_deletes(plivo_client):
    found = plivo_client.numbers.search("US", type="local", pattern="415", services="voice,sms", limit=5)
    assert found.objects, "no numbers for pattern 415"
    first = found.objects[0]
    assert first.number.startswith("1415") and first.monthly_rental_rate == "0.80000"
    assert "restriction" in first.__dict__ and "restriction_text" in first.__dict__

    bought = plivo_client.numbers.buy(first.number)
    assert bought.status == "fulfilled" and bought.numbers[0].status == "Success"

    held = plivo_client.numbers.get(first.number)
    assert held.number == first.number and held.active is True
    plivo_client.numbers.delete(first.number)
    with pytest.raises(plivo.exceptions.ResourceNotFoundError):
        plivo_client.numbers.get(first.number)


def test_plivo_sdk_buy_in_a_regulated_country_is_pending_with_its_restriction(plivo_client):
    found = plivo_client.numbers.search("DE", type="local", pattern="30", limit=1)
    [number] = found.objects
    assert number.restriction == "city-address" and "local address" in number.restriction_text
    bought = plivo_client.numbers.buy(number.number)
    assert bought.numbers[0].status == "pending"
    assert plivo_client.numbers.get(number.number).compliance_status == "pending"


def test_plivo_sdk_pages_with_offset(plivo_client):
    page1 = plivo_client.numbers.search("US", type="local", limit=20)
    page2 = plivo_client.numbers.search("US", type="local", limit=20, offset=20)
    assert page1.meta["total_count"] > 20 and page1.meta["next"]
    assert not {o.number for o in page1.objects} & {o.number for o in page2.objects}


# --- Webex: wxc_sdk -----------------------------------------------------------------------------


@pytest.fixture
def webex_api(served, monkeypatch):
    base = served
    monkeypatch.setattr(wxc_sdk.rest.RestSession, "BASE", base + "/v1")
    api = wxc_sdk.WebexSimpleApi(tokens=SANDBOX_WEBEX_TOKEN, retry_429=False)
    yield api
    api.close()


def test_wxc_sdk_lists_available_numbers_reads_and_updates_a_person(webex_api):
    bob = next(iter(webex_api.people.list(email="bob@example.com", calling_data=True)))
    numbers = list(webex_api.person_settings.available_numbers.primary(location_id=bob.location_id))
    assert numbers and all(n.location.id == bob.location_id for n in numbers)
    free = numbers[-1].phone_number

    person = webex_api.people.details(bob.person_id, calling_data=True)
    assert person.location_id == bob.location_id and person.extension == "2001"
    person.phone_numbers = [
        wxc_sdk.people.PhoneNumber(number_type="work", value=free),
    ]
    updated = webex_api.people.update(person, calling_data=True)
    assert [p.value for p in updated.phone_numbers] == [free]
    again = webex_api.people.details(bob.person_id, calling_data=True)
    # What the SDK leaves out (loginEnabled, read-only fields) is kept; the location did not move.
    assert again.location_id == bob.location_id and again.login_enabled is True
    assert again.display_name == "Bob Brown" and again.created == person.created


def test_wxc_sdk_update_moving_a_calling_user_is_refused(webex_api):
    alice = next(iter(webex_api.people.list(email="alice@example.com", calling_data=True)))
    bob = next(iter(webex_api.people.list(email="bob@example.com", calling_data=True)))
    person = webex_api.people.details(alice.person_id, calling_data=True)
    person.location_id = bob.location_id
    with pytest.raises(wxc_sdk.rest.RestError) as info:
        webex_api.people.update(person, calling_data=True)
    assert info.value.response.status_code == 400
    assert "cannot be changed if a user is already an existing calling user" in info.value.description
    assert webex_api.people.details(alice.person_id, calling_data=True).location_id == alice.location_id


# --- what the served sandbox prints ----------------------------------------------------------------


def test_the_recipes_name_the_served_base_url():
    from bot.sandbox.sdk_hints import official_sdk_lines

    text = "\n".join(official_sdk_lines("http://127.0.0.1:8700/"))
    assert "PhoneNumbersClient('http://127.0.0.1:8700', AzureKeyCredential(" in text
    assert "PLIVO_API_BASE_URI = 'http://127.0.0.1:8700/v1/Account'" in text
    assert "RestSession.BASE = 'http://127.0.0.1:8700/v1'" in text
