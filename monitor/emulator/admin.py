"""A small async client for the emulator's JSON admin API (``/_emulator/...``)."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import aiohttp

from monitor.emulator.server import ADMIN


class AdminError(Exception):
    def __init__(self, status: int, body: object) -> None:
        super().__init__(f"admin API answered {status}: {body}")
        self.status = status
        self.body = body


class AdminClient:
    """``async with AdminClient(url) as admin: await admin.create_distributions(2)``."""

    def __init__(self, url: str, session: aiohttp.ClientSession | None = None) -> None:
        self.base = url.rstrip("/") + ADMIN
        self._session = session
        self._own_session = session is None

    async def __aenter__(self) -> AdminClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        if body is None and method != "GET":
            body = {}  # the admin API takes only JSON-typed POSTs, empty or not
        async with self._session.request(method, self.base + path, json=body) as response:
            data = await response.json(content_type=None)
            if response.status >= 400:
                raise AdminError(response.status, data)
            return data

    async def health(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", "/health")
        return result

    async def create_distributions(
        self, count: int = 1, ids: list[str] | None = None
    ) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"ids": ids} if ids is not None else {"count": count}
        data = await self._call("POST", "/distributions", body)
        return list(data["distributions"])

    async def create_distribution(self, distribution_id: str | None = None) -> str:
        created = await self.create_distributions(
            ids=[distribution_id] if distribution_id else None
        )
        return str(created[0]["id"])

    async def distributions(self) -> list[dict[str, Any]]:
        data = await self._call("GET", "/distributions")
        return list(data["distributions"])

    async def create_tenant(self, distribution_id: str, tenant_id: str | None = None) -> str:
        body = {"id": tenant_id} if tenant_id else {}
        data = await self._call("POST", f"/distributions/{distribution_id}/tenants", body)
        return str(data["id"])

    async def create_invalidation(
        self,
        distribution_id: str,
        paths: list[str] | None = None,
        *,
        duration: float | None = None,
        hold: bool = False,
        caller_reference: str | None = None,
        creator: str | None = None,
    ) -> dict[str, Any]:
        """Create one; returns its ground-truth record (see ``ground_truth``).

        ``creator`` is who its CloudTrail event says created it (``user/<creator>``), as
        the signing access key does through the API; ``emulator-admin`` by default.
        """
        body = {"distribution_id": distribution_id, "hold": hold}
        body |= _given(
            paths=paths, duration=duration, caller_reference=caller_reference, creator=creator
        )
        result: dict[str, Any] = await self._call("POST", "/invalidations", body)
        return result

    async def complete(self, invalidation_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(
            "POST", f"/invalidations/{invalidation_id}/complete"
        )
        return result

    async def ground_truth(self, distribution_id: str | None = None) -> dict[str, Any]:
        """``{"now": epoch, "invalidations": [record, ...]}``."""
        query = f"?distribution_id={distribution_id}" if distribution_id else ""
        result: dict[str, Any] = await self._call("GET", f"/invalidations{query}")
        return result

    async def set_faults(self, operation: str | None = None, **rule: Any) -> dict[str, Any]:
        """Replace the rule for ``operation`` (or the default rule), e.g. throttle_rate=0.2."""
        body = dict(rule)
        if operation is not None:
            body["operation"] = operation
        result: dict[str, Any] = await self._call("POST", "/faults", body)
        return result

    async def faults(self) -> dict[str, Any]:
        """``{"default": rule, "operations": {operation: rule}}``."""
        result: dict[str, Any] = await self._call("GET", "/faults")
        return result

    async def clear_faults(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("DELETE", "/faults")
        return result

    async def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", "/stats")
        return result

    async def reset_stats(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("POST", "/stats/reset")
        return result

    async def set_oddity(
        self,
        *,
        invalidation_id: str | None = None,
        distribution_id: str | None = None,
        create_time: str | None = None,
        status: str | None = None,
        listing_ids: list[str] | None = None,
    ) -> dict[str, Any]:
        """Make one target's answers odd, replacing what it had; name exactly one target.

        ``create_time``: ``future:SECONDS``, ``epoch``, ``overflow`` or ``text:ANYTHING``;
        ``status``: any string (``Cancelled``); ``listing_ids``: bogus IDs (``""`` for an
        empty one) added to a distribution's listings. Returns :meth:`oddities`.
        """
        body = _given(
            invalidation_id=invalidation_id,
            distribution_id=distribution_id,
            create_time=create_time,
            status=status,
            listing_ids=listing_ids,
        )
        result: dict[str, Any] = await self._call("POST", "/oddities", body)
        return result

    async def oddities(self) -> dict[str, Any]:
        """``{"invalidations": {id: odd}, "distributions": {id: odd}, "listing_ids": {...}}``."""
        result: dict[str, Any] = await self._call("GET", "/oddities")
        return result

    async def clear_oddities(
        self, *, invalidation_id: str | None = None, distribution_id: str | None = None
    ) -> dict[str, Any]:
        """Clear one target's oddities, or every oddity when neither is named."""
        query = _given(invalidation_id=invalidation_id, distribution_id=distribution_id)
        params = "&".join(f"{k}={v}" for k, v in query.items())
        result: dict[str, Any] = await self._call(
            "DELETE", "/oddities" + (f"?{params}" if params else "")
        )
        return result

    async def events(self) -> dict[str, Any]:
        """``{"enabled", "queue_url", "endpoint_url", "region", "pending", "published",
        "failed", "dropped"}``: where creation events go and what became of them."""
        result: dict[str, Any] = await self._call("GET", "/events")
        return result

    async def set_events(
        self,
        *,
        queue_url: str | None = None,
        endpoint_url: str | None = None,
        region: str | None = None,
        enabled: bool | None = None,
    ) -> dict[str, Any]:
        """Aim creation events at an SQS queue (which turns them on) or turn them on/off."""
        body = _given(
            queue_url=queue_url, endpoint_url=endpoint_url, region=region, enabled=enabled
        )
        result: dict[str, Any] = await self._call("POST", "/events", body)
        return result

    async def start_seeder(self, rate: float, **plan: Any) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("POST", "/seeders", {"rate": rate, **plan})
        return result

    async def seeders(self) -> list[dict[str, Any]]:
        data = await self._call("GET", "/seeders")
        return list(data["seeders"])

    async def stop_seeders(self) -> list[dict[str, Any]]:
        data = await self._call("DELETE", "/seeders")
        return list(data["seeders"])


def _given(**fields: Any) -> dict[str, Any]:
    """The fields the caller set: the API's defaults apply to the others."""
    return {name: value for name, value in fields.items() if value is not None}
