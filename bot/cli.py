"""``numbers-bot``: the terminal face of the same services the Slack bot uses.

A thin shell: parse arguments, call one service, print. ``--json`` puts only
JSON on stdout (progress and logs go to stderr). The caller is ``$USER``
unless ``--as`` names a Slack user id.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

from bot.config import SANDBOX_NOTICE, Settings, load_settings
from bot.domain.commands import parse_request_id, parse_search, reason_problem
from bot.domain.display import both, until
from bot.domain.errors import ConfigError, NotAllowed, NumbersError, UsageError
from bot.domain.models import NumberRequest, Offer
from bot.domain.policy import money
from bot.domain.states import State
from bot.logs import configure_logging

log = logging.getLogger("numbers-bot")


_SLACK_MARKUP = re.compile(r"<([@#!])(?:subteam\^)?([A-Za-z0-9]+)(?:\|([^>]*))?>|<(https?://[^|>]+)\|([^>]+)>|<(https?://[^>]+)>")
_ENTITIES = {"&lt;": "<", "&gt;": ">", "&amp;": "&"}


def plain(text: str) -> str:
    """Slack markup as a terminal shows it: ``<@U1>`` → ``@U1``, ``<#C1>`` → ``#C1``, ``<url|label>`` → ``label (url)``."""

    def one(m: re.Match[str]) -> str:
        if m.group(1):
            sigil = "#" if m.group(1) == "#" else "@"
            return m.group(3) and f"{sigil}{m.group(3)}" or f"{sigil}{m.group(2)}"
        if m.group(4):
            return f"{m.group(5)} ({m.group(4)})"
        return m.group(6)

    text = _SLACK_MARKUP.sub(one, text)
    return re.sub(r"&(lt|gt|amp);", lambda m: _ENTITIES[m.group(0)], text)


def err(text: str) -> None:
    print(plain(text), file=sys.stderr, flush=True)


class TerminalNotifier:
    """Progress lines on stderr, so ``--json`` stdout stays clean."""

    async def notify(self, request: NumberRequest, what: str, *, actor: str | None = None, text: str | None = None) -> None:
        line = f"request #{request.id}: {what.replace('_', ' ')}"
        if actor:
            line += f" by {actor}"
        if what == "fulfilled":
            line += " — " + ", ".join(both(n) for n in request.numbers)
        if text:
            line += f" — {text}"
        err(line)


# --- rendering for people -------------------------------------------------


def offer_line(offer: Offer) -> str:
    cost = money(offer.unit_monthly_cost, offer.currency)
    parts = [f"{offer.id}  {offer.provider:<5}"]
    if offer.numbers:
        parts.append(", ".join(both(n) for n in offer.numbers))
    d = offer.details
    if offer.kind == "rent":
        parts.append(f"{d.get('region') or d.get('country', '')} prefix {d.get('prefix', '?')} — {offer.max_quantity} in stock")
    if offer.kind == "assign" and d.get("location_name"):
        parts.append(f"at {d['location_name']} ({d.get('state', '')})")
    caps = "/".join(c for c, on in (("voice", offer.voice), ("sms", offer.sms)) if on) or "no capabilities listed"
    parts.append(caps)
    if offer.unit_monthly_cost is None and offer.provider == "twilio":
        parts.append("see Twilio pricing")  # no price from its Pricing API: never shown as $0
    else:
        parts.append(f"{cost}/month each")
    if offer.kind == "purchase" and offer.provider == "twilio":
        parts.append("not reserved")
    if offer.unit_setup_cost:
        parts.append(f"setup {money(offer.unit_setup_cost, offer.currency)}")
    if offer.expires_at:
        parts.append(until(offer.expires_at))
    if offer.ref.get("agree_to_not_resell"):
        parts.append("do-not-resell agreement required (approving agrees for the organisation)")
    if offer.ref.get("restriction_text"):
        parts.append(f"restriction: {offer.ref['restriction_text']}")
    return "  ".join(parts)


