"""The daemon's configuration: YAML validated up front into one typed object.

Everything a user can get wrong is caught here, before any file, socket or API call is
touched, and reported as one line naming the key (`ConfigError`).
"""

from __future__ import annotations

import difflib
import os
import re
import stat
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from monitor.address import parse_listen
from monitor.invalidation import DEFAULT_ACCOUNT, RESOURCE_ID, TENANT_ID, Key


class ConfigError(Exception):
    """A configuration that cannot be used; the message is one line for the user."""


def _resource_id(value: str) -> str:
    if not RESOURCE_ID.fullmatch(value):
        raise ValueError(f"{value!r} is not a CloudFront ID (6-32 upper-case letters/digits)")
    return value


ResourceId = Annotated[str, AfterValidator(_resource_id)]


def _tenant_id(value: str) -> str:
    if not TENANT_ID.fullmatch(value):
        raise ValueError(f"{value!r} is not a distribution tenant ID (dt_ and 6-40 letters/digits)")
    return value


TenantId = Annotated[str, AfterValidator(_tenant_id)]


def _listen(value: str) -> str:
    parse_listen(value)
    return value


def _endpoint(value: str) -> str:
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", value):
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value


class _Section(BaseModel):
    # strict: YAML already gives real ints and bools, so "20" for a number is a mistake
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class AwsConfig(_Section):
    endpoint_url: Annotated[str, AfterValidator(_endpoint)] | None = None
    # Where accounts' roles are assumed: STS's default endpoint unless given (a VPC
    # endpoint, say, or a local test double).
    sts_endpoint_url: Annotated[str, AfterValidator(_endpoint)] | None = None
    profile: str | None = None
    # CloudFront is global; requests are signed for us-east-1 whatever the caller's region.
    region: str = "us-east-1"
    # adaptive: botocore slows its own sending rate when CloudFront answers Throttling.
    retry_mode: Literal["standard", "adaptive"] = "adaptive"
    # A hard ceiling on HTTP requests per second, retries included (ratelimit.py).
    max_requests_per_second: float = Field(default=20.0, gt=0, le=100_000)
    max_attempts: int = Field(default=5, ge=1, le=20)
    connect_timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    read_timeout_seconds: float = Field(default=15.0, gt=0, le=300)


def _postgres_url(value: str) -> str:
    from monitor.store import pgurl

    pgurl.check(value)
    return value


class StateConfig(_Section):
    path: str = "./state/monitor.db"
    # With a state several replicas share: how long an account's lease lasts unrenewed;
    # another replica takes over within about this (and a third of it) after one dies.
    lease_seconds: float = Field(default=10.0, ge=3, le=300)
    # A PostgreSQL database instead of the SQLite file (monitor/store/postgres.py); kept
    # out of the config's repr, which would show its password.
    url: Annotated[str, AfterValidator(_postgres_url)] | None = Field(default=None, repr=False)

    @model_validator(mode="after")
    def _one_place(self) -> StateConfig:
        if self.url is not None and "path" in self.model_fields_set:
            raise ValueError("give state.path (an SQLite file) or state.url (PostgreSQL), not both")
        return self

    @property
    def file(self) -> Path:
        return Path(self.path)

    @property
    def where(self) -> str:
        """Where the state is, for messages and logs: the file, or the URL without its
        password."""
        if self.url is None:
            return self.path
        from monitor.store import pgurl

        return pgurl.masked(self.url)


class PollConfig(_Section):
    # adaptive: look often where completions are likely (learned from recorded latencies),
    # every interval_seconds at most; fixed: every interval_seconds.
    schedule: Literal["adaptive", "fixed"] = "adaptive"
    interval_seconds: float = Field(default=20.0, gt=0, le=3600)
    min_interval_seconds: float = Field(default=2.0, gt=0, le=3600)
    # The adaptive schedule's prior, until the monitor has recorded latencies of its own.
    expected_duration_seconds: float = Field(default=90.0, gt=0, le=86_400)
    concurrency: int = Field(default=50, ge=1, le=1000)
    max_failures: int = Field(default=3, ge=1, le=100)
    # Refresh a distribution's tracked invalidations with one ListInvalidations call.
    batch: bool = True


class TlsConfig(_Section):
    """HTTPS on http.listen: a PEM certificate (chain) and its private key."""

    cert_file: str = Field(min_length=1)
    key_file: str = Field(min_length=1)


