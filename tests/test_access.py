"""The tokens file: its format, its permissions, and the daemon refusing a bad one."""

from __future__ import annotations

import os
import signal
import struct
from pathlib import Path

import pytest

from monitor.access import load_tokens
from monitor.config import ConfigError
from tests.support import Daemon, free_port, write_config
from tests.webclient import OTHER_TOKEN, TOKEN, TOKENS


def tokens_file(tmp_path: Path, text: str = TOKENS, mode: int = 0o600) -> Path:
    path = tmp_path / "tokens"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_names_come_from_the_file_and_only_whole_tokens_match(tmp_path: Path) -> None:
    tokens = load_tokens(tokens_file(tmp_path))
    assert tokens.holder(TOKEN) == "ci-bot"
    assert tokens.holder(OTHER_TOKEN) == "deploy"
    assert tokens.holder(TOKEN[:-1]) is None
    assert tokens.holder(TOKEN + "x") is None
    assert tokens.holder("") is None


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o620, 0o602])
def test_a_file_open_to_group_or_others_is_refused(tmp_path: Path, mode: int) -> None:
    with pytest.raises(ConfigError) as refused:
        load_tokens(tokens_file(tmp_path, mode=mode))
    assert str(refused.value).startswith("http.tokens_file: ")
    assert f"{mode:04o}" in str(refused.value) and "chmod 600" in str(refused.value)


def acl(*entries: tuple[int, int, int]) -> bytes:
    """A POSIX ACL as the kernel stores it (system.posix_acl_access)."""
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *entry) for entry in entries)


NOBODY = 65534
ANY = 0xFFFFFFFF


@pytest.mark.parametrize(
    ("entries", "allowed"),
    [
        # As systemd's LoadCredential= leaves it: root's file, read by the service's user.
        (
            [
                (0x01, 0o6, ANY),
                (0x02, 0o4, NOBODY),
                (0x04, 0, ANY),
                (0x10, 0o4, ANY),
                (0x20, 0, ANY),
            ],
            True,
        ),
        ([(0x01, 0o6, ANY), (0x04, 0o4, ANY), (0x10, 0o4, ANY), (0x20, 0, ANY)], False),
        (
            [
                (0x01, 0o6, ANY),
                (0x04, 0, ANY),
                (0x08, 0o4, NOBODY),
                (0x10, 0o4, ANY),
                (0x20, 0, ANY),
            ],
            False,
        ),
        ([(0x01, 0o6, ANY), (0x04, 0, ANY), (0x10, 0o4, ANY), (0x20, 0o4, ANY)], False),
    ],
)
def test_an_acl_is_read_rather_than_the_mask_in_the_mode(
    tmp_path: Path, entries: list[tuple[int, int, int]], allowed: bool
) -> None:
    path = tokens_file(tmp_path)
    try:
        os.setxattr(path, "system.posix_acl_access", acl(*entries))
    except OSError:
        pytest.skip("no POSIX ACLs on this file system")
    assert os.stat(path).st_mode & 0o070  # the mask shows as group bits either way
    if allowed:
        assert load_tokens(path).holder(TOKEN) == "ci-bot"
    else:
        with pytest.raises(ConfigError, match="its ACL lets a group or others in"):
            load_tokens(path)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("ci-bot\n", "line 1: expected NAME TOKEN"),
        ("ci-bot a b c d e f\n", "line 1: expected NAME TOKEN"),
        ("# only a comment\n\n", "holds no token"),
        ("ci-bot short\n", "shorter than 16"),
        (f"ci/bot {TOKEN}\n", "'ci/bot' is not a name"),
        (f"a {TOKEN}\na {OTHER_TOKEN}\n", "line 2: the name 'a' is given twice"),
        (f"a {TOKEN}\nb {TOKEN}\n", "line 2: the same token is given twice"),
    ],
)
def test_a_malformed_file_is_one_line_naming_the_key_and_line(
    tmp_path: Path, text: str, says: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        load_tokens(tokens_file(tmp_path, text))
    message = str(refused.value)
    assert message.startswith("http.tokens_file: ") and says in message
    assert TOKEN not in message and "\n" not in message


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"http.tokens_file: cannot read .*No such file"):
        load_tokens(tmp_path / "absent")


def test_the_daemon_refuses_to_start_with_a_readable_tokens_file(tmp_path: Path) -> None:
    path = tokens_file(tmp_path, mode=0o644)
    config = write_config(
        tmp_path / "monitor.yaml",
        state={"path": str(tmp_path / "state.db")},
        http={"listen": f"127.0.0.1:{free_port()}", "tokens_file": str(path)},
    )
    daemon = Daemon(config)
    try:
        assert daemon.proc.wait(30) == 78
        [line] = daemon.stderr().splitlines()
        assert line.startswith("cloudfront-invalidation-monitor: config error: http.tokens_file:")
        assert "0644" in line
    finally:
        daemon.stop(signal.SIGKILL)
    assert not (tmp_path / "state.db").exists()  # refused before anything was opened
