"""Test helpers imported by test modules (`from support import ...`): the running pipeline and its worker.

The fixtures that build them live in conftest.py; pytest puts this directory on sys.path.
"""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass
from typing import Any

import msgspec
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from sandbox.testing import RunningSandbox
from shared.catalog import Catalog, load_specs
from shared.config import Settings
from shared.operator import parse_operator_terms
from workers.queue import ServerWorker
from workers.settings import worker_options

PIPELINE_KEY_ID = "pipeline-key-id"
PIPELINE_SECRET = "pipeline-key-secret"
STOP_GRACE_S = 2.0
FREE_AND_FAST: dict[str, Any] = {"defaults": {"amountCents": 0, "qps": 1000}}


def build_catalog(terms: dict[str, Any]) -> Catalog:
    specs = load_specs()
    return Catalog.build(specs, parse_operator_terms(terms, {spec.id for spec in specs}))


class RunningWorker:
    """A real arq worker running in the test's event loop."""

    def __init__(self, settings: Settings, catalog: Catalog) -> None:
        self.worker = ServerWorker(**{**worker_options(settings, catalog), "handle_signals": False})
        self.task = asyncio.create_task(self.worker.async_run())

    async def stop(self) -> None:
        # Ask the loop to end after its current poll (burst mode with nothing more to start), so no Redis
        # pipeline of arq's is cancelled halfway; jobs still running after a moment (a hung upstream) are cancelled.
        self.worker.burst, self.worker.max_burst_jobs = True, 0
        self.worker.wake()  # out of its wait for work
        done, _ = await asyncio.wait({self.task}, timeout=STOP_GRACE_S)
        if not done:
            self.worker.handle_sig(signal.SIGUSR1)
        await asyncio.gather(self.task, *self.worker.tasks.values(), return_exceptions=True)
        if self.worker._pool is not None:
            await self.worker.pool.aclose(close_connection_pool=True)


@dataclass
class Pipeline:
    api: TestClient
    sandbox: RunningSandbox
    settings: Settings
    catalog: Catalog
    redis: Redis
    worker: RunningWorker | None = None

    def start_worker(self) -> None:
        self.worker = RunningWorker(self.settings, self.catalog)

    async def stop_worker(self) -> None:
        if self.worker is not None:
            await self.worker.stop()
            self.worker = None

    async def job(self, job_id: str, wait: float = 0) -> tuple[int, Any]:
        response = await self.api.get(f"/api/jobs/{job_id}", params={"wait": str(wait)} if wait else {})
        return response.status, await response.json()

    async def call(self, tool: str, body: Any, **headers: str) -> tuple[int, Any, Any]:
        data = body if isinstance(body, bytes | str) else msgspec.json.encode(body)
        response = await self.api.post(
            f"/api/tools/{tool}", data=data, headers={"Content-Type": "application/json", **headers}
        )
        return response.status, await response.json(), response.headers
