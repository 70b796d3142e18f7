"""The command-line parser of ``livestrat`` and ``kubectl livestrat``: argparse, minus one leak.

argparse's errors echo what it did not understand, so a DSN typed on a command line
(``--ledger postgresql://user:PASSWORD@host/db``, misspelt or given to a command that takes none) went
to stderr whole, and from there to a terminal's scrollback, a CI log or a bug report. Its password, a
token or a key in the message is replaced (livestrat/desk/redact.py), the rest of the message kept.
``add_subparsers`` makes the subcommands' parsers with the parent's class, so they are covered too.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from livestrat.desk.redact import scrub_text


class SecretSafeParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        super().error(scrub_text(message))
