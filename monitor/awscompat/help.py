"""Plain-text help for `COMMAND help`, built from the botocore model."""

from __future__ import annotations

import re
import textwrap
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from botocore.model import OperationModel

_TAG = re.compile(r"<[^>]+>")
_GLOBALS = (
    "--debug",
    "--endpoint-url <value>",
    "--no-verify-ssl",
    "--output json|text|table|yaml",
    "--query <value>",
    "--profile <value>",
    "--region <value>",
    "--cli-read-timeout <value>",
    "--cli-connect-timeout <value>",
)


def _plain(html: str) -> str:
    return " ".join(_TAG.sub("", html or "").split())


def render_help(operation: OperationModel, members: list[str]) -> str:
    from botocore import xform_name

    shape = operation.input_shape
    required = set(shape.required_members) if shape is not None else set()
    lines = [xform_name(operation.name, "-"), ""]
    lines += [*textwrap.wrap(_plain(operation.documentation), 79), "", "Options:"]
    for name in members:
        flag = f"--{xform_name(name, '-')} <value>"
        lines.append(f"  {flag}" if name in required else f"  [{flag}]")
        if shape is not None:
            doc = _plain(shape.members[name].documentation)
            lines += textwrap.wrap(doc, 75, initial_indent="      ", subsequent_indent="      ")
    lines += [
        "  [--cli-input-json <value> | --cli-input-yaml <value>]",
        "  [--generate-cli-skeleton [input|yaml-input|output]]",
        "",
        "Global options:",
    ]
    lines += [f"  [{option}]" for option in _GLOBALS]
    return "\n".join(lines) + "\n"
