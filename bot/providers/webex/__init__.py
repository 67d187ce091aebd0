"""Webex Calling: numbers the organisation already owns, assigned as a person's primary number.

Webex does not sell numbers; it lists the ones the organisation owns that can
become a person's primary ("work") number, and assigning one is an update of
the person. So:

* ``search`` lists ``GET /telephony/config/people/primary/availableNumbers``
  (all pages, following the ``Link: rel="next"`` header) as zero-cost offers;
* ``prepare`` finds the requester's Webex person by e-mail before any approval
  is asked, so a request that cannot work is refused at once;
* ``submit`` re-reads the person, checks the number is still free and ``PUT``\\ s
  the whole person back with the new work number (Webex's PUT replaces the
  whole person: a field left out is cleared);
* ``recover`` reads the person: the PUT is a full replace with the same
  content, so when the number is not there yet submitting again is safe.

Webex's location rule: a person's ``locationId`` "cannot be changed if a user
is already an existing calling user", and a primary number must come from the
person's location. So once the requester's person is known (``search`` with
``query.requester_email``, and always in ``prepare``) only numbers of that
location are offered or accepted, and the PUT keeps the person's
``locationId``. The PUT sends only the fields a caller may write: the
read-only ones (``READ_ONLY_PERSON_FIELDS``, as wxc_sdk leaves them out since
1.3.0) are dropped, everything else the person has is sent back unchanged.

Throttling is waited out (``_api``). The package: ``_auth`` (the bearer token), ``_wire``
(Webex's JSON ↔ the domain's values, what each refusal means), ``_api`` (the client, paging,
throttling, errors, people) and ``client`` (``WebexProvider``).
"""

from __future__ import annotations

from bot.providers.webex._wire import READ_ONLY_PERSON_FIELDS, writable_person
from bot.providers.webex.client import WebexProvider

__all__ = ["READ_ONLY_PERSON_FIELDS", "WebexProvider", "writable_person"]
