"""``python -m bot.cli``: the same as the ``numbers-bot`` command."""

import sys

from bot.cli import main

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
