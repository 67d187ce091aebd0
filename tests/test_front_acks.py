"""The ack process (``bot.front``) answers as the Bolt app does, verifies first, and writes the inbox before it answers.

The front runs in this process over ``httpx.ASGITransport``; the Bolt app it must agree with is the
in-process app of ``tests.slack_harness`` (uvicorn on loopback). Both get the same signed bodies.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import httpx
import pytest

from bot.app import build_providers
from bot.front import create_front_app, enabled_provider_names
from bot.inbox import Inbox, claim_slot
from bot.slack import ids
from bot.slack.gate import Installation
from tests.slack_harness import (  # noqa: F401  (fixtures)
    APP_ID,
    APPROVER,
    FORM,
    JSON,
    REQUESTER,
    SlackSigner,
    TEAM_ID,
    app_home_opened,
    block_actions,
    select_value,
    slack_bot,
    slash_command,
    text_value,
    view_submission,
)

def front_client(
    settings: Any, inbox: Inbox, nudged: list[int] | None = None, rows_at_answer: list[int] | None = None
) -> httpx.AsyncClient:
    """The front over ASGITransport; ``rows_at_answer`` gets the inbox's row count as each answer starts."""
    app = create_front_app(settings, Installation(), inbox, nudge=lambda: nudged.append(1) if nudged is not None else None)

    async def watched(scope: Any, receive: Any, send: Any) -> None:
        async def sending(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and rows_at_answer is not None:
                rows_at_answer.append(inbox.count())
            await send(message)

        await app(scope, receive, sending)

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=watched), base_url="http://front")


def view_closed() -> bytes:
    payload = {"type": "view_closed", "team": {"id": TEAM_ID}, "user": {"id": REQUESTER}, "api_app_id": APP_ID,
               "view": {"id": "V1", "callback_id": ids.VIEW_SEARCH}, "is_cleared": False}
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()


def shortcut() -> bytes:
    payload = {"type": "shortcut", "team": {"id": TEAM_ID}, "user": {"id": REQUESTER}, "api_app_id": APP_ID,
               "callback_id": "numbers_shortcut", "trigger_id": "1.2.3"}
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()


def bodies(url: str) -> list[tuple[str, bytes, str]]:
    search_form = {ids.INPUT_COUNTRY: text_value("US"), ids.INPUT_TYPE: select_value("tollfree")}
    return [
        ("help", slash_command("help", user=REQUESTER, response_url=url), FORM),
        ("bad usage", slash_command("frobnicate 12", user=REQUESTER, response_url=url), FORM),
        ("search", slash_command("search US tollfree 833 x2", user=REQUESTER, response_url=url), FORM),
        ("national search", slash_command("search GB national", user=REQUESTER, response_url=url), FORM),
        ("disabled provider", slash_command("search US local via nowhere", user=REQUESTER, response_url=url), FORM),
        ("mine", slash_command("mine", user=REQUESTER, response_url=url), FORM),
        ("assign", slash_command("assign", user=REQUESTER, response_url=url), FORM),
        ("approve click", block_actions(ids.ACTION_APPROVE, "not-a-request", user=APPROVER, response_url=url), FORM),
        ("unknown click", block_actions("someone_elses_button", "1", user=APPROVER, response_url=url), FORM),
        ("search form, bad", view_submission(ids.VIEW_SEARCH, {ids.INPUT_COUNTRY: text_value("ZZZ")}, user=REQUESTER), FORM),
        ("search form", view_submission(ids.VIEW_SEARCH, search_form, user=REQUESTER), FORM),
        ("request form, blank", view_submission(ids.VIEW_REQUEST, {ids.INPUT_JUSTIFICATION: text_value("  ")}, user=REQUESTER), FORM),
        ("deny form, blank", view_submission(ids.VIEW_DENY, {ids.INPUT_REASON: text_value("")}, user=APPROVER), FORM),
        ("release form, long", view_submission(ids.VIEW_RELEASE, {ids.INPUT_REASON: text_value("x" * 3001)}, user=REQUESTER), FORM),
        ("unknown form", view_submission("someone_elses_form", {}, user=REQUESTER), FORM),
        ("view closed", view_closed(), FORM),
        ("shortcut", shortcut(), FORM),
        ("home opened", app_home_opened(REQUESTER), JSON),
    ]


async def test_the_front_answers_every_payload_as_the_bolt_app_does(slack_bot, tmp_path):
    signer = SlackSigner()
    inbox = Inbox(tmp_path / "front.inbox.db")
    async with front_client(slack_bot.settings, inbox) as front:
        for name, body, content_type in bodies(slack_bot.slack.response_url("same")):
            bolt = await slack_bot.post(body, content_type)
            ours = await front.post("/slack/events", content=body, headers=signer.headers(body, content_type))
            assert (ours.status_code, ours.content) == (bolt.status_code, bolt.content), name
            assert ours.headers["content-type"] == bolt.headers["content-type"], name
    inbox.close()


