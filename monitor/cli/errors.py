"""How a command fails: one line on stderr that starts with the command's name, and an
exit status from `monitor.cli.exits`. Never a traceback."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from monitor.cli import PROG, exits


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error in one line: `PROG COMMAND: error: ...`, exit 2."""

    def __init__(self, command: str, description: str | None = None, **kwargs: Any) -> None:
        super().__init__(prog=f"{PROG} {command}", description=description, **kwargs)

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(exits.USAGE)


class Refused(Exception):
    """The command cannot do what was asked; the message is one line for the user."""

    def __init__(self, message: str, status: int = exits.FAILURE) -> None:
        super().__init__(message)
        self.status = status

    def line(self, command: str) -> str:
        # A usage error reads as argparse's own, whichever check found it.
        what = "error: " if self.status == exits.USAGE else ""
        return f"{PROG} {command}: {what}{self}\n"


def reported(command: str, body: Callable[[list[str]], int]) -> Callable[[list[str]], int]:
    """`body` as the command `command`: a refusal ends it with its line and its status,
    returned rather than raised, so that a caller in the same process gets it too."""

    def run(argv: list[str]) -> int:
        try:
            return body(argv)
        except Refused as refusal:
            sys.stderr.write(refusal.line(command))
            return refusal.status
        except SystemExit as done:  # argparse, after --help or its usage error line
            return done.code if isinstance(done.code, int) else exits.OK

    return run
