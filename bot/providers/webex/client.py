"""``WebexProvider``: numbers the organisation owns, offered and assigned as a person's work number
(see the package's docstring for Webex's rules)."""

from __future__ import annotations

from typing import Any, Mapping

from bot.domain.errors import NotAllowed, NotFound, OutcomeUnknown, ProviderError, ProviderUnavailable
from bot.domain.offers import OfferDraft, SearchQuery
from bot.domain.steps import Done, Failed, Job, Requester, Step
from bot.providers.webex._api import WebexApi
from bot.providers.webex._wire import (
    AVAILABLE_NUMBERS_PATH,
    SCOPE_LOCATIONS_READ,
    SCOPE_NUMBERS_READ,
    SCOPE_PEOPLE_READ,
    job_target,
    offer_from,
    same_number,
    with_work_number,
    work_number,
    writable_person,
)

__all__ = ["WebexProvider"]


class WebexProvider(WebexApi):
    """Webex Calling adapter. ``transport``/``sleep`` are the test seams."""

    # --- search ---------------------------------------------------------------

    async def search(self, query: SearchQuery) -> list[OfferDraft]:
        """Numbers that can become the caller's primary number: those of the caller's own location once
        their Webex person is known (``query.requester_email``), else of ``query.location`` or the configured one."""
        location: dict[str, Any] | None = None
        if query.location:
            location = await self.find_location(query.location)
        location_id = location["id"] if location else self.location_id
        own = await self._requester_location(query.requester_email)
        if own is not None:
            if location is not None and location["id"] != own:
                try:
                    yours = (await self.find_location(own)).get("name") or own
                except NotFound:
                    yours = own
                raise NotAllowed(
                    f"Your Webex Calling location is {yours}, not {location.get('name') or location['id']}, and Webex "
                    "cannot move a calling user to another location: only numbers of your own location can become "
                    "your primary number. Search without a location to see them."
                )
            location_id = own
        items = await self.available_numbers(location_id=location_id)
        offers: list[OfferDraft] = []
        seen: set[str] = set()
        for item in items:
            number = item.get("phoneNumber")
            if not number or number in seen or item.get("owner"):
                continue
            seen.add(number)
            offers.append(offer_from(item, location_id=location_id, location_name=(location or {}).get("name")))
        # Inactive numbers can still be assigned, but an active one is what people expect first.
        offers.sort(key=lambda o: str(o.details.get("state") or "").upper() == "INACTIVE")
        return offers

    async def available_numbers(
        self,
        location_id: str | None = None,
        phone_numbers: list[str] | None = None,
        license_type: str | None = None,
    ) -> list[dict[str, Any]]:
        """Every ``phoneNumbers[]`` item of the available-numbers listing, all pages, as Webex gave them."""
        params: dict[str, Any] = {"max": self.page_size}
        if self.org_id:
            params["orgId"] = self.org_id
        location_id = location_id or self.location_id
        if location_id:
            params["locationId"] = location_id
        if phone_numbers:
            params["phoneNumber"] = ",".join(phone_numbers)
        if license_type:
            params["licenseType"] = license_type
        return await self._list_all(
            AVAILABLE_NUMBERS_PATH,
            params,
            items_key="phoneNumbers",
            doing="listing available numbers",
            scope=SCOPE_NUMBERS_READ,
        )

    async def _requester_location(self, email: str | None) -> str | None:
        """The location of the requester's calling person, or None when unknown (no e-mail, no person, no calling)."""
        if not email:
            return None
        person = await self._find_person(email)
        location_id = (person or {}).get("locationId")
        return location_id if isinstance(location_id, str) and location_id else None

    async def find_location(self, wanted: str) -> dict[str, Any]:
        """The location whose id is ``wanted`` or whose name is ``wanted`` (any case)."""
        params: dict[str, Any] = {"max": self.page_size}
        if self.org_id:
            params["orgId"] = self.org_id
        locations = await self._list_all(
            "/locations", params, items_key="items", doing="listing locations", scope=SCOPE_LOCATIONS_READ
        )
        wanted_clean = wanted.strip()
        for loc in locations:
            if loc.get("id") == wanted_clean:
                return loc
        for loc in locations:
            if str(loc.get("name") or "").casefold() == wanted_clean.casefold():
                return loc
        names = ", ".join(sorted(str(loc.get("name")) for loc in locations if loc.get("name"))[:20])
        raise NotFound(
            f"No Webex location is called or has the id '{wanted_clean}'."
            + (f" Known locations: {names}." if names else " The organisation has no locations.")
        )

    # --- request flow ---------------------------------------------------------------

    async def prepare(self, offer: OfferDraft, quantity: int, requester: Requester) -> dict[str, Any]:
        """Find the requester's Webex person; refuse now if the assignment could not work."""
        if quantity != 1:
            raise NotAllowed("A Webex number is assigned to one person at a time: the quantity must be 1.")
        if not requester.email:
            raise NotAllowed(
                "A Webex number is assigned to your Webex account, which is found by e-mail, but your Slack "
                "profile has no e-mail address. Add one to your Slack profile (or ask an admin) and try again."
            )
        person = await self._find_person(requester.email)
        if person is None:
            raise NotFound(
                f"No Webex person has the e-mail {requester.email}; ask an admin to add you to Webex Calling "
                "before requesting a number."
            )
        if not person.get("locationId"):
            raise NotAllowed(
                f"The Webex person {requester.email} has no Webex Calling (no calling licence or location), so "
                "no number can be assigned to it; ask an admin to enable Webex Calling for you first."
            )
        offered_location = (offer.ref or {}).get("location_id")
        if offered_location and offered_location != person["locationId"]:
            where = offer.details.get("location_name") or offered_location
            raise NotAllowed(
                f"{offer.numbers[0] if offer.numbers else 'This number'} belongs to the Webex location {where}, "
                f"but {requester.email} is a calling user of another location, and Webex cannot move a calling "
                "user to another location. Search again (`assign`) to see the numbers of your own location."
            )
        return {
            "person_id": person["id"],
            "email": requester.email,
            "replaces": work_number(person),
        }

    async def submit(self, job: Job) -> Step:
        number, location_id, person_id = job_target(job)
        person = await self._get_person(person_id)
        if same_number(work_number(person), number):
            return Done([number], note=f"{number} was already the person's work number")
        still_free = [
            item
            for item in await self.available_numbers(location_id=location_id, phone_numbers=[number])
            if same_number(item.get("phoneNumber"), number) and not item.get("owner")
        ]
        if not still_free:
            return Failed(f"{number} is no longer available: it was assigned elsewhere meanwhile")
        number_location = (still_free[0].get("location") or {}).get("id") or location_id
        person_location = person.get("locationId")
        if person_location and number_location and number_location != person_location:
            return Failed(
                f"{number} belongs to another Webex location than the person's, and Webex cannot move a calling "
                "user to another location; nothing was changed"
            )
        location_id = person_location or number_location
        response = await self._put_person(
            person, with_work_number(person, number, location_id), doing="assigning the number"
        )
        try:
            self._json(response, "assigning the number")
        except ProviderUnavailable:
            # Webex answers the PUT with the person as now stored; anything else (a proxy's page, a cut-off
            # body) does not show that the number was assigned. Ask (recover reads the person) instead of
            # reporting a number the person may not have.
            raise OutcomeUnknown(
                self.name, f"Webex answered the assignment of {number} with an unreadable body; checking whether it took"
            ) from None
        return Done([number])

    async def poll(self, job: Job, ref: dict[str, Any]) -> Step:
        raise ProviderError(
            self.name, "a Webex assignment completes within its one request; there is nothing to poll"
        )

    async def recover(self, job: Job) -> Step | None:
        number, _location_id, person_id = job_target(job)
        person = await self._get_person(person_id)
        if same_number(work_number(person), number):
            return Done([number])
        # Not there: the PUT is a full replace with the same content, so sending it again cannot assign twice.
        return None

    async def release(self, number: str, ref: Mapping[str, Any]) -> Step:
        """Take ``number`` off the person ``ref["person_id"]`` (the number goes back to the organisation's
        available numbers)."""
        person_id = ref.get("person_id")
        if not isinstance(person_id, str) or not person_id:
            raise ProviderError("webex", f"the release of {number} names no Webex person to take it off")
        person = await self._get_person(person_id)
        entries = person.get("phoneNumbers") or []
        kept = [e for e in entries if not same_number(e.get("value"), number)]
        if len(kept) == len(entries):
            return Done([number], note=f"{person.get('displayName') or person_id} no longer had {number}")
        body = writable_person(person)
        body["phoneNumbers"] = kept
        await self._put_person(person, body, doing="removing the number")
        return Done([number])

    async def check(self) -> str:
        response = await self._call(
            "GET", "/people/me", doing="reading the token's own person", scope=SCOPE_PEOPLE_READ
        )
        me = self._json(response, "reading the token's own person")
        who = me.get("displayName") or ", ".join(me.get("emails") or []) or me.get("id") or "unnamed"
        return f"token ok ({who})"
