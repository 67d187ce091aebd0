"""Hostile text at every place a Slack message shows what a user or a provider wrote.

Each SITE renders one surface with hostile text in one field (a justification, a
deny reason, a provider's region or error text, a Webex location, a CLI user
name, an error message…). Every site is fed every HOSTILE text and must come
out inert: no live ``<!channel>``, ``<@U…>`` or ``<link|label>``, every ``&``
escaped, no control or bidi characters, the text still shown (escaped, not
dropped), and the message within Slack's limits however long the text.
Escaping happens only in ``bot.slack.render.kit``; these tests are what turn red
when any one site stops calling it.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any, Callable

import pytest

from bot.domain.errors import NotAllowed, UsageError
from bot.domain.requests import Event, HeldNumber
from bot.domain.states import State
from bot.domain.offers import SearchQuery
from bot.services import CostSummary, SearchResult
from bot.slack.render.config import RenderConfig
from bot.slack.render.holdings import costs_message, held_line, inventory_message
from bot.slack.render.home import home_view
from bot.slack.render.kit import Message, section
from bot.slack.render.modals import deny_modal, release_modal, request_modal
from bot.slack.render.notices import dm_message, error_message, refused_message, thread_message
from bot.slack.render.offers import offer_text, offers_message, search_title_for
from bot.slack.render.requests import card_message, mine_message, pending_message, show_message
from tests.test_slack_render import NOW, acs_offer, plivo_offer, request, webex_offer

CONFIG = RenderConfig(approval_channel="CAPPROVALS", approver_users=("UAPPROVER1",), approver_groups=("SAPPROVERS",))

# What must never come out live, whatever the field.
LIVE = ("<!channel>", "<!here>", "<@U123>", "<@W999", "<https://evil", "<!subteam^SEVIL>", "<!date^1^{date}|x>")
SEEN = "&lt;!channel&gt;"  # the mention, shown as text: the field was rendered, escaped, not dropped

HOSTILE = {
    "mentions": "ping <!channel> <!here> <@U123> <@W999|boss> <!subteam^SEVIL> <!date^1^{date}|x> <!channel>",
    "link": "<!channel> pay at <https://evil.example/login|your bank> & AT&T",
    "entities": "<!channel> &lt;!here&gt; &amp; & ; &#60;",
    "mrkdwn": "<!channel> *bold* _it_ ~s~ `code` ```block``` > quote\n# not a header",
    "controls": "<!channel> nul\x00bell\x07esc\x1b[31mred\x1b[0m\r\n\ttab\u202eevil\u2066iso\x85",
    "long": "<!channel> " + "<@U123> & *x* " * 800,
}


def shown(out: Message | Any) -> str:
    """Every text of the payload as Slack would receive it (``to_dict`` checks Slack's per-element limits)."""
    if isinstance(out, str):
        return out
    payload = out.payload() if isinstance(out, Message) else out.to_dict()
    if isinstance(out, Message):
        assert len(out.blocks) <= 50 and len(payload["text"]) <= 3000
        assert all(len((b.get("text") or {}).get("text", "")) <= 3000 for b in payload["blocks"])
    leaves: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str):
            leaves.append(node)

    walk(payload)
    return "\n".join(leaves)


def held(**changes: Any) -> HeldNumber:
    base = HeldNumber(
        id=1, number="+18332272459", provider="acs", kind="purchase", request_id=12, requester="UREQUESTER",
        justification="support line", approved_by="UAPPROVER1", acquired_at=NOW, unit_monthly_cost=Decimal("2.00"),
        currency="USD", ref={}, state="active", release_request_id=None, released_at=None,
    )
    return replace(base, **changes)


def costs(requester: str) -> CostSummary:
    return CostSummary(rows=[("acs", requester, "USD", Decimal("4.00"), 2)], budget=Decimal("100"), committed_this_month=Decimal(4))


def result(problem: str, offers: list | None = None) -> SearchResult:
    providers = ["acs", "plivo"]
    failures = {"acs": problem} if offers is not None else {p: problem for p in providers}
    return SearchResult(SearchQuery("US", "tollfree"), offers or [], problems=[problem], providers=providers, failures=failures)


def rent_request(text: str):
    """A rent request before it is fulfilled: the card shows the group's prefix and region from the offer."""
    offer = replace(plivo_offer(), details={"region": text, "prefix": text, "stock": 5, "country": "FR"})
    return request(provider="plivo", kind="rent", numbers=[]), offer


