"""``numbers-bot``: the terminal face of the same services the Slack bot uses.

A thin shell: argparse here, one service call per verb (``bot.cli.verbs``, on the components
``bot.bootstrap.build`` wires), printing in ``bot.cli.render``, the sandbox walk-through in
``bot.cli.demo``. ``--json`` puts only JSON on stdout (progress and logs go to stderr). The caller
is ``$USER`` unless ``--as`` names a Slack user id.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Sequence

from bot.cli.demo import cmd_demo, cmd_sandbox
from bot.cli.render import err, plain
from bot.cli.verbs import (
    ACTING_VERBS,
    check_identity,
    cmd_approve,
    cmd_assign,
    cmd_audit,
    cmd_cancel,
    cmd_costs,
    cmd_deny,
    cmd_doctor,
    cmd_inventory,
    cmd_mine,
    cmd_pending,
    cmd_release,
    cmd_request,
    cmd_search,
    cmd_serve,
    cmd_show,
    cmd_store_copy,
    positive_int,
    slack_configured,
)
from bot.config import load_settings
from bot.domain.errors import ConfigError, NumbersError, UsageError
from bot.logs import configure_logging

__all__ = ["main", "parser"]


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print only JSON on stdout")
    common.add_argument("--as", dest="as_user", metavar="USER", help="act as this Slack user id (default $USER)")

    p = argparse.ArgumentParser(
        prog="numbers-bot",
        description="Search, request, approve and buy phone numbers (ACS, Plivo, Webex, Twilio, Telnyx) — Slack bot and CLI.",
    )
    sub = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    _request_verbs(sub, common)
    _report_verbs(sub, common)
    _operator_verbs(sub, common)
    return p




def _request_verbs(sub: "argparse._SubParsersAction[argparse.ArgumentParser]", common: argparse.ArgumentParser) -> None:
    """A request's life: search, request, decide, withdraw, look."""
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


def _report_verbs(sub: "argparse._SubParsersAction[argparse.ArgumentParser]", common: argparse.ArgumentParser) -> None:
    """What the team holds and did: the audit log, inventory, costs; giving a number back."""
    s = sub.add_parser("audit", parents=[common], help="every event of the last N days as CSV (approvers)")
    s.add_argument("days", nargs="?", type=int, default=30)
    s.add_argument(
        "--csv", action="store_true",
        help="CSV (the default without --json); with --json the CSV goes to --output and stdout gets one JSON summary",
    )
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


def _operator_verbs(sub: "argparse._SubParsersAction[argparse.ArgumentParser]", common: argparse.ArgumentParser) -> None:
    """Running and checking the bot: the demo, the sandbox, serve, the store, doctor."""
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


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, load the settings, run one verb; the exit code says how it went (2: bad input or settings)."""
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
