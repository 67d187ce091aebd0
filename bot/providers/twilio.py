"""Twilio Phone Numbers (REST API 2010-04-01), through the bot's provider port.

How Twilio differs from the other providers (README, "Providers", Twilio):

* **No hold.** A search reserves nothing; a number can be bought by someone
  else before the request is approved. Buying it then fails with 21422, which
  this adapter raises as ``HoldExpired``: nothing was spent, and the worker
  searches again for an equivalent within the approved cost (the search-again rule, ``bot/domain/holds.py``).
* **No order id.** ``POST IncomingPhoneNumbers.json`` is synchronous and
  answers with the number's ``PN…`` resource. The purchase is tagged with the
  request's reference in ``FriendlyName``; after an unknown outcome,
  ``recover`` lists ``IncomingPhoneNumbers.json?PhoneNumber=…`` and treats a
  number carrying that reference as bought, so nothing is bought twice.
* Prices are not in the search: they come from the Pricing API (another host,
  ``pricing.twilio.com``). When it cannot be read the offer says "see Twilio
  pricing" — never a made-up $0.

Auth is HTTP Basic with the Account SID and Auth Token (``TwilioAuth``); the
token appears in no message, log line or repr built here.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import time
from decimal import Decimal
from typing import Any, Generator, Mapping

import httpx

from bot.domain.errors import (
    ConfigError,
    HoldExpired,
    OutcomeUnknown,
    ProviderError,
    ProviderUnavailable,
    UsageError,
)
from bot.providers.twilio_answers import MAX_OFFERS, PRICE_UNKNOWN, error_parts, offers_from, price_from
from bot.providers._http import Sleep, bounded_client, json_or_none, lost_how, provider_error, send_once, send_read, spend_error_class
from bot.domain.offers import OfferDraft, SearchQuery
from bot.domain.steps import Done, Failed, Job, Requester, Step

__all__ = ["TwilioAuth", "TwilioProvider", "friendly_name", "DEFAULT_API_URL", "PRICE_UNKNOWN"]

log = logging.getLogger(__name__)

PROVIDER = "twilio"
DEFAULT_API_URL = "https://api.twilio.com"
DEFAULT_PRICING_URL = "https://pricing.twilio.com"
_TYPES = {"local": "Local", "tollfree": "TollFree"}

# Error code → (what it means, the setting that fixes it): said before or at purchase.
REGULATORY = {
    21631: "Twilio requires an address on file for numbers in this country: set TWILIO_ADDRESS_SID",
    21649: "Twilio requires a regulatory bundle for numbers in this country: set TWILIO_BUNDLE_SID",
    21650: "Twilio requires an identity document in the regulatory bundle: complete it and set TWILIO_BUNDLE_SID",
}
NUMBER_TAKEN = 21422  # "PhoneNumber requested is not available"
AUTH_FAILED = 20003


def friendly_name(request_id: int) -> str:
    """The reference a purchase carries, so that a look-up can tell it is ours."""
    return f"numbers-bot request #{request_id}"


class TwilioAuth(httpx.Auth):
    """HTTP Basic with the Account SID and Auth Token."""

    def __init__(self, account_sid: str, auth_token: str):
        self._header = "Basic " + base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode("ascii")

    def __repr__(self) -> str:
        return "TwilioAuth(auth_token=<hidden>)"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


class TwilioProvider:
    """Search, buy and release numbers on one Twilio account.

    ``transport`` and ``sleep`` are the test seams. ``pricing_url`` defaults to
    Twilio's pricing host, or to ``api_url`` when that was overridden (the
    sandbox serves both APIs on one host).
    """

    name = PROVIDER

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        api_url: str = DEFAULT_API_URL,
        pricing_url: str | None = None,
        address_sid: str | None = None,
        bundle_sid: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
        sleep: Sleep = asyncio.sleep,
        poll_interval: float = 2.0,  # accepted like the other adapters'; a Twilio buy has nothing to poll
        price_ttl: float = 3600.0,
    ):
        if not re.fullmatch(r"AC[0-9a-fA-F]{32}", account_sid or ""):
            raise ConfigError(["TWILIO_ACCOUNT_SID must be AC followed by 32 hexadecimal characters"])
        if not auth_token:
            raise ConfigError(["TWILIO_AUTH_TOKEN is empty"])
        api_url = (api_url or DEFAULT_API_URL).rstrip("/")
        if not re.match(r"^https?://[^/\s]+", api_url):
            raise ConfigError(["TWILIO_API_URL must start with https:// and name a host"])
        self.account_sid = account_sid
        self.api_url = api_url
        self.pricing_url = (pricing_url or (DEFAULT_PRICING_URL if api_url == DEFAULT_API_URL else api_url)).rstrip("/")
        self.address_sid = address_sid or None
        self.bundle_sid = bundle_sid or None
        self._sleep = sleep
        self._price_ttl = price_ttl
        self._prices: dict[tuple[str, str], tuple[float, tuple[Decimal, str] | None]] = {}
        self._client = bounded_client(
            user_agent="numbers-bot (twilio)", auth=TwilioAuth(account_sid, auth_token), transport=transport, timeout=timeout
        )

    def __repr__(self) -> str:
        return f"TwilioProvider(account_sid={self.account_sid!r}, api_url={self.api_url!r})"

    async def aclose(self) -> None:
        await self._client.aclose()

    # --- HTTP -------------------------------------------------------------------

    def _account(self, path: str) -> str:
        return f"{self.api_url}/2010-04-01/Accounts/{self.account_sid}{path}"

    async def _read(self, url: str, params: dict[str, Any] | None = None) -> httpx.Response:
        request = self._client.build_request("GET", url, params=params)
        try:
            return await send_read(self._client, request, provider=PROVIDER, sleep=self._sleep)
        except ProviderUnavailable as exc:
            # The message names the path, which carries the Account SID: say where without it.
            raise ProviderUnavailable(PROVIDER, exc.message.replace(self.account_sid, "{AccountSid}")) from None

    def _error(self, response: httpx.Response, *, cls: type[ProviderError] | None = None) -> ProviderError:
        code, message = error_parts(response)
        if message is None:
            request = response.request
            path = request.url.path.replace(self.account_sid, "{AccountSid}")
            message = f"{request.method} {path} answered {response.status_code}"
        if code in REGULATORY:
            message = f"{message} — {REGULATORY[code]}"
        return provider_error(
            PROVIDER, response, message, code=code, cls=cls, auth_failed=code == AUTH_FAILED,
            check="TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN",
        )

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            raise ProviderError(PROVIDER, f"answered {response.status_code} with a body that is not JSON") from None
        if not isinstance(body, dict):
            raise ProviderError(PROVIDER, "answered with JSON that is not an object")
        return body

    # --- search -----------------------------------------------------------------

    async def search(self, query: SearchQuery) -> list[OfferDraft]:
        kind = _TYPES.get(query.number_type)
        if kind is None:
            raise UsageError("Twilio sells local and toll-free numbers (and mobile in some countries), not national ones.")
        country = query.country.upper()
        params: dict[str, Any] = {"PageSize": min(50, max(10, query.quantity * MAX_OFFERS))}
        if query.prefix:
            if country in ("US", "CA") and len(query.prefix) == 3:
                params["AreaCode"] = query.prefix
            else:
                params["Contains"] = query.prefix + "*" * max(0, 3 - len(query.prefix))
        if query.sms:
            params["SmsEnabled"] = "true"
        if query.voice:
            params["VoiceEnabled"] = "true"
        url = self._account(f"/AvailablePhoneNumbers/{country}/{kind}.json")
        response, price = await asyncio.gather(self._read(url, params), self._monthly_price(country, query.number_type))
        if response.status_code == 404:
            return []  # Twilio answers 404 for a country or type it has no numbers for
        if not response.is_success:
            raise self._error(response)
        found = self._json(response).get("available_phone_numbers")
        if not isinstance(found, list):
            raise ProviderError(PROVIDER, "the search answer carried no available_phone_numbers list")
        items = [n for n in found if isinstance(n, dict) and isinstance(n.get("phone_number"), str)]
        return offers_from(items, query, price)

    async def _monthly_price(self, country: str, number_type: str) -> tuple[Decimal, str] | None:
        """(price, currency), kept for ``price_ttl`` seconds: prices change rarely, searches often."""
        key = (country, number_type)
        cached = self._prices.get(key)
        if cached is not None and time.monotonic() - cached[0] < self._price_ttl:
            return cached[1]
        price = await self._read_price(country, number_type)
        if price is not None:  # an unknown price is asked again next time
            self._prices[key] = (time.monotonic(), price)
        return price

    async def _read_price(self, country: str, number_type: str) -> tuple[Decimal, str] | None:
        """(price, currency) from the Pricing API, or None when it cannot be had."""
        try:
            response = await self._read(f"{self.pricing_url}/v1/PhoneNumbers/Countries/{country}")
        except ProviderError as exc:
            log.info("twilio pricing for %s not available: %s", country, exc)
            return None
        if not response.is_success:
            log.info("twilio pricing for %s answered %s", country, response.status_code)
            return None
        try:
            return price_from(response.json(), number_type)
        except ValueError:
            return None

    # --- purchase -----------------------------------------------------------------

    async def prepare(self, offer: OfferDraft, quantity: int, requester: Requester) -> dict[str, Any]:
        """Refuse before approval what Twilio would refuse at purchase: an address it requires."""
        needs = (offer.details or {}).get("address_requirements", "none")
        if needs not in (None, "none") and not self.address_sid:
            raise ProviderError(PROVIDER, f"these numbers need an address ({needs}) — {REGULATORY[21631]}", code="21631")
        return {}

    def _buy_form(self, number: str, request_id: int) -> dict[str, str]:
        form = {"PhoneNumber": number, "FriendlyName": friendly_name(request_id)}
        if self.address_sid:
            form["AddressSid"] = self.address_sid
        if self.bundle_sid:
            form["BundleSid"] = self.bundle_sid
        return form

    async def _buy_one(self, number: str, job: Job) -> None:
        """One ``POST IncomingPhoneNumbers.json``: returns when Twilio says it is bought."""
        request = self._client.build_request(
            "POST", self._account("/IncomingPhoneNumbers.json"), data=self._buy_form(number, job.request_id)
        )
        response = await send_once(
            self._client, request, provider=PROVIDER,
            lost=lambda exc: f"buying {number} {lost_how(exc)}; whether Twilio acted is not known yet",
        )
        if response.is_success:
            body = json_or_none(response)
            if not (isinstance(body, dict) and isinstance(body.get("sid"), str)):
                raise OutcomeUnknown(
                    PROVIDER, f"buying {number} got an answer ({response.status_code}) that is not a number resource"
                )
            log.info("twilio bought %s as %s for request %s", number, body["sid"], job.request_id)
            return
        code, _ = error_parts(response)
        if spend_error_class(response.status_code) is not None:
            # Throttled: refused, nothing bought; 5xx: whether Twilio acted is not known.
            raise self._error(response, cls=spend_error_class(response.status_code))
        if code == NUMBER_TAKEN:
            # "Not available" may mean that *we* hold it: our own earlier request, whose answer was
            # lost, got there first. Then it is bought, not gone; never buy an "equivalent" on top.
            owned = await self._owned(number)
            if owned is not None and owned.get("friendly_name") == friendly_name(job.request_id):
                log.info("twilio: %s is already ours (request %s)", number, job.request_id)
                return
            raise self._error(response, cls=HoldExpired)
        raise self._error(response)

    async def submit(self, job: Job) -> Step:
        """Buy each number of the request in turn. Never retried here."""
        bought: list[str] = []
        for number in job.numbers:
            try:
                await self._buy_one(number, job)
            except (HoldExpired, ProviderUnavailable, OutcomeUnknown) as exc:
                if not bought:
                    raise
                if isinstance(exc, OutcomeUnknown):
                    raise  # recover() lists what was bought, this one included if it was
                return self._partial(job, bought, str(exc))
            except ProviderError as exc:
                if not bought:
                    raise
                return self._partial(job, bought, str(exc))
            bought.append(number)
        return Done(numbers=bought)

    @staticmethod
    def _partial(job: Job, bought: list[str], why: str) -> Done:
        missed = [n for n in job.numbers if n not in bought]
        return Done(
            numbers=bought,
            failed_numbers=missed,
            note=f"{len(bought)} of {len(job.numbers)} numbers bought; not bought: {', '.join(missed)} ({why})",
        )

    async def poll(self, job: Job, ref: dict[str, Any]) -> Step:
        # Purchases and releases at Twilio finish in their one call: there is never anything to poll.
        return Failed(reason="Twilio has no operation to follow for this request")

    async def _owned(self, number: str) -> dict[str, Any] | None:
        """The account's ``PN…`` resource for ``number``, or None."""
        response = await self._read(self._account("/IncomingPhoneNumbers.json"), {"PhoneNumber": number})
        if not response.is_success:
            raise self._error(response, cls=OutcomeUnknown if response.status_code >= 500 else None)
        try:
            items = self._json(response).get("incoming_phone_numbers")
        except ProviderError as exc:
            raise OutcomeUnknown(PROVIDER, f"the look-up of {number} could not be read: {exc.message}") from None
        if not isinstance(items, list):
            raise OutcomeUnknown(PROVIDER, f"the look-up of {number} carried no incoming_phone_numbers list")
        return next((i for i in items if isinstance(i, dict) and i.get("phone_number") == number), None)

    async def recover(self, job: Job) -> Step | None:
        """After an unknown outcome: which of the job's numbers does the account hold under our reference?"""
        mine = friendly_name(job.request_id)
        bought = []
        for number in job.numbers:
            owned = await self._owned(number)
            if owned is not None and owned.get("friendly_name") == mine:
                bought.append(number)
        if not bought:
            return None  # Twilio certainly has not sold us any of them: safe to buy
        if len(bought) == len(job.numbers):
            return Done(numbers=bought)
        return self._partial(job, bought, "the purchase was interrupted; the rest were not bought")

    # --- release, listing, doctor -------------------------------------------------------

    async def release(self, number: str, ref: Mapping[str, Any]) -> Step:
        """``DELETE IncomingPhoneNumbers/{PNsid}.json``; a number already gone counts as released."""
        if not re.fullmatch(r"\+\d{6,15}", number or ""):
            raise UsageError(f"{number!r} is not an E.164 phone number such as +14155550100")
        owned = await self._owned(number)
        if owned is None or not isinstance(owned.get("sid"), str):
            return Done(numbers=[number], note=f"Twilio no longer lists {number} on the account")
        request = self._client.build_request("DELETE", self._account(f"/IncomingPhoneNumbers/{owned['sid']}.json"))
        response = await send_once(
            self._client, request, provider=PROVIDER,
            lost=lambda _: f"the release of {number} could not be confirmed; check it in the Twilio console",
        )
        if response.status_code in (200, 204, 404):
            return Done(numbers=[number])
        raise self._error(response, cls=spend_error_class(response.status_code))

    async def purchased_numbers(self) -> list[str]:
        response = await self._read(self._account("/IncomingPhoneNumbers.json"), {"PageSize": 1000})
        if not response.is_success:
            raise self._error(response)
        items = self._json(response).get("incoming_phone_numbers") or []
        return [i["phone_number"] for i in items if isinstance(i, dict) and isinstance(i.get("phone_number"), str)]

    async def check(self) -> str:
        """A harmless authenticated read: the account itself."""
        response = await self._read(self._account(".json"))
        if not response.is_success:
            raise self._error(response)
        body = self._json(response)
        status = body.get("status") if isinstance(body.get("status"), str) else "unknown"
        host = httpx.URL(self.api_url).host
        return f"credentials accepted by {host}; account {self.account_sid[:6]}… is {status}"
