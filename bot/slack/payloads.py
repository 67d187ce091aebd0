"""Reading what Slack sent, defensively: a button's value, a form's inputs.

Every reader takes a body of any shape (a forged or truncated payload reaches
here only after the gate checked its signature, but its contents are still
untrusted) and answers with a value or a clear refusal, never an exception of
its own.
"""

from __future__ import annotations

import re
from typing import Any

from bot.domain.errors import NotFound

__all__ = ["clicked", "has_input", "request_id_of", "state_value"]

_REQUEST_ID = re.compile(r"^[0-9]{1,12}$")  # ASCII: int() would read any Unicode digit


def clicked(body: dict[str, Any]) -> str:
    actions = body.get("actions") or [{}]
    return str(actions[0].get("value") or "")


def request_id_of(value: str) -> int:
    """A button value that should name a request; anything else is refused in words."""
    digits = value.strip()
    if not _REQUEST_ID.match(digits):
        # Echo only harmless characters: a forged value like ``<!channel>`` must not come back as live mrkdwn.
        shown = re.sub(r"[^0-9A-Za-z ._;:=+-]", "?", value[:40])
        raise NotFound(f"That button does not name a request (`{shown}`).")
    # The stripped digits: str.strip() drops \x1c-\x1f, which int() refuses ("\x1c1" was a ValueError).
    return int(digits)


def _values(view: Any) -> dict[str, Any]:
    state = view.get("state") if isinstance(view, dict) else None
    values = state.get("values") if isinstance(state, dict) else None
    return values if isinstance(values, dict) else {}


def state_value(view: dict[str, Any], block_id: str) -> Any:
    """The submitted value of the input ``block_id`` (block and action ids are the same here)."""
    block = _values(view).get(block_id)
    element = block.get(block_id) if isinstance(block, dict) else None
    if not isinstance(element, dict):
        return None
    kind = element.get("type")
    if kind in ("static_select", "radio_buttons"):
        option = element.get("selected_option")
        value = option.get("value") if isinstance(option, dict) else None
    elif kind == "checkboxes":
        options = element.get("selected_options")
        return [str(o.get("value")) for o in options if isinstance(o, dict)] if isinstance(options, list) else []
    else:
        value = element.get("value")
    # Slack sends strings; anything else came from somewhere else and is read as text, never trusted as a type.
    return None if value is None else str(value)


def has_input(view: dict[str, Any], block_id: str) -> bool:
    return block_id in _values(view)
