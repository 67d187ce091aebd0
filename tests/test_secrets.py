"""Secrets never reach logs, messages, the audit log, or errors shown to users."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from bot.domain.errors import NumbersError
from bot.logs import REDACTED, RedactSecrets
from bot.domain.offers import SearchQuery
from tests.conftest import APPROVER, REQUESTER
from tests.test_faults import SECRETS, SEARCH_PATH, SPEND, served  # noqa: F401  (fixture)


async def test_no_secret_anywhere_after_a_day_of_faults(served, caplog):  # noqa: F811
    caplog.set_level(logging.DEBUG)
    env = served()
    seen: list[str] = []
    apps = served.services.apps
    for provider, app in apps.items():
        app.faults.add("status", path=SEARCH_PATH[provider], status=401, times=1)
        app.faults.add("status", path=SEARCH_PATH[provider], status=500, times=1)
    for _ in range(2):
        for result in (
            await env.svc.search(REQUESTER, SearchQuery("US", "tollfree")),
            await env.svc.assign_search(REQUESTER, None),  # the requester's own location (San Jose)
        ):
            seen += result.problems
    # Spending calls that fail in each way a provider can fail.
    for provider, (method, path) in SPEND.items():
        result = (
            await env.svc.assign_search(REQUESTER, "San Jose")
            if provider == "webex"
            else await env.svc.search(REQUESTER, SearchQuery("US", "tollfree" if provider == "acs" else "local", provider=provider))
        )
        offer = next(o for o in result.offers if o.provider == provider)
        request = await env.svc.request(REQUESTER, offer.id, "secrets test", quantity=1 if provider == "plivo" else None)
        apps[provider].faults.add("status", method=method, path=path, status=401, times=1)
        await env.svc.approve(request.id, APPROVER)
        done = await env.settle(request.id)
        seen.append(done.outcome or "")
    try:
        await env.svc.request(REQUESTER, "onothing", "x")
    except NumbersError as exc:
        seen.append(str(exc))
    for event in env.store.iter_events(datetime(2000, 1, 1, tzinfo=timezone.utc)):
        seen += [event.message, str(event.data)]
    seen += [text or "" for _, _, text in env.notes.seen]
    seen += [repr(p) for p in env.c.providers.values()]
    seen.append(repr(env.c.settings))
    seen.append(caplog.text)
    blob = "\n".join(seen)
    assert "401" in blob  # the faults did happen and were reported
    for secret in SECRETS:
        assert secret not in blob


def test_log_filter_redacts_secrets_in_messages_and_tracebacks():
    secret = "xoxb-super-secret-token-1234"
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "token is %s", (secret,), None)
    try:
        raise RuntimeError(f"failed with {secret}")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()
    assert RedactSecrets([secret]).filter(record)
    text = record.getMessage()
    assert secret not in text and REDACTED in text and "failed with" in text
