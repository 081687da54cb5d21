"""Test helpers imported by test modules (`from support import ...`): the running pipeline and its worker.

The fixtures that build them live in conftest.py; pytest puts this directory on sys.path.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import msgspec
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from api import appkeys
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


@contextlib.asynccontextmanager
async def redis_config(redis: Redis, **settings: object) -> AsyncIterator[None]:
    """The server's settings (`maxmemory=1`: underscores are dashes) changed for the block, and put back after it."""
    names = {name: name.replace("_", "-") for name in settings}
    kept = {name: (await redis.config_get(name))[name] for name in names.values()}
    for name, value in settings.items():
        await redis.config_set(names[name], value)  # type: ignore[arg-type]
    try:
        yield
    finally:
        for name, value in kept.items():
            await redis.config_set(name, value)


ABOVE_MAXMEMORY = {"maxmemory_policy": "noeviction", "maxmemory": 1}  # every write refused (OOM)


def build_catalog(terms: dict[str, Any]) -> Catalog:
    specs = load_specs()
    return Catalog.build(specs, parse_operator_terms(terms, {spec.id for spec in specs}))


class RunningWorker:
    """Real arq workers running in the test's event loop, one per lane (`worker`: the calls lane's; `batch`: the
    batch lane's, as `python -m workers` runs beside it)."""

    def __init__(self, settings: Settings, catalog: Catalog) -> None:
        self.worker = ServerWorker(**{**worker_options(settings, catalog), "handle_signals": False})
        self.batch = ServerWorker(**{**worker_options(settings, catalog, lane="batch"), "handle_signals": False})
        self.tasks = [asyncio.create_task(worker.async_run()) for worker in (self.worker, self.batch)]

    async def flush_quality(self) -> None:
        """Write the quality figures the lanes counted (they write them every second by themselves)."""
        for worker in (self.worker, self.batch):
            if "quality" in worker.ctx:
                await worker.ctx["quality"].flush()

    async def stop(self) -> None:
        lanes = zip((self.worker, self.batch), self.tasks, strict=True)
        await asyncio.gather(*(self._stop(worker, task) for worker, task in lanes))

    @staticmethod
    async def _stop(worker: ServerWorker, task: asyncio.Task[None]) -> None:
        # Ask the loop to end after its current poll (burst mode with nothing more to start), so no Redis
        # pipeline of arq's is cancelled halfway; jobs still running after a moment (a hung upstream) are cancelled.
        worker.burst, worker.max_burst_jobs = True, 0
        worker.wake()  # out of its wait for work
        done, _ = await asyncio.wait({task}, timeout=STOP_GRACE_S)
        if not done:
            worker.handle_sig(signal.SIGUSR1)
        await asyncio.gather(task, *worker.tasks.values(), return_exceptions=True)
        if worker._pool is not None:
            if worker.on_shutdown is not None:  # as arq's close() runs it (workers/supervisor.py closes the worker)
                await worker.on_shutdown(worker.ctx)
            await worker.pool.aclose(close_connection_pool=True)


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

    async def flush_quality(self) -> None:
        """Write every quality figure counted so far (the workers' and the API's), as each does every second."""
        await asyncio.sleep(0.05)  # a worker counts an outcome once FINISH_JOB answers, maybe after the API did
        if self.worker is not None:
            await self.worker.flush_quality()
        await self.api.app[appkeys.QUALITY].flush()

    async def job(self, job_id: str, wait: float = 0) -> tuple[int, Any]:
        response = await self.api.get(f"/api/jobs/{job_id}", params={"wait": str(wait)} if wait else {})
        return response.status, await response.json()

    async def call(self, tool: str, body: Any, **headers: str) -> tuple[int, Any, Any]:
        data = body if isinstance(body, bytes | str) else msgspec.json.encode(body)
        response = await self.api.post(
            f"/api/tools/{tool}", data=data, headers={"Content-Type": "application/json", **headers}
        )
        return response.status, await response.json(), response.headers
