"""Number lifecycle in Slack: /numbers inventory, costs, release through a card, and Home's own numbers."""

from __future__ import annotations

from bot.slack import ids
from bot.slack.render.kit import as_text
from tests.slack_harness import (  # noqa: F401  (fixtures)
    APPROVAL_CHANNEL,
    APPROVER,
    OUTSIDER,
    REQUESTER,
    card_text,
    has_buttons,
    slack_bot,
    text_value,
)
from tests.test_slack_flow import request_offer


async def bought(bot):
    request, ts = await request_offer(bot)
    await bot.click(ids.ACTION_APPROVE, str(request.id), user=APPROVER, channel=APPROVAL_CHANNEL, message_ts=ts)
    return await bot.state_of(request.id, {"fulfilled"})


async def answer(bot, text, user=REQUESTER):
    response, url = await bot.command(text, user=user)
    assert response.status_code == 200
    return (await bot.response_to(url))[-1]


def post_text(post) -> str:

    return as_text(post.get("blocks") or []) or post.get("text", "")


async def test_inventory_and_costs(slack_bot):
    bot = slack_bot
    done = await bought(bot)
    inventory = post_text(await answer(bot, "inventory"))
    assert "Numbers the team holds (2)" in inventory
    for number in done.numbers:
        assert number in inventory
    assert "Support line for the spring campaign" in inventory and "<@UAPPROVER1>" in inventory
    assert "Monthly total: $4.00" in inventory and "ACS $4.00" in inventory
    costs = post_text(await answer(bot, "costs", user=OUTSIDER))
    assert "Monthly total: $4.00" in costs and "<@UREQUESTER> $4.00" in costs


async def test_release_through_the_card(slack_bot):
    bot, slack = slack_bot, slack_bot.slack
    done = await bought(bot)
    number = done.numbers[0]

    refused = post_text(await answer(bot, f"release {number}", user=OUTSIDER))
    assert "or an approver can release it" in refused

    opened_before = len(slack.of("views.open"))
    response, _ = await bot.command(f"release {number}", user=REQUESTER)
    assert response.status_code == 200
    opened = await slack.wait_for(lambda: len(slack.of("views.open")) > opened_before and slack.of("views.open"))
    view = opened[-1].view()
    assert view["callback_id"] == ids.VIEW_RELEASE and number in str(view)
    blank = await bot.submit(ids.VIEW_RELEASE, {ids.INPUT_REASON: text_value("  ")}, user=REQUESTER,
                             private_metadata=view["private_metadata"])
    assert blank.json()["response_action"] == "errors"
    ok = await bot.submit(ids.VIEW_RELEASE, {ids.INPUT_REASON: text_value("Campaign is over")}, user=REQUESTER,
                          private_metadata=view["private_metadata"])
    assert ok.status_code == 200

    def release_card():
        requests = [r for r in bot.store.list_requests(requester=REQUESTER) if r.kind == "release" and r.card_ts]
        return requests[0] if requests else None

    release = await slack.wait_for(release_card, what="the release card")
    card = card_text(slack, release.card_ts)
    assert "release of" in card and number in card and "saves" in card and "Campaign is over" in card
    assert has_buttons(slack.messages[(APPROVAL_CHANNEL, release.card_ts)]["blocks"])

    await bot.click(ids.ACTION_APPROVE, str(release.id), user=APPROVER, channel=APPROVAL_CHANNEL,
                    message_ts=release.card_ts)
    await bot.state_of(release.id, {"fulfilled"})
    final = await slack.wait_for(lambda: "Released" in card_text(slack, release.card_ts) and card_text(slack, release.card_ts))
    assert number in final
    assert number not in [n.number for n in (await bot.service.inventory())]
    assert bot.sandbox.acs.count("DELETE", r"/phoneNumbers/") == 1
    inventory = post_text(await answer(bot, "inventory"))
    assert "Numbers the team holds (1)" in inventory and "Monthly total: $2.00" in inventory


async def test_home_shows_the_viewers_numbers(slack_bot):
    bot, slack = slack_bot, slack_bot.slack
    done = await bought(bot)
    await bot.open_home(REQUESTER)
    published = await slack.wait_for(lambda: slack.of("views.publish"), what="views.publish")
    home = str(published[-1].params)
    assert "Your numbers (2, $4.00/month)" in home
    assert done.numbers[0] in home
