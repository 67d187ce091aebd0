"""The CLI's verbs: each parses what argparse left, makes one call into the services (through the
components ``bot.bootstrap.build`` wires) and hands the answer to ``bot.cli.render``."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import re
import sys
import time
from typing import IO, Awaitable, Callable

from bot.bootstrap import Components, build, slack_client
from bot.cli.render import (
    TerminalNotifier,
    costs_text,
    emit,
    err,
    inventory_text,
    request_text,
    requests_text,
    search_text,
    write_audit,
)
from bot.config import SANDBOX_NOTICE, Settings
from bot.domain.grammar import parse_request_id, parse_search, reason_problem
from bot.domain.errors import NotAllowed, NumbersError, UsageError
from bot.domain.states import State
from bot.services import SearchResult

__all__ = [
    "ACTING_VERBS",
    "caller",
    "check_identity",
    "cmd_approve",
    "cmd_assign",
    "cmd_audit",
    "cmd_cancel",
    "cmd_costs",
    "cmd_deny",
    "cmd_doctor",
    "cmd_inventory",
    "cmd_mine",
    "cmd_pending",
    "cmd_release",
    "cmd_request",
    "cmd_search",
    "cmd_serve",
    "cmd_show",
    "cmd_store_copy",
    "positive_int",
    "slack_configured",
    "with_components",
]

SLACK_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
DELIVERY_WAIT = 5.0  # seconds the CLI waits for the running server to show its change in Slack
NOT_DELIVERED = "the card will be updated by the running bot"
NO_WAIT_NOTE = (
    "request #{id} is approved; a running `numbers-bot serve` buys it. If none is running, "
    "`numbers-bot approve {id}` carries it on from here."
)
# Verbs that act as ``--as`` (the demo has its own made-up users; serve, doctor, sandbox act as nobody).
ACTING_VERBS = frozenset(
    {"search", "assign", "request", "approve", "deny", "cancel", "show", "mine", "pending", "audit", "inventory", "release", "costs"}
)

Run = Callable[[Components], Awaitable[int]]


def caller(args: argparse.Namespace) -> str:
    return args.as_user or os.environ.get("USER") or getpass.getuser()


def slack_configured(settings: Settings) -> bool:
    return settings.slack_bot_token is not None


async def check_identity(args: argparse.Namespace, settings: Settings) -> None:
    """With Slack configured, ``--as`` is who acts: a Slack user id that ``users.info`` knows,
    so the card, the DMs and the audit log name a real person."""
    from slack_sdk.errors import SlackApiError

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


async def with_components(settings: Settings, fn: Run, *, announce_sandbox: bool = True) -> int:
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


def search_exit(result: SearchResult) -> int:
    return 1 if result.every_provider_failed else 0


async def await_delivery(c: Components, request_id: int, wait: float | None = None) -> bool:
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


async def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    query = parse_search(args.words)

    async def run(c: Components) -> int:
        err(f"searching {', '.join(c.service.searchable_providers(query))}…")
        result = await c.service.search(caller(args), query)
        emit(args, result.to_json(), search_text(result, "No numbers found; try another area code or type."))
        return search_exit(result)

    return await with_components(settings, run)


async def cmd_assign(args: argparse.Namespace, settings: Settings) -> int:
    async def run(c: Components) -> int:
        result = await c.service.assign_search(caller(args), " ".join(args.location) or None)
        emit(args, result.to_json(), search_text(result, "No Webex numbers available."))
        return search_exit(result)

    return await with_components(settings, run)


async def cmd_request(args: argparse.Namespace, settings: Settings) -> int:
    checked_reason(args.reason, "justification")

    async def run(c: Components) -> int:
        request = await c.service.request(
            caller(args), args.offer_id, args.reason, quantity=args.quantity, email=args.email
        )
        await await_delivery(c, request.id)
        emit(args, request.to_json(), request_text(request))
        return 0

    return await with_components(settings, run)


async def cmd_approve(args: argparse.Namespace, settings: Settings) -> int:
    request_id = parse_request_id(args.request_id, "approve")

    async def run(c: Components) -> int:
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

    async def run(c: Components) -> int:
        request = await c.service.deny(request_id, caller(args), args.reason)
        await await_delivery(c, request.id)
        emit(args, request.to_json(), request_text(request))
        return 0

    return await with_components(settings, run)


async def cmd_cancel(args: argparse.Namespace, settings: Settings) -> int:
    request_id = parse_request_id(args.request_id, "cancel")

    async def run(c: Components) -> int:
        request = await c.service.cancel(request_id, caller(args))
        await await_delivery(c, request.id)
        emit(args, request.to_json(), request_text(request))
        return 0

    return await with_components(settings, run)


async def cmd_mine(args: argparse.Namespace, settings: Settings) -> int:
    async def run(c: Components) -> int:
        requests = await c.service.mine(caller(args))
        emit(args, [r.to_json() for r in requests], requests_text(requests, "No requests yet."))
        return 0

    return await with_components(settings, run)


async def cmd_pending(args: argparse.Namespace, settings: Settings) -> int:
    async def run(c: Components) -> int:
        requests = await c.service.pending(caller(args))
        emit(args, [r.to_json() for r in requests], requests_text(requests, "Nothing pending."))
        return 0

    return await with_components(settings, run)


async def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    request_id = parse_request_id(args.request_id, "show")

    async def run(c: Components) -> int:
        request = await c.service.show(request_id, caller(args))
        emit(args, request.to_json(), request_text(request, events=True))
        return 0

    return await with_components(settings, run)


def _audit_output(args: argparse.Namespace) -> IO[str]:
    if not args.output:
        return sys.stdout
    try:
        return open(args.output, "w", newline="", encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write --output {args.output}: {exc.strerror or type(exc).__name__}") from None


async def cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    """CSV by default. ``--json``: a JSON list of the rows. ``--csv --json``: the CSV into
    ``--output`` and one JSON document about it on stdout (stdout carries only JSON)."""
    csv_beside_json = args.csv and args.json
    if csv_beside_json and not args.output:
        raise UsageError("--csv with --json: name a file for the CSV with --output FILE (stdout carries only JSON)")

    async def run(c: Components) -> int:
        chunks = await c.service.audit_csv(caller(args), args.days)
        out = _audit_output(args)
        try:
            rows = write_audit(chunks, out, as_json=args.json and not args.csv)
        finally:
            if out is not sys.stdout:
                out.close()
        if csv_beside_json:
            emit(args, {"days": args.days, "events": rows, "file": args.output, "format": "csv"}, "")
        elif args.output:
            err(f"wrote {rows} event(s) of the last {args.days} day(s) to {args.output}")
        return 0

    return await with_components(settings, run)


async def cmd_inventory(args: argparse.Namespace, settings: Settings) -> int:
    async def run(c: Components) -> int:
        numbers = await c.service.inventory(caller(args) if args.mine else None)
        summary = await c.service.costs()
        data = {"numbers": [n.to_json() for n in numbers], "costs": summary.to_json()}
        emit(args, data, inventory_text(numbers, summary))
        return 0

    return await with_components(settings, run)


async def cmd_costs(args: argparse.Namespace, settings: Settings) -> int:
    async def run(c: Components) -> int:
        summary = await c.service.costs()
        emit(args, summary.to_json(), costs_text(summary))
        return 0

    return await with_components(settings, run)


async def cmd_release(args: argparse.Namespace, settings: Settings) -> int:
    checked_reason(args.reason)

    async def run(c: Components) -> int:
        request = await c.service.request_release(caller(args), " ".join(args.number), args.reason)
        await await_delivery(c, request.id)
        emit(args, request.to_json(), request_text(request))
        return 0

    return await with_components(settings, run)


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
    from bot.bootstrap import open_configured_store
    from bot.store.copy import copy_store
    from bot.store.db import Store
    from bot.store.postgres import shown

    if args.to == settings.db_path:
        raise UsageError("--to names the store this bot already uses (NUMBERS_DB); name another one")
    source = open_configured_store(settings)
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
