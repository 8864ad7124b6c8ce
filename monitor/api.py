"""The JSON API under /api/v1/: CI registers invalidations and waits for them here.

Writes (POST, DELETE, and a wait that tracks a pair first) need a bearer token from
`http.tokens_file`; reads are open unless `http.read_requires_token`. Everything a client
sends is checked before anything is written, and every refusal is a JSON error naming the
field at fault: `{"error": {"code", "message", "field"}}`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from aiohttp import web
from pydantic import Field, ValidationError

from monitor.access import Tokens
from monitor.config import AccountName, TrackedPair
from monitor.invalidation import (
    COMPLETED,
    DEFAULT_ACCOUNT,
    IN_PROGRESS,
    MAX_PATH_LENGTH,
    MAX_PATHS,
    Invalidation,
    Key,
    Origin,
    valid_scope,
)
from monitor.logs import get_logger
from monitor.metrics import Metrics
from monitor.poller import Poller
from monitor.store import Store, StoreError
from monitor.transition import Transition
from monitor.waiters import Closing, Full, Waiters

PREFIX = "/api/v1"
SOURCE = "api"
MAX_WAIT_SECONDS = 3600.0
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
RETRY_AFTER_SECONDS = 5
BODY_SECONDS = 10.0  # a body sent slowly holds a connection like slow headers would
# `status=` of the list: a status CloudFront gives, or `pending` (none seen yet).
STATUSES = {IN_PROGRESS: IN_PROGRESS, COMPLETED: COMPLETED, "pending": ""}
JSON = "application/json"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Refusal(Exception):
    """A request answered with a JSON error; nothing was written."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        error = {"code": self.code, "message": self.message, "field": self.field}
        return web.json_response({"error": error}, status=self.status, headers=self.headers)


class Registration(TrackedPair):
    """A POST's body: the pair, and what the caller knows of it."""

    account: AccountName | None = None
    creator: str | None = Field(default=None, min_length=1, max_length=2048)
    paths: list[Annotated[str, Field(min_length=1, max_length=MAX_PATH_LENGTH)]] | None = Field(
        default=None, min_length=1, max_length=MAX_PATHS
    )


