"""The documents stay true to the code: every config key, log event and metric the daemon
has is documented, nothing documented is unknown to it, and the documents speak of the
product only.

Adding a config key, a log event or a metric therefore means adding a row to
docs/configuration.md (and a line to config/example.yaml), or to docs/operations.md.
"""

from __future__ import annotations

import re
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import pytest
import yaml
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from monitor.config import Config, load_config
from monitor.health import Health
from monitor.metrics import Metrics, exported_metric_names

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CONFIGURATION = DOCS / "configuration.md"
OPERATIONS = DOCS / "operations.md"
EXAMPLE = ROOT / "config" / "example.yaml"
PRODUCT_DOCS = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted(DOCS.glob("*.md"))]
DOC_FILES = ["configuration", "operations", "architecture", "performance", "reliability"]


# --- config keys -----------------------------------------------------------------------


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models a field's annotation holds (through Optional, list, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = get_origin(annotation)
    if origin is Annotated:
        return _models(get_args(annotation)[0])
    if origin in (Union, types.UnionType, list):
        return [model for arg in get_args(annotation) for model in _models(arg)]
    return []


def _is_list(annotation: Any) -> bool:
    if get_origin(annotation) is Annotated:
        return _is_list(get_args(annotation)[0])
    return get_origin(annotation) is list


def config_keys() -> Iterator[str]:
    """Every key of the config as an operator writes it: `poll.interval_seconds`,
    `track[].invalidation_id`, `accounts[].name`. A section that is always there (`aws`) is
    not a key of its own; a model met a second time (`accounts[].track`) is documented
    where it was first met, so its fields are not listed again."""
    yield from _walk(Config, "", set())


def _walk(model: type[BaseModel], prefix: str, seen: set[type[BaseModel]]) -> Iterator[str]:
    seen.add(model)
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        if not isinstance(field.default, BaseModel):  # a section such as `aws` is no key
            yield key
        for sub in _models(field.annotation):
            if sub not in seen:
                yield from _walk(sub, key + ("[]." if _is_list(field.annotation) else "."), seen)


def resolve(key: str) -> Any:
    """The pydantic field a dotted key names, or None when the model has no such key."""
    model: type[BaseModel] | None = Config
    field = None
    for part in key.split("."):
        if model is None or part.removesuffix("[]") not in model.model_fields:
            return None
        field = model.model_fields[part.removesuffix("[]")]
        found = _models(field.annotation)
        model = found[0] if found else None
    return field


def rendered_default(field: Any) -> str | None:
    """A field's default as YAML writes it (`20`, `true`, `adaptive`, `[]`); None when it
    has none to show (required, or None)."""
    default = field.default
    if default is PydanticUndefined or default is None or isinstance(default, BaseModel):
        return None
    if isinstance(default, float) and default.is_integer():
        default = int(default)
    return str(yaml.safe_dump(default, default_flow_style=True)).removesuffix("\n...\n").strip()


def table_rows(path: Path, header: str) -> list[list[str]]:
    """Rows of every Markdown table in `path` whose first header cell is `header`."""
    rows: list[list[str]] = []
    inside = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            inside = False
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not inside:
            inside = cells[0] == header
            continue
        if not re.fullmatch(r":?-+:?", cells[0]):  # not the header's separator row
            rows.append(cells)
    return rows


def code_name(cell: str) -> str:
    """The one backticked name a table's first cell must hold."""
    match = re.fullmatch(r"`([^`]+)`", cell)
    assert match, f"first cell {cell!r} must be exactly one `name`"
    return match.group(1)


def documented_config_keys() -> dict[str, str]:
    rows = table_rows(CONFIGURATION, "key")
    return {code_name(row[0]): row[1] for row in rows}


_EXAMPLE_KEY = re.compile(r"(\s*)(- )?([a-z_]+):(?:\s+(.*))?$")


