"""Azure Communication Services (ACS) Phone Numbers, api-version 2025-06-01 by default.

``ACS_API_VERSION`` picks another version the service lists (``2021-03-07``,
the seed's and the oldest still listed, keeps working). From 2022-12-01 on a
search result may say ``isAgreementToNotResellRequired``: the purchase of such
a search must carry ``agreeToNotResell: true`` or the service refuses it, so
the offer carries ``ref["agree_to_not_resell"]`` and the purchase sends the
agreement only then (approving the request is the organisation's agreement).

How the real service behaves (the recorded traffic, which beats the docs):

* Searching is a long-running operation: ``POST …/:search`` answers ``202``
  with an *empty* body and a relative ``Operation-Location`` that already
  carries ``?api-version``; older traffic sent no ``Location`` and no
  ``search-id``, so the search id is also derived from ``operation-id`` or the
  operation path. Numbers found are *held* until ``searchExpiresBy``.
* Purchasing is another long-running operation whose id is
  ``purchase_<searchId>``, so after a crash we can ask whether a purchase was
  already submitted instead of buying twice (``recover``).
* Operation statuses are not monotonic (``running, running, notStarted, …,
  succeeded``) and arrive capitalised or in lower camel case: only
  ``succeeded`` and ``failed`` end an operation.
* Every request is signed with HMAC-SHA256 over the verb, path and query,
  ``x-ms-date``, host and a SHA-256 of the body (``AcsAuth``).

The access key lives only inside ``AcsAuth``; no message, log line or repr
built here contains it.

The package: ``_auth`` (signing, the connection string), ``_wire`` (ACS's JSON ↔ the domain's
values), ``_api`` (the signed client, URLs, errors) and ``client`` (``AcsProvider``).
"""

from __future__ import annotations

from bot.providers.acs._api import API_VERSION
from bot.providers.acs._auth import (
    EMPTY_BODY_HASH,
    AcsAuth,
    compute_signature,
    content_hash,
    parse_connection_string,
    signing_headers,
)
from bot.providers.acs._wire import LEGACY_API_VERSION, parse_acs_time
from bot.providers.acs.client import AcsProvider

__all__ = [
    "API_VERSION", "EMPTY_BODY_HASH", "LEGACY_API_VERSION", "AcsAuth", "AcsProvider", "compute_signature",
    "content_hash", "parse_acs_time", "parse_connection_string", "signing_headers",
]