class Api:
    def __init__(
        self,
        poller: Poller,
        store: Store,
        waiters: Waiters,
        accounts: Sequence[str],
        tokens: Tokens | None,
        read_requires_token: bool,
        metrics: Metrics,
    ) -> None:
        self._poller = poller
        self._waiters_refused = metrics.http_refused.labels("waiters")
        self._store = store
        self._waiters = waiters
        self._accounts = list(accounts)
        self._tokens = tokens
        self._read_requires_token = read_requires_token
        self._log = get_logger()

    def app(self) -> web.Application:
        """The API as an application of its own, mounted at PREFIX by the endpoint."""
        app = web.Application(middlewares=[_json_errors])
        app.router.add_post("/invalidations", self._register)
        app.router.add_get("/invalidations", self._list)
        app.router.add_get("/invalidations/{distribution}/{invalidation}", self._get)
        app.router.add_delete("/invalidations/{distribution}/{invalidation}", self._untrack)
        return app

    # Routes.

    async def _register(self, request: web.Request) -> web.Response:
        caller = self._writer(request)
        _no_query(request, ())
        body = await _body(request)
        try:
            wanted = Registration.model_validate_json(body)
        except ValidationError as error:
            raise _invalid(error) from None
        account = self._account(wanted.account, "account")
        key = wanted.key
        paths = None if wanted.paths is None else tuple(wanted.paths)
        origin = Origin(wanted.creator, paths)
        origins = {key: origin} if origin != Origin() else None
        # Shielded: a client that hangs up must not leave a pair stored but not polled.
        added = await asyncio.shield(self._poller.track([key], SOURCE, account, origins))
        status = 201 if added else 200
        self._wrote(request, caller, key, status)
        return await self._answer(key, status)

    async def _untrack(self, request: web.Request) -> web.Response:
        caller = self._writer(request)
        key = _key(request)
        _no_query(request, ())
        removed = await asyncio.shield(self._poller.untrack(key))
        self._waiters.wake(key)
        self._wrote(request, caller, key, 200)
        return web.json_response({**_ids(key), "was_tracked": removed})

    async def _get(self, request: web.Request) -> web.Response:
        key = _key(request)
        query = _no_query(request, ("wait", "account"))
        self._reader(request)
        wait = _wait_seconds(query.get("wait"))
        if "account" in query and wait is None:
            raise Refusal(400, "invalid", "account is only taken with wait", "account")
        if wait is None:
            return await self._answer(key, 200)
        track = None
        if not await self._store.get([key]):
            track = self._track_to_wait(request, key, query.get("account"))
        return await self._wait(key, wait, track)

    async def _list(self, request: web.Request) -> web.Response:
        query = _no_query(request, ("status", "distribution_id", "limit", "cursor"))
        self._reader(request)
        status = None
        if "status" in query:
            status = STATUSES.get(query["status"])
            if status is None:
                known = ", ".join(STATUSES)
                raise Refusal(400, "invalid", f"status must be one of {known}", "status")
        scope = query.get("distribution_id")
        if scope is not None and not valid_scope(scope):
            raise Refusal(400, "invalid", f"{scope!r} is not a distribution ID", "distribution_id")
        limit = _limit(query.get("limit"))
        after = None if "cursor" not in query else _cursor_key(query["cursor"])
        page = await self._store.page(
            after=after, limit=limit, status=status, distribution_id=scope
        )
        more = len(page) == limit
        return web.json_response(
            {
                "invalidations": [pair_json(inv) for inv in page],
                "next_cursor": _cursor(page[-1].key) if more and page else None,
            }
        )

    # What a route does once the request is known to be sound.

    async def _answer(self, key: Key, status: int) -> web.Response:
        found = await self._store.get([key])
        if not found:
            raise Refusal(404, "not_tracked", f"{key[0]}/{key[1]} is not tracked")
        history = await self._store.history(key)
        return web.json_response(pair_json(found[0], history), status=status)

    def _track_to_wait(
        self, request: web.Request, key: Key, account: str | None
    ) -> Callable[[], Awaitable[None]]:
        """Who may track the pair and under which account, checked now; the tracking
        itself, to run once the wait has its place."""
        caller = self._caller(request)
        if caller is None:
            raise Refusal(
                404,
                "not_tracked",
                f"{key[0]}/{key[1]} is not tracked: POST it to {PREFIX}/invalidations first,"
                " or wait with a bearer token that may write to track it",
            )
        tracked = self._account(account, "account")

        async def track() -> None:
            await asyncio.shield(self._poller.track([key], SOURCE, tracked))
            self._wrote(request, caller, key, 200)

        return track

    async def _wait(
        self, key: Key, seconds: float, track: Callable[[], Awaitable[None]] | None = None
    ) -> web.Response:
        """`track`: the pair is not tracked yet; done once a waiter's place is taken, so
        that a wait refused for want of one writes nothing."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        try:
            with self._waiters.watch(key) as watch:
                if track is not None:
                    await track()
                while True:
                    found = await self._store.get([key])
                    if not found:
                        raise Refusal(404, "not_tracked", f"{key[0]}/{key[1]} is not tracked")
                    inv = found[0]
                    left = deadline - loop.time()
                    if inv.status == COMPLETED or inv.gave_up or left <= 0:
                        history = await self._store.history(key)
                        return web.json_response(pair_json(inv, history))
                    await watch.changed(left)
        except Full:
            self._waiters_refused.inc()
            raise Refusal(
                503,
                "too_many_waiters",
                f"{self._waiters.limit} long polls are waiting already (http.max_waiters)",
                "wait",
                {"Retry-After": str(RETRY_AFTER_SECONDS)},
            ) from None
        except Closing:
            raise Refusal(
                503,
                "shutting_down",
                "the monitor is stopping; ask again shortly",
                None,
                {"Retry-After": str(RETRY_AFTER_SECONDS)},
            ) from None

    # Who may do what.

    def _caller(self, request: web.Request) -> str | None:
        """The name of the token presented, None when none is; 401 for a wrong one."""
        header = request.headers.get("Authorization")
        if header is None or self._tokens is None:
            return None
        scheme, _, token = header.partition(" ")
        name = self._tokens.holder(token.strip()) if scheme.lower() == "bearer" else None
        if name is None:
            raise _unauthorized("the bearer token is not one of http.tokens_file")
        return name

    def _writer(self, request: web.Request) -> str:
        if self._tokens is None:
            raise Refusal(
                403,
                "writes_disabled",
                "writing through the API is off: set http.tokens_file to a file of"
                " NAME TOKEN lines (mode 0600) and restart the monitor",
            )
        name = self._caller(request)
        if name is None:
            raise _unauthorized("writing needs Authorization: Bearer TOKEN")
        return name

    def _reader(self, request: web.Request) -> None:
        if self._read_requires_token and self._caller(request) is None:
            raise _unauthorized(
                "reading needs Authorization: Bearer TOKEN (http.read_requires_token)"
            )

    def _account(self, name: str | None, field: str) -> str:
        account = name or DEFAULT_ACCOUNT
        if account not in self._accounts:
            known = ", ".join(self._accounts)
            raise Refusal(
                400, "unknown_account", f"no account {account!r} is configured ({known})", field
            )
        return account

    def _wrote(self, request: web.Request, caller: str, key: Key, status: int) -> None:
        self._log.info(
            "api_write",
            method=request.method,
            path=request.path,
            caller=caller,
            status=status,
            **_ids(key),
        )


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every answer under /api/v1/ is JSON, aiohttp's own refusals included."""
    try:
        return await handler(request)
    except Refusal as refusal:
        return refusal.response()
    except StoreError:  # readiness says so too: the tick checks the store every second
        return Refusal(
            503,
            "state_unavailable",
            "the state store cannot be reached now; ask again shortly",
            None,
            {"Retry-After": str(RETRY_AFTER_SECONDS)},
        ).response()
    except web.HTTPException as error:
        if error.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}
        headers = {"Allow": error.headers["Allow"]} if "Allow" in error.headers else None
        return Refusal(
            error.status, code.get(error.status, "refused"), error.reason, None, headers
        ).response()