# Every place user or provider text reaches a message: (site, what renders it with the text).
SITES: dict[str, Callable[[str], Any]] = {
    # offers: provider texts
    "offer: plivo region (purchase)": lambda t: offer_text(replace(acs_offer(), provider="plivo", details={"region": t}), now=NOW),
    "offer: restriction text": lambda t: offer_text(replace(acs_offer(), ref={"restriction_text": t}), now=NOW),
    "offer: rent prefix": lambda t: offer_text(replace(plivo_offer(), details={"prefix": t, "stock": 5}), now=NOW),
    "offer: rent region": lambda t: offer_text(replace(plivo_offer(), details={"region": t, "stock": 5}), now=NOW),
    "offer: rent country": lambda t: offer_text(replace(plivo_offer(), details={"country": t, "stock": 5}), now=NOW),
    "offer: rent stock": lambda t: offer_text(replace(plivo_offer(), details={"stock": t}), now=NOW),
    "offer: webex location": lambda t: offer_text(replace(webex_offer(), details={"location_name": t}), now=NOW),
    "offer: webex extension": lambda t: offer_text(replace(webex_offer(), details={"extension": t}), now=NOW),
    "offer: webex telephony type": lambda t: offer_text(replace(webex_offer(), details={"telephony_type": t}), now=NOW),
    "offer: a provider's number": lambda t: offer_text(acs_offer(numbers=("+18332272459", t)), now=NOW),
    "offer: provider name": lambda t: offer_text(replace(acs_offer(), provider=t), now=NOW),
    "offers: in the request form": lambda t: request_modal(replace(plivo_offer(), details={"region": t}), CONFIG, now=NOW),
    # searches: what the user typed, what the providers answered
    "search title: webex location": lambda t: search_title_for(SearchQuery("US", "local", provider="webex", location=t), ["webex"]),
    "search title: prefix": lambda t: search_title_for(SearchQuery("US", "local", prefix=t), ["acs"]),
    "search: every provider failed": lambda t: offers_message(result(t), CONFIG, now=NOW),
    "search: one provider failed": lambda t: offers_message(result(t, [acs_offer()]), CONFIG, now=NOW),
    # requests: justifications, reasons, outcomes, names
    "card: justification": lambda t: card_message(request(justification=t), CONFIG, now=NOW),
    "card: deny reason": lambda t: card_message(request(State.DENIED, decided_by="UAPPROVER1", outcome=t), CONFIG, now=NOW),
    "card: failure": lambda t: card_message(request(State.FAILED, outcome=t), CONFIG, now=NOW),
    "card: provider pending": lambda t: card_message(request(State.PROVIDER_PENDING, outcome=t), CONFIG, now=NOW),
    "card: needs attention": lambda t: card_message(request(State.NEEDS_ATTENTION, outcome=t), CONFIG, now=NOW),
    "card: outcome note": lambda t: card_message(request(State.FULFILLED, decided_by="UAPPROVER1", outcome=t), CONFIG, now=NOW),
    "card: CLI requester name": lambda t: card_message(request(requester=t), CONFIG, now=NOW),
    "card: CLI approver name": lambda t: card_message(request(State.APPROVED, decided_by=t, approvals=[t]), CONFIG, now=NOW),
    "card: approvals so far": lambda t: card_message(request(approvals=[t]), replace(CONFIG, required_approvals=2), now=NOW),
    "card: restriction": lambda t: card_message(request(ref={"restriction": t}), CONFIG, now=NOW),
    "card: a provider's number": lambda t: card_message(request(State.FULFILLED, numbers=[t]), CONFIG, now=NOW),
    "card: rent group prefix and region": lambda t: card_message(rent_request(t)[0], CONFIG, offer=rent_request(t)[1], now=NOW),
    "mine: justification": lambda t: mine_message([request(justification=t)]),
    "pending: justification": lambda t: pending_message([request(justification=t)]),
    "show: event message": lambda t: show_message(request(events=[Event(1, NOW, 12, "UAPPROVER1", "denied", t)]), CONFIG, now=NOW),
    "show: event actor": lambda t: show_message(request(events=[Event(1, NOW, 12, t, "denied", "no")]), CONFIG, now=NOW),
    # short answers: error texts quote the user's input
    # The bot quotes what the user typed in backticks; only its own mentions, outside them, stay live.
    "error: message": lambda t: error_message(UsageError(f"I don't understand `{t}` in the search.")),
    "error: usage": lambda t: error_message(UsageError("bad"), usage=t),
    "refused: message": lambda t: refused_message("Your request was not sent", NotAllowed(f"`{t}` is not yours, <@UREQUESTER>.")),
    "fallback of a message without sections": lambda t: Message(text=t).mrkdwn(),
    # DMs and thread replies
    **{
        f"dm {what}: text": (lambda what: lambda t: dm_message(request(), what, CONFIG, actor="UAPPROVER1", text=t))(what)
        for what in ("denied", "fulfilled", "failed", "provider_pending", "needs_attention", "reapproval", "numbers_changed")
    },
    **{
        f"dm {what}: outcome": (lambda what: lambda t: dm_message(request(outcome=t), what, CONFIG))(what)
        for what in ("denied", "failed", "provider_pending", "needs_attention", "reapproval", "numbers_changed")
    },
    "dm approved: CLI actor": lambda t: dm_message(request(), "approved", CONFIG, actor=t),
    "thread needs_attention: text": lambda t: thread_message(request(), "needs_attention", CONFIG, text=t),
    "thread reapproval: outcome": lambda t: thread_message(request(outcome=t), "reapproval", CONFIG),
    "thread reminder: CLI requester": lambda t: thread_message(request(requester=t), "reminder", CONFIG),
    # holdings
    "held line: justification": lambda t: section(held_line(held(justification=t))),
    "held line: CLI names": lambda t: section(held_line(held(requester=t, approved_by=t))),
    "inventory: justification": lambda t: inventory_message([held(justification=t)], costs("UREQUESTER")),
    "costs: CLI requester": lambda t: costs_message(costs(t)),
    # forms and the Home tab
    "deny form: justification": lambda t: deny_modal(request(justification=t)),
    "release form: justification": lambda t: release_modal(held(justification=t)),
    "home: pending justification": lambda t: home_view("UAPPROVER1", [], [request(justification=t)], CONFIG),
    "home: my numbers": lambda t: home_view("UREQUESTER", [], None, CONFIG, numbers=[held(justification=t)]),
    "home: my requests": lambda t: home_view("UREQUESTER", [request(State.FULFILLED, numbers=[t])], None, CONFIG),
}