def request_text(request: NumberRequest, *, events: bool = False) -> str:
    lines = [
        f"#{request.id}  {request.state.value}  {request.provider} {request.kind}  x{request.quantity}  "
        f"{money(request.monthly_total, request.currency)}/month  requested by {request.requester}",
    ]
    if request.numbers:
        lines.append("   numbers: " + ", ".join(both(n) for n in request.numbers))
    lines.append(f"   reason: {request.justification}")
    if request.outcome:
        lines.append(f"   note: {request.outcome}")
    if events:
        for e in request.events:
            lines.append(f"   {e.at:%Y-%m-%d %H:%M:%S} {e.actor}: {e.message}")
    return "\n".join(lines)


def emit(args: argparse.Namespace, data: Any, human: str) -> None:
    """The one ``--json`` contract: with ``--json`` stdout is exactly one JSON document (errors too:
    ``{"error", "kind"}``); without it, plain text for a terminal. Progress always goes to stderr."""
    if args.json:
        print(json.dumps(data, indent=2, default=str))
    else:
        print(plain(human))


# --- verbs ------------------------------------------------------------------


def caller(args: argparse.Namespace) -> str:
    return args.as_user or os.environ.get("USER") or getpass.getuser()


SLACK_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
DELIVERY_WAIT = 5.0  # seconds the CLI waits for the running server to show its change in Slack
NOT_DELIVERED = "the card will be updated by the running bot"


def slack_configured(settings: Settings) -> bool:
    return settings.slack_bot_token is not None


async def check_identity(args: argparse.Namespace, settings: Settings) -> None:
    """With Slack configured, ``--as`` is who acts: a Slack user id that ``users.info`` knows,
    so the card, the DMs and the audit log name a real person."""
    from slack_sdk.errors import SlackApiError

    from bot.bootstrap import slack_client

    user = args.as_user
    if not user or not SLACK_USER_ID.fullmatch(user):
        raise UsageError(
            "With Slack configured, say who you are with --as and your Slack member id (U… or W…; "
            f"in Slack: your profile → ⋮ → Copy member ID){'' if not user else f', not {user!r}'}."
        )
    client = slack_client(settings)
    try:
        answer = await client.users_info(user=user)
    except SlackApiError as exc:
        error = (exc.response.get("error") if exc.response is not None else None) or "error"
        if error in ("user_not_found", "user_not_visible"):
            raise UsageError(f"{user} is not a user of this Slack workspace; check the member id.") from None
        raise NumbersError(f"Could not check --as {user} with Slack ({error}); try again.") from None
    except Exception as exc:
        raise NumbersError(f"Could not reach Slack to check --as {user} ({type(exc).__name__}); try again.") from None
    if (answer.get("user") or {}).get("deleted"):
        raise UsageError(f"{user} is a deactivated Slack user.")


async def with_components(settings: Settings, fn, *, announce_sandbox: bool = True):
    from bot.bootstrap import build

    # With Slack configured the running server delivers what changes write to the outbox;
    # without it, this process shows it on the terminal and nothing is left waiting.
    components = build(settings, notifier=TerminalNotifier(), deliver=not slack_configured(settings))
    if components.sandbox is not None and announce_sandbox:
        # The terminal keeps the sandbox as its default for trying things out; it never does so silently.
        err(f"numbers-bot: {SANDBOX_NOTICE.lower()} — simulated providers (set provider credentials to use real ones)")
    try:
        return await fn(components)
    finally:
        await components.aclose()


def search_text(result, empty: str) -> str:
    """Offers, then each provider that failed on its own line: a failure is never "no numbers found"."""
    lines = [offer_line(o) for o in result.offers]
    if not lines and not result.every_provider_failed:
        lines.append(empty)
    lines += result.problems
    return "\n".join(lines)


def search_exit(result) -> int:
    return 1 if result.every_provider_failed else 0


