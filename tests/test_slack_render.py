"""Rendering, as pure functions: limits, escaping, costs with currency, numbers in both forms, card states."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from bot.config import load_settings
from bot.domain.errors import NotAllowed, UsageError
from bot.domain.offers import Offer, SearchQuery
from bot.domain.requests import Event, NumberRequest
from bot.domain.states import State
from bot.services import SearchResult
from bot.slack import ids
from bot.slack.configure import render_config
from bot.slack.render.home import home_view
from bot.slack.render.kit import BLOCK_TEXT_BUDGET, MAX_MESSAGE_BLOCKS, MAX_VIEW_BLOCKS, Message, action_ids, as_text, clip, section
from bot.slack.render.modals import deny_modal, request_modal, search_modal
from bot.slack.render.notices import dm_message, error_message, thread_message
from bot.slack.render.offers import offer_text, offers_message
from bot.slack.render.requests import card_message, mine_message, pending_message, show_message

NOW = datetime(2026, 11, 25, 15, 27, tzinfo=timezone.utc)
HOSTILE = "Need it <!channel> & <@U0BOSS>, see <https://evil.example|your bank>"


@pytest.fixture
def settings(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    return render_config(
        load_settings(NUMBERS_APPROVERS="UAPPROVER1,SAPPROVERS", NUMBERS_APPROVAL_CHANNEL="CAPPROVALS", NUMBERS_DB=":memory:")
    )


def acs_offer(n: int = 0, numbers=("+18332272459", "+18332272460"), unit="2.00") -> Offer:
    query = SearchQuery("US", "tollfree", "833", quantity=len(numbers))
    return Offer(
        id=f"o{n:07d}",
        provider="acs",
        kind="purchase",
        numbers=list(numbers),
        unit_monthly_cost=Decimal(unit),
        currency="USD",
        unit_setup_cost=None,
        quantity=len(numbers),
        max_quantity=len(numbers),
        sms=True,
        voice=True,
        expires_at=NOW + timedelta(minutes=14, seconds=30),
        ref={"search_id": "s1"},
        details={"number_type": "tollFree"},
        query=query,
        searched_by="UREQUESTER",
        created_at=NOW,
    )


def plivo_offer() -> Offer:
    return replace(
        acs_offer(),
        id="oplivo01",
        provider="plivo",
        kind="rent",
        numbers=[],
        unit_monthly_cost=Decimal("0.80"),
        unit_setup_cost=Decimal("1.50"),
        quantity=1,
        max_quantity=181,
        expires_at=None,
        details={"region": "AMIENS, FRANCE", "prefix": "33", "stock": 181, "country": "FR"},
        query=SearchQuery("FR", "local", "33"),
    )


def webex_offer() -> Offer:
    return replace(
        acs_offer(),
        id="owebex01",
        provider="webex",
        kind="assign",
        numbers=["+14155550100"],
        unit_monthly_cost=Decimal("0"),
        quantity=1,
        max_quantity=1,
        expires_at=None,
        details={"location_name": "HQ <script>", "telephony_type": "PSTN_NUMBER", "extension": "100"},
        query=SearchQuery("US", "local", provider="webex"),
    )


def request(state: State = State.PENDING, **changes) -> NumberRequest:
    base = NumberRequest(
        id=12,
        offer_id="o0000000",
        provider="acs",
        kind="purchase",
        state=state,
        requester="UREQUESTER",
        requester_email="alice@example.com",
        quantity=2,
        numbers=["+18332272459", "+18332272460"],
        unit_monthly_cost=Decimal("2.00"),
        unit_setup_cost=None,
        currency="USD",
        justification="Support line for the spring campaign",
        ref={"search_id": "s1"},
        approvals=[],
        created_at=NOW,
        updated_at=NOW,
        expires_at=NOW + timedelta(hours=24),
        hold_expires_at=NOW + timedelta(minutes=14),
    )
    return replace(base, **changes)


def rendered(message: Message) -> str:
    return as_text(message.payload()["blocks"])


def test_offers_cheapest_first_with_request_buttons_costs_and_both_number_forms(settings):
    result = SearchResult(SearchQuery("US", "tollfree", "833", quantity=2), [acs_offer()], providers=["acs", "plivo"])
    payload = offers_message(result, settings, now=NOW).payload()
    text = as_text(payload["blocks"])
    assert "(833) 227-2459 · +18332272459" in text
    assert "*$2.00/month* each — $4.00/month for 2" in text
    assert "held 14 min more (until 15:41 UTC)" in text
    button = payload["blocks"][1]["accessory"]
    assert (button["action_id"], button["value"], button["text"]["text"]) == (ids.ACTION_REQUEST, "o0000000", "Request")
    assert payload["text"] == "1 offer for US toll-free 833 ×2 at ACS, Plivo; cheapest $2.00/month at ACS"


@pytest.mark.parametrize("count", [0, 1, 47, 48, 49, 60, 500])
def test_never_more_than_50_blocks_and_a_note_when_offers_are_left_out(settings, count):
    offers = [acs_offer(i) for i in range(count)]
    result = SearchResult(SearchQuery("US", "tollfree"), offers, problems=["plivo said (500): down"], providers=["acs", "plivo"])
    payload = offers_message(result, settings, now=NOW).payload()
    assert len(payload["blocks"]) <= MAX_MESSAGE_BLOCKS
    assert len(as_text(payload["blocks"])) <= BLOCK_TEXT_BUDGET  # Slack refuses ~12k (msg_blocks_too_long)
    shown = [b for b in payload["blocks"] if (b.get("accessory") or {}).get("action_id") == ids.ACTION_REQUEST]
    if count > len(shown):
        assert f"{count - len(shown)} more offer" in as_text(payload["blocks"][-2:])  # then the sandbox notice
        assert "narrow the search with an area code" in as_text(payload["blocks"][-2:])
    else:
        assert len(shown) == count
        assert "more offer" not in as_text(payload["blocks"])
    if count == 0:
        assert "Nothing found" in as_text(payload["blocks"])


def test_message_refuses_51_blocks():
    with pytest.raises(ValueError, match="51 blocks"):
        Message("x", [section("x") for _ in range(51)])


def test_plivo_and_webex_offers(settings):
    plivo = offer_text(plivo_offer(), now=NOW)
    assert "*Plivo* · FR local · prefix 33 · AMIENS, FRANCE · 181 in stock" in plivo
    assert "*$0.80/month* · setup $1.50" in plivo
    webex = offer_text(webex_offer(), now=NOW)
    assert "(415) 555-0100 · +14155550100" in webex and "HQ &lt;script&gt;" in webex and "ext. 100" in webex


def test_costs_in_other_currencies_name_the_currency(settings):
    offer = replace(acs_offer(), currency="EUR", unit_monthly_cost=Decimal("1.25"))
    assert "1.25 EUR/month" in offer_text(offer, now=NOW)
    assert "cost not quoted by ACS" in offer_text(replace(acs_offer(), unit_monthly_cost=None), now=NOW)


CARD_STATES = [
    (State.PENDING, {}, ":hourglass: *Waiting for approval*", True),
    (State.APPROVED, {"decided_by": "UAPPROVER1"}, "*Approved by <@UAPPROVER1>* — buying…", False),
    (State.FULFILLING, {"decided_by": "UAPPROVER1"}, "*Approved by <@UAPPROVER1>* — buying…", False),
    (State.APPROVED, {"decided_by": "policy"}, "*Approved by policy* — buying…", False),
    (
        State.FULFILLED,
        {"decided_by": "UAPPROVER1"},
        "*Purchased* (833) 227-2459 · +18332272459, (833) 227-2460 · +18332272460 ($4.00/month (2 × $2.00))",
        False,
    ),
    (State.DENIED, {"decided_by": "UAPPROVER1", "outcome": "use the <!here> pool"}, "*Denied by <@UAPPROVER1>*: use the &lt;!here&gt; pool", False),
    (State.CANCELLED, {}, "*Cancelled* by the requester", False),
    (State.EXPIRED, {}, "*Expired*: no decision within 24 h", False),
    (State.FAILED, {"outcome": "acs said (400, InvalidInput): Hold expired"}, "*Failed*: acs said (400, InvalidInput): Hold expired", False),
    (State.PROVIDER_PENDING, {"provider": "plivo", "outcome": "KYC documents needed"}, "*Waiting on Plivo*: KYC documents needed", False),
    (State.NEEDS_ATTENTION, {"outcome": "the answer to the purchase was lost"}, "*Needs attention*: the answer to the purchase was lost", False),
]


@pytest.mark.parametrize("state, changes, status, buttons", CARD_STATES)
def test_card_states(settings, state, changes, status, buttons):
    message = card_message(request(state, **changes), settings, offer=acs_offer(), now=NOW)
    payload = message.payload()
    text = as_text(payload["blocks"])
    assert status in text
    assert any(b["type"] == "actions" for b in payload["blocks"]) is buttons
    assert "*Requester*\n<@UREQUESTER>" in text and "Support line for the spring campaign" in text
    assert f"Request #12 from <@UREQUESTER>" in payload["text"]


def test_card_shows_the_approval_count_when_more_than_one_is_needed(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    two = render_config(load_settings(NUMBERS_APPROVERS="UAPPROVER1", NUMBERS_REQUIRED_APPROVALS=2))
    text = rendered(card_message(request(approvals=["UAPPROVER1"]), two, now=NOW))
    assert "1 of 2 approvals (<@UAPPROVER1>)" in text


def test_card_cost_setup_and_hold(settings):
    r = request(unit_setup_cost=Decimal("1.00"))
    text = rendered(card_message(r, settings, offer=acs_offer(), now=NOW))
    assert "*Cost*\n$2.00/month each\n*$4.00/month* in total\nsetup $2.00 once" in text
    ends = int(r.hold_expires_at.timestamp())
    assert f"*Hold*\nheld until <!date^{ends}^{{date_short_pretty}} {{time}}|{r.hold_expires_at:%Y-%m-%d} 15:41 UTC> (14 min more)" in text
    assert "*Provider*\nACS toll-free" in text
    gone = rendered(card_message(r, settings, offer=acs_offer(), now=r.hold_expires_at + timedelta(minutes=1)))
    assert f"*Hold*\nexpired <!date^{ends}^" in gone


def test_justification_is_escaped_and_fits_the_section(settings):
    long_text = HOSTILE + " &" * 1500  # 3000+ characters once & becomes &amp;
    payload = card_message(request(justification=long_text[:3000]), settings, now=NOW).payload()
    dumped = json.dumps(payload)
    assert "<!channel>" not in dumped and "<@U0BOSS>" not in dumped and "<https://evil" not in dumped
    assert "&lt;!channel&gt; &amp; &lt;@U0BOSS&gt;" in dumped
    why = next(b for b in payload["blocks"] if b.get("text", {}).get("text", "").startswith("*Justification*"))
    assert len(why["text"]["text"]) <= 3000 and why["text"]["text"].endswith("…")
    assert "&am…" not in why["text"]["text"]  # never cut inside an entity


@pytest.mark.parametrize(
    "text, limit, expected",
    [("abc", 5, "abc"), ("a &amp; b", 6, "a …"), ("see <@U123> now", 10, "see …"), ("plain text here", 8, "plain t…")],
)
def test_clip(text, limit, expected):
    assert clip(text, limit) == expected


def test_errors_escape_user_input_but_keep_the_bots_mentions():
    message = error_message(UsageError("I don't understand `<!channel>` in the search.", usage="`/numbers <verb>`"))
    payload = json.dumps(message.payload()["blocks"])
    assert "&lt;!channel&gt;" in payload and "<!channel>" not in payload and "&lt;verb&gt;" in payload
    mention = error_message(NotAllowed("Only the requester (<@UREQUESTER>) can cancel request #3."))
    assert "<@UREQUESTER>" in mention.payload()["blocks"][0]["text"]["text"]


def test_dms_for_each_outcome(settings):
    r = request(State.FULFILLED, decided_by="UAPPROVER1")
    expected = {
        "approved": "was approved by <@UAPPROVER1>; buying now",
        "denied": "was denied by <@UAPPROVER1>: too dear",
        "fulfilled": "is done. *Purchased* (833) 227-2459 · +18332272459",
        "failed": "failed: too dear",
        "expired": "expired: nobody decided within 24 h",
        "provider_pending": "ACS is following up",
        "needs_attention": "needs a person to check it at ACS",
        "reapproval": "needs a fresh approval: too dear",
        "numbers_changed": "too dear",
    }
    for what, words in expected.items():
        text = dm_message(r, what, settings, actor="UAPPROVER1", text="too dear", channel="CAPPROVALS", link="https://x/p1").text
        assert words in text, (what, text)
        assert text.endswith("<https://x/p1|See the card.>")
        assert "request #12 (2 numbers from ACS, $4.00/month (2 × $2.00))" in text
    created = dm_message(request(), "created", settings, channel="CAPPROVALS", link="https://x/p1").text
    assert "is waiting for approval in <#CAPPROVALS> — <https://x/p1|see the card>." in created
    lost = dm_message(request(), "created", settings).text
    assert "could not be posted" in lost


def test_thread_replies_mention_approver_users_and_groups(settings):
    text = thread_message(request(), "reminder", settings).text
    assert text.startswith(":bell: <@UAPPROVER1> <!subteam^SAPPROVERS> request #12")


def test_home_view_stays_within_100_blocks_and_has_the_queue(settings):
    pending = [request(id=i) for i in range(1, 201)]
    mine = [request(id=i, requester="UAPPROVER1") for i in range(300, 320)]
    view = home_view("UAPPROVER1", mine, pending, settings, notice=":white_check_mark: done").to_dict()
    assert view["type"] == "home" and len(view["blocks"]) <= MAX_VIEW_BLOCKS
    assert "more request" in as_text(view["blocks"][-1:])
    actions = [b for b in view["blocks"] if b["type"] == "actions"]
    assert actions and all({e["action_id"] for e in a["elements"]} == {ids.ACTION_APPROVE, ids.ACTION_DENY} for a in actions)
    outsider = home_view("UOUTSIDER", [], None, settings).to_dict()
    assert not any(b["type"] == "actions" for b in outsider["blocks"])


def test_pending_and_mine_stay_within_50_blocks(settings):
    many = [request(id=i) for i in range(1, 120)]
    assert len(pending_message(many).payload()["blocks"]) <= MAX_MESSAGE_BLOCKS
    assert len(mine_message(many).payload()["blocks"]) <= MAX_MESSAGE_BLOCKS


def test_show_keeps_the_newest_history_within_the_section_limit(settings):
    events = [Event(i, NOW, 12, "UAPPROVER1", "refused", "approve refused: " + "x" * 200) for i in range(40)]
    payload = show_message(request(events=events), settings, now=NOW).payload()
    history = payload["blocks"][-1]["text"]["text"]
    assert history.startswith("*History*\n…") and len(history) <= 3000


def test_modals_are_valid_views_with_the_registered_ids(settings):
    search = search_modal(["acs", "plivo", "webex"], settings).to_dict()
    assert search["callback_id"] == ids.VIEW_SEARCH
    provider = next(b for b in search["blocks"] if b["block_id"] == ids.INPUT_PROVIDER)
    assert [o["value"] for o in provider["element"]["options"]] == ["any", "acs", "plivo"]
    rent = request_modal(plivo_offer(), settings, now=NOW).to_dict()
    quantity = next(b for b in rent["blocks"] if b.get("block_id") == ids.INPUT_QUANTITY)
    assert quantity["element"]["max_value"] == "10"  # min(stock 181, NUMBERS_MAX_QUANTITY 10)
    justification = next(b for b in rent["blocks"] if b.get("block_id") == ids.INPUT_JUSTIFICATION)
    assert justification["element"]["max_length"] == 3000 and justification["element"]["multiline"] is True
    purchase = request_modal(acs_offer(), settings, now=NOW).to_dict()
    assert not any(b.get("block_id") == ids.INPUT_QUANTITY for b in purchase["blocks"])
    expired = request_modal(acs_offer(), settings, now=NOW + timedelta(hours=1)).to_dict()
    assert "This hold has expired" in as_text(expired["blocks"])
    deny = deny_modal(request(justification=HOSTILE)).to_dict()
    assert deny["callback_id"] == ids.VIEW_DENY and "<!channel>" not in json.dumps(deny)


def test_every_button_rendered_anywhere_is_a_registered_action(settings):
    result = SearchResult(SearchQuery("US", "tollfree"), [acs_offer(), plivo_offer(), webex_offer()], providers=["acs"])
    rendered_blocks = [
        offers_message(result, settings, now=NOW).payload()["blocks"],
        card_message(request(), settings, now=NOW).payload()["blocks"],
        pending_message([request()]).payload()["blocks"],
        home_view("U1", [request()], [request()], settings).to_dict()["blocks"],
    ]
    used = set().union(*(action_ids(b) for b in rendered_blocks))
    assert used == set(ids.ACTIONS)


def test_48_offers_of_10_numbers_stay_within_the_text_budget(settings):
    """23.8k characters before the budget: Slack would refuse it (msg_blocks_too_long)."""
    ten = tuple(f"+1833227{n:04d}" for n in range(10))
    offers = [acs_offer(i, numbers=ten) for i in range(48)]
    payload = offers_message(SearchResult(SearchQuery("US", "tollfree"), offers, providers=["acs"]), settings, now=NOW).payload()
    text = as_text(payload["blocks"])
    shown = [b for b in payload["blocks"] if (b.get("accessory") or {}).get("action_id") == ids.ACTION_REQUEST]
    assert len(text) <= BLOCK_TEXT_BUDGET < 12000
    assert 0 < len(shown) < 48 and f"{48 - len(shown)} more offers — narrow the search with an area code" in text


def test_final_card_names_every_approver_and_times_read_in_each_readers_zone(settings):
    done = request(State.FULFILLED, approvals=["UAPPROVER1", "UAPPROVER2"], decided_by="UAPPROVER2", decided_at=NOW)
    text = rendered(card_message(done, settings, now=NOW))
    assert "Approved by <@UAPPROVER1>, <@UAPPROVER2>" in text
    moving = rendered(card_message(replace(done, state=State.FULFILLING), settings, now=NOW))
    assert "*Approved by <@UAPPROVER1>, <@UAPPROVER2>*" in moving
    pending = rendered(card_message(request(), settings, now=NOW))
    expires = int((NOW + timedelta(hours=24)).timestamp())
    assert f"Expires undecided <!date^{expires}^{{date_short_pretty}} {{time}}|2026-11-26 15:27 UTC>" in pending
