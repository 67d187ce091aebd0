"""Searching: every provider that can serve a query, in parallel, cheapest first; the offers kept."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bot.config import PROVIDER_LABELS, PROVIDER_SETTINGS
from bot.domain.searchable import NO_NATIONAL, searchable_providers
from bot.domain.errors import NotAllowed, NumbersError, ProviderAuthError, ProviderError, ProviderUnavailable, UsageError
from bot.domain.offers import Offer, SearchQuery
from bot.services.core import ServiceCore, new_offer_id

__all__ = ["Searching", "SearchResult", "search_failure", "sort_key", "NO_NATIONAL"]

log = logging.getLogger(__name__)



@dataclass
class SearchResult:
    query: SearchQuery
    offers: list[Offer]
    problems: list[str] = field(default_factory=list)  # per provider, readable
    providers: list[str] = field(default_factory=list)  # asked
    failures: dict[str, str] = field(default_factory=dict)  # provider → why its search failed (in problems too)

    @property
    def every_provider_failed(self) -> bool:
        """Nothing was searched at all: "no numbers found" would be a lie."""
        return bool(self.providers) and all(name in self.failures for name in self.providers)

    def outcomes(self) -> list[dict[str, Any]]:
        """Per provider asked: how many offers, or the reason it failed."""
        return [
            {
                "provider": name,
                "ok": name not in self.failures,
                "offers": sum(1 for o in self.offers if o.provider == name),
                "error": self.failures.get(name),
            }
            for name in self.providers
        ]

    def to_json(self) -> dict[str, Any]:
        return {"offers": [o.to_json() for o in self.offers], "providers": self.outcomes()}


def search_failure(provider: str, error: BaseException) -> str:
    """One line saying why a provider's search failed, apart from "nothing found"."""
    label = PROVIDER_LABELS.get(provider, provider.title())
    if isinstance(error, ProviderAuthError):
        required = PROVIDER_SETTINGS.get(provider, ((), ()))[0]
        secret = [v for v in required if "TOKEN" in v or "CONNECTION" in v] or list(required)
        return f"{label}: authentication failed" + (f" (check {' and '.join(secret)})" if secret else "")
    status = f" ({error.status})" if isinstance(error, ProviderError) and error.status else ""
    if isinstance(error, ProviderUnavailable):
        return f"{label}: unavailable{status} — {error.message}"
    if isinstance(error, ProviderError):
        return f"{label}: refused the search{status} — {error.message}"
    if isinstance(error, NumbersError):
        return f"{label}: {error}"
    return f"{label}: the search failed unexpectedly ({type(error).__name__})"


def sort_key(offer: Offer) -> tuple[int, Decimal, str]:
    unit = offer.unit_monthly_cost
    return (1 if unit is None else 0, unit if unit is not None else Decimal(0), offer.provider)


class Searching(ServiceCore):
    def searchable_providers(self, query: SearchQuery) -> list[str]:
        return searchable_providers(query, self.providers)

    async def search(self, user: str, query: SearchQuery) -> SearchResult:
        """Search every provider that can serve ``query``, in parallel; cheapest first."""
        if query.quantity > self.policy.max_quantity:
            raise NotAllowed(
                f"At most {self.policy.max_quantity} numbers can be asked for in one request (asked for {query.quantity})."
            )
        names = self.searchable_providers(query)
        if not names:
            raise UsageError("No enabled provider sells national numbers; try local or tollfree.")
        return await self._search(user, query, names)

    async def assign_search(self, user: str, location: str | None) -> SearchResult:
        """Webex numbers the caller could take as their primary number."""
        if "webex" not in self.providers:
            raise UsageError("Webex Calling is not enabled here (WEBEX_ACCESS_TOKEN is not set).")
        # The caller's Webex person decides which location's numbers can be theirs.
        email = await self.directory.email(user)
        query = SearchQuery(
            country="US", number_type="local", provider="webex", location=location, requester_email=email
        )
        return await self._search(user, query, ["webex"])

    async def _search(self, user: str, query: SearchQuery, names: list[str]) -> SearchResult:
        results = await asyncio.gather(*(self.providers[n].search(query) for n in names), return_exceptions=True)
        now = self.clock()
        offers: list[Offer] = []
        failures: dict[str, str] = {}
        for name, result in zip(names, results):
            if isinstance(result, BaseException):
                if not isinstance(result, NumbersError):
                    log.error("search at %s failed", name, exc_info=result)
                failures[name] = search_failure(name, result)
            else:
                offers.extend(Offer.from_draft(new_offer_id(), d, query, user, now) for d in result)
        problems = list(failures.values())
        offers.sort(key=sort_key)
        await self.store.save_offers(
            offers,
            actor=user,
            message=f"searched {query.country} {query.number_type} at {', '.join(names)}: {len(offers)} offer(s)",
            data={"query": query.to_dict(), "offers": [o.id for o in offers], "problems": problems},
        )
        return SearchResult(query=query, offers=offers, problems=problems, providers=names, failures=failures)
