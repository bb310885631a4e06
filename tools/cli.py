"""What the tools' command lines share: bad arguments answered in one line."""

from __future__ import annotations

import argparse
from typing import NoReturn


class OneLineParser(argparse.ArgumentParser):
    """Bad arguments are one line on stderr, the usage folded into it (argparse prints two)."""

    def error(self, message: str) -> NoReturn:
        usage = " ".join(self.format_usage().split()).removeprefix("usage: ")
        self.exit(2, f"error: {message} (usage: {usage})\n")
