"""Error lines and exit statuses, as the AWS CLI prints them.

Scripts written against `aws cloudfront get-invalidation` branch on its exit status and
sometimes grep its stderr, so both are reproduced exactly: v1's wording wherever v1 has
the feature, v2's where only v2 has it (YAML input).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import IO, Any

from monitor.cli import exits

# v1: a failed call, bad --query, unknown options; argparse itself exits 2.
SERVICE_ERROR_RC = exits.SERVICE_ERROR
ARGPARSE_ERROR_RC = exits.USAGE
# v2's PARAM_VALIDATION_ERROR_RC, used only for the YAML input v1 does not have.
PARAM_VALIDATION_RC = exits.PARAM_VALIDATION

_V2_NOTE = (
    "Note: AWS CLI version 2, the latest major version of the AWS CLI, is now stable and "
    "recommended for general use. For more information, see the AWS CLI version 2 "
    "installation instructions at: "
    "https://docs.aws.amazon.com/cli/latest/userguide/install-cliv2.html"
)
_HELP_BLURB = (
    "To see help text, you can run:\n"
    "\n"
    "  aws help\n"
    "  aws <command> help\n"
    "  aws <command> <subcommand> help\n"
)
# The leading carriage return is v1's: it hides "usage: " on a terminal.
USAGE = (
    f"\r{_V2_NOTE}\n\n"
    "usage: aws [options] <command> <subcommand> [<subcommand> ...] [parameters]\n"
    f"{_HELP_BLURB}"
)
PROG = "aws"


class CommandError(Exception):
    """A failure reported as one blank line, one message, exit status `rc`."""

    def __init__(self, message: str, rc: int = SERVICE_ERROR_RC) -> None:
        super().__init__(message)
        self.rc = rc


class ParamError(CommandError):
    """A parameter value that could not be loaded or parsed."""

    def __init__(self, name: str, message: str, rc: int = SERVICE_ERROR_RC) -> None:
        super().__init__(f"Error parsing parameter '{name}': {message}", rc)


class UnknownOptions(Exception):
    """Arguments no parser claimed; v1 prints the usage text before them."""

    def __init__(self, leftovers: Sequence[str]) -> None:
        super().__init__(f"Unknown options: {', '.join(leftovers)}")


class CompatParser(argparse.ArgumentParser):
    """argparse with the AWS CLI's usage text and its layout of invalid choices."""

    _CHOICES_PER_LINE = 2

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            prog=PROG,
            usage=USAGE,
            add_help=False,
            conflict_handler="resolve",
            formatter_class=argparse.RawTextHelpFormatter,
            **kwargs,
        )

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        choices = action.choices
        if choices is None or value in choices:
            return
        names = list(choices)
        lines = ["Invalid choice, valid choices are:\n"]
        for start in range(0, len(names), self._CHOICES_PER_LINE):
            row = names[start : start + self._CHOICES_PER_LINE]
            lines.append(" | ".join(f"{name:<40}" for name in row))
        from difflib import get_close_matches

        close = get_close_matches(value, names, cutoff=0.8)
        if close:
            lines.append(f"\n\nInvalid choice: {value!r}, maybe you meant:\n")
            lines.extend(f"  * {name}" for name in close)
        raise argparse.ArgumentError(action, "\n".join(lines))


def write_error(message: str, stream: IO[str] | None = None) -> None:
    out = stream if stream is not None else sys.stderr
    out.write(f"\n{message}\n")


def write_unknown_options(error: UnknownOptions) -> None:
    sys.stderr.write(f"usage: {USAGE}\n{error}\n")
