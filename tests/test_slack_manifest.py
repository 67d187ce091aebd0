"""manifest.yml creates a working app: valid against Slack's schema, and every id it routes has a listener
(and every listener is reachable from it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from bot.server import EVENTS_PATH
from bot.slack import ids
from tests.slack_harness import BOT_SCOPES, JSON, REQUESTER, app_home_opened, slack_bot, view_submission  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = Path(__file__).resolve().parents[2] / "shared/reference/slack/manifest.schema.1.0.0.json"


@pytest.fixture(scope="module")
def manifest() -> dict:
    return yaml.safe_load((ROOT / "manifest.yml").read_text())


def test_manifest_validates_against_slacks_schema(manifest):
    if not SCHEMA.exists():
        pytest.skip(f"Slack's manifest schema is not here ({SCHEMA}); it ships with the project's shared reference files")
    from jsonschema import Draft7Validator

    schema = json.loads(SCHEMA.read_text())
    errors = sorted(Draft7Validator(schema).iter_errors(manifest), key=lambda e: list(e.path))
    assert errors == [], [f"{list(e.path)}: {e.message}" for e in errors]


def test_manifest_routes_everything_to_the_one_events_path(manifest):
    settings = manifest["settings"]
    urls = [c["url"] for c in manifest["features"]["slash_commands"]]
    urls += [settings["event_subscriptions"]["request_url"], settings["interactivity"]["request_url"]]
    assert all(url.endswith(EVENTS_PATH) and url.startswith("https://") for url in urls)
    assert settings["interactivity"]["is_enabled"] is True  # buttons and modals
    assert settings["socket_mode_enabled"] is False
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert manifest["features"]["app_home"]["messages_tab_enabled"] is True  # the DMs land there


def test_manifest_commands_and_events_are_exactly_the_ones_handled(manifest):
    assert [c["command"] for c in manifest["features"]["slash_commands"]] == list(ids.COMMANDS)
    assert manifest["settings"]["event_subscriptions"]["bot_events"] == list(ids.EVENTS)


def test_manifest_asks_for_the_scopes_used_and_no_more(manifest):
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == BOT_SCOPES
    from bot.slack.ids import BOT_SCOPES as checked_by_doctor

    assert set(checked_by_doctor) == BOT_SCOPES
    assert "user" not in manifest["oauth_config"]["scopes"]


def test_procfile_runs_the_http_server():
    assert (ROOT / "Procfile").read_text() == "web: numbers-bot serve\n"
    assert 'numbers-bot = "bot.cli:main"' in (ROOT / "pyproject.toml").read_text()


async def test_every_id_has_a_listener_and_unknown_ids_do_not(slack_bot):
    """Bolt answers 404 to a request no listener matched: so 200 here means 'registered'."""
    bot = slack_bot
    for command in ids.COMMANDS:
        response, _ = await bot.command("help")
        assert response.status_code == 200, command
    for action in ids.ACTIONS:
        response, _ = await bot.click(action, "0", user=REQUESTER, where="ephemeral")
        assert response.status_code == 200, action
    for callback in ids.VIEWS:
        response = await bot.post(view_submission(callback, {}, user=REQUESTER))
        assert response.status_code == 200, callback
    for event in ids.EVENTS:
        response = await bot.post(app_home_opened(REQUESTER), JSON)
        assert response.status_code == 200, event
    unknown, _ = await bot.click("numbers_not_a_thing", "0", user=REQUESTER, where="ephemeral")
    assert unknown.status_code == 404
    assert (await bot.post(view_submission("not_a_view", {}, user=REQUESTER))).status_code == 404
