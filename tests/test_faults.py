"""Provider faults, per provider, over real HTTP on 127.0.0.1: every one ends in a clear outcome.

The simulated services are served by uvicorn on a loopback port and the real
clients are configured as for real providers (credentials and URLs), so
timeouts and refused connections are real socket events. Reads are retried
with bounded back-off; spending calls are never blindly sent again.
"""

from __future__ import annotations

import asyncio
import re
import socket

import pytest
import uvicorn

from bot.domain.display import e164
from bot.domain.states import State
from bot.domain.offers import SearchQuery
from bot.sandbox import SandboxServices, combined_app
from bot.sandbox.acs import SANDBOX_ACS_ACCESS_KEY
from bot.sandbox.common import Clock
from bot.sandbox.plivo import SANDBOX_PLIVO_AUTH_ID, SANDBOX_PLIVO_AUTH_TOKEN
from bot.sandbox.telnyx import SANDBOX_TELNYX_API_KEY
from bot.sandbox.twilio import SANDBOX_TWILIO_ACCOUNT_SID, SANDBOX_TWILIO_AUTH_TOKEN
from bot.sandbox.webex import SANDBOX_WEBEX_TOKEN
from tests.conftest import APPROVER, REQUESTER, make_env

SEARCH_PATH = {
    "acs": r":search$",
    "plivo": r"/AvailableNumberGroup/$",
    "webex": r"/availableNumbers$",
    "twilio": r"/AvailablePhoneNumbers/US/[A-Za-z]+\.json$",
    "telnyx": r"/v2/available_phone_numbers$",
}
SPEND = {
    "acs": ("POST", r"/availablePhoneNumbers/:purchase$"),
    "plivo": ("POST", r"/AvailableNumberGroup/\d+/$"),
    "webex": ("PUT", r"/v1/people/[^/]+$"),
    "twilio": ("POST", r"/IncomingPhoneNumbers\.json$"),
    "telnyx": ("POST", r"/v2/number_orders$"),
}
SECRETS = (
    SANDBOX_ACS_ACCESS_KEY,
    SANDBOX_PLIVO_AUTH_TOKEN,
    SANDBOX_WEBEX_TOKEN,
    SANDBOX_TWILIO_AUTH_TOKEN,
    SANDBOX_TELNYX_API_KEY,
)
PROVIDERS = ["acs", "plivo", "webex", "twilio", "telnyx"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Waits:
    def __init__(self):
        self.seen: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seen.append(seconds)
        await asyncio.sleep(0)


@pytest.fixture
async def served(settings_env):
    """Sandbox services on a loopback port; a bot whose real clients point at them."""
    clock = Clock()
    services = SandboxServices.create(None, clock=clock)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(combined_app(services), host="127.0.0.1", port=port, log_level="error",
                                           lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    base = f"http://127.0.0.1:{port}"
    waits = Waits()
    envs = []

    def make(
        acs_base: str = base,
        plivo_base: str = base,
        webex_base: str = base,
        twilio_base: str = base,
        telnyx_base: str = base,
        **overrides,
    ):
        settings = settings_env(
            ACS_CONNECTION_STRING=f"endpoint={acs_base}/;accesskey={overrides.pop('acs_key', SANDBOX_ACS_ACCESS_KEY)}",
            PLIVO_AUTH_ID=SANDBOX_PLIVO_AUTH_ID,
            PLIVO_AUTH_TOKEN=overrides.pop("plivo_token", SANDBOX_PLIVO_AUTH_TOKEN),
            PLIVO_API_URL=plivo_base,
            WEBEX_ACCESS_TOKEN=overrides.pop("webex_token", SANDBOX_WEBEX_TOKEN),
            WEBEX_API_URL=f"{webex_base}/v1",
            TWILIO_ACCOUNT_SID=SANDBOX_TWILIO_ACCOUNT_SID,
            TWILIO_AUTH_TOKEN=overrides.pop("twilio_token", SANDBOX_TWILIO_AUTH_TOKEN),
            TWILIO_API_URL=twilio_base,
            TELNYX_API_KEY=overrides.pop("telnyx_key", SANDBOX_TELNYX_API_KEY),
            TELNYX_API_URL=telnyx_base,
            NUMBERS_POLL_INTERVAL=0.01,
            NUMBERS_PROVIDER_TIMEOUT=0.5,
            **overrides,
        )
        env = make_env(settings, sandbox=None, clock=clock, provider_options={"sleep": waits})
        env.sandbox = services
        envs.append(env)
        return env

    make.services = services
    make.waits = waits
    yield make
    for env in envs:
        await env.c.aclose()
    server.should_exit = True
    await task


async def search(env, provider):
    if provider == "webex":
        return await env.svc.assign_search(REQUESTER, "San Jose")
    number_type = "tollfree" if provider == "acs" else "local"
    return await env.svc.search(REQUESTER, SearchQuery("US", number_type, provider=provider))


READ_FAULTS = [
    # (name, fault kwargs, times, expect: "ok" or words in the problem)
    ("503 once", dict(kind="status", status=503), 1, "ok"),
    ("502 twice", dict(kind="status", status=502), 2, "ok"),
    ("500 always", dict(kind="status", status=500), -1, "500"),
    ("429 Retry-After 3", dict(kind="status", status=429, headers={"Retry-After": "3"}), 1, "ok"),
    ("timeout once", dict(kind="delay", seconds=1.0), 1, "ok"),
    ("timeout always", dict(kind="delay", seconds=1.0), -1, "timed out"),
    ("dropped always", dict(kind="drop"), -1, None),
    ("malformed JSON", dict(kind="malformed"), 1, None),
]


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("name,fault,times,expect", READ_FAULTS, ids=[f[0] for f in READ_FAULTS])
async def test_search_faults(served, provider, name, fault, times, expect):
    env = served()
    app = served.services.apps[provider]
    fault = dict(fault)
    kind = fault.pop("kind")
    app.faults.add(kind, path=SEARCH_PATH[provider], times=times, **fault)
    result = await search(env, provider)
    if expect == "ok":
        assert result.offers and not result.problems, result.problems
        if "Retry-After" in name:
            assert 3.0 in served.waits.seen
        return
    assert not [o for o in result.offers if o.provider == provider]
    assert len(result.problems) == 1
    problem = result.problems[0]
    assert problem.lower().startswith(f"{provider}: "), problem  # "ACS: …", "Plivo: …": the provider first
    if expect:
        assert expect in problem, problem
    assert all(secret not in problem for secret in SECRETS)
    # Retries are bounded: a handful of attempts for one read, then a clear answer.
    method = "POST" if provider == "acs" else "GET"
    assert app.count(method, SEARCH_PATH[provider]) <= 5


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_connection_refused_is_said_plainly(served, provider):
    closed = f"http://127.0.0.1:{free_port()}"
    env = served(**{f"{provider}_base": closed})
    result = await search(env, provider)
    assert len(result.problems) == 1 and re.search(r"could not (be )?reach", result.problems[0]), result.problems


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_wrong_credentials_say_so_without_the_secret(served, provider):
    wrong = {"acs": {"acs_key": "d3Jvbmcta2V5LXdyb25nLWtleQ=="}, "plivo": {"plivo_token": "wrong-token-123456"},
             "webex": {"webex_token": "wrong-token-123456"}, "twilio": {"twilio_token": "wrong-token-123456"},
             "telnyx": {"telnyx_key": "wrong-token-123456"}}[provider]
    env = served(**wrong)
    result = await search(env, provider)
    assert len(result.problems) == 1
    problem = result.problems[0]
    assert "authentication failed (check " in problem, problem
    assert "wrong-token-123456" not in problem and "d3Jvbmcta2V5" not in problem


async def request_for(env, provider):
    result = await search(env, provider)
    offer = next(o for o in result.offers if o.provider == provider)
    return await env.svc.request(REQUESTER, offer.id, "fault test", quantity=1 if provider == "plivo" else None)


SPEND_FAULTS = [
    # name, fault, expected state per provider, spending calls that reach the provider's handler
    ("500 before acting", dict(kind="status", status=500),
     {"acs": State.FULFILLED, "plivo": State.NEEDS_ATTENTION, "webex": State.FULFILLED,
      "twilio": State.FULFILLED, "telnyx": State.FULFILLED}),
    ("502 after acting", dict(kind="after", status=502),
     {"acs": State.FULFILLED, "plivo": State.NEEDS_ATTENTION, "webex": State.FULFILLED,
      "twilio": State.FULFILLED, "telnyx": State.FULFILLED}),
    ("timeout", dict(kind="delay", seconds=1.0),
     {"acs": State.FULFILLED, "plivo": State.NEEDS_ATTENTION, "webex": State.FULFILLED,
      "twilio": State.FULFILLED, "telnyx": State.FULFILLED}),
    ("429 Retry-After", dict(kind="status", status=429, headers={"Retry-After": "1"}),
     {"acs": State.FULFILLED, "plivo": State.FULFILLED, "webex": State.FULFILLED,
      "twilio": State.FULFILLED, "telnyx": State.FULFILLED}),
    ("401", dict(kind="status", status=401),
     {"acs": State.FAILED, "plivo": State.FAILED, "webex": State.FAILED,
      "twilio": State.FAILED, "telnyx": State.FAILED}),
]


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("name,fault,expected", SPEND_FAULTS, ids=[f[0] for f in SPEND_FAULTS])
async def test_spending_faults(served, provider, name, fault, expected):
    env = served()
    app = served.services.apps[provider]
    request = await request_for(env, provider)
    method, path = SPEND[provider]
    fault = dict(fault)
    kind = fault.pop("kind")
    app.faults.add(kind, method=method, path=path, times=1, **fault)
    await env.svc.approve(request.id, APPROVER)
    done = await env.settle(request.id, timeout=30)
    assert done.state == expected[provider], (done.state, done.outcome)
    assert done.outcome is None or all(secret not in done.outcome for secret in SECRETS)
    if done.state == State.FULFILLED and provider != "webex":
        # Bought once: the provider's own books hold exactly the numbers of this request.
        obtained = {
            "acs": served.services.acs.purchased,
            "plivo": served.services.plivo.rented_numbers,
            "twilio": served.services.twilio.owned_numbers,
            "telnyx": served.services.telnyx.owned_numbers,
        }[provider]()
        assert sorted(e164(n) for n in obtained) == sorted(done.numbers)
    if done.state == State.NEEDS_ATTENTION:
        assert env.notes.whats(request.id)[-1] == "needs_attention"
        assert "console" in done.outcome.lower() or "check" in done.outcome.lower()
    if done.state == State.FAILED:
        assert done.outcome and env.notes.whats(request.id)[-1] == "failed"


async def test_errors_show_the_providers_own_words(served):
    env = served()
    served.services.plivo.faults.add(
        "status", path=SEARCH_PATH["plivo"], status=400, body={"api_id": "x", "error": "country_iso is not supported"}
    )
    result = await search(env, "plivo")
    assert len(result.problems) == 1 and "country_iso is not supported" in result.problems[0]