def example_keys(text: str) -> list[tuple[str, str | None]]:
    """(dotted key, value text) of every key line of an example YAML file, commented-out
    ones included: `# ` is taken off a comment line first, so commented keys keep their
    place in the nesting."""
    found: list[tuple[str, str | None]] = []
    stack: list[tuple[int, str]] = []  # (indent, the path its children hang from)
    for raw in text.splitlines():
        line = re.sub(r"^(\s*)# ?", r"\1", raw)
        match = _EXAMPLE_KEY.fullmatch(line)
        if not match:
            continue
        indent, dash, name, value = len(match[1]), match[2], match[3], match[4]
        if dash:
            stack = [entry for entry in stack if entry[0] < indent]
            parent = stack[-1][1] if stack else ""
            stack.append((indent, f"{parent}[]"))
            indent += 2
        stack = [entry for entry in stack if entry[0] < indent]
        parent = stack[-1][1] if stack else ""
        key = f"{parent}.{name}" if parent else name
        stack.append((indent, key))
        found.append((key, value))
    return found


def test_every_config_key_is_in_the_configuration_table() -> None:
    documented = documented_config_keys()
    missing = [key for key in config_keys() if key not in documented]
    assert not missing, f"docs/configuration.md has no row for {missing}"


def test_the_configuration_table_names_only_keys_the_model_has() -> None:
    unknown = [key for key in documented_config_keys() if resolve(key) is None]
    assert not unknown, f"docs/configuration.md documents keys the config has not: {unknown}"


def test_the_configuration_table_gives_each_default() -> None:
    wrong = {}
    for key, default_cell in documented_config_keys().items():
        field = resolve(key)
        if field is None:
            continue
        shown = rendered_default(field)
        if shown is not None and f"`{shown}`" not in default_cell:
            wrong[key] = (default_cell, shown)
        elif field.is_required() and "required" not in default_cell:
            wrong[key] = (default_cell, "required")
    assert not wrong, f"defaults in docs/configuration.md differ from the code: {wrong}"


def test_the_example_config_is_valid() -> None:
    load_config(EXAMPLE)


def test_the_example_config_lists_every_key() -> None:
    present = {key for key, _ in example_keys(EXAMPLE.read_text(encoding="utf-8"))}
    missing = [key for key in config_keys() if key not in present]
    assert not missing, f"config/example.yaml does not list {missing}"


def test_the_example_config_names_only_known_keys_with_their_defaults() -> None:
    problems = []
    for key, value in example_keys(EXAMPLE.read_text(encoding="utf-8")):
        field = resolve(key)
        if field is None:
            problems.append(f"{key}: unknown key")
            continue
        shown = rendered_default(field)
        given = yaml.safe_load(value) if value else None  # None: a mapping or list follows
        if shown is not None and given is not None and given != yaml.safe_load(shown):
            problems.append(f"{key}: {value!r}, but the default is {shown}")
    assert not problems, f"config/example.yaml: {problems}"


# --- log events ------------------------------------------------------------------------

# A structlog call whose first argument is the event name, across lines too:
# `log.info("name"`, `self._log.warning(\n    "name"`, `logs.get_logger().error("name"`.
_LOG_CALL = re.compile(
    r"(?:\b_?log(?:ger)?|get_logger\([^)]*\))\s*\.\s*"
    r"(debug|info|warning|error|exception|critical)\(\s*[\"']([a-z][a-z0-9_]*)[\"']"
)
# Tools with output of their own (the emulator, the AWS CLI drop-in), not the daemon's log.
_NOT_LOGGING = ("emulator", "awscompat")


def emitted_events(root: Path = ROOT / "monitor") -> dict[str, set[str]]:
    """Event name -> the levels the code emits it at."""
    events: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*.py")):
        if path.relative_to(root).parts[0] in _NOT_LOGGING:
            continue
        for level, name in _LOG_CALL.findall(path.read_text(encoding="utf-8")):
            level = "error" if level in ("exception", "critical") else level
            events.setdefault(name, set()).add(level)
    return events


def documented_events() -> dict[str, str]:
    return {code_name(row[0]): row[1] for row in table_rows(OPERATIONS, "event")}


def test_the_event_scanner_finds_events_across_lines() -> None:
    source = 'self._log.warning(\n    "some_event",\n)\nlog.info("other")\nparser.error("x y")\n'
    assert set(_LOG_CALL.findall(source)) == {("warning", "some_event"), ("info", "other")}


