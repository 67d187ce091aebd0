"""Time-driven duties run on every replica at once and still happen once.

Two bots (services, workers, stores of their own) on one store, SQLite file or PostgreSQL
database. Each duty is forced to interleave: both replicas read what is due before either
acts on it.
"""

from __future__ import annotations

import asyncio

import pytest

from bot.sandbox import SandboxServices
from bot.sandbox.common import Clock
from tests.conftest import REQUESTER, make_env
from tests.test_flow import acs_offer


@pytest.fixture
async def two_replicas(settings_env, store_target):
    settings = settings_env(
        NUMBERS_SANDBOX=True, NUMBERS_POLL_INTERVAL=0.01, NUMBERS_DB=store_target,
        NUMBERS_REMIND_AFTER="1h", NUMBERS_REQUEST_TTL="1d",
    )
    clock = Clock()
    sandbox = SandboxServices.create(None, clock=clock)
    replicas = [make_env(settings, sandbox=sandbox, clock=clock) for _ in range(2)]
    yield replicas
    for env in replicas:
        await env.c.aclose()


def read_together(replicas, name):
    """Patch each replica's ``store.<name>`` so neither goes on before both have read."""
    both = asyncio.Barrier(len(replicas))
    for env in replicas:
        real = getattr(env.svc.store, name)

        async def read_then_wait(*args, real=real, **kwargs):
            due = await real(*args, **kwargs)
            await asyncio.wait_for(both.wait(), 10)
            return due

        setattr(env.svc.store, name, read_then_wait)


async def test_a_reminder_due_on_two_replicas_is_sent_once(two_replicas):
    first, other = two_replicas
    request = await first.svc.request(REQUESTER, (await acs_offer(first)).id, "IVR")
    first.advance(3601)
    read_together(two_replicas, "due_for_reminder")
    reminded = await asyncio.gather(first.svc.remind_due(), other.svc.remind_due())
    assert sorted(len(r) for r in reminded) == [0, 1]
    assert first.notes.whats(request.id).count("reminder") + other.notes.whats(request.id).count("reminder") == 1
    assert [e.kind for e in await first.svc.store.events_for(request.id)].count("reminded") == 1


async def test_a_request_due_to_expire_on_two_replicas_expires_once(two_replicas):
    first, other = two_replicas
    request = await first.svc.request(REQUESTER, (await acs_offer(first)).id, "IVR")
    first.advance(86401)
    read_together(two_replicas, "due_for_expiry")
    expired = await asyncio.gather(first.svc.expire_due(), other.svc.expire_due())
    assert sorted(len(e) for e in expired) == [0, 1]
    assert first.notes.whats(request.id).count("expired") + other.notes.whats(request.id).count("expired") == 1
    assert [e.kind for e in await first.svc.store.events_for(request.id)].count("expired") == 1
