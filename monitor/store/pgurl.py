"""PostgreSQL URLs as the config and the command line give them: checked by libpq's own
parser, and never shown with their password.

libpq's conventions hold: `postgresql://[user[:password]@][host][:port][,...][/dbname]
[?param=value&...]`, with anything left out taken from the `PG*` environment variables,
and a password from `PGPASSWORD` or `~/.pgpass` when the URL has none.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote

from monitor.redact import redact

SCHEMES = ("postgresql", "postgres")
MASK = "***"
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&]*", re.IGNORECASE)


def check(url: str) -> None:
    """Raise ValueError, one line with the password masked, unless libpq takes `url` as a
    PostgreSQL URL with sensible ports."""
    scheme, found, _ = url.partition("://")
    if not found or scheme not in SCHEMES:
        raise ValueError(
            f"{masked(url)!r} is not a PostgreSQL URL"
            " (postgresql://[user[:password]@][host][:port][/dbname][?param=value...])"
        )
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(url)
    except psycopg.Error as error:
        raise ValueError(f"{masked(url)!r}: {scrub(str(error), url)}") from None
    for port in str(params.get("port", "")).split(","):
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise ValueError(f"{masked(url)!r}: {port!r} is not a port number")


def masked(url: str) -> str:
    """`url` with its password, if it has one, replaced by ***."""
    head, found, rest = url.partition("://")
    if not found:
        return _QUERY_PASSWORD.sub(rf"\1{MASK}", url)
    authority, tail = _split_authority(rest)
    userinfo, at, hosts = authority.rpartition("@")
    if at and ":" in userinfo:
        authority = f"{userinfo.split(':', 1)[0]}:{MASK}@{hosts}"
    return f"{head}://{authority}" + _QUERY_PASSWORD.sub(rf"\1{MASK}", tail)


def scrub(text: str, url: str) -> str:
    """`text` (an error message, say) on one line, without `url`'s password in any form."""
    line = " ".join(part.strip() for part in text.splitlines() if part.strip())
    shown = masked(url)
    # The masked URL is kept whole: a password such as "postgres" must not maul it.
    pieces = line.replace(url, shown).split(shown)
    return shown.join(redact(piece, _passwords(url), MASK) for piece in pieces)


def _passwords(url: str) -> list[str]:
    _, _, rest = url.partition("://")
    authority, tail = _split_authority(rest)
    userinfo, at, _ = authority.rpartition("@")
    found = [userinfo.split(":", 1)[1]] if at and ":" in userinfo else []
    found += [value for name, value in parse_qsl(tail.partition("?")[2]) if name == "password"]
    found += [unquote(value) for value in found]
    # Longest first, so that a password containing another is masked whole.
    return sorted({value for value in found if value}, key=len, reverse=True)


def _split_authority(rest: str) -> tuple[str, str]:
    """The authority (user, password, hosts) and what follows it (path, query)."""
    end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    # A password may hold a literal / or ? that libpq accepts: the authority runs to the
    # last @ before the path, if there is one.
    at = rest.rfind("@")
    if at >= end:
        end = min(
            (i for i in (rest.find("/", at), rest.find("?", at)) if i >= 0), default=len(rest)
        )
    return rest[:end], rest[end:]
