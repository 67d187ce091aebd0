"""What the CLI prints: plain text for a terminal, one JSON document with ``--json``, CSV for ``audit``.

Nothing here calls a service or opens a store; the verbs hand it what the services returned.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import sys
from typing import IO, Any, Iterable, Sequence

from bot.domain.kinds import Kind, Change
from bot.domain.display import both, until
from bot.domain.offers import Offer
from bot.domain.requests import HeldNumber, NumberRequest
from bot.domain.policy import money
from bot.services import CostSummary, SearchResult

__all__ = [
    "TerminalNotifier",
    "costs_text",
    "emit",
    "err",
    "inventory_text",
    "offer_line",
    "plain",
    "request_text",
    "requests_text",
    "search_text",
    "write_audit",
]

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
        if what == Change.FULFILLED:
            line += " — " + ", ".join(both(n) for n in request.numbers)
        if text:
            line += f" — {text}"
        err(line)


def emit(args: argparse.Namespace, data: Any, human: str) -> None:
    """The one ``--json`` contract: with ``--json`` stdout is exactly one JSON document (errors too:
    ``{"error", "kind"}``); without it, plain text for a terminal. Progress always goes to stderr."""
    if args.json:
        print(json.dumps(data, indent=2, default=str))
    else:
        print(plain(human))


def offer_line(offer: Offer) -> str:
    cost = money(offer.unit_monthly_cost, offer.currency)
    parts = [f"{offer.id}  {offer.provider:<5}"]
    if offer.numbers:
        parts.append(", ".join(both(n) for n in offer.numbers))
    d = offer.details
    if offer.kind == Kind.RENT:
        parts.append(f"{d.get('region') or d.get('country', '')} prefix {d.get('prefix', '?')} — {offer.max_quantity} in stock")
    if offer.kind == Kind.ASSIGN and d.get("location_name"):
        parts.append(f"at {d['location_name']} ({d.get('state', '')})")
    caps = "/".join(c for c, on in (("voice", offer.voice), ("sms", offer.sms)) if on) or "no capabilities listed"
    parts.append(caps)
    if offer.unit_monthly_cost is None and offer.provider == "twilio":
        parts.append("see Twilio pricing")  # no price from its Pricing API: never shown as $0
    else:
        parts.append(f"{cost}/month each")
    if offer.kind == Kind.PURCHASE and offer.provider == "twilio":
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


def requests_text(requests: Sequence[NumberRequest], empty: str) -> str:
    return "\n".join(request_text(r) for r in requests) or empty


def search_text(result: SearchResult, empty: str) -> str:
    """Offers, then each provider that failed on its own line: a failure is never "no numbers found"."""
    lines = [offer_line(o) for o in result.offers]
    if not lines and not result.every_provider_failed:
        lines.append(empty)
    lines += result.problems
    return "\n".join(lines)


def inventory_text(numbers: Sequence[HeldNumber], summary: CostSummary) -> str:
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


def costs_text(summary: CostSummary) -> str:
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


def write_audit(chunks: Iterable[str], out: IO[str], *, as_json: bool) -> int:
    """The audit log as the service writes it (``NumbersService.audit_csv``, the same CSV Slack's
    ``/numbers audit`` uploads) to ``out``: the CSV chunks as they come, or with ``as_json`` a JSON
    list of one object per row. Returns how many events (rows after the header) were written."""
    if as_json:
        rows = list(csv.DictReader(io.StringIO("".join(chunks))))
        json.dump(rows, out, indent=2)
        out.write("\n")
        return len(rows)
    lines = 0
    for chunk in chunks:
        out.write(chunk)
        # The service cuts chunks between rows, so each one parses on its own (as the Slack upload counts).
        lines += sum(1 for _ in csv.reader(io.StringIO(chunk)))
    return max(lines - 1, 0)
