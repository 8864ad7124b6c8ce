"""The composition root: the daemon's parts, built from its config, and nothing else.

Starting, stopping and reloading them is the service's job (monitor/service.py); what
each part does is its own module's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError

from monitor.access import configured_tokens
from monitor.api import Api
from monitor.clock import Clock
from monitor.cloudfront import ApiObserver, CloudFront, open_accounts
from monitor.config import Config, ConfigError
from monitor.discovery import Discovery
from monitor.endpoint import Endpoint
from monitor.events import EventIntake, open_queue
from monitor.health import Health
from monitor.invalidation import Key
from monitor.lease import LeaseKeeper, Leases
from monitor.metrics import Metrics
from monitor.oddities import OddAnswers
from monitor.poller import Poller
from monitor.quota import PathsFetcher
from monitor.schedule import LEARNED_LATENCIES, schedule_for
from monitor.statuspage import StatusPage
from monitor.store import Store, StoreError, StoreNotWritable, open_store
from monitor.store.sqlite import DaemonLock
from monitor.tls import tls_context
from monitor.transition import Policy
from monitor.waiters import Waiters


class StartupError(Exception):
    """The daemon cannot start; the message is one line for the user."""


@dataclass(frozen=True)
class Instruments:
    """What every part reports to, and the clocks they read: they exist before start-up
    (readiness says "state not loaded" until it is done)."""

    clock: Clock
    metrics: Metrics
    health: Health
    odd: OddAnswers


@dataclass(frozen=True)
class Parts:
    store: Store
    clients: Mapping[str, CloudFront]
    poller: Poller
    discoveries: list[Discovery]
    intakes: list[EventIntake]
    paths: PathsFetcher | None  # quota.paths on for some account
    endpoint: Endpoint
    leases: LeaseKeeper | None  # a state shared by replicas; None: this daemon's alone
    waiters: Waiters  # the API's long polls


def instruments(config: Config, tick_seconds: float) -> Instruments:
    metrics = Metrics(settings=config.metrics)
    return Instruments(
        clock=Clock(),
        metrics=metrics,
        health=Health(interval_seconds=config.poll.interval_seconds, tick_seconds=tick_seconds),
        odd=OddAnswers(metrics.odd_answer),
    )


class Observed(ApiObserver):
    """What the AWS adapter reports, to the metrics, the readiness verdicts and the log."""

    def __init__(self, metrics: Metrics, health: Health, odd: OddAnswers) -> None:
        self._metrics = metrics
        self._health = health
        self._odd = odd

    def attempt(self, account: str, operation: str, outcome: str) -> None:
        self._metrics.api_attempt(account, operation, outcome)

    def called(self, account: str, operation: str, seconds: float, ok: bool) -> None:
        self._metrics.api_duration(account, operation, seconds)
        if ok:
            self._health.call_succeeded()
        else:
            self._health.call_failed()

    def odd(self, account: str, kind: str, subject: str, **detail: object) -> None:
        self._odd.report(account, kind, subject, **detail)


async def build(config: Config, tools: Instruments, stack: AsyncExitStack) -> Parts:
    """Every part, opened; each is closed by `stack`, in the reverse order."""
    # Files the config names are read first: a refused one is a config error (exit 78).
    tokens = configured_tokens(config.http)
    tls = tls_context(config.http.tls)
    try:
        if config.state.url is None:  # a database is shared by design: no file to lock
            lock = DaemonLock(config.state.file)
            lock.acquire()
            stack.callback(lock.release)
        store = await open_store(config.state)
        stack.push_async_callback(store.close)
    except StoreNotWritable:
        raise  # a status of its own: no restart helps (monitor/cli/run.py)
    except StoreError as error:
        raise StartupError(str(error)) from None
    observer = Observed(tools.metrics, tools.health, tools.odd)
    try:
        clients = await stack.enter_async_context(open_accounts(config, observer, tools.clock))
    except BotoCoreError as error:  # an AWS config file botocore cannot read, say
        raise ConfigError(f"aws: {error}") from None
    for name, client in clients.items():
        tools.metrics.rate_limit.labels(name).set_function(client.rate)
    accounts = [account.name for account in config.account_list()]
    keeper = None
    if isinstance(store, Leases):

        async def changed(account: str, held: bool) -> None:
            await poller.hold(account, held)  # first: a take-over that fails says nothing
            tools.metrics.active.labels(account).set(int(held))
            tools.health.holding(account, held)
            tools.health.standing_by(not any(poller.holds(a) for a in accounts))

        keeper = LeaseKeeper(store, accounts, config.state.lease_seconds, changed)
    # The long polls of the API wait for what the recorder commits.
    waiters = Waiters(config.http.max_waiters)
    tools.metrics.http_waiters.set_function(lambda: len(waiters))
    poller = Poller(
        store,
        clients,
        tools.metrics,
        tools.health,
        await policy_for(config, store),
        config.poll.concurrency,
        tools.clock,
        tools.odd,
        keeper.refused if keeper is not None else lambda accounts: None,
        listener=waiters,
    )
    for account in accounts:
        if keeper is not None:
            await changed(account, False)  # standing by until the first round says
        else:
            tools.metrics.active.labels(account).set(1)
    quotas = {a.name: a.quota for a in config.account_list() if a.quota is not None}
    # A copy taken at once (one C-level call under the GIL): /metrics renders on a thread,
    # while the event loop changes the tracked set.
    tools.metrics.watch(
        lambda: list(poller.pairs()), poller.stuck_after_seconds, tools.health, quotas
    )
    discoveries = [
        Discovery(
            clients[account.name],
            store,
            poller,
            account.discover,
            tools.metrics,
            tools.health,
            tools.clock,
        )
        for account in config.account_list()
        if account.discover is not None
    ]
    intakes = []
    for watched in config.account_list():
        events = watched.discover.events if watched.discover is not None else None
        if events is not None:
            sqs = await stack.enter_async_context(open_queue(config.aws, watched, events))
            intakes.append(
                EventIntake(
                    watched.name, events.queue_url, sqs, poller, tools.metrics, tools.health
                )
            )
    wanting = [a.name for a in config.account_list() if a.quota is not None and a.quota.paths]
    paths = PathsFetcher(clients, poller, wanting) if wanting else None
    api = Api(
        poller,
        store,
        waiters,
        [account.name for account in config.account_list()],
        tokens,
        config.http.read_requires_token,
        tools.metrics,
    )
    page = StatusPage(
        poller.pairs, poller.stuck_after_seconds, tools.health, tools.metrics, waiters
    )
    endpoint = await stack.enter_async_context(
        Endpoint(
            config.http,
            tools.metrics,
            tools.health,
            status_page=page.handle,
            api=api.app(),
            tls=tls,
            before_close=waiters.close,
        )
    )
    return Parts(store, clients, poller, discoveries, intakes, paths, endpoint, keeper, waiters)


async def policy_for(config: Config, store: Store) -> Policy:
    """The poll policy the config asks for, its schedule taught the latencies the store
    has recorded (only those certain enough to learn from)."""
    poll = config.poll
    policy = Policy(
        interval_seconds=poll.interval_seconds,
        max_failures=poll.max_failures,
        stuck_after_seconds=config.stuck_after_seconds,
        batch=poll.batch,
        max_uncertainty_seconds=config.metrics.max_latency_uncertainty_seconds,
    )
    latencies = await store.recent_latencies(LEARNED_LATENCIES, policy.uncertainty_limit)
    return dataclasses.replace(policy, schedule=schedule_for(poll, latencies))


async def track_configured(store: Store, config: Config) -> list[tuple[str, Key]]:
    """Every pair the config lists, under its account; returns the newly tracked ones."""
    added: list[tuple[str, Key]] = []
    for account in config.account_list():
        pairs = (p.key for p in account.track)
        keys = await store.add(pairs, "config", account.name, rehome=True)
        added.extend((account.name, key) for key in keys)
    return added