class HttpConfig(_Section):
    listen: Annotated[str, AfterValidator(_listen)] = "127.0.0.1:9877"
    # `NAME TOKEN` lines: the bearer tokens that may write through the API (monitor/access.py).
    tokens_file: str | None = Field(default=None, min_length=1)
    # Reads of /api/v1/ need a token too; the status page, /metrics and probes stay open.
    read_requires_token: bool = False
    # Connections open at once; more are answered 503 and closed as they arrive.
    max_connections: int = Field(default=1000, ge=1, le=100_000)
    # Long polls (`?wait=`) at once; more are answered 503 with Retry-After.
    max_waiters: int = Field(default=10_000, ge=1, le=1_000_000)
    tls: TlsConfig | None = None

    @property
    def address(self) -> tuple[str, int]:
        return parse_listen(self.listen)

    @model_validator(mode="after")
    def _reads_need_tokens(self) -> HttpConfig:
        if self.read_requires_token and self.tokens_file is None:
            raise ValueError("read_requires_token needs tokens_file (the tokens that may read)")
        return self


class MetricsConfig(_Section):
    # A completion's latency goes into the duration histogram only when no more than this
    # passed between the last look that saw it in progress (or its creation) and the look
    # that saw it completed; unset: twice poll.interval_seconds.
    max_latency_uncertainty_seconds: float | None = Field(default=None, gt=0)
    # Cardinality: the duration histogram per distribution (about 20 series each) or per
    # account only; which in-progress invalidations get an age series of their own.
    per_distribution: bool = True
    per_invalidation: Literal["all", "stuck", "none"] = "all"


class LogConfig(_Section):
    format: Literal["json", "console", "auto"] = "auto"
    level: Literal["debug", "info", "warning", "error"] = "info"


class TrackedPair(_Section):
    """An invalidation of a distribution, or of a multi-tenant distribution's tenant."""

    distribution_id: ResourceId | None = None
    distribution_tenant_id: TenantId | None = None
    invalidation_id: ResourceId

    @model_validator(mode="after")
    def _one_scope(self) -> TrackedPair:
        if (self.distribution_id is None) == (self.distribution_tenant_id is None):
            raise ValueError("give exactly one of distribution_id and distribution_tenant_id")
        return self

    @property
    def key(self) -> Key:
        scope = self.distribution_id or self.distribution_tenant_id
        assert scope is not None
        return Key(scope, self.invalidation_id)


class EventsConfig(_Section):
    """An SQS queue an EventBridge rule feeds with CloudFront's CreateInvalidation calls
    (deploy/aws/events.yaml): invalidations tracked the moment they are created."""

    queue_url: Annotated[str, AfterValidator(_endpoint)]
    region: str = "us-east-1"  # CloudFront's events are delivered in us-east-1
    endpoint_url: Annotated[str, AfterValidator(_endpoint)] | None = None


# Between two listing scans: with events the scans only reconcile what never arrived.
SCAN_INTERVAL_SECONDS = 60.0
SCAN_INTERVAL_WITH_EVENTS_SECONDS = 300.0


class DiscoverConfig(_Section):
    """Find invalidations nobody listed: ListInvalidations on these distributions, and
    the creation events of an SQS queue."""

    distributions: Literal["all"] | list[ResourceId]
    interval_seconds: float | None = Field(default=None, gt=0, le=86_400)
    # Newest first; pages older than this are not read. A first start looks this far back.
    lookback_seconds: float = Field(default=3600.0, gt=0)
    max_pages: int = Field(default=10, ge=1, le=1000)  # per distribution and scan
    # With `all`: how often ListDistributions is asked again for new distributions; unset,
    # at every scan, so a new distribution is watched within one interval.
    refresh_distributions_seconds: float | None = Field(default=None, gt=0)
    events: EventsConfig | None = None

    @property
    def scan_interval(self) -> float:
        if self.interval_seconds is not None:
            return self.interval_seconds
        return SCAN_INTERVAL_SECONDS if self.events is None else SCAN_INTERVAL_WITH_EVENTS_SECONDS


