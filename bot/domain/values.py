"""Money and times as records keep them: ``Decimal`` from text, aware datetimes as ISO 8601."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

__all__ = ["dec", "ts", "parse_ts"]


def dec(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    return Decimal(str(value))


def ts(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def parse_ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
