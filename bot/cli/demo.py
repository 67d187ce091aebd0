"""The sandbox from the terminal: ``numbers-bot demo``, the whole flow (search → request → approve →
purchase) on simulated providers with a temporary store and made-up users, narrated step by step;
and ``numbers-bot sandbox``, the simulated provider services over HTTP for other clients."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from bot.bootstrap import Components
from bot.cli.render import err, offer_line
from bot.cli.verbs import with_components
from bot.config import Settings, load_settings
from bot.domain.grammar import parse_search
from bot.domain.display import both
from bot.domain.errors import NumbersError
from bot.domain.policy import money
from bot.domain.states import State

__all__ = ["cmd_demo", "cmd_sandbox"]

REQUESTER, APPROVER = "UDEMOREQ01", "UDEMOAPR01"


def demo_settings(folder: str) -> Settings:
    return load_settings(
        NUMBERS_DB=str(Path(folder) / "demo.db"),
        NUMBERS_SANDBOX=True,
        NUMBERS_APPROVERS=APPROVER,
        NUMBERS_POLL_INTERVAL=0.25,
        NUMBERS_AUTO_APPROVE_BELOW=0,
        NUMBERS_MONTHLY_BUDGET="",
    )


async def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    """search → request → approve → purchase of US toll-free numbers on the sandbox."""
    say = err if args.json else print

    async def run(c: Components) -> int:
        query = parse_search(["US", "tollfree", "x2", "sms"])
        say(f"1. {REQUESTER} searches: /numbers search US tollfree x2 sms (sandbox ACS, Plivo, Twilio, Telnyx)")
        result = await c.service.search(REQUESTER, query)
        for o in result.offers[:5]:
            say("   " + offer_line(o))
        acs = [o for o in result.offers if o.provider == "acs"]
        if not acs:
            raise NumbersError("the sandbox returned no ACS offer: " + "; ".join(result.problems))
        offer = acs[0]
        say(f"2. {REQUESTER} requests the ACS offer (numbers held until bought) with a reason:")
        say("   " + offer_line(offer))
        request = await c.service.request(REQUESTER, offer.id, "Support line for the spring campaign")
        say(f"   request #{request.id} is {request.state.value}; approval card goes to the approvers")
        say(f"3. {APPROVER} approves request #{request.id}")
        await c.service.approve(request.id, APPROVER)
        say("4. the worker buys the held numbers and polls the purchase until it succeeds")
        done = await c.worker.drain(request.id, timeout=120)
        say(f"5. request #{done.id} is {done.state.value}: " + ", ".join(both(n) for n in done.numbers))
        say(f"   {money(done.monthly_total, done.currency)}/month; history:")
        for e in done.events:
            say(f"   {e.at:%H:%M:%S} {e.actor}: {e.message}")
        if args.json:
            print(json.dumps(done.to_json(), indent=2, default=str))
        return 0 if done.state == State.FULFILLED else 1

    with tempfile.TemporaryDirectory(prefix="numbers-bot-demo-") as tmp:
        return await with_components(demo_settings(tmp), run, announce_sandbox=False)


def cmd_sandbox(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from bot.sandbox import SandboxServices, combined_app
    from bot.sandbox.acs import SANDBOX_ACS_ACCESS_KEY
    from bot.sandbox.plivo import SANDBOX_PLIVO_AUTH_ID, SANDBOX_PLIVO_AUTH_TOKEN
    from bot.sandbox.sdk_hints import official_sdk_lines
    from bot.sandbox.telnyx import SANDBOX_TELNYX_API_KEY
    from bot.sandbox.twilio import SANDBOX_TWILIO_ACCOUNT_SID, SANDBOX_TWILIO_AUTH_TOKEN
    from bot.sandbox.webex import SANDBOX_WEBEX_TOKEN

    services = SandboxServices.create(args.state, latency=args.latency)
    base = f"http://{args.host}:{args.port}"
    # These are the sandbox's own made-up credentials, printed so that they can be pasted.
    err("Simulated ACS, Plivo, Webex, Twilio and Telnyx on one port. Point the real clients at them with:")
    err(f"  ACS_CONNECTION_STRING='endpoint={base}/;accesskey={SANDBOX_ACS_ACCESS_KEY}'")
    err(f"  PLIVO_API_URL={base} PLIVO_AUTH_ID={SANDBOX_PLIVO_AUTH_ID} PLIVO_AUTH_TOKEN={SANDBOX_PLIVO_AUTH_TOKEN}")
    err(f"  WEBEX_API_URL={base}/v1 WEBEX_ACCESS_TOKEN={SANDBOX_WEBEX_TOKEN}")
    err(f"  TWILIO_API_URL={base} TWILIO_ACCOUNT_SID={SANDBOX_TWILIO_ACCOUNT_SID} TWILIO_AUTH_TOKEN={SANDBOX_TWILIO_AUTH_TOKEN}")
    err(f"  TELNYX_API_URL={base} TELNYX_API_KEY={SANDBOX_TELNYX_API_KEY}")
    err("The official SDKs, in Python:")
    for line in official_sdk_lines(base):
        err("  " + line)
    uvicorn.run(combined_app(services), host=args.host, port=args.port, log_level="warning")
    return 0