async def await_delivery(c: Any, request_id: int, wait: float | None = None) -> bool:
    """Wait (a few seconds) for the running server to deliver the request's notifications;
    when it has not, say the card will follow. True when delivered."""
    from bot.store import outbox

    if not slack_configured(c.settings):
        return True
    deadline = time.monotonic() + (DELIVERY_WAIT if wait is None else wait)
    while True:
        waiting = await c.service.store.run(lambda s: outbox.pending_for(s, request_id))
        if not waiting:
            return True
        if time.monotonic() >= deadline:
            err(f"request #{request_id}: {NOT_DELIVERED}")
            return False
        await asyncio.sleep(0.1)


async def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    query = parse_search(args.words)

    async def run(c):
        err(f"searching {', '.join(c.service.searchable_providers(query))}…")
        result = await c.service.search(caller(args), query)
        emit(args, result.to_json(), search_text(result, "No numbers found; try another area code or type."))
        return search_exit(result)

    return await with_components(settings, run)


async def cmd_assign(args: argparse.Namespace, settings: Settings) -> int:
    async def run(c):
        result = await c.service.assign_search(caller(args), " ".join(args.location) or None)
        emit(args, result.to_json(), search_text(result, "No Webex numbers available."))
        return search_exit(result)

    return await with_components(settings, run)


def checked_reason(text: str, what: str = "reason") -> str:
    """``--reason`` under the same limit as Slack's forms, refused before anything is opened."""
    problem = reason_problem(text, what)
    if problem:
        raise UsageError(problem)
    return text


def positive_int(text: str) -> int:
    """``--quantity``: a whole number of at least 1 (0 is refused, never read as "the default")."""
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return int(text)


async def cmd_request(args: argparse.Namespace, settings: Settings) -> int:
    checked_reason(args.reason, "justification")

    async def run(c):
        request = await c.service.request(
            caller(args), args.offer_id, args.reason, quantity=args.quantity, email=args.email
        )
        await await_delivery(c, request.id)
        emit(args, request.to_json(), request_text(request))
        return 0

    return await with_components(settings, run)


NO_WAIT_NOTE = (
    "request #{id} is approved; a running `numbers-bot serve` buys it. If none is running, "
    "`numbers-bot approve {id}` carries it on from here."
)


async def cmd_approve(args: argparse.Namespace, settings: Settings) -> int:
    request_id = parse_request_id(args.request_id, "approve")

    async def run(c):
        user = caller(args)
        current = await c.service.get(request_id)
        if current.state in (State.APPROVED, State.FULFILLING):
            # Approved already (by Slack, or `approve --no-wait` with no server): nothing may be driving it.
            # Carry it on; the store's one-open-operation rule and leases keep it to one purchase even if a
            # server is driving it too.
            if not await c.service.is_approver(user):
                raise NotAllowed(f"Only approvers can carry on request #{request_id}.")
            if args.no_wait:
                err(NO_WAIT_NOTE.format(id=request_id))
            else:
                err(f"request #{request_id} is already {current.state.value}; carrying it on")
                await c.worker.drain(request_id)
        else:
            result = await c.service.approve(request_id, user)
            if result.complete and not args.no_wait:
                await c.worker.drain(request_id)
            elif result.complete:
                err(NO_WAIT_NOTE.format(id=request_id))
            else:
                err(f"approval {result.approvals} of {result.required} counted; waiting for more approvers")
        await await_delivery(c, request_id)
        request = await c.service.get(request_id)
        emit(args, request.to_json(), request_text(request))
        return 0 if request.state not in (State.FAILED, State.NEEDS_ATTENTION) else 1

    return await with_components(settings, run)


async def cmd_deny(args: argparse.Namespace, settings: Settings) -> int:
    request_id = parse_request_id(args.request_id, "deny")
    checked_reason(args.reason)

    async def run(c):
        request = await c.service.deny(request_id, caller(args), args.reason)
        await await_delivery(c, request.id)
        emit(args, request.to_json(), request_text(request))
        return 0

    return await with_components(settings, run)


