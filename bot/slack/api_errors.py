"""What Slack said when a Web API call failed, safe to log and to show."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError

__all__ = ["slack_error"]


def slack_error(exc: Exception) -> str:
    """The Slack error code (``not_in_channel``, ``ratelimited``…), never the request that carried the token."""
    if isinstance(exc, SlackApiError) and exc.response is not None:
        data = exc.response.data
        if isinstance(data, dict) and data.get("error"):
            return str(data["error"])
        return f"HTTP {exc.response.status_code}"
    return type(exc).__name__