async def _body(request: web.Request) -> bytes:
    if request.content_type != JSON:
        raise Refusal(415, "unsupported_media_type", f"send the body as {JSON}", "Content-Type")
    try:
        async with asyncio.timeout(BODY_SECONDS):
            return await request.read()
    except TimeoutError:
        raise Refusal(
            408, "timeout", f"the body did not arrive within {BODY_SECONDS:g} s", "body"
        ) from None
    except web.HTTPRequestEntityTooLarge:
        raise Refusal(
            413, "too_large", f"the body is larger than {request.client_max_size} bytes", "body"
        ) from None


def _invalid(error: ValidationError) -> Refusal:
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or None
    kind = first["type"]
    if kind == "json_invalid":
        return Refusal(400, "malformed_json", "the body is not valid JSON", "body")
    message = first["msg"].removeprefix("Value error, ")
    if field is None and kind == "value_error":  # which scope: the one a caller must give
        field = "distribution_id"
    if kind == "extra_forbidden":
        message = "unknown field"
    elif kind == "model_type":
        message, field = "the body must be a JSON object", "body"
    return Refusal(400, "invalid", message, field)


def _unauthorized(message: str) -> Refusal:
    return Refusal(
        401,
        "unauthorized",
        message,
        "Authorization",
        {"WWW-Authenticate": 'Bearer realm="cloudfront-invalidation-monitor"'},
    )


def _no_query(request: web.Request, allowed: Sequence[str]) -> dict[str, str]:
    """The query as a dict; a parameter not allowed, or given twice, is refused."""
    query: dict[str, str] = {}
    for name, value in request.query.items():
        if name not in allowed:
            raise Refusal(400, "invalid", "unknown parameter", name)
        if name in query:
            raise Refusal(400, "invalid", "given twice", name)
        query[name] = value
    return query


def _key(request: web.Request) -> Key:
    key = Key(request.match_info["distribution"], request.match_info["invalidation"])
    if not valid_scope(key.distribution_id):
        raise Refusal(
            400,
            "invalid",
            f"{key.distribution_id!r} is not a distribution or distribution tenant ID",
            "distribution_id",
        )
    if not key.valid:
        raise Refusal(
            400, "invalid", f"{key.invalidation_id!r} is not an invalidation ID", "invalidation_id"
        )
    return key


def _wait_seconds(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 <= seconds <= MAX_WAIT_SECONDS:  # NaN fails too
        raise Refusal(400, "invalid", f"wait must be 0 to {MAX_WAIT_SECONDS:g} seconds", "wait")
    return seconds


def _limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise Refusal(400, "invalid", f"limit must be 1 to {MAX_LIMIT}", "limit")
    return int(text)


def _cursor(key: Key) -> str:
    return base64.urlsafe_b64encode(f"{key[0]}/{key[1]}".encode()).decode().rstrip("=")


def _cursor_key(text: str) -> Key:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    distribution, _, invalidation = raw.partition("/")
    key = Key(distribution, invalidation)
    if not key.valid:
        raise Refusal(400, "invalid", "not a cursor this API gave", "cursor")
    return key


def _ids(key: Key) -> dict[str, str]:
    return {"distribution_id": key.distribution_id, "invalidation_id": key.invalidation_id}


def iso(stamp: float | None) -> str | None:
    if stamp is None:
        return None
    moment = datetime.fromtimestamp(stamp, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def transition_json(t: Transition) -> dict[str, Any]:
    return {
        "from_status": t.from_status,
        "to_status": t.to_status,
        "observed_at": iso(t.observed_at),
        "latency_seconds": _seconds(t.latency_seconds),
        "latency_uncertainty_seconds": _seconds(t.latency_uncertainty_seconds),
    }


def pair_json(inv: Invalidation, history: Sequence[Transition] | None = None) -> dict[str, Any]:
    """What the API says of a pair; with its history, its transitions and latency too."""
    record: dict[str, Any] = {
        **_ids(inv.key),
        "account": inv.account,
        "source": inv.source,
        "status": inv.status,
        "given_up": inv.gave_up,
        "last_error": inv.last_error,
        "stuck": inv.stuck,
        "create_time": iso(inv.create_time),
        "age_seconds": _seconds(inv.age(time.time())) if inv.in_progress else None,
        "first_seen": iso(inv.first_seen),
        "completed_seen_at": iso(inv.completed_at),
        "creator": inv.creator,
        "paths": None if inv.paths is None else list(inv.paths),
    }
    if history is not None:
        done = [t for t in history if t.to_status == COMPLETED]
        record["latency_seconds"] = _seconds(done[-1].latency_seconds) if done else None
        record["latency_uncertainty_seconds"] = (
            _seconds(done[-1].latency_uncertainty_seconds) if done else None
        )
        record["transitions"] = [transition_json(t) for t in history]
    return record
