"""Every error numbers-bot raises on purpose, in one hierarchy.

    NumbersError                 base; ``str(err)`` is a message a user can read
    ├── UsageError               the command text or an argument could not be understood
    ├── NotFound                 no such request / offer / number
    ├── NotAllowed               policy refuses: not an approver, self-approval, budget, quantity
    ├── Conflict                 the thing already moved on (already decided, hold taken, …)
    │   └── OfferTaken           the offer is already requested by a live request
    ├── ConfigError              a setting is missing or wrong (one line per problem)
    ├── StoreBusy                the store could not take a write in time (another process
    │                            holds its lock); nothing changed, the caller tries again
    ├── DirectoryUnavailable     Slack could not say who is an approver; the click is refused
    ├── DeliveryDeferred         Slack did not take a notification now (down, rate-limited);
    │                            the outbox keeps it and tries again later
    └── ProviderError            a provider refused or failed; carries provider, status, code
        ├── ProviderAuthError    401/403: the credentials are wrong
        ├── HoldExpired          the purchase was refused because the held search expired, or
        │                        the number was sold meanwhile (Twilio 21422, Telnyx 85001);
        │                        nothing was spent, the search can be run again
        ├── ProviderUnavailable  timeouts, connection errors, 5xx, throttling we gave up on;
        │                        safe to retry for reads, never blindly for spending calls
        └── OutcomeUnknown       a spending call was sent and we cannot tell whether the
                                 provider acted; the request must go to ``needs_attention``
                                 unless the provider can be asked (ACS ``purchase_<searchId>``,
                                 Twilio's number look-up by FriendlyName, Telnyx's orders by
                                 ``customer_reference``)

Messages never contain secrets: providers build them from the provider's own
error text and the request's method and path, never from headers or URLs with
credentials in them.
"""

from __future__ import annotations


class NumbersError(Exception):
    """Base class; ``str(err)`` is shown to users as it is."""


class UsageError(NumbersError):
    def __init__(self, message: str, *, usage: str | None = None):
        super().__init__(message)
        self.usage = usage


class NotFound(NumbersError):
    pass


class NotAllowed(NumbersError):
    pass


class Conflict(NumbersError):
    pass


class OfferTaken(Conflict):
    def __init__(self, request_id: int):
        self.request_id = request_id
        super().__init__(
            f"This offer is already requested in request #{request_id}; one offer makes one request. "
            "Follow that request, or search again for other numbers."
        )


class ConfigError(NumbersError):
    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class StoreBusy(NumbersError):
    def __init__(self, message: str = "The store is busy (another process is writing to it); try again in a moment."):
        super().__init__(message)


class DirectoryUnavailable(NumbersError):
    """Approver rights could not be checked; acting on stale rights would be worse than refusing."""


class DeliveryDeferred(NumbersError):
    """Slack did not take a notification now; ``retry_after`` (seconds) when Slack said when."""

    def __init__(self, reason: str, *, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after


class ProviderError(NumbersError):
    """The provider refused or failed. ``message`` is the provider's own words when it gave any."""

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ):
        self.provider = provider
        self.message = message
        self.status = status
        self.code = code
        self.retry_after = retry_after
        super().__init__(self._render())

    def _render(self) -> str:
        where = self.provider
        bits = []
        if self.status:
            bits.append(str(self.status))
        if self.code:
            bits.append(self.code)
        head = f"{where} said" + (f" ({', '.join(bits)})" if bits else "")
        return f"{head}: {self.message}"


class ProviderAuthError(ProviderError):
    pass


class HoldExpired(ProviderError):
    """The provider refused a purchase because its hold ran out (nothing was spent)."""


class ProviderUnavailable(ProviderError):
    pass


class OutcomeUnknown(ProviderError):
    """A spending call may or may not have been carried out by the provider."""
