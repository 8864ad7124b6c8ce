"""`python -m monitor.awscompat COMMAND ...`, for tests and for use without the project CLI."""

from __future__ import annotations

import sys

from monitor.awscompat import command, tenant

_COMMANDS = {
    "get-invalidation": command.main,
    "get-invalidation-for-distribution-tenant": tenant.main,
}


def _main(argv: list[str]) -> int:
    if not argv or argv[0] not in _COMMANDS:
        names = " | ".join(_COMMANDS)
        sys.stderr.write(f"usage: python -m monitor.awscompat {{{names}}} [options]\n")
        return 2
    return _COMMANDS[argv[0]](argv[1:])


raise SystemExit(_main(sys.argv[1:]))