class QuotaConfig(_Section):
    """CloudFront's in-progress quotas per distribution (raise them here if AWS raised
    yours), and whether to ask for the paths of pairs no event described."""

    file_paths: int = Field(default=3000, ge=1)
    wildcard_paths: int = Field(default=15, ge=1)
    # One GetInvalidation per pair tracked without its paths (discovered by a listing, from
    # the config or the command line), to count it against the quotas.
    paths: bool = False


def _discover_shorthand(value: Any) -> Any:
    # `discover: all` and `discover: [E1, E2]` are the common cases; the mapping has more.
    return {"distributions": value} if isinstance(value, str | list) else value


Discover = Annotated[DiscoverConfig | None, BeforeValidator(_discover_shorthand)]

_ACCOUNT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}")


def _account_name(value: str) -> str:
    if not _ACCOUNT_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not an account name (lower-case letters, digits, - and _)")
    return value


def _role_arn(value: str) -> str:
    if not _ROLE_ARN.fullmatch(value):
        raise ValueError(f"{value!r} is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)")
    return value


AccountName = Annotated[str, AfterValidator(_account_name)]


class AccountConfig(_Section):
    """One AWS account: its credentials, its own request ceiling, what to watch in it."""

    # The value of the `account` label on metrics, and the `account` of its tracked pairs.
    name: AccountName
    # Credentials: this profile, or aws.profile, or the default chain. With role_arn they
    # are only the source: the role is assumed from them and refreshed before it expires.
    profile: str | None = None
    role_arn: Annotated[str, AfterValidator(_role_arn)] | None = None
    external_id: str | None = Field(default=None, min_length=2, max_length=1224)
    role_session_name: str = Field(
        default="cloudfront-invalidation-monitor", pattern=r"^[\w+=,.@-]{2,64}$"
    )
    # CloudFront's limits are per account, so is the ceiling; aws.max_requests_per_second
    # unless given.
    max_requests_per_second: float | None = Field(default=None, gt=0, le=100_000)
    track: list[TrackedPair] = []
    discover: Discover = None
    quota: QuotaConfig | None = None  # the top-level quota unless given

    def ceiling(self, aws: AwsConfig) -> float:
        return self.max_requests_per_second or aws.max_requests_per_second

    @model_validator(mode="after")
    def _external_id_needs_role(self) -> AccountConfig:
        if self.external_id is not None and self.role_arn is None:
            raise ValueError("external_id is only used with role_arn")
        return self


class Config(_Section):
    aws: AwsConfig = AwsConfig()
    state: StateConfig = StateConfig()
    poll: PollConfig = PollConfig()
    stuck_after_seconds: float = Field(default=900.0, gt=0)
    http: HttpConfig = HttpConfig()
    metrics: MetricsConfig = MetricsConfig()
    log: LogConfig = LogConfig()
    # Without `accounts`, these belong to the one account aws.profile (or the default
    # credential chain) reaches, named "default".
    track: list[TrackedPair] = []
    discover: Discover = None
    quota: QuotaConfig = QuotaConfig()
    accounts: list[AccountConfig] = []

    @model_validator(mode="after")
    def _accounts(self) -> Config:
        if not self.accounts:
            return self
        if self.track or self.discover is not None:
            what = "track" if self.track else "discover"
            raise ValueError(f"with accounts, give {what} under each account, not at the top level")
        owner: dict[Key, str] = {}
        names: set[str] = set()
        for account in self.accounts:
            if account.name in names:
                raise ValueError(f"account {account.name!r} is listed twice")
            names.add(account.name)
            for pair in account.track:
                if (other := owner.setdefault(pair.key, account.name)) != account.name:
                    raise ValueError(
                        f"{pair.key.distribution_id}/{pair.key.invalidation_id} is tracked"
                        f" under accounts {other!r} and {account.name!r}"
                    )
        return self

    def account_list(self) -> list[AccountConfig]:
        """Every account the daemon polls; the implicit one when none is configured."""
        if self.accounts:
            return [
                a if a.quota is not None else a.model_copy(update={"quota": self.quota})
                for a in self.accounts
            ]
        return [
            AccountConfig(
                name=DEFAULT_ACCOUNT, track=self.track, discover=self.discover, quota=self.quota
            )
        ]


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown key"
        near = difflib.get_close_matches(str(first["loc"][-1]), _keys_at(first["loc"][:-1]), 1)
        if near:
            message += f" (did you mean {near[0]!r}?)"
    elif message.startswith("Value error, "):
        message = message.removeprefix("Value error, ")
    more = len(error.errors()) - 1
    return f"{where}: {message}" + (f" (and {more} more problem(s))" if more else "")


