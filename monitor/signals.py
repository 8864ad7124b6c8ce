"""Signals that arrive before the daemon's event loop can handle them.

Importing the AWS SDK takes a noticeable fraction of a second, and a SIGHUP's default
action is to end the process: systemd reloading a service that is still starting must not
kill it. From the first moment, the daemon's signals are only remembered; the service
acts on them once its loop handles signals itself.
"""

from __future__ import annotations

import signal
from types import FrameType

HANDLED = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)
_received: list[int] = []


def defer() -> None:
    for sig in HANDLED:
        signal.signal(sig, _remember)


def _remember(signum: int, _frame: FrameType | None) -> None:
    _received.append(signum)


def received() -> list[int]:
    """The signals remembered so far, oldest first; each is handed out once."""
    taken = list(_received)
    del _received[: len(taken)]
    return taken
