"""Response formatters: json, text and table as AWS CLI v1 prints them, yaml as v2 does.

The response reaches here with timestamps still as they came on the wire (v1's
`cli_timestamp_format = wire`), so `CreateTime` is printed untouched.
"""

from __future__ import annotations

import base64
import datetime
import json
from collections.abc import Callable
from typing import IO, Any

OUTPUT_CHOICES = ("json", "text", "table", "yaml")


class UnknownOutput(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"Unknown output type: {name}")


def _encode_extra(value: object) -> str:
    # Only a stubbed (skeleton) response carries datetimes; blobs never occur here.
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("utf-8")
    raise TypeError("Encountered unrecognized type in JSON encoder.")


def write_json(data: Any, stream: IO[str]) -> None:
    # An empty body prints nothing; other falsy values (null, []) are printed.
    if data != {}:
        json.dump(data, stream, indent=4, default=_encode_extra, ensure_ascii=False)
        stream.write("\n")


def write_yaml(data: Any, stream: IO[str]) -> None:
    import yaml

    if data != {}:
        yaml.safe_dump(
            _plain(data), stream, default_flow_style=False, allow_unicode=True, sort_keys=True
        )


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return value


def write_text(data: Any, stream: IO[str]) -> None:
    _text_item(data, stream, None, None)


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, dict | list)


def _text_item(item: Any, stream: IO[str], label: str | None, columns: list[str] | None) -> None:
    if isinstance(item, dict):
        _text_dict(item, stream, label, columns)
    elif isinstance(item, list):
        _text_list(item, stream, label)
    else:
        stream.write(f"{item}\n")


def _text_list(items: list[Any], stream: IO[str], label: str | None) -> None:
    if not items:
        return
    if any(isinstance(element, dict) for element in items):
        # Rows of one list share the union of their scalar keys, so columns line up.
        columns = sorted(
            {key for element in items for key, value in element.items() if _is_scalar(value)}
        )
        for element in items:
            _text_item(element, stream, label, columns)
        return
    if any(isinstance(element, list) for element in items):
        scalars = [element for element in items if _is_scalar(element)]
        if scalars:
            _text_scalars(scalars, stream, label)
        for element in items:
            if not _is_scalar(element):
                _text_item(element, stream, label, None)
        return
    _text_scalars(items, stream, label)


def _text_scalars(items: list[Any], stream: IO[str], label: str | None) -> None:
    if label is None:
        stream.write("\t".join(str(element) for element in items) + "\n")
    else:
        for element in items:
            stream.write(f"{label.upper()}\t{element}\n")


def _text_dict(
    item: dict[str, Any], stream: IO[str], label: str | None, columns: list[str] | None
) -> None:
    if columns is None:
        ordered = sorted(item.items())
        scalars = [str(value) for _, value in ordered if _is_scalar(value)]
        nested = [(key, value) for key, value in ordered if not _is_scalar(value)]
    else:
        scalars = [str(item.get(key, "")) for key in columns]
        nested = [(key, item[key]) for key in sorted(set(item) - set(columns))]
    if scalars:
        if label is not None:
            scalars.insert(0, label.upper())
        stream.write("\t".join(scalars) + "\n")
    for key, value in nested:
        _text_item(value, stream, key, None)


def formatter_for(output: str, title: str) -> Callable[[Any, IO[str]], None]:
    if output == "json":
        return write_json
    if output == "yaml":
        return write_yaml
    if output == "text":
        return write_text
    if output == "table":
        from monitor.awscompat.table import write_table

        return lambda data, stream: write_table(title, data, stream)
    raise UnknownOutput(output)
