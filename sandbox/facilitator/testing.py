"""Run the facilitator in-process for tests: `async with run_facilitator(config) as facilitator: ...`.

It listens on a free loopback port; point x402's HTTPFacilitatorClient at `facilitator.url`. The helpers wrap the
admin API documented in sandbox/facilitator/app.py (amounts in atomic units: 1 USDC = 1_000_000).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from sandbox.facilitator.app import create_facilitator_app
from sandbox.facilitator.config import FacilitatorConfig
from sandbox.testing import serve_on_loopback


@dataclass
class RunningFacilitator:
    app: web.Application
    url: str  # http://127.0.0.1:PORT
    http: aiohttp.ClientSession

    async def balance(self, address: str) -> int:
        body = await self._admin("GET", "balances", params={"address": address})
        return int(body["balance"])

    async def fund(self, address: str, amount: int) -> int:
        """Mint amount to address; returns the new balance."""
        body = await self._admin("POST", "fund", json={"address": address, "amount": amount})
        return int(body["balance"])

    async def transfers(self) -> list[dict[str, Any]]:
        """Settled transfers, oldest first: {from, to, value, nonce, transaction, at}."""
        return await self._admin("GET", "transfers")  # type: ignore[no-any-return]

    async def counts(self) -> dict[str, int]:
        """Requests /verify and /settle have received, whatever they answered: {"verify": n, "settle": n}."""
        body = await self._admin("GET", "counts")
        return {"verify": body["verify"], "settle": body["settle"]}

    async def outcomes(self) -> dict[str, dict[str, int]]:
        """What each request came to: {"verify": {outcome: n}, "settle": {outcome: n}} (names: counts.py)."""
        return (await self._admin("GET", "counts"))["outcomes"]  # type: ignore[no-any-return]

    async def all_counts(self) -> dict[str, Any]:
        """GET /_facilitator/counts as it is: {"verify": n, "settle": n, "outcomes": {...}}."""
        return await self._admin("GET", "counts")  # type: ignore[no-any-return]

    async def put_faults(
        self, *, settle: dict[str, Any] | None = None, verify: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Replace the fault specs (app.py documents them; None: no fault there); returns them as GET shows them."""
        body = await self._admin("PUT", "faults", json={"settle": settle, "verify": verify})
        return body["faults"]  # type: ignore[no-any-return]

    async def faults(self) -> dict[str, Any]:
        return (await self._admin("GET", "faults"))["faults"]  # type: ignore[no-any-return]

    async def clear_faults(self) -> None:
        await self._admin("DELETE", "faults")

    async def _admin(self, method: str, path: str, **kwargs: Any) -> Any:
        async with self.http.request(method, f"{self.url}/_facilitator/{path}", **kwargs) as response:
            body = await response.json()
            if response.status != 200:
                raise ValueError(f"facilitator admin {path}: {response.status} {body}")
            return body


@asynccontextmanager
async def run_facilitator(config: FacilitatorConfig | None = None) -> AsyncIterator[RunningFacilitator]:
    """config.port is ignored: the facilitator takes a free port."""
    app = create_facilitator_app(config or FacilitatorConfig())
    async with serve_on_loopback(app) as (endpoint, http):
        yield RunningFacilitator(app, f"http://{endpoint}", http)
