"""The official SDKs (``twilio``, ``telnyx``) against the sandboxes served over HTTP on 127.0.0.1.

If the SDKs Twilio and Telnyx publish can search, buy, look up and release against the sandbox,
and get their own exception types with the right codes, the sandbox speaks the real protocol
closely enough for the bot's own client tests to mean something. Each SDK is pointed at loopback
the way its configuration allows: Twilio's domains carry ``base_url``; Telnyx takes ``base_url=``.
"""

from __future__ import annotations

import asyncio
import socket

import pytest
import uvicorn

from bot.sandbox import SandboxServices, combined_app
from bot.sandbox.common import Clock
from bot.sandbox.telnyx import SANDBOX_TELNYX_API_KEY
from bot.sandbox.twilio import INCOMPLETE_BUNDLE_SID, SANDBOX_TWILIO_ACCOUNT_SID, SANDBOX_TWILIO_AUTH_TOKEN

twilio_rest = pytest.importorskip("twilio.rest", reason="the twilio SDK is in the test extra")
telnyx = pytest.importorskip("telnyx", reason="the telnyx SDK is in the test extra")
from twilio.base.exceptions import TwilioRestException  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def served():
    services = SandboxServices.create(None, clock=Clock())
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(combined_app(services), host="127.0.0.1", port=port, log_level="error", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    yield services, f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


def twilio_client(base: str, token: str = SANDBOX_TWILIO_AUTH_TOKEN):
    client = twilio_rest.Client(SANDBOX_TWILIO_ACCOUNT_SID, token)
    client.api.base_url = base
    client.pricing.base_url = base
    return client


async def call(fn, *args, **kwargs):
    """The Twilio SDK is synchronous (requests): off the loop that serves the sandbox."""
    return await asyncio.to_thread(fn, *args, **kwargs)


# --- Twilio -------------------------------------------------------------------------------


async def test_twilio_sdk_search_price_buy_lookup_release(served):
    services, base = served
    client = twilio_client(base)
    account = client.api.v2010.accounts(SANDBOX_TWILIO_ACCOUNT_SID)
    found = await call(account.available_phone_numbers("US").local.list, area_code=415, sms_enabled=True, limit=3)
    assert len(found) == 3 and all(n.phone_number.startswith("+1415") and n.capabilities["SMS"] for n in found)
    prices = await call(client.pricing.v1.phone_numbers.countries("US").fetch)
    assert {"number_type": "local", "base_price": "1.15", "current_price": "1.15"} in prices.phone_number_prices
    bought = await call(account.incoming_phone_numbers.create, phone_number=found[0].phone_number,
                        friendly_name="numbers-bot request #1")
    assert bought.sid.startswith("PN") and bought.friendly_name == "numbers-bot request #1"
    listed = await call(account.incoming_phone_numbers.list, phone_number=found[0].phone_number)
    assert [n.sid for n in listed] == [bought.sid]
    assert await call(account.incoming_phone_numbers(bought.sid).delete) is True
    assert await call(account.incoming_phone_numbers.list, phone_number=found[0].phone_number) == []


@pytest.mark.parametrize(
    "number_of,extra,code",
    [
        ("taken", {}, 21422),
        ("DE", {}, 21631),
        ("DE", {"address_sid": "AD" + "1" * 32}, 21649),
        ("FR", {"bundle_sid": INCOMPLETE_BUNDLE_SID}, 21650),
        ("bad", {}, 21421),
    ],
)
async def test_twilio_sdk_sees_the_error_codes(served, number_of, extra, code):
    services, base = served
    account = twilio_client(base).api.v2010.accounts(SANDBOX_TWILIO_ACCOUNT_SID)
    if number_of == "bad":
        number = "+1415"
    else:
        country = "US" if number_of == "taken" else number_of
        number = (await call(account.available_phone_numbers(country).local.list, limit=1))[0].phone_number
        if number_of == "taken":
            services.twilio.take(number)
    with pytest.raises(TwilioRestException) as info:
        await call(account.incoming_phone_numbers.create, phone_number=number, **extra)
    assert info.value.code == code and info.value.status == 400


async def test_twilio_sdk_wrong_token_is_20003(served):
    _, base = served
    account = twilio_client(base, token="wrong").api.v2010.accounts(SANDBOX_TWILIO_ACCOUNT_SID)
    with pytest.raises(TwilioRestException) as info:
        await call(account.fetch)
    assert info.value.code == 20003 and info.value.status == 401


# --- Telnyx --------------------------------------------------------------------------------


def telnyx_client(base: str, key: str = SANDBOX_TELNYX_API_KEY):
    return telnyx.AsyncTelnyx(api_key=key, base_url=f"{base}/v2", max_retries=0)


async def test_telnyx_sdk_search_reserve_extend_order_release(served):
    services, base = served
    async with telnyx_client(base) as client:
        found = await client.available_phone_numbers.list(
            filter={"country_code": "US", "phone_number_type": "local", "national_destination_code": "415",
                    "features": ["sms", "voice"], "limit": 2, "reservable": True, "exclude_held_numbers": True}
        )
        numbers = [n.phone_number for n in found.data]
        assert len(numbers) == 2 and found.data[0].cost_information.monthly_cost == "1.00"
        held = await client.number_reservations.create(phone_numbers=[{"phone_number": n} for n in numbers])
        assert held.data.status == "success" and held.data.phone_numbers[0].expired_at is not None
        extended = await client.number_reservations.actions.extend(held.data.id)
        assert extended.data.id == held.data.id
        order = await client.number_orders.create(
            phone_numbers=[{"phone_number": n} for n in numbers], customer_reference="numbers-bot-request-1"
        )
        assert order.data.status == "pending"
        for _ in range(3):
            order = await client.number_orders.retrieve(order.data.id)
        assert order.data.status == "success"
        page = await client.number_orders.list(filter={"customer_reference": "numbers-bot-request-1"})
        assert [o.id for o in page.data] == [order.data.id]
        owned = await client.phone_numbers.list(filter={"phone_number": numbers[0]})
        (record,) = owned.data
        deleted = await client.phone_numbers.delete(record.id)
        assert deleted.data.status == "deleted"
        assert services.telnyx.owned_numbers() == [numbers[1]]


async def test_telnyx_sdk_regulated_order_waits_with_requirements(served):
    _, base = served
    async with telnyx_client(base) as client:
        found = await client.available_phone_numbers.list(filter={"country_code": "DE", "phone_number_type": "local", "limit": 1})
        order = await client.number_orders.create(phone_numbers=[{"phone_number": found.data[0].phone_number}])
        order = await client.number_orders.retrieve(order.data.id)
        assert order.data.status == "pending" and order.data.requirements_met is False
        (number,) = order.data.phone_numbers
        assert number.requirements_status == "requirement-info-pending"
        (unmet,) = number.regulatory_requirements
        assert unmet.field_type == "address" and unmet.field_value is None
        needs = await client.regulatory_requirements.retrieve(filter={"phone_number": number.phone_number})
        (described,) = needs.data[0].regulatory_requirements
        assert described.id == unmet.requirement_id and described.description.startswith("Proof of a local address")


async def test_telnyx_sdk_errors_carry_the_codes(served):
    services, base = served
    async with telnyx_client(base, key="KEYwrong") as client:
        with pytest.raises(telnyx.AuthenticationError) as info:
            await client.phone_numbers.list()
        assert "10009" in str(info.value.body)
    async with telnyx_client(base) as client:
        with pytest.raises(telnyx.UnprocessableEntityError) as info:
            await client.number_orders.create(phone_numbers=[{"phone_number": "+15005550000"}])
        assert "85000" in str(info.value.body)
