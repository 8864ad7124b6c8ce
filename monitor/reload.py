"""What a SIGHUP may change in a running daemon, and what needs a restart.

Live: the tracked list (new pairs are added; pairs dropped from the file stay tracked, use
`untrack`), each account's tracked list too, thresholds and poll timing, and logging.
Anything that owns a socket, a file, a client or a scheduled job (aws, state, http,
discover, poll.concurrency, and accounts apart from their `track` lists) needs a restart;
a reload that changes one of those is applied for the rest and says which keys it left
alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.config import AccountConfig, Config

RESTART_ONLY = ("aws", "state", "http", "discover")
# The exported series' labels are fixed when the metrics are made.
METRIC_LABELS = ("per_distribution", "per_invalidation")


@dataclass(frozen=True, slots=True)
class ReloadPlan:
    config: Config  # what the daemon runs with after the reload
    needs_restart: tuple[str, ...]  # keys that changed but keep their old value until restart


def plan(current: Config, new: Config) -> ReloadPlan:
    ignored = [key for key in RESTART_ONLY if getattr(current, key) != getattr(new, key)]
    poll = new.poll
    if new.poll.concurrency != current.poll.concurrency:
        ignored.append("poll.concurrency")
        poll = poll.model_copy(update={"concurrency": current.poll.concurrency})
    metrics = new.metrics
    labels = {name: getattr(current.metrics, name) for name in METRIC_LABELS}
    if {name: getattr(metrics, name) for name in METRIC_LABELS} != labels:
        ignored.append("metrics (" + ", ".join(METRIC_LABELS) + ")")
        metrics = metrics.model_copy(update=labels)
    kept = {key: getattr(current, key) for key in RESTART_ONLY}
    accounts = new.accounts
    if _clients(current.accounts) != _clients(new.accounts):
        ignored.append("accounts")
        # The clients stay as they are; the tracked lists of the accounts kept are taken.
        tracks = {account.name: account.track for account in new.accounts}
        accounts = [
            a.model_copy(update={"track": tracks.get(a.name, a.track)}) for a in current.accounts
        ]
    return ReloadPlan(
        config=new.model_copy(
            update={**kept, "poll": poll, "metrics": metrics, "accounts": accounts}
        ),
        needs_restart=tuple(ignored),
    )


def _clients(accounts: list[AccountConfig]) -> dict[str, AccountConfig]:
    # By name: the order of the list means nothing.
    return {account.name: account.model_copy(update={"track": []}) for account in accounts}
