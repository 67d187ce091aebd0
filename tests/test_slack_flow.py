"""The Slack flows end to end: signed requests into the real app under uvicorn, a recording Slack Web API,
the sandbox providers behind the real clients."""

from __future__ import annotations

import csv
import io
import json

from bot.slack import ids
from tests.slack_harness import (  # noqa: F401  (fixtures)
    APPROVAL_CHANNEL,
    APPROVER,
    GROUP_MEMBER,
    OUTSIDER,
    REQUESTER,
    card_text,
    checkboxes_value,
    has_buttons,
    number_value,
    offers_in,
    select_value,
    slack_bot,
    slack_bot_factory,
    text_value,
)


async def search(bot, text="search US tollfree 833 x2", user=REQUESTER):
    response, url = await bot.command(text, user=user)
    assert response.status_code == 200
    posts = await bot.response_to(url)
    return posts[-1]


async def request_offer(bot, provider="ACS", justification="Support line for the spring campaign", user=REQUESTER, quantity=None, text="search US tollfree 833 x2"):
    """Search, click Request on the first offer of ``provider``, submit the form; return (request, card ts)."""
    post = await search(bot, text, user=user)
    offer_id = next(oid for name, oid, _ in offers_in(post) if name == provider)
    # Forms and cards from earlier requests are already there: wait for this one's own.
    forms_before, cards_before = len(bot.slack.of("views.open")), len(cards_posted(bot))
    response, _ = await bot.click(ids.ACTION_REQUEST, offer_id, user=user, where="ephemeral")
    assert response.status_code == 200
    opened = await bot.slack.wait_for(lambda: len(bot.slack.of("views.open")) > forms_before and bot.slack.of("views.open"), what="views.open")
    view = opened[-1].view()
    assert view["callback_id"] == ids.VIEW_REQUEST
    values = {ids.INPUT_JUSTIFICATION: text_value(justification)}
    if quantity is not None:
        values[ids.INPUT_QUANTITY] = number_value(quantity)
    response = await bot.submit(ids.VIEW_REQUEST, values, user=user, private_metadata=view["private_metadata"])
    assert response.status_code == 200 and response.content in (b"", b"{}")
    cards = await bot.slack.wait_for(
        lambda: len(cards_posted(bot)) > cards_before and cards_posted(bot), what="the approval card"
    )
    card = cards[-1]
    # The card is on Slack a moment before the bot has read Slack's answer and saved where it is.
    request = await bot.slack.wait_for(
        lambda: (saved := card_saved(bot, user)) and saved.card_ts == card.answer["ts"] and saved,
        what="the card's ts on the request",
    )
    assert request.card_ts == card.answer["ts"] and request.card_channel == APPROVAL_CHANNEL
    return request, card.answer["ts"]


def cards_posted(bot):
    """Cards posted in the approval channel (not replies in their threads)."""
    return [c for c in bot.slack.posted_to(APPROVAL_CHANNEL) if not c.params.get("thread_ts")]


def card_saved(bot, user):
    requests = bot.store.list_requests(requester=user, limit=1)
    return requests[0] if requests and requests[0].card_ts else None


