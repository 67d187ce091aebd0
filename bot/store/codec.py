"""Values between the domain's models and the store's rows.

Rows hold JSON text for lists and dicts (``numbers``, ``ref``, ``approvals``), ISO text for
times and decimal text for money, so that SQLite and PostgreSQL store the same thing. Reading a
row back is each model's ``from_row``; this module makes what is written.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from bot.domain.values import ts
from bot.domain.requests import NumberRequest
from bot.domain.states import State

__all__ = ["JSON_FIELDS", "encode_changes", "held_number_values", "new_request_row"]

JSON_FIELDS = ("numbers", "ref", "approvals")


def encode_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """Column values for an ``UPDATE`` of a request or an operation."""
    out = {}
    for key, value in changes.items():
        if key in JSON_FIELDS:
            value = json.dumps(value)
        elif isinstance(value, datetime):
            value = ts(value)
        elif isinstance(value, Decimal):
            value = str(value)
        elif isinstance(value, State):
            value = value.value
        out[key] = value
    return out


def new_request_row(fields: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The ``requests`` row of a new request: its fields, encoded, with version and times."""
    row = {"approvals": "[]", "version": 0, "created_at": ts(now), "updated_at": ts(now), **fields}
    for key in JSON_FIELDS:
        if not isinstance(row[key], str):
            row[key] = json.dumps(row[key])
    for key in ("unit_monthly_cost", "unit_setup_cost"):
        if row.get(key) is not None:
            row[key] = str(row[key])
    for key in ("expires_at", "hold_expires_at"):
        if isinstance(row.get(key), datetime):
            row[key] = ts(row[key])
    return row


def held_number_values(request: NumberRequest, number: str, now: datetime) -> list[Any]:
    """One ``numbers`` row (in ``inventory.HELD_COLUMNS`` order): ``number`` as ``request`` obtained it."""
    return [
        number,
        request.provider,
        request.kind,
        request.id,
        request.requester,
        request.justification,
        request.decided_by,
        ts(now),
        str(request.unit_monthly_cost) if request.unit_monthly_cost is not None else None,
        request.currency,
        json.dumps(request.ref),
    ]
