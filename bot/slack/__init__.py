"""The Slack surface of numbers-bot: ``/numbers``, buttons, modals, the approval card, DMs and the Home tab.

``bot.slack.app.build_slack`` registers it on what ``bot.bootstrap.build`` wires; ``bot.server`` serves it.
"""
