"""Fuzzing every payload parser: button clicks, form submissions, slash commands and events.

Two layers:

* property-based tests (hypothesis, bounded ``max_examples``) of the parsing functions in ``bot/slack``
  — what a button names, where a click came from, a form's values, ``private_metadata``, the error
  path's description of a body — with any strings, ``None``, missing fields and wrong types: each
  returns a value or raises the one error meant for the user, never anything else;
* a seeded sample of mutated, correctly signed bodies sent to the running app over HTTP: every answer is
  200 (never 500), no listener fails, and nothing that matters changes (no request, no operation, no
  purchase; only refusals and searches are recorded).

The slash-command grammar itself is fuzzed in tests/test_grammar.py.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import random
import urllib.parse
from types import SimpleNamespace
from typing import Any

from hypothesis import HealthCheck, example, given, settings, strategies as st

from bot.domain.errors import NotFound
from bot.slack import ids
from bot.slack.render.modals import metadata, read_metadata
from bot.slack.answer import Origin, describe, report, user_of
from bot.slack.configure import render_config
from bot.slack.payloads import clicked, has_input, request_id_of, state_value
from bot.slack.acks import read_search
from tests.reliability_harness import snapshot
from tests.slack_harness import (  # noqa: F401  (fixtures)
    APPROVAL_CHANNEL,
    FORM,
    JSON,
    OUTSIDER,
    app_home_opened,
    block_actions,
    slack_bot,
    slash_command,
    text_value,
    view_submission,
)
from tests.test_slack_flow import request_offer

EXAMPLES = 150
FAST = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))

# Anything JSON can carry, as Slack's payloads are JSON: the wrong types a parser might meet.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
strings = st.text(max_size=200) | st.sampled_from(["", " ", "0", "-1", "1", "１", "1\n", "99999999999999999999", "1; DROP TABLE requests", "<!channel>", "\x00", "9" * 5000])


def slack_shaped(value: Any) -> st.SearchStrategy[dict[str, Any]]:
    """A block_actions body as Slack sends it, with some fields dropped or nulled."""
    return st.fixed_dictionaries(
        {"type": st.just("block_actions"), "user": st.fixed_dictionaries({"id": st.sampled_from(["U1", "UOUTSIDER"])})},
        optional={
            "actions": st.lists(st.fixed_dictionaries({}, optional={"value": value, "action_id": st.text(max_size=20)}), max_size=3) | st.none(),
            "container": st.fixed_dictionaries({}, optional={"type": st.sampled_from(["message", "view", "x"]) | st.none(), "channel_id": st.text(max_size=12) | st.none(), "is_ephemeral": st.booleans() | st.none()}) | st.none(),
            "channel": st.fixed_dictionaries({}, optional={"id": st.text(max_size=12) | st.none()}) | st.none(),
            "view": st.fixed_dictionaries({}, optional={"type": st.sampled_from(["home", "modal"]) | st.none()}) | st.none(),
            "response_url": st.text(max_size=40) | st.none(),
            "trigger_id": st.text(max_size=40) | st.none(),
        },
    )


@FAST
@given(value=strings)
@example(value="\x1c1")  # str.strip() drops it, int() refuses it: hypothesis found it under load once
@example(value="1\x1f")
def test_request_id_of_any_button_value_is_a_request_id_or_a_refusal(value):
    try:
        request_id = request_id_of(value)
    except NotFound as exc:
        assert "does not name a request" in str(exc)
        assert "<" not in str(exc) and len(str(exc)) < 120  # nothing live, nothing huge echoed back
        return
    assert isinstance(request_id, int) and 0 <= request_id < 10**12


@FAST
@given(body=slack_shaped(json_values))
def test_click_bodies_with_missing_or_odd_fields_parse(body):
    value = clicked(body)
    assert isinstance(value, str)
    origin = Origin.from_action(body, APPROVAL_CHANNEL)
    assert origin.user == body["user"]["id"]
    assert not (origin.home and origin.card)
    assert isinstance(origin.metadata(), str) and json.loads(origin.metadata()) is not None


class Replies:
    """A stand-in for ``SlackDeps`` that records what ``report`` tells the user."""

    def __init__(self):
        self.render = SimpleNamespace(approval_channel=APPROVAL_CHANNEL)
        self.sent: list[tuple[str, Any]] = []

    async def reply(self, user, message, *, response_url=None, channel=None):
        self.sent.append((user, message))
        return "dm"


@FAST
@given(body=st.dictionaries(st.sampled_from(["type", "user", "user_id", "command", "actions", "view", "event", "channel", "container", "response_url"]), json_values, max_size=6))
def test_the_error_path_survives_any_body(body):
    """``answer.report`` must never fail itself while telling the user that something else did."""
    assert isinstance(describe(body), str) and len(describe(body)) < 200
    deps = Replies()
    ref = asyncio.run(report(deps, RuntimeError("listener broke"), body))
    assert len(ref) == 6
    user = user_of(body)
    if isinstance(user, str) and user:
        assert [u for u, _ in deps.sent] == [user] and ref in deps.sent[0][1].mrkdwn()


@FAST
@given(text=st.text(max_size=300) | st.sampled_from(["null", "[]", "1", '"x"', '{"a":', '{"request": "1; DROP"}']) | st.none())
def test_private_metadata_of_any_text_reads_as_a_dict(text):
    assert isinstance(read_metadata(text), dict)


def plain(block: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"type": st.just("plain_text_input")}, optional={"value": st.none() | strings})


def select(block: str) -> st.SearchStrategy[dict[str, Any]]:
    option = st.fixed_dictionaries({}, optional={"value": st.none() | strings})
    return st.fixed_dictionaries({"type": st.just("static_select")}, optional={"selected_option": st.none() | option})


def boxes(block: str) -> st.SearchStrategy[dict[str, Any]]:
    option = st.fixed_dictionaries({"value": strings})
    return st.fixed_dictionaries({"type": st.just("checkboxes")}, optional={"selected_options": st.none() | st.lists(option, max_size=3)})


# The search modal's inputs, each with the element type the modal defines and any value Slack could carry.
SEARCH_FIELDS = {
    ids.INPUT_PROVIDER: select,
    ids.INPUT_COUNTRY: plain,
    ids.INPUT_TYPE: select,
    ids.INPUT_PREFIX: plain,
    ids.INPUT_CAPABILITIES: boxes,
    ids.INPUT_QUANTITY: plain,
}
SEARCH_BLOCKS = list(SEARCH_FIELDS)
views = st.fixed_dictionaries(
    {},
    optional={
        "state": st.none()
        | st.fixed_dictionaries(
            {},
            optional={
                "values": st.none()
                | st.fixed_dictionaries(
                    {},
                    optional={block: st.none().map(lambda _: {}) | make(block).map(lambda e, b=block: {b: e}) for block, make in SEARCH_FIELDS.items()},
                )
            },
        )
    },
)


def test_search_form_values_of_any_shape_give_a_query_or_field_errors(settings_env):
    from bot.bootstrap import build

    app_settings = settings_env(NUMBERS_SANDBOX=True)
    components = build(app_settings)
    deps = SimpleNamespace(service=components.service, settings=app_settings, render=render_config(app_settings))
    seen = {"query": 0, "errors": 0}

    @FAST
    @given(view=views)
    def check(view):
        for block in SEARCH_BLOCKS:
            state_value(view, block)
            has_input(view, block)
        query, errors = read_search(view, deps.render, deps.service.providers)
        assert (query is None) == bool(errors)
        assert all(k in SEARCH_BLOCKS and isinstance(v, str) and v for k, v in errors.items())
        seen["query" if query else "errors"] += 1

    try:
        check()
    finally:
        components.store.close()
    assert seen["errors"] > 0


# --- mutated, signed bodies against the running app ----------------------------------------------------

SAMPLE = 60
ODD = [None, 0, -1, 10**20, 1.5, True, "", " ", "<!channel>", "\x00\x1b[31m", "x" * 5000, [], {}, [None], {"id": None}]


def mutate(payload: Any, rng: random.Random, keep: set[str]) -> Any:
    """Drop, null or retype one field anywhere in ``payload`` (never a key in ``keep``: it routes to a listener)."""
    payload = copy.deepcopy(payload)
    paths: list[tuple[Any, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, child in node.items():
                if key not in keep:
                    paths.append((node, key))
                walk(child)
        elif isinstance(node, list):
            for i, child in enumerate(node):
                paths.append((node, i))
                walk(child)

    walk(payload)
    for _ in range(rng.randint(1, 3)):
        if not paths:
            break
        parent, key = rng.choice(paths)
        if isinstance(parent, dict) and rng.random() < 0.3:
            parent.pop(key, None)
        else:
            try:
                parent[key] = rng.choice(ODD)
            except (IndexError, KeyError):
                pass
    return payload


def form_body(payload: dict[str, Any]) -> bytes:
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()


def samples(request_id: int, response_url: str, rng: random.Random) -> list[tuple[str, bytes, str]]:
    """(what, body, content type): Slack's real shapes, mutated; clicks and forms come from a non-approver."""
    click_payloads = {
        action: json.loads(urllib.parse.parse_qs(block_actions(action, str(request_id), user=OUTSIDER, channel=APPROVAL_CHANNEL, response_url=response_url).decode())["payload"][0])
        for action in (ids.ACTION_APPROVE, ids.ACTION_DENY, ids.ACTION_REQUEST, ids.ACTION_HOME_SEARCH)
    }
    views_ = {
        ids.VIEW_REQUEST: ({ids.INPUT_JUSTIFICATION: text_value("fuzz")}, metadata(offer="onosuch1")),
        ids.VIEW_DENY: ({ids.INPUT_REASON: text_value("fuzz")}, metadata(request=request_id)),
        ids.VIEW_SEARCH: ({ids.INPUT_COUNTRY: text_value("US")}, ""),
        ids.VIEW_RELEASE: ({ids.INPUT_REASON: text_value("fuzz")}, metadata(number="+18332270000")),
    }
    view_payloads = {
        callback: json.loads(urllib.parse.parse_qs(view_submission(callback, values, user=OUTSIDER, private_metadata=meta).decode())["payload"][0])
        for callback, (values, meta) in views_.items()
    }
    command = {k: v[0] for k, v in urllib.parse.parse_qs(slash_command(f"show {request_id}", user=OUTSIDER, response_url=response_url).decode()).items()}
    event = json.loads(app_home_opened(OUTSIDER))
    out = []
    for i in range(SAMPLE):
        kind = i % 4
        if kind == 0:
            action = rng.choice(sorted(click_payloads))
            payload = mutate(click_payloads[action], rng, {"type", "actions", "action_id", "user", "id"})
            out.append((f"click {action}", form_body(payload), FORM))
        elif kind == 1:
            callback = rng.choice(sorted(view_payloads))
            payload = mutate(view_payloads[callback], rng, {"type", "view", "callback_id", "user", "id"})
            out.append((f"form {callback}", form_body(payload), FORM))
        elif kind == 2:
            form = dict(command)
            for key in rng.sample(sorted(k for k in form if k not in ("command", "user_id")), rng.randint(1, 3)):
                choice = rng.random()
                if choice < 0.3:
                    form.pop(key)
                else:
                    form[key] = rng.choice(["", "<!channel>", "x" * 5000, "\x00", "show 1; DROP TABLE requests", "cancel 99999999999999", "audit -1", "search ZZ via nowhere"])
            out.append(("command", urllib.parse.urlencode(form).encode(), FORM))
        else:
            payload = mutate(event, rng, {"type", "event"})
            out.append(("event", json.dumps(payload).encode(), JSON))
    return out


