"""The ports: what the use cases need from the outside, and nothing about how it is done.

``Provider`` — one provider's API as six moves (every adapter in ``bot/providers``):

* ``search(query)`` → offers (``OfferDraft``); reads, retried on transient faults.
* ``prepare(offer, quantity, requester)`` → extra reference data checked *before*
  an approval is asked for (Webex looks up the requester's person by e-mail);
  raises a ``NumbersError`` a user can read when the request cannot work.
* ``submit(job)`` → the one call that spends money or changes an assignment.
  Never retried blindly. Returns a ``Step``; raises ``ProviderError`` when the
  provider definitely refused, ``OutcomeUnknown`` when it cannot be told.
* ``poll(job, ref)`` → the next ``Step`` of an operation in flight (reads).
* ``recover(job)`` → after a crash between recording the intent to submit and
  recording the answer: ``None`` when the provider certainly has not acted (safe
  to submit), a ``Step`` when it has (carry on from there); raises
  ``OutcomeUnknown`` when the provider cannot say (the request then goes to
  ``needs_attention``, never a second submit).
* ``release(number, ref)`` → give a held number back; ``ref`` is the held
  number's provider reference (Webex reads ``person_id``, the others need only
  the number). A number the account no longer has counts as released, so a
  release may be sent again after a crash.
* ``check()`` → a harmless call for ``numbers-bot doctor``; returns a short text.

Optional, for providers whose hold is made at request time (Telnyx reserves in
``prepare``): ``extend_hold(ref)`` → the hold's new end while the request waits
for approval, and ``abandon(ref)`` → let the hold go when the request is denied,
cancelled or expires (returns a note for the audit log, or None). Call them
through ``extend_hold`` and ``abandon_hold`` below, which do nothing for
providers without them.

``Directory`` — who is an approver and what is a user's e-mail (Slack answers in
the bot, settings in the CLI). ``Notifier`` — telling people that a request
changed (Slack cards and DMs, or lines on the terminal).

Money is ``Decimal`` end to end; times are aware UTC datetimes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping, Protocol, runtime_checkable

from bot.domain.kinds import Change
from bot.domain.offers import OfferDraft, SearchQuery
from bot.domain.requests import NumberRequest
from bot.domain.steps import Job, Requester, Step

__all__ = ["Provider", "Directory", "Notifier", "extend_hold", "extends_holds", "abandon_hold"]


@runtime_checkable
class Provider(Protocol):
    name: str

    async def search(self, query: SearchQuery) -> list[OfferDraft]: ...

    async def prepare(self, offer: OfferDraft, quantity: int, requester: Requester) -> dict[str, Any]: ...

    async def submit(self, job: Job) -> Step: ...

    async def poll(self, job: Job, ref: dict[str, Any]) -> Step: ...

    async def recover(self, job: Job) -> Step | None: ...

    async def release(self, number: str, ref: Mapping[str, Any]) -> Step: ...

    async def check(self) -> str: ...

    async def aclose(self) -> None: ...


async def extend_hold(provider: Provider, ref: dict[str, Any]) -> datetime | None:
    """The hold's new end, or None when the provider keeps no hold it can extend."""
    extend = getattr(provider, "extend_hold", None)
    return await extend(ref) if extend is not None else None


def extends_holds(provider: Provider) -> bool:
    return getattr(provider, "extend_hold", None) is not None


async def abandon_hold(provider: Provider, ref: dict[str, Any]) -> str | None:
    """Let the request's hold go; a note for the audit log, or None when there was nothing to do."""
    abandon = getattr(provider, "abandon", None)
    return await abandon(ref) if abandon is not None else None


class Directory(Protocol):
    async def is_approver(self, user_id: str) -> bool: ...

    async def email(self, user_id: str) -> str | None: ...


class Notifier(Protocol):
    async def notify(self, request: NumberRequest, what: Change, *, actor: str | None = None, text: str | None = None) -> None:
        """Tell people that ``request`` changed; ``what`` names the change."""
        ...
