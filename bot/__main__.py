"""``python -m bot``: the same as ``numbers-bot serve``."""

import sys

from bot.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
