"""What Slack shows, by surface: pure functions from requests, offers and a ``RenderConfig`` to Block Kit."""