async def test_mutated_signed_bodies_get_200_and_change_nothing(slack_bot, caplog):
    bot, slack = slack_bot, slack_bot.slack
    request, ts = await request_offer(bot)
    caplog.set_level(logging.WARNING)
    rng = random.Random(20261125)
    url = slack.response_url("fuzz")
    before = snapshot(bot.store)
    events_before = before[2]
    statuses: dict[int, list[str]] = {}
    sent = samples(request.id, url, rng)
    for batch in range(0, len(sent), 10):
        chunk = sent[batch : batch + 10]
        answers = await asyncio.gather(*(bot.post(body, content_type) for _, body, content_type in chunk))
        for (what, _, _), answer in zip(chunk, answers):
            statuses.setdefault(answer.status_code, []).append(what)
    await bot.settled()  # work done after the acks
    # 400 only for bodies Bolt cannot even read (it builds its context before checking the signature);
    # 403 for a mutated team or app id: signed, but not for this installation (bot.slack.gate).
    assert set(statuses) <= {200, 400, 403} and len(statuses.get(200, [])) > SAMPLE // 2, {k: v for k, v in statuses.items() if k != 200}
    requests_after, operations_after, events_after = snapshot(bot.store)
    assert (requests_after, operations_after) == before[:2]
    kinds = {e[0] for e in bot.store.db.execute("SELECT kind FROM events WHERE id > ?", [events_before]).fetchall()}
    assert kinds <= {"refused", "searched"}, kinds
    assert bot.sandbox.acs.count("POST", r":purchase$") == 0
    # A body of a shape Slack never sends (a number where the form has text) may fail a listener: then the
    # user is told with a reference, never left without an answer.
    failures = [r.getMessage() for r in caplog.records if "listener failed" in r.getMessage()]
    told = [c for c in slack.calls if "Something went wrong" in json.dumps(c.params)] + [
        p for p in slack.response_posts() if "Something went wrong" in json.dumps(p)
    ]
    assert len(told) >= len([f for f in failures if "app_home_opened" not in f])
    assert len(sent) == SAMPLE