_RAW_AMP = re.compile(r"&(?!amp;|lt;|gt;)")


def _bad_characters(text: str) -> list[str]:
    return [c for c in text if (unicodedata.category(c) == "Cc" and c not in "\n\t") or "\u202a" <= c <= "\u202e" or "\u2066" <= c <= "\u2069"]


@pytest.mark.parametrize("kind", HOSTILE)
@pytest.mark.parametrize("site", SITES)
def test_hostile_text_comes_out_inert_and_bounded(site, kind):
    out = shown(SITES[site](HOSTILE[kind]))
    for live in LIVE:
        assert live not in out, f"{site}: {live} is live"
    assert not _RAW_AMP.search(out), f"{site}: an unescaped &"
    assert not _bad_characters(out), f"{site}: control or bidi characters"
    assert SEEN in out, f"{site}: the text was not shown"


def test_every_site_is_fed_text_that_would_be_live_unescaped():
    """The hostile texts are live mrkdwn when not escaped: a site that forgets escaping cannot pass."""
    for text in HOSTILE.values():
        assert "<!channel>" in text
    assert _RAW_AMP.search(HOSTILE["link"]) and _bad_characters(HOSTILE["controls"])


def test_user_text_in_lists_stays_on_its_line_and_in_its_quote():
    """A newline in a justification cannot start a line of its own: folded in lists, quoted on cards."""
    text = "fine\n*Approved by <@UAPPROVER1>*\n> quoted"
    listing = mine_message([request(justification=text)]).payload()["blocks"][1]["text"]["text"]
    assert listing.count("\n") == 1 and "fine *Approved by &lt;@UAPPROVER1&gt;* &gt; quoted" in listing
    card = json.dumps(card_message(request(justification=text), CONFIG, now=NOW).payload()["blocks"])
    assert "> fine\\n> *Approved by &lt;@UAPPROVER1&gt;*\\n> &gt; quoted" in card


@pytest.mark.parametrize("length", [3001, 50_000])
def test_very_long_provider_texts_are_cut_without_breaking_an_entity(length):
    text = ("&" * length)[:length]
    out = offer_text(replace(acs_offer(), ref={"restriction_text": text}), now=NOW)
    restriction = next(line for line in out.splitlines() if "restriction" in line)
    assert len(restriction) < 3000 and restriction.endswith("…") and not _RAW_AMP.search(restriction)
    message = offers_message(result(text), CONFIG, now=NOW).payload()
    assert len(message["text"]) <= 3000 and not _RAW_AMP.search(message["text"])
