"""Property-based: every invalid config gives one line naming the key, never a traceback."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.cli import exits, run
from monitor.config import Config, ConfigError, load_config, parse_config

VALID_ID = st.from_regex(r"[A-Z0-9]{6,32}", fullmatch=True)
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
KEYS = {
    "aws": ["endpoint_url", "profile", "region", "retry_mode", "max_attempts"],
    "state": ["path"],
    "poll": ["interval_seconds", "concurrency", "max_failures"],
    "http": ["listen"],
    "log": ["format", "level"],
}


@contextlib.contextmanager
def logging_kept() -> Iterator[None]:
    """The test process's logging as it was, whatever the daemon's entry point set up."""
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        structlog.configure(**saved)
        root.handlers[:] = handlers
        root.setLevel(level)


def check(data: Any, tmp: Path) -> None:
    path = tmp / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    try:
        config = load_config(path)
    except ConfigError as error:
        message = str(error)
        assert message and "\n" not in message
        # The daemon's own entry point: exit 78 and exactly one line on stderr.
        err, out = io.StringIO(), io.StringIO()
        with logging_kept(), contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            assert run.main(["--config", str(path)]) == exits.CONFIG
        assert len(err.getvalue().splitlines()) == 1
        return
    assert isinstance(config, Config)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(section=st.sampled_from(sorted(KEYS)), data=st.data(), value=JUNK)
def test_any_value_in_any_key_loads_or_names_the_key(
    tmp_path: Path, section: str, data: st.DataObject, value: Any
) -> None:
    key = data.draw(st.sampled_from(KEYS[section]))
    config = {section: {key: value}}
    try:
        parse_config(config)
    except ConfigError as error:
        assert f"{section}.{key}" in str(error) or f"{section}:" in str(error)
    check(config, tmp_path)


@settings(max_examples=100, deadline=None)
@given(ident=st.text(max_size=40), good=VALID_ID)
def test_id_parsing(ident: str, good: str) -> None:
    pair = {"distribution_id": ident, "invalidation_id": good}
    try:
        config = parse_config({"track": [pair]})
    except ConfigError as error:
        assert "track.0.distribution_id" in str(error)
    else:
        assert config.track[0].distribution_id == ident
        assert re.fullmatch(r"[A-Z0-9]{6,32}", ident)


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=200))
def test_arbitrary_text_never_raises_anything_but_config_error(text: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            load_config(path)
        except ConfigError as error:
            assert "\n" not in str(error)


def test_binary_file_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert result.returncode == 78
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr


def _hostile(kind: str, path: Path) -> str:
    """Write a config file that would hang or crash a naive reader; the expected message."""
    if kind == "deep":
        path.write_text("track: " + "[" * 5000 + "]" * 5000 + "\n")
        return "line 1 column 39: nested more than 32 levels deep"
    if kind == "huge":
        with open(path, "wb") as file:
            file.truncate(11 * 1024 * 1024)
        return "11534336 bytes, more than a config file may have (10 MiB)"
    if kind == "aliases":  # a billion laughs
        lines = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
        for this, prev in zip("bcdefgh", "abcdefg", strict=True):
            lines.append(f"{this}: &{this} [" + ", ".join([f"*{prev}"] * 9) + "]")
        path.write_text("\n".join(lines) + "\n")
        return "more than 100000 values once aliases expand"
    if kind == "fifo":
        os.mkfifo(path)
        return "not a regular file (a FIFO)"
    path.mkdir()
    return "not a regular file (a directory)"


@pytest.mark.parametrize("kind", ["deep", "huge", "aliases", "fifo", "directory"])
def test_a_config_file_that_would_hang_or_crash_start_up_is_refused_in_one_line(
    kind: str, tmp_path: Path
) -> None:
    path = tmp_path / "monitor.yaml"
    expected = _hostile(kind, path)
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,  # a FIFO or a huge file must not hang start-up
    )
    assert result.returncode == exits.CONFIG
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr == f"cloudfront-invalidation-monitor: config error: {path}: {expected}\n"


def test_a_mistyped_key_names_the_nearest_known_one(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("poll:\n  intervall_seconds: 3\n")
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    assert str(refused.value) == (
        f"{path}: poll.intervall_seconds: unknown key (did you mean 'interval_seconds'?)"
    )
    path.write_text(
        "accounts:\n- name: prod\n  discover: {distributions: all, lookbak_seconds: 5}\n"
    )
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    assert "(did you mean 'lookback_seconds'?)" in str(refused.value)
    path.write_text("something_else: 1\n")
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    assert str(refused.value).endswith("something_else: unknown key")  # nothing near