def test_every_emitted_log_event_is_in_the_operations_table() -> None:
    emitted = emitted_events()
    assert "invalidation_transition" in emitted  # the scanner still finds events at all
    documented = documented_events()
    missing = sorted(set(emitted) - set(documented))
    assert not missing, f"docs/operations.md's log table lacks {missing}"
    wrong = {
        name: (documented[name], sorted(levels))
        for name, levels in emitted.items()
        if not all(level in documented[name] for level in levels)
    }
    assert not wrong, f"log levels in docs/operations.md differ from the code: {wrong}"


def test_every_event_in_the_operations_table_is_emitted() -> None:
    stale = sorted(set(documented_events()) - set(emitted_events()))
    assert not stale, f"docs/operations.md documents events nothing emits: {stale}"


# --- metrics ---------------------------------------------------------------------------


def exported_series() -> dict[str, str]:
    """Exported name (counters with `_total`) -> type, for every family the daemon has."""
    metrics = Metrics()
    metrics.watch(lambda: (), lambda: 0.0, Health(interval_seconds=1, tick_seconds=1))
    families = {family.name: family.type for family in metrics.registry.collect()}
    assert set(families) == exported_metric_names()
    return {f"{name}_total" if kind == "counter" else name: kind for name, kind in families.items()}


def documented_metrics() -> dict[str, str]:
    return {code_name(row[0]): row[1] for row in table_rows(OPERATIONS, "name")}


def test_every_exported_metric_is_in_the_operations_table() -> None:
    documented = documented_metrics()
    missing = sorted(set(exported_series()) - set(documented))
    assert not missing, f"docs/operations.md's metrics table lacks {missing}"
    wrong = {
        name: (documented[name], kind)
        for name, kind in exported_series().items()
        if documented[name] != kind
    }
    assert not wrong, f"metric types in docs/operations.md differ from the code: {wrong}"


def test_every_metric_in_the_operations_table_is_exported() -> None:
    stale = sorted(set(documented_metrics()) - set(exported_series()))
    assert not stale, f"docs/operations.md documents metrics the daemon does not export: {stale}"


# --- the documents as a whole ----------------------------------------------------------


def test_the_readme_is_short_and_links_every_document() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 150
    for name in DOC_FILES:
        assert f"](docs/{name}.md)" in text, f"README.md does not link docs/{name}.md"


# Words of a lab notebook or of how the work was commissioned, not of the product.
_FORBIDDEN = re.compile(
    r"(?i:the issue|issue was silent|as asked)|\.\./shared|\bI (?:suspect|ran|tried|think)\b"
)
_CODE = re.compile(r"```.*?```|`[^`\n]*`", re.S)
_FIRST_PERSON = re.compile(r"(?<![\w/.-])I(?![\w/.-])")


@pytest.mark.parametrize("path", PRODUCT_DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_documents_speak_of_the_product_only(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    found = _FORBIDDEN.findall(text)
    assert not found, f"{path.name}: {found}"
    prose = _CODE.sub("", text)
    lines = [line for line in prose.splitlines() if _FIRST_PERSON.search(line)]
    assert not lines, f"{path.name} speaks in the first person: {lines}"


@pytest.mark.parametrize("path", PRODUCT_DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_inside_the_repository(path: Path) -> None:
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        resolved = (path.parent / target.split("#")[0]).resolve()
        if not resolved.is_relative_to(ROOT) or not resolved.exists():
            broken.append(target)
    assert not broken, f"{path.name} links to what the repository does not hold: {broken}"


@pytest.mark.parametrize("path", PRODUCT_DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_tables_have_as_many_cells_in_each_row_as_in_their_header(path: Path) -> None:
    # A `|` inside a cell shifts every cell after it: the default read for a key, say.
    ragged = []
    width = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.startswith("|"):
            width = None
            continue
        cells = len(line.strip().strip("|").split("|"))
        if width is None:
            width = cells
        elif cells != width:
            ragged.append(number)
    assert not ragged, f"{path.name}: table rows with a stray `|` at lines {ragged}"