async def cmd_cancel(args: argparse.Namespace, settings: Settings) -> int:
    request_id = parse_request_id(args.request_id, "cancel")

    async def run(c):
        request = await c.service.cancel(request_id, caller(args))
        await await_delivery(c, request.id)
        emit(args, request.to_json(), request_text(request))
        return 0

    return await with_components(settings, run)


async def cmd_mine(args: argparse.Namespace, settings: Settings) -> int:
    async def run(c):
        requests = await c.service.mine(caller(args))
        emit(args, [r.to_json() for r in requests], "\n".join(request_text(r) for r in requests) or "No requests yet.")
        return 0

    return await with_components(settings, run)


async def cmd_pending(args: argparse.Namespace, settings: Settings) -> int:
    async def run(c):
        requests = await c.service.pending(caller(args))
        emit(args, [r.to_json() for r in requests], "\n".join(request_text(r) for r in requests) or "Nothing pending.")
        return 0

    return await with_components(settings, run)


async def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    request_id = parse_request_id(args.request_id, "show")

    async def run(c):
        request = await c.service.show(request_id, caller(args))
        emit(args, request.to_json(), request_text(request, events=True))
        return 0

    return await with_components(settings, run)


async def cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    async def run(c):
        chunks = await c.service.audit_csv(caller(args), args.days)
        out = open(args.output, "w", newline="") if args.output else sys.stdout
        try:
            if args.json:
                import csv
                import io

                rows = list(csv.DictReader(io.StringIO("".join(chunks))))
                json.dump(rows, out, indent=2)
                out.write("\n")
            else:
                for chunk in chunks:
                    out.write(chunk)
        finally:
            if out is not sys.stdout:
                out.close()
        return 0

    return await with_components(settings, run)


def inventory_text(numbers, summary) -> str:
    lines = []
    for n in numbers:
        lines.append(
            f"{both(n.number):<34} {n.provider:<5} {money(n.unit_monthly_cost, n.currency):>8}/month  "
            f"{n.requester} (#{n.request_id}, approved by {n.approved_by or '-'}, {n.acquired_at:%Y-%m-%d}): {n.justification}"
        )
    if not lines:
        return "The team holds no numbers through numbers-bot yet."
    lines.append("")
    lines.append(costs_text(summary))
    return "\n".join(lines)


def costs_text(summary) -> str:
    lines = [f"Monthly total: {money(summary.total)}"]
    lines += [f"  {p:<8} {money(t)}" for p, t in summary.by_provider().items()]
    lines.append("By requester:")
    lines += [f"  {r:<12} {money(t)}" for r, t in summary.by_requester().items()]
    if summary.budget is not None:
        lines.append(
            f"Budget this month: {money(summary.budget)}; committed {money(summary.committed_this_month)}; "
            f"left {money(summary.budget_left)}"
        )
    return "\n".join(lines)


async def cmd_inventory(args: argparse.Namespace, settings: Settings) -> int:
    async def run(c):
        numbers = await c.service.inventory(caller(args) if args.mine else None)
        summary = await c.service.costs()
        data = {"numbers": [n.to_json() for n in numbers], "costs": summary.to_json()}
        emit(args, data, inventory_text(numbers, summary))
        return 0

    return await with_components(settings, run)


async def cmd_costs(args: argparse.Namespace, settings: Settings) -> int:
    async def run(c):
        summary = await c.service.costs()
        emit(args, summary.to_json(), costs_text(summary))
        return 0

    return await with_components(settings, run)


async def cmd_release(args: argparse.Namespace, settings: Settings) -> int:
    checked_reason(args.reason)

    async def run(c):
        request = await c.service.request_release(caller(args), " ".join(args.number), args.reason)
        await await_delivery(c, request.id)
        emit(args, request.to_json(), request_text(request))
        return 0

    return await with_components(settings, run)


