"""Refusal of bad input over the real HTTP endpoint: unsigned or replayed requests, buttons that name no
request or someone else's, hostile justifications, and secrets that must never reach Slack, the logs or
the audit log. Every refusal changes nothing but the audit log."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import pytest

from bot.logs import RedactSecrets
from bot.sandbox.acs import SANDBOX_ACS_ACCESS_KEY
from bot.sandbox.plivo import SANDBOX_PLIVO_AUTH_TOKEN
from bot.sandbox.webex import SANDBOX_WEBEX_TOKEN
from bot.slack import ids
from tests.reliability_harness import all_events, refusals, snapshot
from tests.slack_harness import (  # noqa: F401  (fixtures)
    APPROVAL_CHANNEL,
    APPROVER,
    BOT_TOKEN,
    FORM,
    JSON,
    OUTSIDER,
    REQUESTER,
    SIGNING_SECRET,
    app_home_opened,
    block_actions,
    card_text,
    has_buttons,
    offers_in,
    slack_bot,
    slash_command,
    text_value,
    view_submission,
)
from tests.test_slack_flow import request_offer

PURCHASE = r"/availablePhoneNumbers/:purchase$"


# --- requests Slack did not sign -------------------------------------------------------------------

def bodies(bot, request_id: int) -> dict[str, tuple[bytes, str]]:
    url = bot.slack.response_url("x")
    return {
        "command": (slash_command(f"cancel {request_id}", user=REQUESTER, response_url=url), FORM),
        "click": (block_actions(ids.ACTION_APPROVE, str(request_id), user=APPROVER, channel=APPROVAL_CHANNEL, response_url=url), FORM),
        "form": (view_submission(ids.VIEW_DENY, {ids.INPUT_REASON: text_value("no")}, user=APPROVER, private_metadata=json.dumps({"request": request_id})), FORM),
        "event": (app_home_opened(APPROVER), JSON),
    }


def forge(bot, body: bytes, content_type: str, how: str) -> tuple[bytes, dict[str, str]]:
    now = int(time.time())
    headers = bot.signer.headers(body, content_type, timestamp=now)
    if how == "replayed with a new timestamp":
        old = bot.signer.headers(body, content_type, timestamp=now - 600)  # captured ten minutes ago
        headers = {**old, "X-Slack-Request-Timestamp": str(now)}
    elif how == "six minutes old":
        headers = bot.signer.headers(body, content_type, timestamp=now - 6 * 60)
    elif how == "six minutes ahead":
        headers = bot.signer.headers(body, content_type, timestamp=now + 6 * 60)
    elif how == "no signature":
        del headers["X-Slack-Signature"]
    elif how == "no timestamp":
        del headers["X-Slack-Request-Timestamp"]
    elif how == "timestamp not a number":
        headers["X-Slack-Request-Timestamp"] = "yesterday"
    elif how == "signature without v0=":
        headers["X-Slack-Signature"] = headers["X-Slack-Signature"][3:]
    elif how == "signature of another body":
        headers = bot.signer.headers(body + b"&x=1", content_type, timestamp=now)
    elif how == "uppercase hex":
        headers["X-Slack-Signature"] = "v0=" + headers["X-Slack-Signature"][3:].upper()
    elif how == "retry headers on a bad signature":
        headers = {**headers, "X-Slack-Signature": "v0=" + "f" * 64, "X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    return body, headers


FORGERIES = [
    "replayed with a new timestamp",
    "six minutes old",
    "six minutes ahead",
    "no signature",
    "no timestamp",
    "timestamp not a number",
    "signature without v0=",
    "signature of another body",
    "uppercase hex",
    "retry headers on a bad signature",
]


async def test_requests_slack_did_not_sign_are_refused_with_401_and_change_nothing(slack_bot):
    bot, slack = slack_bot, slack_bot.slack
    request, ts = await request_offer(bot)
    # The requester's "created" DM is the request's last Slack call; it may still be on its way.
    await slack.wait_for(lambda: slack.dms(request.requester), what="the created DM")
    before, calls_before, posts_before = snapshot(bot.store), len(slack.calls), len(slack.response_posts())
    tried = 0
    for kind, (body, content_type) in bodies(bot, request.id).items():
        for how in FORGERIES:
            body_sent, headers = forge(bot, body, content_type, how)
            response = await bot.post(body_sent, headers=headers)
            assert response.status_code == 401, (kind, how, response.status_code)
            tried += 1
    assert tried == 40
    assert snapshot(bot.store) == before
    await asyncio.sleep(0.2)
    assert len(slack.calls) == calls_before and len(slack.response_posts()) == posts_before
    assert bot.sandbox.acs.count("POST", PURCHASE) == 0


# --- buttons that name no request, or one that is not the clicker's to act on ----------------------

BAD_VALUES = [
    ("", "does not name a request"),
    ("abc", "does not name a request"),
    ("-1", "does not name a request"),
    ("1.0", "does not name a request"),
    ("0x1", "does not name a request"),
    ("99999999999999999999", "does not name a request"),
    ("1; DROP TABLE requests", "does not name a request"),
    ("1 OR 1=1", "does not name a request"),
    ("<!channel>", "does not name a request"),
    ("9" * 2000, "does not name a request"),
    ("0", "There is no request #0"),
    ("424242", "There is no request #424242"),
]


@pytest.mark.parametrize("action", [ids.ACTION_APPROVE, ids.ACTION_DENY])
async def test_button_values_that_name_no_request_are_refused_audited_and_change_nothing(slack_bot, action):
    bot, slack = slack_bot, slack_bot.slack
    request, ts = await request_offer(bot)
    before = snapshot(bot.store)
    for value, words in BAD_VALUES:
        response, url = await bot.click(action, value, user=APPROVER, channel=APPROVAL_CHANNEL, message_ts=ts)
        assert response.status_code == 200, value
        answer = (await bot.response_to(url))[0]
        assert words in answer["text"], (value, answer["text"])
        shown = answer["text"] + json.dumps(answer.get("blocks"))
        assert "<!channel>" not in shown and len(answer["text"]) < 400
    requests_after, operations_after, events_after = snapshot(bot.store)
    assert (requests_after, operations_after) == before[:2]
    assert events_after == before[2] + len(BAD_VALUES)
    assert len(refusals(bot.store, APPROVER)) == len(BAD_VALUES)
    assert not [c for c in slack.of("views.open") if c.view().get("callback_id") == ids.VIEW_DENY]
    assert bot.sandbox.acs.count("POST", PURCHASE) == 0
    assert bot.store.db.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 1  # the table is still there


async def test_clicks_on_a_request_that_is_not_the_clickers_to_decide(slack_bot):
    """The value names a real request; the clicker is not allowed to decide it: refused, audited, nothing changed."""
    bot = slack_bot
    request, ts = await request_offer(bot)
    cases = [
        (OUTSIDER, ids.ACTION_APPROVE, "Only approvers can approve"),
        (OUTSIDER, ids.ACTION_DENY, "Only approvers can deny"),
        (REQUESTER, ids.ACTION_APPROVE, "Only approvers can approve"),  # the requester, on their own request
    ]
    before = snapshot(bot.store)
    for user, action, words in cases:
        _, url = await bot.click(action, str(request.id), user=user, channel=APPROVAL_CHANNEL, message_ts=ts)
        assert words in (await bot.response_to(url))[0]["text"]
    assert snapshot(bot.store)[:2] == before[:2]
    assert len(refusals(bot.store)) == len(cases)
    # An approver who asked for numbers cannot approve their own request either.
    own, own_ts = await request_offer(bot, user=APPROVER, text="search US tollfree 844")
    _, url = await bot.click(ids.ACTION_APPROVE, str(own.id), user=APPROVER, channel=APPROVAL_CHANNEL, message_ts=own_ts)
    assert "cannot approve your own request" in (await bot.response_to(url))[0]["text"]
    assert bot.service.get(own.id).state.value == "pending"
    assert bot.sandbox.acs.count("POST", PURCHASE) == 0


# --- hostile justifications ------------------------------------------------------------------------

HOSTILE = [
    ("mass mention", "Please <!channel> and <!here> and <!everyone> look"),
    ("user mention", "Ask <@U123> or <@W999|boss>"),
    ("disguised link", "Pay at <https://evil.example/login|your bank>"),
    ("entities", "&lt;!channel&gt; & &amp; AT&T"),
    ("control characters", "line\x00nul\x07bell\x1b[31mred\x1b[0m\r\n\ttab\u202eevil\u200b"),
    ("SQL", "x'); DROP TABLE requests; --\" OR 1=1; /*"),
    ("mrkdwn", "*bold* _it_ ~s~ `code` ```block``` > quote"),
    ("exactly the limit", "y" * 3000),
]


@pytest.mark.parametrize("name,text", HOSTILE, ids=[h[0] for h in HOSTILE])
async def test_hostile_justifications_are_stored_literally_and_shown_inert(slack_bot, name, text):
    bot, slack = slack_bot, slack_bot.slack
    request, ts = await request_offer(bot, justification=text)
    assert bot.service.get(request.id).justification == text
    blocks = slack.messages[(APPROVAL_CHANNEL, ts)]["blocks"]
    dumped = json.dumps(blocks)
    for live in ("<!channel>", "<!here>", "<!everyone>", "<@U123>", "<@W999", "<https://evil"):
        assert live not in dumped
    sections = [b["text"]["text"] for b in blocks if b.get("type") == "section" and b.get("text")]
    assert all(len(t) <= 3000 for t in sections)
    assert len(blocks) <= 50
    assert bot.store.db.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 1


@pytest.mark.parametrize("length", [3001, 10_000])
async def test_justifications_over_the_limit_are_refused_in_the_form(slack_bot, length):
    bot, slack = slack_bot, slack_bot.slack
    _, url = await bot.command("search US tollfree 833")
    offer_id = next(oid for name, oid, _ in offers_in((await bot.response_to(url))[-1]) if name == "ACS")
    await bot.click(ids.ACTION_REQUEST, offer_id, user=REQUESTER, where="ephemeral")
    view = (await slack.wait_for(lambda: slack.of("views.open")))[-1].view()
    field = next(b for b in view["blocks"] if b.get("block_id") == ids.INPUT_JUSTIFICATION)
    assert field["element"]["max_length"] == 3000  # Slack's own form stops typing there
    response = await bot.submit(ids.VIEW_REQUEST, {ids.INPUT_JUSTIFICATION: text_value("z" * length)}, user=REQUESTER, private_metadata=view["private_metadata"])
    errors = response.json()["errors"]
    assert f"this is {length}" in errors[ids.INPUT_JUSTIFICATION]
    assert bot.store.list_requests(requester=REQUESTER) == []


# --- secrets on the Slack path -----------------------------------------------------------------------

async def test_no_secret_reaches_slack_the_logs_or_the_audit_log(slack_bot, caplog, monkeypatch):
    bot, slack = slack_bot, slack_bot.slack
    caplog.handler.addFilter(RedactSecrets(bot.settings.secrets()))  # as bot.logs sets the root handler up
    caplog.set_level(logging.DEBUG)
    for app in bot.sandbox.apps.values():  # every provider refuses its credentials once, then fails once
        app.faults.add("status", status=401, times=1, body={"error": {"code": "Denied", "message": "bad key"}})
        app.faults.add("status", status=500, times=1)
    for text in ("search US tollfree 833", "search US local 415 via plivo", "assign"):
        _, url = await bot.command(text)
        await bot.response_to(url)
    request, ts = await request_offer(bot)
    bot.sandbox.acs.faults.add("status", method="POST", path=PURCHASE, status=401, times=1)
    await bot.click(ids.ACTION_APPROVE, str(request.id), user=APPROVER, channel=APPROVAL_CHANNEL, message_ts=ts)
    await bot.state_of(request.id, {"failed"})
    await slack.wait_for(lambda: "Failed" in card_text(slack, ts), what="the failed card")

    def broken(user, limit=20):
        raise RuntimeError(f"boom near {SIGNING_SECRET} {BOT_TOKEN}")

    monkeypatch.setattr(bot.service, "mine", broken)
    _, url = await bot.command("mine")
    assert "Something went wrong" in (await bot.response_to(url))[0]["text"]

    seen = [json.dumps(c.params, default=str) + json.dumps(c.answer) for c in slack.calls]
    seen += [json.dumps({k: v for k, v in c.headers.items() if k != "authorization"}) for c in slack.calls]
    seen += [json.dumps(body) for _, body in slack.responses]
    seen += [f"{e.message} {json.dumps(e.data, default=str)}" for e in all_events(bot.store)]
    seen.append(json.dumps([r.outcome for r in bot.store.list_requests(limit=100)]))
    seen.append(caplog.text)
    blob = "\n".join(seen)
    assert "401" in blob and "boom near" in blob  # the faults happened and were reported
    for secret in (SANDBOX_ACS_ACCESS_KEY, SANDBOX_PLIVO_AUTH_TOKEN, SANDBOX_WEBEX_TOKEN, SIGNING_SECRET, BOT_TOKEN):
        assert secret not in blob, secret
    # The bot token travels where it must: the Authorization header of Web API calls, and only there.
    assert all(c.headers.get("authorization") == f"Bearer {BOT_TOKEN}" for c in slack.calls)
