"""--generate-cli-skeleton and --cli-input-json / --cli-input-yaml.

A skeleton is the operation's input (or output) shape with placeholder values; the same
shape, filled in, comes back through --cli-input-json or --cli-input-yaml. Values given on
the command line win over the ones read from the input document.
"""

from __future__ import annotations

import json
import os
import re
from typing import IO, Any

from botocore.model import ListShape, OperationModel, Shape, StructureShape
from botocore.utils import ArgumentGenerator

from monitor.awscompat.errors import PARAM_VALIDATION_RC, CommandError, ParamError

SKELETON_CHOICES = ("input", "output", "yaml-input")
_FILE_PREFIXES = {"file://": "r", "fileb://": "rb"}


def read_param_file(option: str, value: str) -> str | bytes | None:
    """Contents of a `file://` or `fileb://` value; None when `value` is not such a URI."""
    for prefix, mode in _FILE_PREFIXES.items():
        if value.startswith(prefix):
            path = os.path.expandvars(os.path.expanduser(value[len(prefix) :]))
            try:
                with open(path, mode) as handle:
                    data: str | bytes = handle.read()
                    return data
            except UnicodeDecodeError:
                raise ParamError(
                    option,
                    f"Unable to load paramfile ({path}), text contents could not be "
                    "decoded.  If this is a binary file, please use the fileb:// prefix "
                    "instead of the file:// prefix.",
                ) from None
            except OSError as exc:
                raise ParamError(option, f"Unable to load paramfile {value}: {exc}") from None
    return None


def load_cli_input_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ParamError("cli-input-json", f"Invalid JSON: {exc}\nJSON received: {text}") from None


def load_cli_input_yaml(text: str) -> dict[str, Any]:
    import yaml

    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError:
        raise ParamError("cli-input-yaml", "Invalid YAML received.", PARAM_VALIDATION_RC) from None
    if not isinstance(loaded, dict):
        raise ParamError(
            "cli-input-yaml",
            f"Invalid type: expecting map, received {type(loaded)}",
            PARAM_VALIDATION_RC,
        )
    return loaded


def merge_input(params: dict[str, Any], document: Any) -> None:
    """Add the document's members that the command line did not already set."""
    if not isinstance(document, dict):
        # v1 fails here on `.keys()` and prints the AttributeError as it is.
        raise CommandError(f"'{type(document).__name__}' object has no attribute 'keys'")
    for key, value in document.items():
        params.setdefault(key, value)


def input_skeleton(operation: OperationModel) -> dict[str, Any]:
    shape = operation.input_shape
    if shape is None:
        return {}
    skeleton: dict[str, Any] = ArgumentGenerator().generate_skeleton(shape)
    return skeleton


def output_sample(operation: OperationModel) -> dict[str, Any]:
    shape = operation.output_shape
    if shape is None:
        return {}
    sample: dict[str, Any] = ArgumentGenerator(use_member_names=True).generate_skeleton(shape)
    return sample


def write_json_skeleton(operation: OperationModel, stream: IO[str]) -> None:
    stream.write(json.dumps(input_skeleton(operation), indent=4) + "\n")


def write_yaml_skeleton(operation: OperationModel, stream: IO[str]) -> None:
    """v2's `yaml-input`: members in model order, each with its doc line as a comment."""
    shape = operation.input_shape
    if shape is None:
        stream.write("{}\n")
        return
    lines: list[str] = []
    _yaml_structure(shape, input_skeleton(operation), 0, lines, first_prefix="")
    stream.write("".join(lines))


def _yaml_structure(
    shape: Shape, values: dict[str, Any], indent: int, lines: list[str], first_prefix: str
) -> None:
    assert isinstance(shape, StructureShape)
    required = set(shape.required_members)
    for position, (name, value) in enumerate(values.items()):
        member = shape.members[name]
        lead = first_prefix if position == 0 and first_prefix else " " * indent
        comment = _member_comment(member, name in required)
        suffix = f" # {comment}" if comment else ""
        if isinstance(value, dict) and value:
            lines.append(f"{lead}{name}:{suffix}\n")
            _yaml_structure(member, value, indent + 2, lines, first_prefix="")
        elif isinstance(value, list) and value:
            lines.append(f"{lead}{name}:{suffix}\n")
            _yaml_list(member, value, indent, lines)
        else:
            lines.append(f"{lead}{name}: {_yaml_scalar(value)}{suffix}\n")


def _yaml_list(shape: Shape, values: list[Any], indent: int, lines: list[str]) -> None:
    assert isinstance(shape, ListShape)
    element_shape = shape.member
    for value in values:
        if isinstance(value, dict) and value:
            _yaml_structure(element_shape, value, indent + 2, lines, " " * indent + "- ")
        else:
            lines.append(f"{' ' * indent}- {_yaml_scalar(value)}\n")


def _yaml_scalar(value: Any) -> str:
    import yaml

    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    dumped: str = yaml.safe_dump(value, default_flow_style=True)
    return dumped.split("\n")[0]


_TAG = re.compile(r"<[^>]+>")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


def _member_comment(member: Shape, required: bool) -> str:
    parts = ["[REQUIRED]"] if required else []
    text = " ".join(_TAG.sub("", member.documentation or "").split())
    if text:
        parts.append(_SENTENCE_END.split(text, maxsplit=1)[0])
    enum = getattr(member, "enum", None)
    if enum:
        parts.append(f"Valid values are: {', '.join(enum)}.")
    return " ".join(parts)
