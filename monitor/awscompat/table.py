"""`--output table`: the AWS CLI v1 box layout, character for character.

A response becomes nested sections (one per structure or list of structures); every
section is stretched to the widest one, and when that is wider than the terminal the
single-row sections are turned on their side. Column widths are scaled with Python's
round(), as the AWS CLI does, so the borders land in the same places.
"""

from __future__ import annotations

import os
import sys
import unicodedata
from dataclasses import dataclass, field
from typing import IO, Any

_CELL_PADDING = 4
_DEFAULT_TERMINAL_WIDTH = 80


def display_width(value: object) -> int:
    # Wide and ambiguous East Asian characters take two columns on a terminal.
    return sum(2 if unicodedata.east_asian_width(ch) in "WFA" else 1 for ch in str(value))


@dataclass
class Section:
    title: str = ""
    indent: int = 0
    headers: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    widest: list[int] = field(default_factory=list)
    columns: int | None = None

    def set_headers(self, headers: list[str]) -> None:
        self._widen(headers)
        if self.columns is None:
            self.columns = len(headers)
        self.headers = headers

    def add_row(self, row: list[Any]) -> None:
        if self.columns is None:
            self.columns = len(row)
        if len(row) != self.columns:
            raise ValueError(f"Row should have {self.columns} elements, instead it has {len(row)}")
        cells = [str(cell) for cell in row]
        self.rows.append(cells)
        self._widen(cells)

    def _widen(self, cells: list[str]) -> None:
        if not self.widest:
            self.widest = [display_width(cell) for cell in cells]
            return
        for index, cell in enumerate(cells):
            self.widest[index] = max(display_width(cell), self.widest[index])

    def column_widths(self, total: int) -> list[int]:
        """Widths (cell padding included) scaled so that they add up to `total`."""
        natural = [width + _CELL_PADDING for width in self.widest]
        if not natural:
            return natural
        scale = total / float(sum(natural))
        scaled = [round(scale * width) for width in natural]
        surplus = sum(scaled) - total
        while surplus != 0:
            order = list(range(len(scaled)))
            if surplus < 0:
                order.reverse()
            for index in order:
                step = 1 if surplus > 0 else -1
                scaled[index] -= step
                surplus -= step
                if surplus == 0:
                    break
        return scaled

    def natural_width(self) -> int:
        body = sum(width + _CELL_PADDING for width in self.widest) + 2 + 2 * self.indent
        return max(display_width(self.title) + 2 + 2 * self.indent, body)


class _Builder:
    """Walks a response the way v1's TableFormatter does."""

    def __init__(self) -> None:
        self.sections: list[Section] = []

    @property
    def current(self) -> Section:
        return self.sections[-1]

    def build(self, title: str | None, value: Any, indent: int = 0) -> bool:
        if not value:
            return False
        if title is not None:
            self.sections.append(Section(title=title, indent=indent))
        if isinstance(value, list):
            if isinstance(value[0], dict):
                self._list_of_dicts(value, indent, title)
            else:
                for item in value:
                    if _scalar(item):
                        self.current.add_row([item])
                    elif all(_scalar(element) for element in item):
                        self.current.add_row(list(item))
                    else:
                        self.build(None, item)
        if isinstance(value, dict):
            self._dict(value, indent)
        return True

    def _dict(self, value: dict[str, Any], indent: int) -> None:
        headers, nested = _split_keys(value)
        if len(headers) == 1:
            self.current.add_row([headers[0], value[headers[0]]])
        elif headers:
            self.current.set_headers(headers)
            self.current.add_row([value[key] for key in headers])
        for key in nested:
            self.build(key, value[key], indent + 1)

    def _list_of_dicts(self, items: list[dict[str, Any]], indent: int, title: str | None) -> None:
        header_set: set[str] = set()
        nested_set: set[str] = set()
        for item in items:
            headers, nested = _split_keys(item)
            header_set.update(headers)
            nested_set.update(nested)
        headers = sorted(header_set)
        nested = sorted(nested_set)
        self.current.set_headers(headers)
        for position, item in enumerate(items):
            if position and nested:
                # Each element with sub-tables gets its own titled section.
                self.sections.append(Section(title=title or "", indent=indent))
                self.current.set_headers(headers)
            self.current.add_row([item.get(key, "") for key in headers])
            for key in nested:
                if key in item:
                    self.build(key, item[key], indent + 1)


def _scalar(value: Any) -> bool:
    return not isinstance(value, list | dict)


def _split_keys(value: dict[str, Any]) -> tuple[list[str], list[str]]:
    scalars = sorted(key for key in value if _scalar(value[key]))
    nested = sorted(key for key in value if not _scalar(value[key]))
    return scalars, nested


def _terminal_width() -> int:
    try:
        return os.get_terminal_size(sys.stdout.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return _DEFAULT_TERMINAL_WIDTH


def _centered(text: str, width: int, left: str = "|", right: str = "|") -> str:
    text_width = display_width(text)
    start = width // 2 - text_width // 2 - 1
    used = len(left) + start + text_width
    return f"{left}{' ' * start}{text}{' ' * (width - len(right) - used)}{right}"


def _left_aligned(text: str, width: int, left: str, right: str = "|") -> str:
    text_width = display_width(text)
    padding = 2 if width - (text_width + 2 + len(left) + len(right)) >= 0 else 0
    used = len(left) + padding + text_width
    return f"{left}{' ' * padding}{text}{' ' * (width - used - len(right))}{right}"


def _rule(widths: list[int]) -> str:
    parts = [f"+{'-' * (widths[0] - 2)}+"] + [f"{'-' * (width - 1)}+" for width in widths[1:]]
    return "".join(parts)


def _cells(values: list[str], widths: list[int], align_left: bool) -> str:
    line = ""
    for position, (width, value) in enumerate(zip(widths, values, strict=False)):
        edge = "" if position else "|"
        if align_left:
            line += _left_aligned(value, width, edge)
        else:
            line += _centered(value, width, edge)
    return line


def _on_side(sections: list[Section]) -> list[Section]:
    turned = []
    for section in sections:
        if len(section.rows) == 1 and section.headers:
            upright = Section(title=section.title, indent=section.indent)
            for header, cell in zip(section.headers, section.rows[0], strict=False):
                upright.add_row([header, cell])
            turned.append(upright)
        else:
            turned.append(section)
    return turned


def _render_section(section: Section, total: int, out: list[str]) -> None:
    bars = "|" * section.indent
    width = total - 2 * section.indent

    def line(text: str) -> None:
        out.append(f"{bars}{text}{bars}\n")

    if section.title:
        line(_centered(section.title, width))
        if not section.headers and not section.rows:
            line(f"+{'-' * (width - 2)}+")
    if section.headers:
        widths = section.column_widths(width)
        line(_rule(widths))
        line(_cells(section.headers, widths, align_left=False))
    if section.rows:
        widths = section.column_widths(width)
        if not widths:
            return
        line(_rule(widths))
        for row in section.rows:
            line(_cells(row, widths, align_left=True))
        line(_rule(widths))


def write_table(title: str, data: Any, stream: IO[str]) -> None:
    builder = _Builder()
    if not builder.build(title, data):
        return
    sections = builder.sections
    total = max(section.natural_width() for section in sections)
    if total > _terminal_width():
        sections = _on_side(sections)
        total = max(section.natural_width() for section in sections)
    out = ["-" * total + "\n"]
    for section in sections:
        _render_section(section, total, out)
    stream.write("".join(out))