async def test_search_request_approve_purchase_updates_card_and_dms(slack_bot):
    bot, slack = slack_bot, slack_bot.slack
    post = await search(bot)
    offers = offers_in(post)
    assert [name for name, _, _ in offers][:2] == ["Plivo", "ACS"]  # cheapest first
    acs_text = next(text for name, _, text in offers if name == "ACS")
    assert "+1833" in acs_text and "(833)" in acs_text and "$2.00/month" in acs_text and "held" in acs_text

    request, ts = await request_offer(bot)
    card = card_text(slack, ts)
    assert "Waiting for approval" in card and "<@UREQUESTER>" in card and "$2.00/month each\n*$4.00/month* in total" in card
    assert "Support line for the spring campaign" in card and "held" in card
    assert has_buttons(slack.messages[(APPROVAL_CHANNEL, ts)]["blocks"])
    buttons = [e for b in slack.messages[(APPROVAL_CHANNEL, ts)]["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert {(b["action_id"], b["value"]) for b in buttons} == {
        (ids.ACTION_APPROVE, str(request.id)),
        (ids.ACTION_DENY, str(request.id)),
    }
    created_dm = await slack.wait_for(lambda: slack.dms(REQUESTER), what="created DM")
    assert f"archives/{APPROVAL_CHANNEL}/p" in created_dm[0].params["text"]  # a permalink to the card
    assert f"<#{APPROVAL_CHANNEL}>" in created_dm[0].params["text"]

    response, _ = await bot.click(ids.ACTION_APPROVE, str(request.id), user=APPROVER, channel=APPROVAL_CHANNEL, message_ts=ts)
    assert response.status_code == 200
    done = await bot.state_of(request.id, {"fulfilled"})
    assert sorted(done.numbers) == sorted(request.numbers)
    assert bot.sandbox.acs.count("POST", r"/availablePhoneNumbers/:purchase$") == 1

    final = await slack.wait_for(lambda: "Purchased" in card_text(slack, ts) and card_text(slack, ts), what="purchased card")
    assert "(833)" in final and "+1833" in final and "$4.00/month" in final
    assert not has_buttons(slack.messages[(APPROVAL_CHANNEL, ts)]["blocks"])
    updates = [c.text() for c in slack.of("chat.update", ts=ts)]
    assert any("Approved by <@UAPPROVER1>" in u and "buying" in u for u in updates)
    assert all(c.params["channel"] == APPROVAL_CHANNEL for c in slack.of("chat.update"))

    dms = await slack.wait_for(lambda: len(slack.dms(REQUESTER)) >= 3 and slack.dms(REQUESTER), what="3 DMs")
    texts = [d.params["text"] for d in dms]
    assert "waiting for approval" in texts[0]
    assert any("approved by <@UAPPROVER1>" in t for t in texts)
    assert any("is done" in t and "Purchased" in t for t in texts)


async def test_plivo_request_asks_quantity_and_checks_it(slack_bot):
    bot, slack = slack_bot, slack_bot.slack
    post = await search(bot, "search US local 415 via plivo")
    offer_id = offers_in(post)[0][1]
    await bot.click(ids.ACTION_REQUEST, offer_id, user=REQUESTER, where="ephemeral")
    view = (await slack.wait_for(lambda: slack.of("views.open")))[-1].view()
    quantity_block = next(b for b in view["blocks"] if b.get("block_id") == ids.INPUT_QUANTITY)
    assert quantity_block["element"]["max_value"] == "10"  # min(stock, NUMBERS_MAX_QUANTITY)

    too_many = await bot.submit(
        ids.VIEW_REQUEST,
        {ids.INPUT_QUANTITY: number_value(11), ids.INPUT_JUSTIFICATION: text_value("Sales")},
        user=REQUESTER,
        private_metadata=view["private_metadata"],
    )
    assert too_many.status_code == 200
    assert too_many.json() == {"response_action": "errors", "errors": {ids.INPUT_QUANTITY: "A whole number from 1 to 10."}}
    blank = await bot.submit(
        ids.VIEW_REQUEST,
        {ids.INPUT_QUANTITY: number_value(3), ids.INPUT_JUSTIFICATION: text_value("   ")},
        user=REQUESTER,
        private_metadata=view["private_metadata"],
    )
    assert blank.json()["errors"].keys() == {ids.INPUT_JUSTIFICATION}
    assert bot.store.list_requests(requester=REQUESTER) == []

    ok = await bot.submit(
        ids.VIEW_REQUEST,
        {ids.INPUT_QUANTITY: number_value(3), ids.INPUT_JUSTIFICATION: text_value("Sales team")},
        user=REQUESTER,
        private_metadata=view["private_metadata"],
    )
    assert ok.status_code == 200
    request = await slack.wait_for(lambda: card_saved(bot, REQUESTER))
    assert request.quantity == 3 and request.provider == "plivo"
    assert "3 numbers from the group" in card_text(slack, request.card_ts)


async def test_deny_with_reason_via_modal(slack_bot):
    bot, slack = slack_bot, slack_bot.slack
    request, ts = await request_offer(bot)
    await bot.click(ids.ACTION_DENY, str(request.id), user=APPROVER, channel=APPROVAL_CHANNEL, message_ts=ts)
    opened = await slack.wait_for(lambda: [c for c in slack.of("views.open") if c.view()["callback_id"] == ids.VIEW_DENY])
    view = opened[-1].view()
    empty = await bot.submit(ids.VIEW_DENY, {ids.INPUT_REASON: text_value(" ")}, user=APPROVER, private_metadata=view["private_metadata"])
    assert empty.json()["response_action"] == "errors"
    await bot.submit(
        ids.VIEW_DENY, {ids.INPUT_REASON: text_value("Use the shared <!here> line")}, user=APPROVER, private_metadata=view["private_metadata"]
    )
    denied = await bot.state_of(request.id, {"denied"})
    assert denied.decided_by == APPROVER
    card = await slack.wait_for(lambda: "Denied by" in card_text(slack, ts) and card_text(slack, ts))
    assert "Denied by <@UAPPROVER1>" in card and "Use the shared &lt;!here&gt; line" in card
    assert not has_buttons(slack.messages[(APPROVAL_CHANNEL, ts)]["blocks"])
    dm = await slack.wait_for(lambda: [d for d in slack.dms(REQUESTER) if "denied" in d.params["text"]])
    assert "&lt;!here&gt;" in dm[0].params["text"] and "<!here>" not in dm[0].params["text"]


async def test_cancel_mine_show_pending(slack_bot):
    bot, slack = slack_bot, slack_bot.slack
    request, ts = await request_offer(bot)

    response, url = await bot.command("mine")
    mine = (await bot.response_to(url))[0]
    assert mine["response_type"] == "ephemeral" and f"#{request.id}" in mine["blocks"][1]["text"]["text"]

    response, url = await bot.command(f"show {request.id}")
    shown = json.dumps((await bot.response_to(url))[0])
    assert "History" in shown and "requested" in shown

    response, url = await bot.command("pending", user=APPROVER)
    pending = (await bot.response_to(url))[0]
    assert any(b["type"] == "actions" for b in pending["blocks"])
    response, url = await bot.command("pending", user=OUTSIDER)
    assert "Only approvers" in (await bot.response_to(url))[0]["text"]

    response, url = await bot.command(f"show {request.id}", user=OUTSIDER)
    assert "not yours" in (await bot.response_to(url))[0]["text"]

    response, url = await bot.command(f"cancel {request.id}", user=OUTSIDER)
    assert "Only the requester" in (await bot.response_to(url))[0]["text"]
    response, url = await bot.command(f"cancel {request.id}")
    assert "cancelled" in (await bot.response_to(url))[0]["text"]
    assert (await bot.service.get(request.id)).state.value == "cancelled"
    card = await slack.wait_for(lambda: "Cancelled" in card_text(slack, ts) and card_text(slack, ts))
    assert not has_buttons(slack.messages[(APPROVAL_CHANNEL, ts)]["blocks"])


async def test_help_and_unparseable_text_answer_in_the_ack(slack_bot):
    bot = slack_bot
    response, url = await bot.command("help")
    assert response.status_code == 200 and "Usage" in response.json()["blocks"][0]["text"]["text"]
    response, url = await bot.command("search XX tollfree")
    body = response.json()
    assert "`XX` is not a country code" in body["text"]
    assert "&lt;CC&gt;" in body["blocks"][1]["text"]["text"]  # the usage, escaped for mrkdwn
    response, _ = await bot.command("buy me a number <!channel>")
    assert "is not something I can do" in response.json()["text"]
    assert "<!channel>" not in json.dumps(response.json()["blocks"])
    assert len(bot.sandbox.acs.requests) == 0 and len(bot.sandbox.plivo.requests) == 0  # nothing went to a provider


async def test_audit_uploads_csv_to_the_approvers_dm(slack_bot):
    bot, slack = slack_bot, slack_bot.slack
    request, _ = await request_offer(bot)
    response, url = await bot.command("audit 7", user=APPROVER)
    assert response.status_code == 200
    answer = (await bot.response_to(url))[0]
    assert "is in our DM" in answer["text"]
    complete = slack.of("files.completeUploadExternal")[-1]
    assert complete.params["channel_id"] == "D" + APPROVER[1:]
    [(file_id, data)] = slack.uploads.items()
    assert json.loads(complete.params["files"])[0]["id"] == file_id
    rows = list(csv.reader(io.StringIO(data.decode())))
    assert rows[0] == ["id", "at", "request_id", "actor", "kind", "message", "data"]
    kinds = {r[4] for r in rows[1:]}
    assert {"searched", "requested"} <= kinds
    assert any(r[2] == str(request.id) for r in rows[1:])
    upload_url_call = slack.of("files.getUploadURLExternal")[-1]
    assert upload_url_call.params["filename"].startswith("numbers-audit-7d-") and int(upload_url_call.params["length"]) == len(data)

    response, url = await bot.command("audit", user=OUTSIDER)
    assert "Only approvers" in (await bot.response_to(url))[0]["text"]
    assert len(slack.uploads) == 1
    refused = [e for e in bot.store.iter_events(request.created_at.replace(year=2000)) if e.kind == "refused"]
    assert refused and refused[-1].actor == OUTSIDER


async def test_search_modal_validates_then_searches(slack_bot):
    bot, slack = slack_bot, slack_bot.slack
    response, url = await bot.command("")
    assert response.status_code == 200
    view = (await slack.wait_for(lambda: slack.of("views.open")))[-1].view()
    assert view["callback_id"] == ids.VIEW_SEARCH
    assert {b["block_id"] for b in view["blocks"]} == {
        ids.INPUT_PROVIDER, ids.INPUT_COUNTRY, ids.INPUT_TYPE, ids.INPUT_PREFIX, ids.INPUT_CAPABILITIES, ids.INPUT_QUANTITY
    }
    good = {
        ids.INPUT_PROVIDER: select_value("acs"),
        ids.INPUT_COUNTRY: text_value("us"),
        ids.INPUT_TYPE: select_value("tollfree"),
        ids.INPUT_PREFIX: text_value("833"),
        ids.INPUT_CAPABILITIES: checkboxes_value("sms"),
        ids.INPUT_QUANTITY: number_value(1),
    }
    bad = {**good, ids.INPUT_COUNTRY: text_value("ZZ"), ids.INPUT_PREFIX: text_value("8x3"), ids.INPUT_QUANTITY: number_value(99)}
    errors = (await bot.submit(ids.VIEW_SEARCH, bad, user=REQUESTER, private_metadata=view["private_metadata"])).json()
    assert errors["response_action"] == "errors"
    assert set(errors["errors"]) == {ids.INPUT_COUNTRY, ids.INPUT_PREFIX, ids.INPUT_QUANTITY}

    ok = await bot.submit(ids.VIEW_SEARCH, good, user=REQUESTER, private_metadata=view["private_metadata"])
    assert ok.status_code == 200
    posts = await bot.response_to(url)
    assert [name for name, _, _ in offers_in(posts[-1])] == ["ACS"]


async def test_assign_lists_webex_numbers_and_request_uses_the_slack_email(slack_bot):
    bot, slack = slack_bot, slack_bot.slack
    response, url = await bot.command("assign")
    post = (await bot.response_to(url))[-1]
    offers = offers_in(post)
    assert offers and all(name == "Webex Calling" for name, _, _ in offers)
    request, ts = await request_offer(bot, provider="Webex Calling", text="assign")
    assert slack.of("users.info", user=REQUESTER)
    assert request.requester_email == "alice@example.com" and request.ref.get("person_id")
    await bot.click(ids.ACTION_APPROVE, str(request.id), user=APPROVER, channel=APPROVAL_CHANNEL, message_ts=ts)
    await bot.state_of(request.id, {"fulfilled"})
    card = await slack.wait_for(lambda: "Assigned" in card_text(slack, ts) and card_text(slack, ts))
    assert "to <@UREQUESTER>" in card


async def test_request_failure_after_ack_is_told_to_the_user(slack_bot):
    """Webex prepare() refuses a requester with no e-mail: the modal closed already, the answer goes to the response_url."""
    bot, slack = slack_bot, slack_bot.slack
    slack.emails.pop(REQUESTER)
    response, url = await bot.command("assign")
    post = (await bot.response_to(url))[-1]
    offer_id = offers_in(post)[0][1]
    _, click_url = await bot.click(ids.ACTION_REQUEST, offer_id, user=REQUESTER, where="ephemeral")
    view = (await slack.wait_for(lambda: slack.of("views.open")))[-1].view()
    await bot.submit(ids.VIEW_REQUEST, {ids.INPUT_JUSTIFICATION: text_value("desk phone")}, user=REQUESTER, private_metadata=view["private_metadata"])
    answer = (await bot.response_to(click_url))[-1]
    assert "Your request was not sent" in answer["text"] and "no e-mail" in answer["text"]
    assert bot.store.list_requests(requester=REQUESTER) == []


async def test_two_approvals_card_counts(slack_bot_factory):
    bot = await slack_bot_factory(NUMBERS_REQUIRED_APPROVALS=2)
    slack = bot.slack
    request, ts = await request_offer(bot)
    assert "0 of 2 approvals" in card_text(slack, ts)
    response, url = await bot.click(ids.ACTION_APPROVE, str(request.id), user=APPROVER, channel=APPROVAL_CHANNEL, message_ts=ts)
    counted = (await bot.response_to(url))[0]
    assert "1 of 2" in counted["text"] and counted["response_type"] == "ephemeral"
    await slack.wait_for(lambda: "1 of 2 approvals" in card_text(slack, ts))
    assert has_buttons(slack.messages[(APPROVAL_CHANNEL, ts)]["blocks"])
    # A member of the approver user group (S…) is an approver too, found through usergroups.users.list.
    await bot.click(ids.ACTION_APPROVE, str(request.id), user=GROUP_MEMBER, channel=APPROVAL_CHANNEL, message_ts=ts)
    await bot.state_of(request.id, {"fulfilled"})
    assert slack.of("usergroups.users.list", usergroup="SAPPROVERS")
    await slack.wait_for(lambda: "Purchased" in card_text(slack, ts))


async def test_app_home_for_an_approver_shows_working_queue(slack_bot):
    bot, slack = slack_bot, slack_bot.slack
    request, ts = await request_offer(bot)
    response = await bot.open_home(APPROVER)
    assert response.status_code == 200
    published = await slack.wait_for(lambda: slack.of("views.publish", user_id=APPROVER))
    view = published[-1].view()
    assert view["type"] == "home" and len(view["blocks"]) <= 100
    queue = [b for b in view["blocks"] if b["type"] == "actions"]
    assert [e["value"] for e in queue[0]["elements"]] == [str(request.id), str(request.id)]
    assert {e["action_id"] for e in queue[0]["elements"]} == {ids.ACTION_APPROVE, ids.ACTION_DENY}

    # Approving from Home works and republishes Home without the request in the queue.
    await bot.click(ids.ACTION_APPROVE, str(request.id), user=APPROVER, where="home")
    await bot.state_of(request.id, {"approved", "fulfilling", "fulfilled"})
    republished = await slack.wait_for(lambda: len(slack.of("views.publish", user_id=APPROVER)) >= 2 and slack.of("views.publish", user_id=APPROVER))
    blocks = republished[-1].view()["blocks"]
    assert f"You approved request #{request.id}" in json.dumps(blocks)
    assert not any(b["type"] == "actions" for b in blocks)

    await bot.open_home(OUTSIDER)
    outsider = (await slack.wait_for(lambda: slack.of("views.publish", user_id=OUTSIDER)))[-1].view()
    assert "Waiting for a decision" not in json.dumps(outsider)


async def test_expiry_and_reminder_reach_the_card_thread_and_dm(slack_bot_factory):
    bot = await slack_bot_factory(NUMBERS_REMIND_AFTER="1h", NUMBERS_REQUEST_TTL="2h")
    slack = bot.slack
    request, ts = await request_offer(bot)
    bot.clock.advance(3600 + 5)
    bot.components.worker.kick()
    reminder = await slack.wait_for(lambda: [c for c in slack.posted_to(APPROVAL_CHANNEL) if c.params.get("thread_ts") == ts])
    assert "<@UAPPROVER1>" in reminder[0].params["text"] and "<!subteam^SAPPROVERS>" in reminder[0].params["text"]
    bot.clock.advance(3600)
    bot.components.worker.kick()
    await bot.state_of(request.id, {"expired"})
    await slack.wait_for(lambda: "Expired" in card_text(slack, ts))
    assert not has_buttons(slack.messages[(APPROVAL_CHANNEL, ts)]["blocks"])
    await slack.wait_for(lambda: [d for d in slack.dms(REQUESTER) if "expired" in d.params["text"]])
