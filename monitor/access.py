"""Who may do what through the HTTP API: bearer tokens from `http.tokens_file`.

The file holds one `NAME TOKEN` per line (`#` starts a comment). It must be private to
its owner: a token another local user can read is anyone's. The name is what the logs
say of a caller; the token itself is never logged and is compared in constant time.
"""

from __future__ import annotations

import hmac
import os
import re
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

from monitor.config import ConfigError, HttpConfig

KEY = "http.tokens_file"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MIN_TOKEN_LENGTH = 16
MAX_FILE_BYTES = 1024 * 1024
# Tags of a POSIX ACL entry (linux/posix_acl_xattr.h).
_ACL_GROUP_OBJ, _ACL_GROUP, _ACL_MASK, _ACL_OTHER = 0x04, 0x08, 0x10, 0x20


@dataclass(frozen=True)
class Tokens:
    """The tokens allowed to write, by the name the logs give their holder."""

    by_name: dict[str, bytes]

    def holder(self, presented: str) -> str | None:
        """The name of the token presented, or None. Every token is compared, each in
        constant time, so the answer's timing says nothing about which one came close."""
        given = presented.encode()
        found = None
        for name, token in self.by_name.items():
            if hmac.compare_digest(given, token):
                found = name
        return found


def configured_tokens(http: HttpConfig) -> Tokens | None:
    """The tokens that may write through the API, if the config names a file of them."""
    return None if http.tokens_file is None else load_tokens(http.tokens_file)


def load_tokens(path: str | Path) -> Tokens:
    """The tokens file, checked; ConfigError (one line naming the key) if it cannot be used."""
    try:
        with open(path, "rb") as file:
            mode = os.fstat(file.fileno()).st_mode
            if not stat.S_ISREG(mode):
                raise ConfigError(f"{KEY}: {path} is not a regular file")
            if (shared := _shared(file.fileno(), mode)) is not None:
                raise ConfigError(
                    f"{KEY}: {path} is open to group or others ({shared});"
                    f" make it private to its owner: chmod 600 {path}"
                )
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise ConfigError(f"{KEY}: cannot read {path}: {error.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(f"{KEY}: {path} is larger than a tokens file may be (1 MiB)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{KEY}: {path} is not UTF-8 text") from None
    return Tokens(_parse(text, str(path)))


def _shared(fd: int, mode: int) -> str | None:
    """How group or others may use the file, or None when only its owner may.

    With a POSIX ACL the mode's group bits are the ACL's mask, so the ACL itself is read:
    the owning group, named groups and others count; users named one by one do not (that
    is how systemd's LoadCredential= hands a root-owned file to the service's own user).
    """
    try:
        acl = os.getxattr(fd, "system.posix_acl_access")
    except OSError:  # none, or a file system without ACLs
        acl = b""
    if len(acl) < 4 or (len(acl) - 4) % 8:
        return f"mode {stat.S_IMODE(mode):04o}" if mode & 0o077 else None
    entries = [struct.unpack_from("<HHI", acl, at) for at in range(4, len(acl), 8)]
    mask = next((perm for tag, perm, _ in entries if tag == _ACL_MASK), 0o7)
    shared = any(
        perm & (mask if tag in (_ACL_GROUP_OBJ, _ACL_GROUP) else 0o7)
        for tag, perm, _ in entries
        if tag in (_ACL_GROUP_OBJ, _ACL_GROUP, _ACL_OTHER)
    )
    return "its ACL lets a group or others in" if shared else None


def _parse(text: str, path: str) -> dict[str, bytes]:
    by_name: dict[str, bytes] = {}
    seen: set[bytes] = set()
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        where = f"{KEY}: {path} line {number}"
        if len(words) != 2:
            raise ConfigError(f"{where}: expected NAME TOKEN")
        name, token = words[0], words[1].encode()
        if not NAME.fullmatch(name):
            raise ConfigError(f"{where}: {name!r} is not a name (letters, digits, . _ -)")
        if len(token) < MIN_TOKEN_LENGTH:
            raise ConfigError(f"{where}: the token is shorter than {MIN_TOKEN_LENGTH} characters")
        if name in by_name:
            raise ConfigError(f"{where}: the name {name!r} is given twice")
        if token in seen:
            raise ConfigError(f"{where}: the same token is given twice")
        by_name[name] = token
        seen.add(token)
    if not by_name:
        raise ConfigError(f"{KEY}: {path} holds no token (one NAME TOKEN per line)")
    return by_name