async def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    """search → request → approve → purchase of US toll-free numbers on the sandbox."""
    requester, approver = "UDEMOREQ01", "UDEMOAPR01"
    with tempfile.TemporaryDirectory(prefix="numbers-bot-demo-") as tmp:
        demo = load_settings(
            NUMBERS_DB=str(Path(tmp) / "demo.db"),
            NUMBERS_SANDBOX=True,
            NUMBERS_APPROVERS=approver,
            NUMBERS_POLL_INTERVAL=0.25,
            NUMBERS_AUTO_APPROVE_BELOW=0,
            NUMBERS_MONTHLY_BUDGET="",
        )

        async def run(c):
            say = err if args.json else print
            query = parse_search(["US", "tollfree", "x2", "sms"])
            say(f"1. {requester} searches: /numbers search US tollfree x2 sms (sandbox ACS, Plivo, Twilio, Telnyx)")
            result = await c.service.search(requester, query)
            for o in result.offers[:5]:
                say("   " + offer_line(o))
            acs = [o for o in result.offers if o.provider == "acs"]
            if not acs:
                raise NumbersError("the sandbox returned no ACS offer: " + "; ".join(result.problems))
            offer = acs[0]
            say(f"2. {requester} requests the ACS offer (numbers held until bought) with a reason:")
            say("   " + offer_line(offer))
            request = await c.service.request(requester, offer.id, "Support line for the spring campaign")
            say(f"   request #{request.id} is {request.state.value}; approval card goes to the approvers")
            say(f"3. {approver} approves request #{request.id}")
            await c.service.approve(request.id, approver)
            say("4. the worker buys the held numbers and polls the purchase until it succeeds")
            done = await c.worker.drain(request.id, timeout=120)
            say(f"5. request #{done.id} is {done.state.value}: " + ", ".join(both(n) for n in done.numbers))
            say(f"   {money(done.monthly_total, done.currency)}/month; history:")
            for e in done.events:
                say(f"   {e.at:%H:%M:%S} {e.actor}: {e.message}")
            if args.json:
                print(json.dumps(done.to_json(), indent=2, default=str))
            return 0 if done.state == State.FULFILLED else 1

        return await with_components(demo, run, announce_sandbox=False)


