"""Answers that make no sense: each one counted, each subject logged once.

An answer CloudFront sent but the monitor cannot trust (a CreateTime in the future or
decades back, one botocore cannot read, an ID that breaks the ID rules, a status nobody
knows) is never fatal and never measured. Counting every one lets an alert see that it
goes on; logging each (kind, subject) once keeps a poisoned listing from flooding the log.
"""

from __future__ import annotations

from collections.abc import Callable

from monitor.logs import get_logger

LOGGED_AT_MOST = 10_000  # subjects remembered; past that, odd answers are counted only


class OddAnswers:
    def __init__(self, count: Callable[[str, str], None]) -> None:
        self._count = count  # (account, kind): the metric
        self._logged: set[tuple[str, str]] = set()
        self._log = get_logger()

    def report(self, account: str, kind: str, subject: str, **detail: object) -> None:
        """One odd answer about `subject` (a pair `D/I`, or a distribution's listing)."""
        self._count(account, kind)
        if (kind, subject) in self._logged or len(self._logged) >= LOGGED_AT_MOST:
            return
        self._logged.add((kind, subject))
        self._log.warning("odd_answer", account=account, kind=kind, subject=subject, **detail)
