"""Which enabled providers can serve a search: a rule on names alone, so the ack can apply it.

The service searches with it, and the ack process (``bot.front``) answers a search it cannot serve
with it, before anything else happens: both must agree, so there is one function.
"""

from __future__ import annotations

from typing import Collection

from bot.domain.commands import SEARCH_PROVIDERS
from bot.domain.errors import UsageError
from bot.providers.base import SearchQuery

__all__ = ["NO_NATIONAL", "searchable_providers"]

NO_NATIONAL = ("acs", "twilio")  # providers that sell no "national" number type


def searchable_providers(query: SearchQuery, enabled: Collection[str]) -> list[str]:
    """The providers (of ``enabled``) to ask for ``query``; ``UsageError`` if it names one not enabled."""
    if query.provider:
        if query.provider not in enabled:
            raise UsageError(f"`{query.provider}` is not enabled here; enabled: {', '.join(sorted(enabled)) or 'none'}.")
        return [query.provider]
    names = [n for n in SEARCH_PROVIDERS if n in enabled]
    if query.number_type == "national":
        names = [n for n in names if n not in NO_NATIONAL]  # ACS and Twilio sell no national type
    return names