async def test_only_requests_with_work_to_do_reach_the_inbox_and_each_before_its_answer(slack_bot, tmp_path):
    signer = SlackSigner()
    inbox = Inbox(tmp_path / "front.inbox.db")
    nudged: list[int] = []
    seen_at_answer: list[int] = []
    url = slack_bot.slack.response_url("x")
    async with front_client(slack_bot.settings, inbox, nudged, seen_at_answer) as front:
        for body in (slash_command("help", user=REQUESTER, response_url=url), block_actions("someone_elses_button", "1", user=APPROVER, response_url=url)):
            await front.post("/slack/events", content=body, headers=signer.headers(body, FORM))
        assert inbox.count() == 0 and not nudged  # the ack is the whole answer / no listener: nothing to hand over
        body = slash_command("search US tollfree 833 x2", user=REQUESTER, response_url=url)
        answer = await front.post("/slack/events", content=body, headers=signer.headers(body, FORM))
    assert answer.status_code == 200 and "Searching" in answer.text
    assert seen_at_answer == [0, 0, 1] and nudged == [1]  # in the inbox when the answer started
    (row,) = inbox.after(0)
    assert row.body == body
    assert row.headers["content-type"] == FORM and "x-slack-signature" not in row.headers
    inbox.close()


async def test_an_inbox_that_cannot_take_the_request_answers_503_never_200(slack_bot, tmp_path):
    signer = SlackSigner()
    inbox = Inbox(tmp_path / "front.inbox.db")
    inbox.close()  # every write now fails
    body = slash_command("mine", user=REQUESTER, response_url=slack_bot.slack.response_url("y"))
    async with front_client(slack_bot.settings, inbox) as front:
        answer = await front.post("/slack/events", content=body, headers=signer.headers(body, FORM))
    assert answer.status_code == 503


@pytest.mark.parametrize("headers", [
    {},  # unsigned
    {"X-Slack-Request-Timestamp": "1764000000", "X-Slack-Signature": "v0=" + "0" * 64},  # stale and wrong
    "wrong-secret",
])
async def test_unverified_requests_are_refused_and_never_reach_the_inbox(slack_bot, tmp_path, headers):
    inbox = Inbox(tmp_path / "front.inbox.db")
    body = slash_command("search US tollfree 833", user=REQUESTER, response_url=slack_bot.slack.response_url("z"))
    if headers == "wrong-secret":
        headers = SlackSigner("another-apps-signing-secret").headers(body, FORM)
    async with front_client(slack_bot.settings, inbox) as front:
        answer = await front.post("/slack/events", content=body, headers={"Content-Type": FORM, **headers})
        health = await front.get("/healthz")
    assert answer.status_code == 401
    assert inbox.count() == 0
    assert health.status_code == 200
    inbox.close()


async def test_url_verification_and_ssl_check_are_answered_by_the_front(slack_bot, tmp_path):
    signer = SlackSigner()
    inbox = Inbox(tmp_path / "front.inbox.db")
    challenge = json.dumps({"type": "url_verification", "challenge": "abc123", "token": "t"}).encode()
    ssl = urllib.parse.urlencode({"ssl_check": "1", "token": "t"}).encode()
    async with front_client(slack_bot.settings, inbox) as front:
        verified = await front.post("/slack/events", content=challenge, headers=signer.headers(challenge, JSON))
        checked = await front.post("/slack/events", content=ssl, headers=signer.headers(ssl, FORM))
    bolt_verified = await slack_bot.post(challenge, JSON)
    assert verified.json() == {"challenge": "abc123"} == bolt_verified.json()
    assert checked.status_code == 200 and checked.content == b""
    assert inbox.count() == 0
    inbox.close()


@pytest.mark.parametrize("env", [
    {},  # no credentials: the sandbox, every provider
    {"PLIVO_AUTH_ID": "MAXXXXXXXXXXXXXXXXXX", "PLIVO_AUTH_TOKEN": "secret"},
    {"TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "t", "TELNYX_API_KEY": "KEY0123"},
    {"WEBEX_ACCESS_TOKEN": "tok", "ACS_CONNECTION_STRING": "endpoint=https://x.communication.azure.com/;accesskey=a2V5"},
])
async def test_the_front_knows_the_enabled_providers_as_the_work_process_builds_them(settings_env, env):
    settings = settings_env(**env)
    providers, sandbox = build_providers(settings)
    try:
        assert enabled_provider_names(settings) == set(providers)
    finally:
        for provider in providers.values():
            await provider.aclose()


def test_each_live_process_takes_its_own_inbox_slot(tmp_path):
    import os

    base = tmp_path / "numbers.inbox.db"
    first, fd1 = claim_slot(base)
    second, fd2 = claim_slot(base)
    assert (first, second) == (base, tmp_path / "numbers.inbox-1.db")
    os.close(fd1)  # the first process ends: its slot, and the rows in it, go to the next to start
    again, fd3 = claim_slot(base)
    assert again == base
    os.close(fd2)
    os.close(fd3)


def test_inbox_rows_come_back_in_order_and_go_when_deleted(tmp_path):
    inbox = Inbox(tmp_path / "i.db")
    ids_ = [inbox.put(f"b{n}".encode(), {"content-type": FORM}) for n in range(5)]
    assert [r.body for r in inbox.after(0)] == [b"b0", b"b1", b"b2", b"b3", b"b4"]
    assert [r.id for r in inbox.after(ids_[2])] == ids_[3:]
    inbox.delete(ids_[0])
    other = Inbox(tmp_path / "i.db")  # another process's connection sees the same rows
    assert [r.id for r in other.after(0)] == ids_[1:]
    other.close()
    inbox.close()
