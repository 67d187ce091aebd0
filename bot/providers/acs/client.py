"""``AcsProvider``: search, purchase and release phone numbers at one ACS resource.

Searching and purchasing are long-running operations followed to their end (see the package's
docstring); a purchase's operation id is ``purchase_<searchId>``, which is how ``recover`` asks
whether a purchase was already submitted instead of buying twice.
"""

from __future__ import annotations

import logging
import re
import time
import urllib.parse
from typing import Any, Mapping

import httpx

from bot.domain.errors import HoldExpired, OutcomeUnknown, ProviderError, ProviderUnavailable, UsageError
from bot.providers._http import json_or_none, parse_retry_after, send_once
from bot.providers.acs._api import AcsApi
from bot.providers.acs._wire import (
    NOTHING_FOUND_CODES,
    PROVIDER,
    Operation,
    error_parts,
    offers_from,
    purchase_body,
    search_body,
)
from bot.domain.offers import OfferDraft, SearchQuery
from bot.domain.steps import Done, Failed, InProgress, Job, Requester, Step

__all__ = ["AcsProvider"]

log = logging.getLogger("bot.providers.acs")


class AcsProvider(AcsApi):
    """Search, purchase and release phone numbers at one ACS resource."""

    # --- search -------------------------------------------------------------------

    async def search(self, query: SearchQuery) -> list[OfferDraft]:
        body = search_body(query, self._assignment_type)
        country = urllib.parse.quote((query.country or "").strip().upper(), safe="")
        response = await self._read("POST", self._api(f"/availablePhoneNumbers/countries/{country}/:search"), json=body)
        if not response.is_success:
            raise self._error(response)

        # The spec says the 202 carries the result; the service sends none. Use it if it ever does.
        inline = json_or_none(response)
        if isinstance(inline, dict) and isinstance(inline.get("phoneNumbers"), list) and inline.get("searchId"):
            return offers_from(inline, query, body, self._assignment_type)

        headers = response.headers
        operation_location = headers.get("operation-location")
        operation_id = headers.get("operation-id")
        search_id = headers.get("search-id")
        if not operation_location and operation_id:
            operation_location = self._operation_path(operation_id)
        if not operation_location:
            raise ProviderError(PROVIDER, "the search was accepted but the answer named no operation to follow")
        operation_path = self._follow(operation_location)
        if not operation_id:
            operation_id = urllib.parse.unquote(httpx.URL(operation_path).path.rsplit("/", 1)[-1])
        if not search_id:
            search_id = operation_id.removeprefix("search_")
        results_location = headers.get("location")

        operation = await self._wait_for_search(operation_path, parse_retry_after(headers.get("retry-after")))
        if operation.status == "failed":
            if (operation.error_code or "").lower() in NOTHING_FOUND_CODES:
                log.info("acs search %s found no numbers: %s", search_id, operation.error_message)
                return []
            raise ProviderError(PROVIDER, operation.failure_reason("search"), code=operation.error_code)

        location = results_location or operation.resource_location
        results_path = (
            self._follow(location)
            if location
            else self._api(f"/availablePhoneNumbers/searchResults/{urllib.parse.quote(search_id, safe='')}")
        )
        response = await self._read("GET", results_path)
        if not response.is_success:
            raise self._error(response)
        return offers_from(self._json(response), query, body, self._assignment_type)

    async def _wait_for_search(self, operation_path: str, first_wait: float | None) -> Operation:
        started = time.monotonic()
        waited = 0.0

        async def pause(seconds: float) -> None:
            nonlocal waited
            # Fake sleeps in tests take no real time, real ones take both: count the larger.
            if max(waited, time.monotonic() - started) + seconds > self._search_timeout:
                raise ProviderUnavailable(
                    PROVIDER, f"the search did not finish within {self._search_timeout:g} seconds; try again"
                )
            await self._sleep(seconds)
            waited += seconds

        if first_wait:
            await pause(first_wait)
        while True:
            operation = await self._get_operation(operation_path)
            if operation is None:
                raise ProviderError(PROVIDER, "the search operation disappeared before it finished", status=404)
            if operation.terminal:
                return operation
            await pause(operation.retry_after if operation.retry_after is not None else self._poll_interval)

    # --- purchase -------------------------------------------------------------------

    async def prepare(self, offer: OfferDraft, quantity: int, requester: Requester) -> dict[str, Any]:
        return {}

    @staticmethod
    def _search_id(job: Job) -> str:
        search_id = (job.ref or {}).get("search_id")
        if not isinstance(search_id, str) or not search_id:
            raise ProviderError(PROVIDER, "this request has no ACS search id to purchase")
        return search_id

    async def submit(self, job: Job) -> Step:
        """Buy the numbers held by the job's search. Sent once; never retried here."""
        search_id = self._search_id(job)
        request = self._client.build_request(
            "POST", self._api("/availablePhoneNumbers/:purchase"), json=purchase_body(job, search_id, self.api_version)
        )
        response = await send_once(self._client, request, provider=PROVIDER, lost=lambda exc: _purchase_lost(exc, search_id))
        status = response.status_code
        if response.is_success and not (response.headers.get("operation-id") or response.headers.get("operation-location")):
            # ACS accepts a purchase with 202 and the operation's headers. A 2xx without them is not ACS's
            # answer (a proxy's page, a mangled reply): whether ACS acted is unknown, so ask, never assume.
            raise OutcomeUnknown(
                PROVIDER,
                f"the purchase of search {search_id} got an answer ({status}) that names no operation; "
                "whether ACS acted is not known yet",
            )
        if response.is_success:
            operation_id = response.headers.get("operation-id") or f"purchase_{search_id}"
            location = response.headers.get("operation-location")
            path = self._follow(location) if location else self._operation_path(operation_id)
            log.info("acs purchase of search %s accepted as %s", search_id, operation_id)
            return InProgress(
                ref={"operation_id": operation_id, "location": path},
                retry_after=self._retry_after(response),
            )
        if status == 429:
            # Throttled: certainly refused, safe to send again later.
            raise self._error(response, cls=ProviderUnavailable)
        if 400 <= status < 500:
            code, _ = error_parts(response)
            if code and "expired" in code.lower():
                # The hold ran out before ACS took the purchase: nothing bought; the worker searches again.
                raise self._error(response, cls=HoldExpired)
            raise self._error(response)
        raise self._error(response, cls=OutcomeUnknown)

    def _step(self, operation: Operation, job: Job, ref: dict[str, Any], what: str) -> Step:
        if operation.status == "succeeded":
            if ref.get("number"):
                return Done(numbers=[ref["number"]])
            # A purchase operation's resourceLocation is null: what it bought is the search's numbers.
            return Done(numbers=list(job.numbers))
        if operation.status == "failed":
            return Failed(reason=operation.failure_reason(what))
        return InProgress(
            ref=dict(ref),
            retry_after=operation.retry_after if operation.retry_after is not None else self._poll_interval,
        )

    async def poll(self, job: Job, ref: dict[str, Any]) -> Step:
        if ref.get("watch_number"):
            return await self._watch_release(ref["watch_number"])
        operation_id = ref.get("operation_id")
        location = ref.get("location")
        if location:
            path = self._follow(location)
        elif operation_id:
            path = self._operation_path(operation_id)
        else:
            raise ProviderError(PROVIDER, "nothing to poll: the reference names no operation")
        operation = await self._get_operation(path)
        if operation is None:
            return await self._operation_gone(job, operation_id or path)
        what = (operation_id or "").split("_", 1)[0] or "purchase"
        next_ref = {"operation_id": operation_id, "location": path}
        if ref.get("number"):
            next_ref["number"] = ref["number"]
        return self._step(operation, job, next_ref, what)

    async def _operation_gone(self, job: Job, operation: str) -> Step:
        """ACS no longer knows an operation it accepted. That is not its word on the purchase:
        ask the resource whether it holds the numbers, and say "cannot tell yet" otherwise."""
        held = []
        for number in job.numbers:
            response = await self._read("GET", self._api(f"/phoneNumbers/{urllib.parse.quote(number, safe='')}"))
            if response.is_success:
                held.append(number)
            elif response.status_code != 404:
                raise self._error(response, cls=ProviderUnavailable)
        if job.numbers and len(held) == len(job.numbers):
            return Done(numbers=held, note=f"ACS no longer lists operation {operation}; the numbers are in the resource")
        raise ProviderUnavailable(
            PROVIDER,
            f"operation {operation} is not found and the resource holds {len(held)} of {len(job.numbers)} number(s) yet",
            status=404,
        )

    async def recover(self, job: Job) -> Step | None:
        """Was the purchase of this job's search already submitted? Asks ACS by operation id."""
        search_id = self._search_id(job)
        operation_id = f"purchase_{search_id}"
        path = self._operation_path(operation_id)
        operation = await self._get_operation(path)
        if operation is None:
            return None
        return self._step(operation, job, {"operation_id": operation_id, "location": path}, "purchase")

    # --- release, listing, doctor ---------------------------------------------------------

    async def release(self, number: str, ref: Mapping[str, Any]) -> Step:
        """Give a purchased number back. Not retried: on doubt, raise OutcomeUnknown."""
        if not re.fullmatch(r"\+\d{6,15}", number or ""):
            raise UsageError(f"{number!r} is not an E.164 phone number such as +18332272459")
        request = self._client.build_request(
            "DELETE", self._api(f"/phoneNumbers/{urllib.parse.quote(number, safe='')}")
        )
        response = await send_once(
            self._client, request, provider=PROVIDER,
            lost=lambda _: f"the release of {number} could not be confirmed; check the number in the Azure portal",
        )
        if response.is_success:
            # 202 names the release operation; so did a recorded 204 (Feb 2021): follow it when named,
            # and only an answer naming none means the release is already done.
            location = response.headers.get("operation-location")
            operation_id = response.headers.get("operation-id")
            if not location and not operation_id:
                return Done(numbers=[number])
            path = self._follow(location) if location else self._operation_path(operation_id or "")
            if not operation_id:
                operation_id = urllib.parse.unquote(httpx.URL(path).path.rsplit("/", 1)[-1])
            return InProgress(
                ref={"operation_id": operation_id, "location": path, "number": number},
                retry_after=self._retry_after(response),
            )
        if response.status_code == 404:
            # The resource no longer has it: released, which is what was asked. A release sent
            # again after a crash therefore ends as done, not failed.
            return Done(numbers=[number], note=f"ACS no longer lists {number} on the resource")
        if response.status_code == 409:
            # A release of it is already under way (ours, sent before a crash): watch the number go.
            return InProgress(ref={"watch_number": number}, retry_after=self._retry_after(response))
        if response.status_code == 429:
            raise self._error(response, cls=ProviderUnavailable)
        if 400 <= response.status_code < 500:
            raise self._error(response)
        raise self._error(response, cls=OutcomeUnknown)

    async def _watch_release(self, number: str) -> Step:
        """Done once ``GET /phoneNumbers/{number}`` says the resource no longer has it."""
        response = await self._read("GET", self._api(f"/phoneNumbers/{urllib.parse.quote(number, safe='')}"))
        if response.status_code == 404:
            return Done(numbers=[number])
        if not response.is_success:
            raise self._error(response, cls=ProviderUnavailable if response.status_code >= 500 else None)
        return InProgress(ref={"watch_number": number}, retry_after=self._retry_after(response))

    async def purchased_numbers(self) -> list[str]:
        """Numbers the resource owns (first page)."""
        response = await self._read("GET", self._api("/phoneNumbers"))
        if not response.is_success:
            raise self._error(response)
        body = self._json(response)
        items = body.get("phoneNumbers") or body.get("value") or []
        return [i["phoneNumber"] for i in items if isinstance(i, dict) and isinstance(i.get("phoneNumber"), str)]

    async def check(self) -> str:
        """A harmless authenticated read: list the numbers the resource owns."""
        numbers = await self.purchased_numbers()
        host = httpx.URL(self.endpoint).host
        return (
            f"access key accepted by {host} at api-version {self.api_version}; "
            f"{len(numbers)} purchased number(s) listed"
        )


def _purchase_lost(exc: httpx.TransportError, search_id: str) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"the purchase of search {search_id} timed out; whether ACS acted is not known yet"
    return f"the connection failed while purchasing search {search_id}; whether ACS acted is not known yet"
