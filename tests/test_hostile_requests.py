"""Hostile traffic at ``POST /slack/events``: every request that is not verified, too big, too slow or for
another installation is answered 401/400/403/408/413 and causes nothing — no Web API call, no post to the
``response_url`` it names, no store change — and is logged as one short line without its body."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
import urllib.parse

import httpx
import pytest

from bot.sandbox import SandboxServices
from bot.sandbox.common import Clock
from tests.reliability_harness import snapshot
from tests.slack_harness import (  # noqa: F401  (fixtures)
    APP_ID,
    FORM,
    JSON,
    REQUESTER,
    TEAM_ID,
    RecordingSlack,
    SlackBot,
    app_home_opened,
    block_actions,
    bot_settings,
    slack_bot,
    slash_command,
)

STARTUP_CALLS = ("auth.test", "bots.info")
TOKEN = "verificationTokenHostile"


def command_body(bot, **changes) -> bytes:
    """A slash command naming the recording server's response_url (where an attacker's would be)."""
    form = dict(urllib.parse.parse_qsl(slash_command("mine", user=REQUESTER, response_url=bot.slack.response_url("evil")).decode()))
    form["token"] = TOKEN
    form.update(changes)
    return urllib.parse.urlencode(form).encode()


def signed(bot, body: bytes, content_type: str = FORM, **header_changes) -> dict[str, str]:
    headers = bot.signer.headers(body, content_type)
    headers.update(header_changes)
    return headers


def interaction(bot, **changes) -> bytes:
    raw = block_actions("numbers_home_search", "x", user=REQUESTER, where="home", response_url=bot.slack.response_url("evil"))
    payload = json.loads(dict(urllib.parse.parse_qsl(raw.decode()))["payload"])
    payload.update(changes)
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()


def event(**changes) -> bytes:
    data = json.loads(app_home_opened(REQUESTER))
    data.update(changes)
    return json.dumps(data).encode()


now = lambda: str(int(time.time()))  # noqa: E731

# (name, build(bot) -> (body, headers), status)
HOSTILE = [
    ("400-digit timestamp", lambda b: (command_body(b), {"Content-Type": FORM, "X-Slack-Request-Timestamp": "9" * 400, "X-Slack-Signature": "v0=deadbeef"}), 401),
    ("5000-digit timestamp", lambda b: (command_body(b), {"Content-Type": FORM, "X-Slack-Request-Timestamp": "1" * 5000, "X-Slack-Signature": "v0=" + "0" * 64}), 401),
    ("400-digit timestamp, well-formed signature", lambda b: (command_body(b), {"Content-Type": FORM, "X-Slack-Request-Timestamp": "9" * 400, "X-Slack-Signature": "v0=" + "a" * 64}), 401),
    ("negative timestamp", lambda b: (command_body(b), {"Content-Type": FORM, "X-Slack-Request-Timestamp": "-" + now(), "X-Slack-Signature": "v0=" + "0" * 64}), 401),
    ("float timestamp", lambda b: (command_body(b), {"Content-Type": FORM, "X-Slack-Request-Timestamp": now() + ".5", "X-Slack-Signature": "v0=" + "0" * 64}), 401),
    ("exponent timestamp", lambda b: (command_body(b), {"Content-Type": FORM, "X-Slack-Request-Timestamp": "1e400", "X-Slack-Signature": "v0=" + "0" * 64}), 401),
    ("superscript-digit timestamp", lambda b: (command_body(b), {"Content-Type": FORM, "X-Slack-Request-Timestamp": "\xb9\xb2\xb3".encode("latin-1"), "X-Slack-Signature": "v0=" + "0" * 64}), 401),
    ("13-digit timestamp", lambda b: (command_body(b), {"Content-Type": FORM, "X-Slack-Request-Timestamp": "1" * 13, "X-Slack-Signature": "v0=" + "0" * 64}), 401),
    ("empty timestamp", lambda b: (command_body(b), {"Content-Type": FORM, "X-Slack-Request-Timestamp": "", "X-Slack-Signature": "v0=" + "0" * 64}), 401),
    ("empty signature", lambda b: (command_body(b), {"Content-Type": FORM, "X-Slack-Request-Timestamp": now(), "X-Slack-Signature": ""}), 401),
    ("short signature", lambda b: (command_body(b), {"Content-Type": FORM, "X-Slack-Request-Timestamp": now(), "X-Slack-Signature": "v0=deadbeef"}), 401),
    ("v1 signature", lambda b: (command_body(b), {"Content-Type": FORM, "X-Slack-Request-Timestamp": now(), "X-Slack-Signature": "v1=" + "0" * 64})),
    ("signature with the right body, wrong secret", lambda b: (command_body(b), {**signed(b, command_body(b)), "X-Slack-Signature": "v0=" + "1" * 64}), 401),
    ("no headers at all", lambda b: (command_body(b), {"Content-Type": FORM}), 401),
    ("another workspace, correctly signed", lambda b: (lambda body: (body, signed(b, body)))(command_body(b, team_id="TOTHERTEAM")), 403),
    ("another app, correctly signed", lambda b: (lambda body: (body, signed(b, body)))(command_body(b, api_app_id="AOTHERAPP1")), 403),
    ("no team at all, correctly signed", lambda b: (lambda body: (body, signed(b, body)))(command_body(b, team_id="")), 403),
    ("click from another workspace", lambda b: (lambda body: (body, signed(b, body)))(interaction(b, team={"id": "TOTHERTEAM", "domain": "x"})), 403),
    ("click from another app", lambda b: (lambda body: (body, signed(b, body)))(interaction(b, api_app_id="AOTHERAPP1")), 403),
    ("event from another workspace", lambda b: (lambda body: (body, signed(b, body, JSON)))(event(team_id="TOTHERTEAM")), 403),
    ("event from another app", lambda b: (lambda body: (body, signed(b, body, JSON)))(event(api_app_id="AOTHERAPP1")), 403),
]
HOSTILE = [h if len(h) == 3 else (*h, 401) for h in HOSTILE]


@pytest.fixture
async def bounded_bot(settings_env):
    """The bot with small bounds, so the slow and the huge are seen quickly."""
    slack = await RecordingSlack().start()
    settings = bot_settings(settings_env, slack)
    clock = Clock()
    bot = SlackBot(
        settings,
        slack,
        SandboxServices.create(None, clock=clock),
        clock,
        limits={"header_timeout": 0.5, "max_connections": 20},
        gate_options={"max_body": 64 * 1024, "body_timeout": 0.5},
    )
    await bot.start()
    yield bot
    await bot.stop()
    await slack.stop()


def outbound(bot) -> list[str]:
    return [c.method for c in bot.slack.calls if c.method not in STARTUP_CALLS]


async def settle_and_check_nothing_happened(bot, before) -> None:
    await asyncio.sleep(0.3)  # anything a listener would do after an ack happens within this
    assert outbound(bot) == []
    assert bot.slack.response_posts() == []
    assert snapshot(bot.store) == before


@pytest.mark.parametrize("name, build, status", HOSTILE, ids=[h[0] for h in HOSTILE])
async def test_hostile_requests_are_refused_and_cause_nothing(slack_bot, name, build, status):
    bot = slack_bot
    before = snapshot(bot.store)
    body, headers = build(bot)
    response = await bot.post(body, headers=headers)
    assert response.status_code == status, response.text
    assert TOKEN not in response.text and "response" not in response.text
    await settle_and_check_nothing_happened(bot, before)
    # The door stays open for Slack: the same kind of request, signed and for this installation, works.
    ok = command_body(bot)
    assert (await bot.post(ok, headers=signed(bot, ok))).status_code == 200


async def test_signed_payloads_of_this_installation_pass(slack_bot):
    bot = slack_bot
    for body, content_type in ((command_body(bot), FORM), (interaction(bot), FORM), (event(), JSON)):
        assert (await bot.post(body, headers=signed(bot, body, content_type))).status_code == 200
    assert (await bot.slack.wait_for(lambda: bot.slack.of("views.publish"))), "the home tab was published"


async def test_slacks_url_verification_names_no_team_and_is_answered(slack_bot):
    bot = slack_bot
    body = json.dumps({"token": TOKEN, "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification"}).encode()
    response = await bot.post(body, headers=signed(bot, body, JSON))
    assert response.status_code == 200 and "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" in response.text
    forged = await bot.post(body, headers={**signed(bot, body, JSON), "X-Slack-Signature": "v0=" + "0" * 64})
    assert forged.status_code == 401


def raw_connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    return sock


async def read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    """What the server sends before it closes the connection (b"" if it just closes)."""

    def read() -> bytes:
        sock.settimeout(timeout)
        out = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:  # closed with our unread bytes still on their way: a close all the same
                return out
            if not chunk:
                return out
            out += chunk

    return await asyncio.to_thread(read)


async def test_a_declared_huge_body_gets_413_before_it_is_read(bounded_bot):
    bot = bounded_bot
    before = snapshot(bot.store)
    sock = raw_connect(bot.url)
    ts = now()
    head = (
        "POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        f"X-Slack-Request-Timestamp: {ts}\r\nX-Slack-Signature: v0={'0' * 64}\r\nContent-Length: 300000000\r\n\r\n"
    )
    sock.sendall(head.encode() + b"a" * 1000)  # the 300 MB never come: the answer must not wait for them
    started = time.monotonic()
    answer = await read_until_closed(sock, 5)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 413"), answer[:100]
    assert time.monotonic() - started < 2
    await settle_and_check_nothing_happened(bot, before)


@pytest.mark.parametrize("signed_body", [False, True])
async def test_an_undeclared_huge_body_is_cut_off_at_the_limit(bounded_bot, signed_body, caplog):
    bot = bounded_bot
    before = snapshot(bot.store)
    body = command_body(bot, text="mine " + "x" * 200_000)
    headers = signed(bot, body) if signed_body else {"Content-Type": FORM, "X-Slack-Request-Timestamp": now(), "X-Slack-Signature": "v0=" + "0" * 64}
    sent = 0

    async def chunks():  # no Content-Length: chunked, so only reading can tell the size
        nonlocal sent
        for i in range(0, len(body), 8192):
            sent += 8192
            yield body[i : i + 8192]

    try:
        response = await bot.http.post(bot.url + "/slack/events", content=chunks(), headers=headers)
        assert response.status_code == 413
    except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError):
        pass  # the server answered 413 and closed while the client was still sending: the client may not see it
    assert any("body over the limit" in r.getMessage() for r in caplog.records)
    assert sent < 150_000, "the client was stopped well before the whole body"
    await settle_and_check_nothing_happened(bot, before)


async def test_slow_senders_are_cut_off_and_do_not_starve_acks(bounded_bot):
    bot = bounded_bot
    before = snapshot(bot.store)
    # 40 connections (twice the cap) that send half their headers and then nothing.
    slow = [raw_connect(bot.url) for _ in range(40)]
    for sock in slow:
        sock.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\nX-Slack-Request-")
    started = time.monotonic()
    # Those beyond the cap of 20 are closed at once, well before the header deadline of 0.5 s.
    over_cap = await asyncio.gather(*(read_until_closed(s, 0.3) for s in slow[25:]), return_exceptions=True)
    assert all(end == b"" for end in over_cap), over_cap
    ends = await asyncio.gather(*(read_until_closed(s, 5) for s in slow[:25]))
    assert all(end == b"" or end.startswith(b"HTTP/1.1 4") for end in ends)
    assert time.monotonic() - started < 3, "every slow connection was closed within the header deadline"
    for sock in slow:
        sock.close()
    # One that sends its headers and then dribbles the body: 408 after the body deadline.
    sock = raw_connect(bot.url)
    head = (
        "POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        f"X-Slack-Request-Timestamp: {now()}\r\nX-Slack-Signature: v0={'0' * 64}\r\nContent-Length: 500\r\n\r\n"
    )
    sock.sendall(head.encode() + b"a=1")
    answer = await read_until_closed(sock, 5)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
    await settle_and_check_nothing_happened(bot, before)
    # Slack's requests go through while slow senders hold connections below the cap.
    holding = [raw_connect(bot.url) for _ in range(10)]
    for sock in holding:
        sock.sendall(b"POST /slack/events HTTP/1.1\r\n")
    response, url = await bot.command("mine")
    assert response.status_code == 200 and await bot.response_to(url)
    for sock in holding:
        sock.close()


async def test_refusals_are_logged_as_short_rate_limited_lines_without_body_or_token(slack_bot, caplog):
    bot = slack_bot
    caplog.set_level(logging.DEBUG)
    response_url = bot.slack.response_url("leak")
    body = command_body(bot, response_url=response_url, text="mine " + "B" * 100_000)
    for i in range(30):
        bad = {"Content-Type": FORM, "X-Slack-Request-Timestamp": now(), "X-Slack-Signature": "v0=" + f"{i:064x}"}
        assert (await bot.post(body, headers=bad)).status_code == 401
    # A signing-secret rotation: every real request fails verification for a while.
    rotated = {**signed(bot, body), "X-Slack-Signature": "v0=" + "e" * 64}
    for _ in range(10):
        assert (await bot.post(body, headers=rotated)).status_code == 401
    assert (await bot.post(body, headers={"Content-Type": FORM, "X-Slack-Request-Timestamp": "9" * 400, "X-Slack-Signature": "v0=deadbeef"})).status_code == 401
    lines = [r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    text = "\n".join(lines)
    assert TOKEN not in text and response_url not in text and "BBBB" not in text and "evil" not in text
    refusal_lines = [line for line in lines if line.startswith("refused a request")]
    assert 1 <= len(refusal_lines) <= 3, refusal_lines  # bad signature once, malformed timestamp once
    assert all(len(line) < 160 for line in refusal_lines)
    assert any("bad signature" in line and "127.0.0.1" in line and "bytes" in line for line in refusal_lines)
    assert sum(len(line) for line in lines) < 5000, "the log grew by lines, not by bodies"


def test_refusal_log_counts_what_it_did_not_log():
    from bot.slack.gate import RefusalLog

    t = [0.0]
    log = RefusalLog(every=10, monotonic=lambda: t[0])
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("bot.slack.gate").addHandler(handler)
    try:
        for _ in range(5):
            log.refused("bad signature", "10.0.0.1", 10)
        t[0] = 11
        log.refused("bad signature", "10.0.0.1", 10)
    finally:
        logging.getLogger("bot.slack.gate").removeHandler(handler)
    assert len(records) == 2 and "+4 more" in records[1]


async def test_socket_mode_refuses_payloads_for_another_installation(settings_env):
    """No HTTP request to gate in Socket Mode: the same installation check runs before every listener."""
    from bot.server import run_socket_mode
    from tests.slack_harness import APP_TOKEN

    slack = await RecordingSlack().start()
    settings = bot_settings(settings_env, slack, SLACK_APP_TOKEN=APP_TOKEN, SLACK_SIGNING_SECRET="")
    clock = Clock()
    task = asyncio.create_task(run_socket_mode(settings, sandbox=SandboxServices.create(None, clock=clock), clock=clock.now))
    try:
        await slack.wait_for(lambda: slack.sockets, timeout=10, what="the Socket Mode connection")

        def command(url: str, **changes) -> dict:
            form = dict(urllib.parse.parse_qsl(slash_command("mine", user=REQUESTER, response_url=url).decode()))
            form.update(changes)
            return form

        foreign_url = slack.response_url("foreign")
        foreign = await slack.push("slash_commands", command(foreign_url, team_id="TOTHERTEAM"))
        other_app = await slack.push("slash_commands", command(foreign_url, api_app_id="AOTHERAPP1"))
        ours_url = slack.response_url("ours")
        ours = await slack.push("slash_commands", command(ours_url))
        await bot_answers(slack, ours_url)
        await slack.wait_for(lambda: foreign in slack.socket_replies and other_app in slack.socket_replies, what="the acks")
        await slack.wait_for(lambda: ours in slack.socket_replies, what="our ack")
        assert slack.response_posts(foreign_url) == []
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await slack.stop()


async def bot_answers(slack, url):
    return await slack.wait_for(lambda: slack.response_posts(url), what=f"an answer at {url}")
