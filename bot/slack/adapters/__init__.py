"""The Slack Web API behind the service's ports: the notifier (cards, DMs, threads), the approver
directory, and what they share (pacing, a channel the bot cannot use, the audit file upload)."""
