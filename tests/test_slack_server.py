"""The server around the Slack app: ack timing, health, lifespan, settings, Slack API faults, logs, directory."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest


from bot.domain.errors import ConfigError, DirectoryUnavailable
from bot.domain.policy import Policy
from bot.logs import REDACTED, RedactSecrets
from bot.server import create_asgi_app
from bot.slack import ids
from bot.bootstrap import slack_client
from bot.slack.adapters.directory import SlackDirectory
from tests.slack_harness import (  # noqa: F401  (fixtures)
    APPROVAL_CHANNEL,
    APPROVER,
    APPROVER_GROUP,
    BOT_TOKEN,
    GROUP_MEMBER,
    OUTSIDER,
    REQUESTER,
    SIGNING_SECRET,
    RecordingSlack,
    bot_settings,
    card_text,
    offers_in,
    slack_bot,
    text_value,
)
from tests.test_slack_flow import request_offer


def slow_providers(bot, seconds: float) -> None:
    for app in bot.sandbox.apps.values():
        app.latency = seconds


async def test_acks_do_not_wait_for_slow_providers(slack_bot):
    bot = slack_bot
    slow_providers(bot, 2.0)
    started = time.monotonic()
    response, url = await bot.command("search US tollfree 833 via plivo")
    acked = time.monotonic() - started
    assert response.status_code == 200 and response.text.startswith(":mag: Searching US toll-free 833 at Plivo")
    # The ack came before any provider could have answered (they take 2 s): it did not wait for them.
    # (How fast acks are is measured by benchmarks/ack_latency.py, not here.)
    assert acked < 1.5, f"the slash command took {acked:.2f}s to ack"
    posts = await bot.response_to(url, timeout=20)
    assert time.monotonic() - started >= 2.0  # the search itself did wait for the providers
    assert offers_in(posts[-1])


async def test_view_submission_acks_before_a_slow_prepare(slack_bot):
    """Webex prepare() looks the person up at Webex: the modal must close before that answers."""
    bot, slack = slack_bot, slack_bot.slack
    _, url = await bot.command("assign")
    offer_id = offers_in((await bot.response_to(url))[-1])[0][1]
    await bot.click(ids.ACTION_REQUEST, offer_id, user=REQUESTER, where="ephemeral")
    view = (await slack.wait_for(lambda: slack.of("views.open")))[-1].view()
    slow_providers(bot, 2.0)
    started = time.monotonic()
    response = await bot.submit(ids.VIEW_REQUEST, {ids.INPUT_JUSTIFICATION: text_value("desk")}, user=REQUESTER, private_metadata=view["private_metadata"])
    assert response.status_code == 200 and time.monotonic() - started < 0.5
    await slack.wait_for(lambda: slack.posted_to(APPROVAL_CHANNEL), timeout=20)
    assert time.monotonic() - started >= 2.0


async def test_healthz_and_unknown_paths(slack_bot):
    health = await slack_bot.http.get(slack_bot.url + "/healthz")
    assert health.status_code == 200 and health.text == "ok\n"
    assert (await slack_bot.http.get(slack_bot.url + "/nope")).status_code == 404


async def test_lifespan_runs_the_worker_and_closes_on_shutdown(settings_env):
    from tests.slack_harness import start_bot

    bot = await start_bot(settings_env)
    worker_tasks = [t for t in asyncio.all_tasks() if t.get_name() == "numbers-bot worker"]
    assert len(worker_tasks) == 1 and not worker_tasks[0].done()
    await bot.stop()
    assert worker_tasks[0].done()
    with pytest.raises(Exception):
        bot.store.db.execute("SELECT 1")  # the store was closed by components.aclose()
    await bot.slack.stop()


async def test_missing_slack_settings_name_each_variable(settings_env):
    settings = settings_env(NUMBERS_APPROVERS="")
    with pytest.raises(ConfigError) as caught:
        create_asgi_app(settings)
    names = [p.split(" ", 1)[0] for p in caught.value.problems]
    assert names == ["SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "NUMBERS_APPROVAL_CHANNEL", "NUMBERS_APPROVERS"]
    assert all("not set" in p for p in caught.value.problems)


def test_serve_picks_socket_mode_with_an_app_token(settings_env, monkeypatch):
    import bot.server as server

    chosen = []

    async def fake_socket_mode(settings, **_):
        chosen.append("socket")

    monkeypatch.setattr(server, "run_socket_mode", fake_socket_mode)

    async def known(client):
        from bot.slack.gate import Installation

        return Installation(team_id="T0NUMBERS", known=True)

    monkeypatch.setattr(server, "_learn", known)  # auth.test before the port is bound: no Slack here
    monkeypatch.setattr("uvicorn.Server.run", lambda self: chosen.append(("http", self.config.port)))
    logging_set_up = []
    # Called directly (not through the CLI), serve() sets up redacting logs itself; recorded, not applied,
    # so pytest's own log handlers stay in place.
    monkeypatch.setattr(server, "configure_logging", lambda level, secrets: logging_set_up.append(list(secrets)))
    monkeypatch.setattr(logging.getLogger(), "handlers", [])  # as if nothing had set logging up
    base = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "NUMBERS_APPROVAL_CHANNEL": APPROVAL_CHANNEL,
        "NUMBERS_SANDBOX": True,
    }
    server.serve(settings_env(**base, SLACK_APP_TOKEN="xapp-1-A0-1-socket"))
    server.serve(settings_env(**base, SLACK_SIGNING_SECRET=SIGNING_SECRET, PORT=3999))
    assert chosen == ["socket", ("http", 3999)]
    assert logging_set_up and "xapp-1-A0-1-socket" in logging_set_up[0]


async def test_socket_mode_end_to_end(settings_env):
    """Socket Mode against a local stand-in: apps.connections.open, hello, envelopes in, acks out."""
    import urllib.parse

    from bot.sandbox import SandboxServices
    from bot.sandbox.common import Clock
    from bot.server import run_socket_mode
    from tests.slack_harness import APP_TOKEN, slash_command

    slack = await RecordingSlack().start()
    settings = bot_settings(settings_env, slack, SLACK_APP_TOKEN=APP_TOKEN, SLACK_SIGNING_SECRET="")
    clock = Clock()
    task = asyncio.create_task(run_socket_mode(settings, sandbox=SandboxServices.create(None, clock=clock), clock=clock.now))
    try:
        await slack.wait_for(lambda: slack.sockets, timeout=10, what="the Socket Mode connection")
        assert slack.of("apps.connections.open")[0].headers["authorization"] == f"Bearer {APP_TOKEN}"
        worker_tasks = [t for t in asyncio.all_tasks() if t.get_name() == "numbers-bot worker"]
        assert worker_tasks and not worker_tasks[0].done()

        def command(text: str, response_url: str = "") -> dict:
            form = urllib.parse.parse_qs(slash_command(text, user=REQUESTER, response_url=response_url).decode())
            return {k: v[0] for k, v in form.items()}

        help_env = await slack.push("slash_commands", command("help"))
        acked = await slack.wait_for(lambda: slack.socket_replies.get(help_env), what="the help ack")
        assert "Usage" in acked["blocks"][0]["text"]["text"] and acked["response_type"] == "ephemeral"
        url = slack.response_url("socket")
        mine_env = await slack.push("slash_commands", command("mine", url))
        await slack.wait_for(lambda: mine_env in slack.socket_replies)
        posts = await slack.wait_for(lambda: slack.response_posts(url))
        assert "You have no requests yet" in posts[0]["blocks"][1]["text"]["text"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await slack.stop()
    assert worker_tasks[0].done()


async def test_rate_limited_card_update_is_retried_after_retry_after(slack_bot):
    bot, slack = slack_bot, slack_bot.slack
    request, ts = await request_offer(bot)
    slack.fault("chat.update", status=429, headers={"Retry-After": "1"})
    await bot.click(ids.ACTION_APPROVE, str(request.id), user=APPROVER, channel=APPROVAL_CHANNEL, message_ts=ts)
    await slack.wait_for(lambda: "Purchased" in card_text(slack, ts), timeout=20)
    updates = slack.of("chat.update", ts=ts)
    assert updates[0].status == 429 and updates[1].status == 200
    assert updates[1].at - updates[0].at >= 1.0


async def test_expired_trigger_id_is_explained(slack_bot):
    bot, slack = slack_bot, slack_bot.slack
    _, url = await bot.command("search US tollfree 833")
    offer_id = offers_in((await bot.response_to(url))[-1])[0][1]
    slack.fault("views.open", error="expired_trigger_id")
    _, click_url = await bot.click(ids.ACTION_REQUEST, offer_id, user=REQUESTER, where="ephemeral")
    answer = (await bot.response_to(click_url))[0]
    assert "expired_trigger_id" in answer["text"] and "Click *Request* again" in answer["text"]


async def test_card_that_cannot_be_posted_is_reported_and_posted_later(slack_bot):
    """The bot is not in the approval channel: the requester is told; the next step posts the card."""
    bot, slack = slack_bot, slack_bot.slack
    slack.fault("chat.postMessage", error="not_in_channel")
    post = None
    _, url = await bot.command("search US tollfree 833")
    offer_id = next(oid for name, oid, _ in offers_in((await bot.response_to(url))[-1]) if name == "ACS")
    await bot.click(ids.ACTION_REQUEST, offer_id, user=REQUESTER, where="ephemeral")
    view = (await slack.wait_for(lambda: slack.of("views.open")))[-1].view()
    await bot.submit(ids.VIEW_REQUEST, {ids.INPUT_JUSTIFICATION: text_value("ivr")}, user=REQUESTER, private_metadata=view["private_metadata"])
    dm = await slack.wait_for(lambda: slack.dms(REQUESTER))
    assert "could not be posted" in dm[0].params["text"] and "/numbers pending" in dm[0].params["text"]
    request = bot.store.list_requests(requester=REQUESTER)[0]
    assert request.state.value == "pending" and request.card_ts is None
    response, url = await bot.command(f"pending", user=APPROVER)
    assert f"#{request.id}" in str((await bot.response_to(url))[0])
    await bot.click(ids.ACTION_APPROVE, str(request.id), user=APPROVER, where="ephemeral")
    await bot.state_of(request.id, {"fulfilled"})
    post = await slack.wait_for(lambda: bot.store.get_request(request.id).card_ts)
    assert "Purchased" in await slack.wait_for(lambda: "Purchased" in card_text(slack, post) and card_text(slack, post))


async def test_answers_fall_back_to_ephemeral_then_dm_when_the_response_url_is_gone(slack_bot):
    bot, slack = slack_bot, slack_bot.slack
    slack.response_url_status = 404  # expired: more than 30 minutes or 5 posts
    await bot.command("mine")
    ephemeral = await slack.wait_for(lambda: slack.of("chat.postEphemeral"))
    assert ephemeral[0].params["user"] == REQUESTER and ephemeral[0].params["channel"] == "CGENERAL01"
    slack.fault("chat.postEphemeral", error="not_in_channel")
    await bot.command("mine")
    dm = await slack.wait_for(lambda: slack.dms(REQUESTER))
    assert "Your requests" in dm[0].text()


async def test_unexpected_errors_are_logged_without_secrets_and_answered(slack_bot, caplog, monkeypatch):
    bot = slack_bot

    def broken(user, limit=20):
        raise RuntimeError(f"database exploded near {BOT_TOKEN} and {SIGNING_SECRET}")

    monkeypatch.setattr(bot.service, "mine", broken)
    caplog.handler.addFilter(RedactSecrets(bot.settings.secrets()))  # as bot.logs sets up the root handler
    with caplog.at_level(logging.DEBUG):
        response, url = await bot.command("mine")
        assert response.status_code == 200
        answer = (await bot.response_to(url))[0]
    assert "Something went wrong on my side" in answer["text"] and "ref" in answer["text"]
    assert BOT_TOKEN not in answer["text"]
    logged = caplog.text
    assert "listener failed" in logged and f"database exploded near {REDACTED}" in logged
    for secret in bot.settings.secrets():
        assert secret not in logged


async def test_directory_caches_groups_and_never_trusts_a_list_past_its_age(settings_env):
    slack = await RecordingSlack().start()
    try:
        settings = bot_settings(settings_env, slack)
        now = [0.0]
        directory = SlackDirectory(
            slack_client(settings), settings.policy, ttl=60, failure_ttl=10, monotonic=lambda: now[0]
        )
        assert await directory.is_approver(APPROVER)  # a user id: no API call
        assert slack.of("usergroups.users.list") == []
        assert await directory.is_approver(GROUP_MEMBER)
        assert not await directory.is_approver(OUTSIDER)
        assert len(slack.of("usergroups.users.list")) == 1  # cached
        now[0] = 61
        slack.groups[APPROVER_GROUP] = []  # removed from the group
        assert not await directory.is_approver(GROUP_MEMBER)
        assert len(slack.of("usergroups.users.list")) == 2
        slack.groups[APPROVER_GROUP] = [GROUP_MEMBER]
        now[0] = 200
        slack.fault("usergroups.users.list", error="fatal_error", times=3)
        # The list from before is older than its age: refused, not trusted.
        with pytest.raises(DirectoryUnavailable, match="(?i)could not check your approver group"):
            await directory.is_approver(GROUP_MEMBER)
        calls = len(slack.of("usergroups.users.list"))
        # A failed lookup is remembered briefly: more clicks cost no Slack call.
        now[0] = 205
        with pytest.raises(DirectoryUnavailable):
            await directory.is_approver(GROUP_MEMBER)
        assert len(slack.of("usergroups.users.list")) == calls
        assert await directory.is_approver(APPROVER)  # named users never need the group
        assert await directory.email(REQUESTER) == "alice@example.com"
        assert await directory.email(OUTSIDER) == "nobody@example.com"
        slack.fault("users.info", error="user_not_found")
        assert await directory.email(REQUESTER) is None
    finally:
        await slack.stop()


async def test_directory_without_any_cached_list_fails_closed(settings_env):
    slack = await RecordingSlack().start()
    try:
        settings = bot_settings(settings_env, slack)
        directory = SlackDirectory(slack_client(settings), Policy(approvers=frozenset({APPROVER_GROUP})))
        slack.fault("usergroups.users.list", error="missing_scope")
        with pytest.raises(DirectoryUnavailable):
            await directory.is_approver(GROUP_MEMBER)
    finally:
        await slack.stop()
