"""Telnyx Numbers API v2, through the bot's provider port.

Telnyx maps onto what the bot does for ACS (README, "Providers", Telnyx):

* Search (``GET /v2/available_phone_numbers``) holds nothing. When a user
  *requests* an offer, ``prepare`` reserves its numbers
  (``POST /v2/number_reservations``, about 30 minutes) and the request's hold
  ends when the reservation does. While the request waits for approval the bot
  extends it (``extend_hold``); Telnyx has no call to cancel a reservation, so
  on deny/cancel/expiry the bot stops extending and it lapses (``abandon``).
* An order (``POST /v2/number_orders``) is asynchronous: ``pending`` →
  ``success``/``failure``, polled like an ACS operation. Numbers in regulated
  countries wait for documents: the order stays pending with
  ``requirements_met: false``, which the bot reports as ``provider_pending``
  with Telnyx's own requirement text.
* Exactly once: every order carries ``customer_reference`` = the request's
  reference, so after a crash ``recover`` asks
  ``GET /v2/number_orders?filter[customer_reference]=…`` before sending again.

Auth is a bearer API key (``TelnyxAuth``); it appears in no message or repr.
"""

from __future__ import annotations

import asyncio
import logging
import re
import urllib.parse
from datetime import datetime
from typing import Any, Mapping

import httpx

from bot.domain.errors import (
    ConfigError,
    HoldExpired,
    OutcomeUnknown,
    ProviderError,
    ProviderUnavailable,
    UsageError,
)
from bot.providers.telnyx_answers import (
    MAX_OFFERS,
    error_parts,
    hold_from,
    offers_from,
    requirement_words,
    requirements_text,
    unmet_requirements,
)
from bot.providers._http import BearerAuth, Sleep, bounded_client, lost_how, provider_error, send_once, send_read, spend_error_class
from bot.domain.offers import OfferDraft, SearchQuery
from bot.domain.steps import Done, Failed, InProgress, Job, ProviderPending, Requester, Step

__all__ = ["TelnyxAuth", "TelnyxProvider", "customer_reference", "DEFAULT_API_URL"]

log = logging.getLogger(__name__)

PROVIDER = "telnyx"
DEFAULT_API_URL = "https://api.telnyx.com"
AUTH_FAILED = "10009"
_TYPES = {"local": "local", "tollfree": "toll_free", "national": "national"}
# Order errors that mean "someone else has it now": nothing bought, search again.
_GONE_WORDS = ("not available", "no longer available", "already reserved", "reserved by another")


def customer_reference(request_id: int) -> str:
    """The reference an order carries, so that a look-up can find it after a crash."""
    return f"numbers-bot-request-{request_id}"


class TelnyxAuth(BearerAuth):
    """``Authorization: Bearer <API key>``."""


