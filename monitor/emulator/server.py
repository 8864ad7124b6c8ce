"""The emulator over HTTP: CloudFront's REST-XML API plus a JSON admin API.

The API routes accept any request without checking its SigV4 signature: this is a
loopback-only test double. Admin routes live under ``/_emulator/``, a path no CloudFront
operation uses, and are never subject to fault injection or counted in the stats.

A web page open on the same machine must not drive the admin API. Every admin request
must name a loopback ``Host`` (127.0.0.1 or another loopback literal, localhost, [::1],
with or without a port; else 403), which defeats DNS rebinding; every POST and every
request with a body must be ``Content-Type: application/json`` (else 415), which a
browser cannot send cross-origin without a CORS preflight, and the emulator never
answers one with CORS headers. The API routes keep taking any Host, as SDKs send their own.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import itertools
import json
import os
import re
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

from aiohttp import web

from monitor.emulator import xml
from monitor.emulator.events import SEEDER, Caller, EventPublisher, EventTarget, settings_from_json
from monitor.emulator.faults import Fault, FaultPlan, FaultRule, Stats
from monitor.emulator.model import Emulator, EmulatorError, Invalidation
from monitor.emulator.oddities import Oddities, OdditySetting
from monitor.emulator.seeder import Seeder, SeedPlan

API = "/2020-05-31"
ADMIN = "/_emulator"

_THROTTLING = EmulatorError("Throttling", 400, "Rate exceeded")
_ACCESS_DENIED = EmulatorError("AccessDenied", 403, "Access denied.")
_INTERNAL = EmulatorError("InternalError", 500, "We encountered an internal error.")
_UNAVAILABLE = EmulatorError("ServiceUnavailable", 503, "Service is unavailable.")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _RequestIds:
    """Cheap unique request ids shaped like the UUIDs AWS sends."""

    def __init__(self) -> None:
        self._prefix = os.urandom(6).hex()
        self._counter = itertools.count(1)

    def next(self) -> str:
        n = next(self._counter)
        return f"{n >> 16 & 0xFFFFFFFF:08x}-{n & 0xFFFF:04x}-4000-8000-{self._prefix}"


class EmulatorApp:
    """Routes bound to one emulator, fault plan, oddities, event publisher and stats."""

    def __init__(
        self,
        emulator: Emulator,
        faults: FaultPlan,
        stats: Stats,
        oddities: Oddities,
        events: EventPublisher,
    ) -> None:
        self.emulator = emulator
        self.faults = faults
        self.stats = stats
        self.oddities = oddities
        self.events = events
        self.bodies = xml.InvalidationBodies()
        self.request_ids = _RequestIds()
        self.seeders: list[Seeder] = []

    def build(self) -> web.Application:
        app = web.Application()
        add = app.router.add_route
        dist = f"{API}/distribution/{{distribution_id}}"
        tenant = f"{API}/distribution-tenant/{{tenant_id}}"
        add("POST", f"{dist}/invalidation", self._api("CreateInvalidation", self.create))
        add(
            "POST",
            f"{tenant}/invalidation",
            self._api("CreateInvalidationForDistributionTenant", self.tenant_create),
        )
        add("GET", f"{dist}/invalidation", self._api("ListInvalidations", self.list))
        add("GET", f"{dist}/invalidation/{{id}}", self._api("GetInvalidation", self.get))
        add("GET", f"{API}/distribution", self._api("ListDistributions", self.distributions))
        add(
            "GET",
            f"{tenant}/invalidation/{{id}}",
            self._api("GetInvalidationForDistributionTenant", self.tenant_get),
        )
        add(
            "GET",
            f"{tenant}/invalidation",
            self._api("ListInvalidationsForDistributionTenant", self.tenant_list),
        )
        admin = _Admin(self)
        admin.register(app)
        app.on_cleanup.append(self._stop_background)
        return app

    def start_seeder(self, plan: SeedPlan) -> Seeder:
        def created(inv: Invalidation) -> None:
            self.events.created(inv, SEEDER, self.emulator.now())

        seeder = Seeder(self.emulator, plan, on_created=created)
        seeder.start()
        self.seeders.append(seeder)
        return seeder

    async def _stop_background(self, _app: web.Application) -> None:
        for seeder in self.seeders:
            await seeder.stop()
        await self.events.stop()

    # -- the shared request path: faults first, then the operation, then counting --

    def _api(
        self, operation: str, action: Callable[[web.Request], Awaitable[web.Response]]
    ) -> Handler:
        faults, stats = self.faults, self.stats

        async def handle(request: web.Request) -> web.StreamResponse:
            info = request.match_info
            scope = info.get("distribution_id") or info.get("tenant_id") or ""
            stats.caller(_access_key_id(request.headers.get("Authorization", "")), scope)
            fault, latency = faults.decide(operation)
            if latency:
                await asyncio.sleep(latency)
            if fault is Fault.NONE or fault is Fault.MALFORMED:
                try:
                    response = await action(request)
                except EmulatorError as exc:
                    stats.record(operation, "client_error" if exc.status < 500 else "server_error")
                    return self._error(exc)
                if fault is Fault.MALFORMED and response.body is not None:
                    response.body = xml.malformed(bytes(response.body))  # type: ignore[arg-type]
                    stats.record(operation, "malformed")
                else:
                    stats.record(operation, "ok")
                return response
            if fault is Fault.THROTTLE:
                stats.record(operation, "throttled")
                return self._error(_THROTTLING)
            if fault is Fault.ACCESS_DENIED:
                stats.record(operation, "client_error")
                return self._error(_ACCESS_DENIED)
            if fault is Fault.DROP:
                stats.record(operation, "dropped")
                return _drop(request)
            stats.record(operation, "server_error")
            return self._error(_INTERNAL if fault is Fault.INTERNAL_ERROR else _UNAVAILABLE)

        return handle

    def _xml(self, body: bytes, status: int = 200, **headers: str) -> web.Response:
        headers["Content-Type"] = "text/xml"
        headers["x-amz-request-id"] = self.request_ids.next()
        return web.Response(body=body, status=status, headers=headers)

    def _error(self, exc: EmulatorError) -> web.Response:
        request_id = self.request_ids.next()
        body = xml.error(exc.code, exc.message, request_id, sender=exc.status < 500)
        return web.Response(
            body=body,
            status=exc.status,
            headers={"Content-Type": "text/xml", "x-amz-request-id": request_id},
        )

    # -- operations --

    def _invalidation(self, inv: Invalidation) -> web.Response:
        completed = inv.is_completed(self.emulator.now())
        found = self.oddities.of(inv.id, inv.distribution_id) if self.oddities else None
        if found is None:
            return self._xml(self.bodies.body(inv, completed))
        return self._xml(xml.odd_invalidation(inv, completed, found[1]))

    def _listing(self, request: web.Request, distribution_id: str) -> web.Response:
        marker, max_items = _paging(request)
        page = self.emulator.list_invalidations(distribution_id, marker, max_items)
        now = self.emulator.now()
        return self._xml(xml.invalidation_list(page, now, self.oddities, distribution_id))

    async def get(self, request: web.Request) -> web.Response:
        info = request.match_info
        return self._invalidation(
            self.emulator.get_invalidation(info["distribution_id"], info["id"])
        )

    async def _create(
        self, request: web.Request, distribution_id: str, tenant_id: str | None = None
    ) -> web.Response:
        paths, caller_reference = xml.parse_invalidation_batch(await request.read())
        inv, created = self.emulator.create_invalidation(distribution_id, paths, caller_reference)
        now = self.emulator.now()
        if created:
            self.events.created(inv, _caller(request), now, tenant_id)
        scope = (
            f"distribution/{distribution_id}"
            if tenant_id is None
            else (f"distribution-tenant/{tenant_id}")
        )
        location = f"{request.scheme}://{request.host}{API}/{scope}/invalidation/{inv.id}"
        body = self.bodies.body(inv, inv.is_completed(now))
        return self._xml(body, 201 if created else 200, Location=location)

    async def create(self, request: web.Request) -> web.Response:
        distribution_id = request.match_info["distribution_id"]
        self.emulator.distribution(distribution_id)
        return await self._create(request, distribution_id)

    async def tenant_create(self, request: web.Request) -> web.Response:
        tenant_id = request.match_info["tenant_id"]
        dist = self.emulator.tenant_distribution(tenant_id)
        return await self._create(request, dist.id, tenant_id)

    async def list(self, request: web.Request) -> web.Response:
        return self._listing(request, request.match_info["distribution_id"])

    async def distributions(self, request: web.Request) -> web.Response:
        marker, max_items = _paging(request)
        return self._xml(xml.distribution_list(self.emulator.list_distributions(marker, max_items)))

    async def tenant_get(self, request: web.Request) -> web.Response:
        dist = self.emulator.tenant_distribution(request.match_info["tenant_id"])
        return self._invalidation(dist.find(request.match_info["id"]))

    async def tenant_list(self, request: web.Request) -> web.Response:
        dist = self.emulator.tenant_distribution(request.match_info["tenant_id"])
        return self._listing(request, dist.id)


def _caller(request: web.Request) -> Caller:
    return Caller(
        _access_key_id(request.headers.get("Authorization", "")),
        request.headers.get("User-Agent", ""),
        request.remote or "127.0.0.1",
    )


def _access_key_id(authorization: str) -> str:
    """`AWS4-HMAC-SHA256 Credential=AKID/20261126/us-east-1/cloudfront/aws4_request, ...`."""
    _, found, rest = authorization.partition("Credential=")
    return rest.split("/", 1)[0] if found else ""


def _paging(request: web.Request) -> tuple[str, int]:
    query = request.rel_url.query
    raw = query.get("MaxItems", "100")
    try:
        max_items = int(raw)
    except ValueError:
        max_items = 0
    if not 1 <= max_items <= 1000:
        raise EmulatorError("InvalidArgument", 400, f"MaxItems must be 1..1000, got {raw!r}.")
    return query.get("Marker", ""), max_items


def _drop(request: web.Request) -> web.Response:
    # Closing the transport before the handler returns means aiohttp has nowhere to write
    # the response: the client sees the connection end with no answer at all.
    request.protocol.force_close()
    return web.Response(status=204)


# --- admin API (JSON) -----------------------------------------------------------------


class _Admin:
    """JSON admin routes under ``/_emulator``; errors come back as ``{"error", "message"}``.

    GET  /health                         {"ok": true, "now": epoch}
    GET  /distributions                  {"distributions": [{id, arn, domain_name, invalidations}]}
    POST /distributions                  {"count": N} or {"ids": [...]} -> 201 same shape
    POST /distributions/{id}/tenants     {"id"?: str} -> 201 {"id", "distribution_id"}
    GET  /invalidations[?distribution_id=D]  {"now": epoch, "invalidations": [truth record]}
    POST /invalidations                  {"distribution_id", "paths"?, "caller_reference"?,
                                          "duration"?: s, "hold"?: bool, "creator"?: str}
                                          -> 201 truth record
    POST /invalidations/{id}/complete    -> truth record (now Completed)
    GET  /faults                         {"default": rule, "operations": {op: rule}}
    POST /faults                         {rule fields..., "operation"?: op} -> as GET
    DELETE /faults                       clear every rule -> as GET
    GET  /stats                          {"total": {outcome: n}, "requests": n,
                                          "operations": {op: {outcome: n}},
                                          "callers": [{access_key_id, scope, requests}],
                                          "events": {"published", "failed", "dropped": n}}
    POST /stats/reset                    -> as GET, all zero
    GET|POST|DELETE /seeders             list / start {"rate", "per_distribution"?, "count"?,
                                          "duration"?, "paths"?, "distribution_ids"?} / stop
    GET  /oddities                       {"invalidations": {id: odd}, "distributions": {id: odd},
                                          "listing_ids": {distribution id: [id, ...]}}
    POST /oddities                       {"invalidation_id" | "distribution_id",
                                          "create_time"?: spec, "status"?: str,
                                          "listing_ids"?: [str] (distribution only)} -> as GET
    DELETE /oddities[?invalidation_id=I | ?distribution_id=D]  clear one target or all -> as GET
    GET  /events                         {"enabled", "queue_url", "endpoint_url", "region",
                                          "pending", "published", "failed", "dropped"}
    POST /events                         {"queue_url"?, "endpoint_url"?, "region"?,
                                          "enabled"?: bool} -> as GET (a new queue turns it on)

    A truth record: distribution_id, id, caller_reference, paths (count), create_time
    (epoch), create_time_wire, completes_at (epoch or null while held), completed_at
    (epoch once Completed, else null), status, held, oddity (null, or what its answers
    say instead: create_time spec, status, scope, create_time_wire). A rule:
    throttle_rate, server_error_rate, access_denied_rate, drop_rate, malformed_rate (0..1,
    summing to at most 1) and latency_ms ([lo, hi]). An odd: create_time (``future:S``,
    ``epoch``, ``overflow`` or ``text:ANYTHING``, or null) and status (or null); a POST
    replaces whatever its target had. ``creator`` names who created an invalidation in
    its CloudTrail event (``events.py``), as the signing access key does through the API.
    """

    def __init__(self, app: EmulatorApp) -> None:
        self.app = app
        self.emulator = app.emulator

    def register(self, app: web.Application) -> None:
        def add(method: str, path: str, handler: Handler) -> None:
            app.router.add_route(method, path, _guarded(handler))

        add("GET", f"{ADMIN}/health", self.health)
        add("GET", f"{ADMIN}/distributions", self.list_distributions)
        add("POST", f"{ADMIN}/distributions", self.create_distributions)
        add("POST", f"{ADMIN}/distributions/{{distribution_id}}/tenants", self.create_tenant)
        add("GET", f"{ADMIN}/invalidations", self.ground_truth)
        add("POST", f"{ADMIN}/invalidations", self.create_invalidation)
        add("POST", f"{ADMIN}/invalidations/{{id}}/complete", self.complete)
        add("GET", f"{ADMIN}/faults", self.get_faults)
        add("POST", f"{ADMIN}/faults", self.set_faults)
        add("DELETE", f"{ADMIN}/faults", self.clear_faults)
        add("GET", f"{ADMIN}/stats", self.get_stats)
        add("POST", f"{ADMIN}/stats/reset", self.reset_stats)
        add("GET", f"{ADMIN}/seeders", self.list_seeders)
        add("POST", f"{ADMIN}/seeders", self.start_seeder)
        add("DELETE", f"{ADMIN}/seeders", self.stop_seeders)
        add("GET", f"{ADMIN}/oddities", self.get_oddities)
        add("POST", f"{ADMIN}/oddities", self.set_oddities)
        add("DELETE", f"{ADMIN}/oddities", self.clear_oddities)
        add("GET", f"{ADMIN}/events", self.get_events)
        add("POST", f"{ADMIN}/events", self.set_events)

    async def health(self, _request: web.Request) -> web.Response:
        return _json({"ok": True, "now": self.emulator.now()})

    async def list_distributions(self, _request: web.Request) -> web.Response:
        return _json(
            {"distributions": [_distribution(d) for d in self.emulator.distributions.values()]}
        )

    async def create_distributions(self, request: web.Request) -> web.Response:
        body = await _body(request)
        ids = body.get("ids")
        if ids is not None:
            if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
                raise _bad("ids must be a list of non-empty strings")
            wanted: list[str | None] = list(ids)
        else:
            count = body.get("count", 1)
            if not isinstance(count, int) or isinstance(count, bool) or not 0 < count <= 10_000:
                raise _bad("count must be an integer 1..10000")
            wanted = [None] * count
        created = [_distribution(self.emulator.create_distribution(i)) for i in wanted]
        return _json({"distributions": created}, status=201)

    async def create_tenant(self, request: web.Request) -> web.Response:
        body = await _body(request)
        tenant_id = body.get("id")
        if tenant_id is not None and not isinstance(tenant_id, str):
            raise _bad("id must be a string")
        tenant = self.emulator.create_tenant(request.match_info["distribution_id"], tenant_id)
        return _json(
            {"id": tenant, "distribution_id": request.match_info["distribution_id"]}, status=201
        )

    def _truth(self, inv: Invalidation) -> dict[str, object]:
        return self._annotated(inv.truth(self.emulator.now()))

    def _annotated(self, record: dict[str, object]) -> dict[str, object]:
        record["oddity"] = self.app.oddities.truth(record) if self.app.oddities else None
        return record

    async def ground_truth(self, request: web.Request) -> web.Response:
        distribution_id = request.rel_url.query.get("distribution_id")
        now = self.emulator.now()
        truth = [self._annotated(r) for r in self.emulator.ground_truth(distribution_id)]
        return _json({"now": now, "invalidations": truth})

    async def create_invalidation(self, request: web.Request) -> web.Response:
        body = await _body(request)
        distribution_id = body.get("distribution_id")
        if not isinstance(distribution_id, str):
            raise _bad("distribution_id (string) is required")
        paths = body.get("paths", ["/*"])
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise _bad("paths must be a list of strings")
        caller_reference = body.get("caller_reference")
        if caller_reference is not None and not isinstance(caller_reference, str):
            raise _bad("caller_reference must be a string")
        duration = body.get("duration")
        if duration is not None and (
            not isinstance(duration, int | float) or isinstance(duration, bool) or duration < 0
        ):
            raise _bad("duration must be a number of seconds >= 0")
        hold = body.get("hold", False)
        if not isinstance(hold, bool):
            raise _bad("hold must be true or false")
        creator = body.get("creator", "emulator-admin")
        if not isinstance(creator, str):
            raise _bad("creator must be a string")
        inv, created = self.emulator.create_invalidation(
            distribution_id,
            paths,
            caller_reference,
            duration=None if duration is None else float(duration),
            hold=hold,
        )
        if created:
            caller = dataclasses.replace(_caller(request), access_key_id=creator)
            self.app.events.created(inv, caller, self.emulator.now())
        return _json(self._truth(inv), status=201 if created else 200)

    async def complete(self, request: web.Request) -> web.Response:
        inv = self.emulator.find_invalidation(request.match_info["id"])
        self.emulator.complete(inv.distribution_id, inv.id)
        return _json(self._truth(inv))

    async def get_faults(self, _request: web.Request) -> web.Response:
        return _json(self.app.faults.to_json())

    async def set_faults(self, request: web.Request) -> web.Response:
        body = await _body(request)
        operation = body.get("operation")
        if operation is not None and not isinstance(operation, str):
            raise _bad("operation must be a string")
        try:
            self.app.faults.set(FaultRule.from_json(body), operation)
        except ValueError as exc:
            raise _bad(str(exc)) from None
        return _json(self.app.faults.to_json())

    async def clear_faults(self, _request: web.Request) -> web.Response:
        self.app.faults.clear()
        return _json(self.app.faults.to_json())

    async def get_stats(self, _request: web.Request) -> web.Response:
        return _json(self.app.stats.to_json())

    async def reset_stats(self, _request: web.Request) -> web.Response:
        self.app.stats.reset()
        return _json(self.app.stats.to_json())

    async def list_seeders(self, _request: web.Request) -> web.Response:
        return _json({"seeders": [s.to_json() for s in self.app.seeders]})

    async def start_seeder(self, request: web.Request) -> web.Response:
        body = await _body(request)
        try:
            plan = SeedPlan.from_json(body)
        except ValueError as exc:
            raise _bad(str(exc)) from None
        return _json(self.app.start_seeder(plan).to_json(), status=201)

    async def stop_seeders(self, _request: web.Request) -> web.Response:
        for seeder in self.app.seeders:
            await seeder.stop()
        return _json({"seeders": [s.to_json() for s in self.app.seeders]})

    async def get_oddities(self, _request: web.Request) -> web.Response:
        return _json(self.app.oddities.to_json())

    async def set_oddities(self, request: web.Request) -> web.Response:
        try:
            setting = OdditySetting.from_json(await _body(request))
        except ValueError as exc:
            raise _bad(str(exc)) from None
        if setting.invalidation_id is not None:
            self.emulator.find_invalidation(setting.invalidation_id)
        if setting.distribution_id is not None:
            self.emulator.distribution(setting.distribution_id)
        self.app.oddities.apply(setting)
        return _json(self.app.oddities.to_json())

    async def clear_oddities(self, request: web.Request) -> web.Response:
        query = request.rel_url.query
        self.app.oddities.clear(query.get("distribution_id"), query.get("invalidation_id"))
        return _json(self.app.oddities.to_json())

    async def get_events(self, _request: web.Request) -> web.Response:
        return _json(self.app.events.to_json())

    async def set_events(self, request: web.Request) -> web.Response:
        events = self.app.events
        try:
            target, enabled = settings_from_json(await _body(request), events.target)
            events.configure(target, enabled)
        except ValueError as exc:
            raise _bad(str(exc)) from None
        return _json(events.to_json())


def _distribution(dist: Any) -> dict[str, object]:
    return {
        "id": dist.id,
        "arn": dist.arn,
        "domain_name": dist.domain_name,
        "invalidations": len(dist.invalidations),
    }


def _json(data: object, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def _bad(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(
        text=json.dumps({"error": "BadRequest", "message": message}),
        content_type="application/json",
    )


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise _bad("body is not valid JSON") from None
    if not isinstance(data, dict):
        raise _bad("body must be a JSON object")
    return data


# host, [v6 host] or a name without brackets or colons, then an optional numeric port.
_AUTHORITY = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<name>[^\[\]:]+))(?::\d{1,5})?")


def _loopback_authority(authority: str) -> bool:
    match = _AUTHORITY.fullmatch(authority)
    if match is None:
        return False
    host = match["v6"] or match["name"].lower()
    return is_loopback(host) and (match["v6"] is None or ":" in host)


def _refusal(request: web.Request) -> web.Response | None:
    """The answer to an admin request a web page could have sent, or None to serve it."""
    authority = request.headers.get("Host", "")
    if not _loopback_authority(authority):
        message = (
            "the admin API answers only a loopback Host (127.0.0.1, localhost, [::1]), "
            f"not {authority!r}"
        )
        return _json({"error": "ForbiddenHost", "message": message}, status=403)
    if (request.method == "POST" or request.body_exists) and (
        request.content_type != "application/json"
    ):
        sent = request.headers.get("Content-Type", "none")
        message = f"admin POSTs and bodies must be Content-Type: application/json, not {sent!r}"
        return _json({"error": "UnsupportedMediaType", "message": message}, status=415)
    return None


def _guarded(handler: Handler) -> Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        refused = _refusal(request)
        if refused is not None:
            return refused
        try:
            return await handler(request)
        except EmulatorError as exc:
            return _json({"error": exc.code, "message": exc.message}, status=exc.status)

    return guarded


# --- running it -----------------------------------------------------------------------


class EmulatorServer:
    """Serve an :class:`Emulator` on a loopback port for the life of an ``async with``.

    ``port=0`` picks a free port; read it back from :attr:`port` or :attr:`url`.
    Seed plans given here start with the server and are cancelled when it stops.
    ``events`` sends each invalidation created to that SQS queue from the start.
    """

    def __init__(
        self,
        emulator: Emulator,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        faults: FaultPlan | None = None,
        stats: Stats | None = None,
        seed_plans: list[SeedPlan] | None = None,
        oddities: Oddities | None = None,
        events: EventTarget | None = None,
    ) -> None:
        if not is_loopback(host):
            raise ValueError(f"the emulator only listens on loopback, not {host!r}")
        self.emulator = emulator
        self.faults = faults or FaultPlan()
        self.stats = stats or Stats()
        self.oddities = oddities if oddities is not None else Oddities()
        self.host = host
        self.port = port
        self.events = EventPublisher(self.stats, emulator.ACCOUNT_ID, events)
        self._app = EmulatorApp(emulator, self.faults, self.stats, self.oddities, self.events)
        self._seed_plans = seed_plans or []
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def seeders(self) -> list[Seeder]:
        return self._app.seeders

    async def start(self) -> None:
        app = self._app.build()
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        for plan in self._seed_plans:
            self._app.start_seeder(plan)

    def start_seeder(self, plan: SeedPlan) -> Seeder:
        """Start seeding now, on the server's loop; it stops with the server."""
        return self._app.start_seeder(plan)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> EmulatorServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