def cmd_sandbox(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from bot.sandbox import SandboxServices, combined_app

    services = SandboxServices.create(args.state, latency=args.latency)
    base = f"http://{args.host}:{args.port}"
    from bot.sandbox.acs import SANDBOX_ACS_ACCESS_KEY
    from bot.sandbox.plivo import SANDBOX_PLIVO_AUTH_ID, SANDBOX_PLIVO_AUTH_TOKEN
    from bot.sandbox.telnyx import SANDBOX_TELNYX_API_KEY
    from bot.sandbox.twilio import SANDBOX_TWILIO_ACCOUNT_SID, SANDBOX_TWILIO_AUTH_TOKEN
    from bot.sandbox.webex import SANDBOX_WEBEX_TOKEN

    # These are the sandbox's own made-up credentials, printed so that they can be pasted.
    err("Simulated ACS, Plivo, Webex, Twilio and Telnyx on one port. Point the real clients at them with:")
    err(f"  ACS_CONNECTION_STRING='endpoint={base}/;accesskey={SANDBOX_ACS_ACCESS_KEY}'")
    err(f"  PLIVO_API_URL={base} PLIVO_AUTH_ID={SANDBOX_PLIVO_AUTH_ID} PLIVO_AUTH_TOKEN={SANDBOX_PLIVO_AUTH_TOKEN}")
    err(f"  WEBEX_API_URL={base}/v1 WEBEX_ACCESS_TOKEN={SANDBOX_WEBEX_TOKEN}")
    err(f"  TWILIO_API_URL={base} TWILIO_ACCOUNT_SID={SANDBOX_TWILIO_ACCOUNT_SID} TWILIO_AUTH_TOKEN={SANDBOX_TWILIO_AUTH_TOKEN}")
    err(f"  TELNYX_API_URL={base} TELNYX_API_KEY={SANDBOX_TELNYX_API_KEY}")
    from bot.sandbox.sdk_hints import official_sdk_lines

    err("The official SDKs, in Python:")
    for line in official_sdk_lines(base):
        err("  " + line)
    uvicorn.run(combined_app(services), host=args.host, port=args.port, log_level="warning")
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from bot.server import serve

    settings.require_slack()
    serve(settings)
    return 0


async def cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    from bot.doctor import run_checks

    checks = await run_checks(settings)
    emit(
        args,
        {"checks": [c.to_json() for c in checks]},
        "\n".join(f"{'ok    ' if c.ok else 'FAILED'}  {c.name}: {c.detail}" for c in checks),
    )
    return 0 if all(c.ok for c in checks) else 1


def cmd_store_copy(args: argparse.Namespace, settings: Settings) -> int:
    from bot.store.copy import copy_store
    from bot.store.db import Store
    from bot.store.postgres import shown

    if args.to == settings.db_path:
        raise UsageError("--to names the store this bot already uses (NUMBERS_DB); name another one")
    source = Store(settings.db_path, busy_timeout=settings.db_busy_timeout)
    try:
        target = Store(args.to, busy_timeout=settings.db_busy_timeout)
        try:
            copied = copy_store(source, target)
        finally:
            target.close()
    finally:
        source.close()
    emit(
        args,
        {"from": shown(settings.db_path), "to": shown(args.to), "copied": copied},
        f"Copied {shown(settings.db_path)} to {shown(args.to)}; the counts match:\n"
        + "\n".join(f"  {table}: {n}" for table, n in copied.items()),
    )
    return 0


# --- argument parsing ----------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print only JSON on stdout")
    common.add_argument("--as", dest="as_user", metavar="USER", help="act as this Slack user id (default $USER)")

    p = argparse.ArgumentParser(
        prog="numbers-bot",
        description="Search, request, approve and buy phone numbers (ACS, Plivo, Webex, Twilio, Telnyx) — Slack bot and CLI.",
    )
    sub = p.add_subparsers(dest="verb", required=True, metavar="VERB")

    s = sub.add_parser("search", parents=[common], help="search: <CC> [local|tollfree|national] [prefix] [xN] [sms] [voice] [via acs|plivo|twilio|telnyx]")
    s.add_argument("words", nargs="+", metavar="WORD")
    s.set_defaults(run=cmd_search)

    s = sub.add_parser("assign", parents=[common], help="Webex numbers available as your primary number")
    s.add_argument("location", nargs="*")
    s.set_defaults(run=cmd_assign)

    s = sub.add_parser("request", parents=[common], help="request an offer: request <offer id> --reason …")
    s.add_argument("offer_id")
    s.add_argument("--reason", required=True, help="why the numbers are needed (required)")
    s.add_argument("--quantity", type=positive_int, help="how many (Plivo groups); at least 1")
    s.add_argument("--email", help="your e-mail (Webex assignments find your person by it)")
    s.set_defaults(run=cmd_request)

    s = sub.add_parser("approve", parents=[common], help="approve a request and carry it to its outcome")
    s.add_argument("request_id")
    s.add_argument("--no-wait", action="store_true", help="leave the purchase to a running server's worker")
    s.set_defaults(run=cmd_approve)

    s = sub.add_parser("deny", parents=[common], help="deny a request: deny <id> --reason …")
    s.add_argument("request_id")
    s.add_argument("--reason", required=True)
    s.set_defaults(run=cmd_deny)

    for verb, fn, helptext in (
        ("cancel", cmd_cancel, "withdraw your pending request"),
        ("show", cmd_show, "one request with its history"),
    ):
        s = sub.add_parser(verb, parents=[common], help=helptext)
        s.add_argument("request_id")
        s.set_defaults(run=fn)

    s = sub.add_parser("mine", parents=[common], help="your requests")
    s.set_defaults(run=cmd_mine)
    s = sub.add_parser("pending", parents=[common], help="requests waiting for a decision (approvers)")
    s.set_defaults(run=cmd_pending)

    s = sub.add_parser("audit", parents=[common], help="every event of the last N days as CSV (approvers)")
    s.add_argument("days", nargs="?", type=int, default=30)
    s.add_argument("--csv", action="store_true", help="CSV output (the default)")
    s.add_argument("--output", "-o", help="write to this file instead of stdout")
    s.set_defaults(run=cmd_audit)

    s = sub.add_parser("inventory", parents=[common], help="the numbers the team holds, with monthly totals")
    s.add_argument("--mine", action="store_true", help="only the caller's numbers")
    s.set_defaults(run=cmd_inventory)

    s = sub.add_parser("release", parents=[common], help="ask to give a number back: release <number> --reason …")
    s.add_argument("number", nargs="+")
    s.add_argument("--reason", required=True)
    s.set_defaults(run=cmd_release)

    s = sub.add_parser("costs", parents=[common], help="monthly cost by provider and requester; budget left")
    s.set_defaults(run=cmd_costs)

    s = sub.add_parser("demo", parents=[common], help="the whole flow on the sandbox, with a temporary store")
    s.set_defaults(run=cmd_demo)

    s = sub.add_parser("sandbox", help="serve the simulated provider services over HTTP")
    s.add_argument("--port", type=int, default=8700)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    s.add_argument("--state", help="SQLite file for the simulated inventory (default: in memory)")
    s.set_defaults(run=cmd_sandbox, json=False)

    s = sub.add_parser("serve", help="run the Slack bot (HTTP on $PORT, or Socket Mode with SLACK_APP_TOKEN)")
    s.set_defaults(run=cmd_serve, json=False)

    s = sub.add_parser("store", help="the store itself: store copy --to postgresql://… (move to another engine)")
    store_sub = s.add_subparsers(dest="store_verb", required=True, metavar="STORE_VERB")
    c = store_sub.add_parser("copy", parents=[common], help="copy this store (NUMBERS_DB) into an empty one, verifying counts")
    c.add_argument("--to", required=True, metavar="TARGET", help="postgresql://… URL (or a new SQLite file)")
    c.set_defaults(run=cmd_store_copy)

    s = sub.add_parser("doctor", parents=[common], help="check settings, Slack token, provider credentials and the store")
    s.set_defaults(run=cmd_doctor)
    return p


# Verbs that act as ``--as`` (the demo has its own made-up users; serve, doctor, sandbox act as nobody).
ACTING_VERBS = frozenset(
    {"search", "assign", "request", "approve", "deny", "cancel", "show", "mine", "pending", "audit", "inventory", "release", "costs"}
)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logging(os.environ.get("LOG_LEVEL") or ("INFO" if args.verb == "serve" else "WARNING"))
    try:
        settings = load_settings()
        configure_logging(os.environ.get("LOG_LEVEL") or ("INFO" if args.verb == "serve" else "WARNING"),
                          settings.secrets())
        if args.verb in ACTING_VERBS and slack_configured(settings):
            asyncio.run(check_identity(args, settings))
        result = args.run(args, settings)
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
        return int(result or 0)
    except ConfigError as exc:
        if getattr(args, "json", False):
            print(json.dumps({"error": str(exc), "kind": type(exc).__name__, "problems": exc.problems}))
        err("numbers-bot cannot start:")
        for problem in exc.problems:
            err(f"  {problem}")
        return 2
    except UsageError as exc:
        if getattr(args, "json", False):
            print(json.dumps({"error": plain(str(exc)), "kind": type(exc).__name__}))
        err(f"error: {exc}")
        return 2
    except NumbersError as exc:
        if getattr(args, "json", False):
            print(json.dumps({"error": plain(str(exc)), "kind": type(exc).__name__}))
        err(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