class TelnyxProvider:
    """Search, reserve, order and release numbers on one Telnyx account."""

    name = PROVIDER

    def __init__(
        self,
        api_key: str,
        *,
        api_url: str = DEFAULT_API_URL,
        connection_id: str | None = None,
        messaging_profile_id: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
        poll_interval: float = 2.0,
        sleep: Sleep = asyncio.sleep,
    ):
        if not api_key or not api_key.strip():
            raise ConfigError(["TELNYX_API_KEY is empty"])
        api_url = (api_url or DEFAULT_API_URL).rstrip("/")
        if not re.match(r"^https?://[^/\s]+", api_url):
            raise ConfigError(["TELNYX_API_URL must start with https:// and name a host"])
        self.api_url = api_url
        self.connection_id = connection_id or None
        self.messaging_profile_id = messaging_profile_id or None
        self._poll_interval = poll_interval
        self._sleep = sleep
        self._client = bounded_client(
            user_agent="numbers-bot (telnyx)", base_url=api_url + "/v2/", auth=TelnyxAuth(api_key.strip()),
            transport=transport, timeout=timeout,
        )

    def __repr__(self) -> str:
        return f"TelnyxProvider(api_url={self.api_url!r})"

    async def aclose(self) -> None:
        await self._client.aclose()

    # --- HTTP -----------------------------------------------------------------------

    async def _read(self, path: str, params: Any = None) -> httpx.Response:
        request = self._client.build_request("GET", path, params=params)
        return await send_read(self._client, request, provider=PROVIDER, sleep=self._sleep)

    async def _send_once(self, method: str, path: str, body: Any, what: str) -> httpx.Response:
        """A call that changes something: sent once; a lost answer is an unknown outcome."""
        request = self._client.build_request(method, path, json=body)
        return await send_once(
            self._client, request, provider=PROVIDER,
            lost=lambda exc: f"{what} {lost_how(exc)}; whether Telnyx acted is not known yet",
        )

    def _error(self, response: httpx.Response, *, cls: type[ProviderError] | None = None) -> ProviderError:
        code, message = error_parts(response)
        if message is None:
            message = f"{response.request.method} {response.request.url.path} answered {response.status_code}"
        return provider_error(
            PROVIDER, response, message, code=code, cls=cls, auth_failed=code == AUTH_FAILED, check="TELNYX_API_KEY"
        )

    @staticmethod
    def _data(response: httpx.Response, cls: type[ProviderError] = ProviderError) -> Any:
        try:
            body = response.json()
        except ValueError:
            raise cls(PROVIDER, f"answered {response.status_code} with a body that is not JSON") from None
        if not isinstance(body, dict) or "data" not in body:
            raise cls(PROVIDER, "answered without the data it was asked for")
        return body["data"]

    # --- search -----------------------------------------------------------------------

    async def search(self, query: SearchQuery) -> list[OfferDraft]:
        kind = _TYPES.get(query.number_type)
        if kind is None:
            raise UsageError(f"Telnyx has no {query.number_type} numbers to search.")
        params: list[tuple[str, str]] = [
            ("filter[country_code]", query.country.upper()),
            ("filter[phone_number_type]", kind),
            ("filter[limit]", str(min(50, max(10, query.quantity * MAX_OFFERS)))),
            ("filter[reservable]", "true"),
            ("filter[exclude_held_numbers]", "true"),
        ]
        if query.prefix:
            params.append(("filter[national_destination_code]", query.prefix))
        for feature, on in (("sms", query.sms), ("voice", query.voice)):
            if on:
                params.append(("filter[features][]", feature))
        response = await self._read("available_phone_numbers", params)
        if not response.is_success:
            raise self._error(response)
        data = self._data(response)
        if not isinstance(data, list):
            raise ProviderError(PROVIDER, "the search answer's data is not a list")
        items = [d for d in data if isinstance(d, dict) and isinstance(d.get("phone_number"), str)]
        return offers_from(items, query)

    # --- holds ---------------------------------------------------------------------------

    async def prepare(self, offer: OfferDraft, quantity: int, requester: Requester) -> dict[str, Any]:
        """Reserve the offer's numbers while the request waits for approval.

        Returns the reservation id (kept in the request's ref) and
        ``hold_expires_at`` (the service takes it out of the ref and shows it).
        """
        if not offer.ref.get("reservable", True):
            return {}
        body = {
            "phone_numbers": [{"phone_number": n} for n in offer.numbers],
            "customer_reference": f"numbers-bot hold for {requester.user_id}",
        }
        response = await self._send_once("POST", "number_reservations", body, "reserving the numbers")
        if not response.is_success:
            if response.status_code in (409, 422):
                exc = self._error(response)
                raise ProviderError(
                    PROVIDER, f"the numbers could not be held ({exc.message}); search again", status=exc.status, code=exc.code
                )
            raise self._error(response)
        data = self._data(response)
        return hold_from(data)

    async def extend_hold(self, ref: dict[str, Any]) -> datetime | None:
        """Extend the request's reservation; returns its new end (None when it holds nothing)."""
        reservation = ref.get("reservation_id")
        if not reservation:
            return None
        path = f"number_reservations/{urllib.parse.quote(reservation, safe='')}/actions/extend"
        response = await self._send_once("POST", path, None, "extending the hold")
        if not response.is_success:
            raise self._error(response)
        return hold_from(self._data(response))["hold_expires_at"]

    async def abandon(self, ref: dict[str, Any]) -> str | None:
        """Telnyx has no call that cancels a reservation: it is no longer extended and lapses."""
        if not ref.get("reservation_id"):
            return None
        return "the Telnyx reservation is no longer extended and lapses within 30 minutes"

    # --- orders -------------------------------------------------------------------------------

    def _order_body(self, job: Job) -> dict[str, Any]:
        body: dict[str, Any] = {
            "phone_numbers": [{"phone_number": n} for n in job.numbers],
            "customer_reference": customer_reference(job.request_id),
        }
        if self.connection_id:
            body["connection_id"] = self.connection_id
        if self.messaging_profile_id:
            body["messaging_profile_id"] = self.messaging_profile_id
        return body

    async def submit(self, job: Job) -> Step:
        response = await self._send_once("POST", "number_orders", self._order_body(job), "the number order")
        if response.is_success:
            order = self._data(response, OutcomeUnknown)  # a 2xx we cannot read: whether it ordered is unknown
            if not isinstance(order, dict) or not isinstance(order.get("id"), str):
                raise OutcomeUnknown(PROVIDER, f"the number order got an answer ({response.status_code}) naming no order")
            log.info("telnyx order %s sent for request %s", order["id"], job.request_id)
            return await self._step(order, job)
        if spend_error_class(response.status_code) is not None:
            raise self._error(response, cls=spend_error_class(response.status_code))
        exc = self._error(response)
        if response.status_code in (409, 422) and any(w in exc.message.lower() for w in _GONE_WORDS):
            # Our own earlier order (whose answer was lost) may be what took them: ask before searching again.
            earlier = await self.recover(job)
            if earlier is not None:
                return earlier
            raise self._error(response, cls=HoldExpired)
        raise exc

    async def _step(self, order: dict[str, Any], job: Job) -> Step:
        status = str(order.get("status") or "").lower()
        numbers = [n for n in order.get("phone_numbers") or [] if isinstance(n, dict)]
        if status == "success":
            got = [n["phone_number"] for n in numbers if isinstance(n.get("phone_number"), str)]
            return Done(numbers=got or list(job.numbers))
        if status == "failure":
            why = "; ".join(
                f"{n.get('phone_number')}: {n.get('status')}" for n in numbers if isinstance(n.get("status"), str)
            )
            return Failed(reason=f"Telnyx could not complete order {order.get('id')}" + (f" ({why})" if why else ""))
        if order.get("requirements_met") is False:
            return ProviderPending(details=requirements_text(order, await self._requirement_words(order)))
        return InProgress(ref={"order_id": order["id"]}, retry_after=self._poll_interval)

    async def _requirement_words(self, order: dict[str, Any]) -> dict[str, str]:
        """What Telnyx calls the order's unmet requirements; best effort (an order answer carries only ids)."""
        unmet = unmet_requirements(order)
        if not unmet:
            return {}
        params = [("filter[phone_number]", unmet[0][0]), ("filter[action]", "ordering")]
        try:
            response = await self._read("regulatory_requirements", params)
            return requirement_words(response.json()) if response.is_success else {}
        except (ProviderError, ValueError) as exc:
            log.info("telnyx requirements for order %s not readable: %s", order.get("id"), exc)
            return {}

    async def poll(self, job: Job, ref: dict[str, Any]) -> Step:
        order_id = ref.get("order_id")
        if not order_id:
            raise ProviderError(PROVIDER, "nothing to poll: the reference names no order")
        response = await self._read(f"number_orders/{urllib.parse.quote(order_id, safe='')}")
        if response.status_code == 404:
            return Failed(reason=f"order {order_id} not found")
        if not response.is_success:
            raise self._error(response, cls=ProviderUnavailable if response.status_code >= 500 else None)
        order = self._data(response, ProviderUnavailable)  # unreadable: read again later
        if not isinstance(order, dict) or "id" not in order:
            raise ProviderUnavailable(PROVIDER, f"the status of order {order_id} could not be read")
        return await self._step(order, job)

    async def recover(self, job: Job) -> Step | None:
        """Was an order with this request's reference already placed? Asks before anything is sent again."""
        response = await self._read("number_orders", [("filter[customer_reference]", customer_reference(job.request_id))])
        if not response.is_success:
            raise self._error(response, cls=OutcomeUnknown)
        orders = self._data(response, OutcomeUnknown)
        if not isinstance(orders, list):
            raise OutcomeUnknown(PROVIDER, "the order look-up's data is not a list")
        mine = [o for o in orders if isinstance(o, dict) and o.get("customer_reference") == customer_reference(job.request_id)]
        if not mine:
            return None
        live = [o for o in mine if str(o.get("status")).lower() != "failure"] or mine
        return await self._step(live[0], job)

    # --- release, listing, doctor ----------------------------------------------------------------

    async def _number_record(self, number: str) -> dict[str, Any] | None:
        response = await self._read("phone_numbers", [("filter[phone_number]", number)])
        if not response.is_success:
            raise self._error(response, cls=OutcomeUnknown if response.status_code >= 500 else None)
        data = self._data(response, OutcomeUnknown)
        items = data if isinstance(data, list) else []
        return next((d for d in items if isinstance(d, dict) and d.get("phone_number") == number), None)

    async def release(self, number: str, ref: Mapping[str, Any]) -> Step:
        """``DELETE /v2/phone_numbers/{id}``; a number already deleted counts as released."""
        if not re.fullmatch(r"\+\d{6,15}", number or ""):
            raise UsageError(f"{number!r} is not an E.164 phone number such as +14155550100")
        record = await self._number_record(number)
        if record is None or not isinstance(record.get("id"), str):
            return Done(numbers=[number], note=f"Telnyx no longer lists {number} on the account")
        response = await self._send_once(
            "DELETE", f"phone_numbers/{urllib.parse.quote(record['id'], safe='')}", None, f"the release of {number}"
        )
        if response.is_success or response.status_code == 404:
            return Done(numbers=[number])
        raise self._error(response, cls=spend_error_class(response.status_code))

    async def purchased_numbers(self) -> list[str]:
        response = await self._read("phone_numbers", [("page[size]", "250")])
        if not response.is_success:
            raise self._error(response)
        data = self._data(response)
        return [d["phone_number"] for d in data if isinstance(d, dict) and isinstance(d.get("phone_number"), str)]

    async def check(self) -> str:
        """A harmless authenticated read: the numbers the account holds."""
        numbers = await self.purchased_numbers()
        return f"API key accepted by {httpx.URL(self.api_url).host}; {len(numbers)} number(s) on the account"
