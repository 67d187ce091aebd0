"""Every id that ties Slack to a listener: the command, action ids, view callback ids, events.

They live in one module so that the blocks that carry them, the listeners that
answer them and the test that checks them against ``manifest.yml`` cannot drift
apart.
"""

from __future__ import annotations

COMMAND = "/numbers"

# Buttons. A card, an ephemeral `pending` list and the App Home all use the same
# approve/deny ids, so one listener serves a click wherever it came from.
ACTION_REQUEST = "numbers_offer_request"  # value: offer id
ACTION_APPROVE = "numbers_request_approve"  # value: request id
ACTION_DENY = "numbers_request_deny"  # value: request id
ACTION_HOME_SEARCH = "numbers_home_search"  # opens the search modal from the Home tab

# Modals (view callback ids).
VIEW_SEARCH = "numbers_search"
VIEW_REQUEST = "numbers_request"
VIEW_DENY = "numbers_deny"
VIEW_RELEASE = "numbers_release"

# Events the app subscribes to (manifest: settings.event_subscriptions.bot_events).
EVENT_HOME_OPENED = "app_home_opened"

COMMANDS = (COMMAND,)
ACTIONS = (ACTION_REQUEST, ACTION_APPROVE, ACTION_DENY, ACTION_HOME_SEARCH)
VIEWS = (VIEW_SEARCH, VIEW_REQUEST, VIEW_DENY, VIEW_RELEASE)
EVENTS = (EVENT_HOME_OPENED,)

# The bot token's scopes (manifest: oauth_config.scopes.bot); ``numbers-bot doctor`` checks the token has each.
BOT_SCOPES = (
    "commands", "chat:write", "im:write", "users:read", "users:read.email", "usergroups:read", "files:write",
    "channels:read", "groups:read",
)

# Input blocks inside the modals: block_id and action_id are the same string, so
# a validation error can name the block the value came from.
INPUT_PROVIDER = "provider"
INPUT_COUNTRY = "country"
INPUT_TYPE = "number_type"
INPUT_PREFIX = "prefix"
INPUT_CAPABILITIES = "capabilities"
INPUT_QUANTITY = "quantity"
INPUT_JUSTIFICATION = "justification"
INPUT_REASON = "reason"

ANY_PROVIDER = "any"