def _keys_at(loc: tuple[int | str, ...]) -> list[str]:
    """The keys a mapping at `loc` may have (list indices and unions looked through)."""
    model: type[BaseModel] | None = Config
    for part in loc:
        if model is None:
            return []
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        model = None if field is None else _model_in(field.annotation)
    return [] if model is None else list(model.model_fields)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        if (found := _model_in(arg)) is not None:
            return found
    return None


def parse_key(
    distribution_id: str | None, distribution_tenant_id: str | None, invalidation_id: str
) -> Key:
    """IDs from a command line, checked exactly as the config's `track` entries are."""
    try:
        pair = TrackedPair(
            distribution_id=distribution_id,
            distribution_tenant_id=distribution_tenant_id,
            invalidation_id=invalidation_id,
        )
    except ValidationError as error:
        raise ConfigError(_describe(error)) from None
    return pair.key


def parse_config(data: Any, origin: str = "config") -> Config:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: the top level must be a mapping of keys")
    try:
        return Config.model_validate(data)
    except ValidationError as error:
        raise ConfigError(f"{origin}: {_describe(error)}") from None


# A config file is small and shallow; these bound what reading one can cost, so that no
# file (a FIFO, a huge one, deep nesting, aliases that expand) can hang or crash start-up.
MAX_CONFIG_BYTES = 10 * 1024 * 1024
MAX_DEPTH = 32  # nested mappings and sequences
MAX_NODES = 100_000  # YAML nodes, with every alias expanded


def load_config(path: str | Path) -> Config:
    text = _read(path)
    try:
        depth = 0
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if isinstance(token, _OPENING):
                depth += 1
                if depth > MAX_DEPTH:
                    mark = token.start_mark
                    raise ConfigError(
                        f"{path}: line {mark.line + 1} column {mark.column + 1}: nested more"
                        f" than {MAX_DEPTH} levels deep"
                    )
            elif isinstance(token, _CLOSING):
                depth -= 1
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is not None and _expanded_size(node, {}) > MAX_NODES:
                raise ConfigError(f"{path}: more than {MAX_NODES} values once aliases expand")
            data = None if node is None else loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}:{where}: {problem}") from None
    return parse_config(data, str(path))


_OPENING = (
    yaml.BlockMappingStartToken,
    yaml.BlockSequenceStartToken,
    yaml.FlowMappingStartToken,
    yaml.FlowSequenceStartToken,
)
_CLOSING = (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)


def _read(path: str | Path) -> str:
    """The file's text, if it is a regular file of a config's size."""
    try:
        found = os.stat(path)
        if not stat.S_ISREG(found.st_mode):
            raise ConfigError(f"{path}: not a regular file ({_file_kind(found.st_mode)})")
        if found.st_size > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"{path}: {found.st_size} bytes, more than a config file may have"
                f" ({MAX_CONFIG_BYTES // 1024 // 1024} MiB)"
            )
        # Non-blocking: a FIFO put there since the check must not hang start-up.
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as file:
            if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                raise ConfigError(f"{path}: not a regular file")
            data = file.read(MAX_CONFIG_BYTES + 1)
        if len(data) > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: more than a config file may have")
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error).splitlines()[0]
        raise ConfigError(f"{path}: cannot read the config file: {reason}") from None


def _file_kind(mode: int) -> str:
    kinds = {
        stat.S_ISDIR: "a directory",
        stat.S_ISFIFO: "a FIFO",
        stat.S_ISSOCK: "a socket",
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
    }
    return next((kind for test, kind in kinds.items() if test(mode)), "not a file")


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """Nodes in the document once every alias is expanded, counted without expanding."""
    if id(node) in sizes:
        return sizes[id(node)]
    sizes[id(node)] = 1  # a node reached again through itself counts once
    children: list[yaml.Node] = []
    if isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    elif isinstance(node, yaml.MappingNode):
        children = [part for pair in node.value for part in pair]
    total = 1 + sum(_expanded_size(child, sizes) for child in children)
    sizes[id(node)] = min(total, MAX_NODES + 1)
    return sizes[id(node)]
