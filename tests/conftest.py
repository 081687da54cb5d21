"""Suite-wide fixtures: one real Redis (Valkey) per session on a free loopback port, settings, the API app.

The environment is made safe before anything imports the Alibaba SDK: no metadata-service lookups, no proxies.
"""

from __future__ import annotations

import os

os.environ["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost,::1"
for _proxy in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
    os.environ.pop(_proxy, None)

from collections.abc import AsyncIterator, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from aiohttp.test_utils import TestClient  # noqa: E402
from redis.asyncio import Redis  # noqa: E402

from api.app import create_app  # noqa: E402
from scripts.embedded_redis import EmbeddedRedis  # noqa: E402
from shared.catalog import Catalog  # noqa: E402
from shared.config import Settings  # noqa: E402


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def settings(redis_server: EmbeddedRedis) -> Settings:
    return Settings.from_env({"REDIS_URL": redis_server.url, "SERVER402_LOG_FORMAT": "json"})


@pytest.fixture(scope="session")
def catalog(settings: Settings) -> Catalog:
    return Catalog.load(settings.operator_file)


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(settings.redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def api(aiohttp_client, settings: Settings, catalog: Catalog) -> TestClient:  # type: ignore[no-untyped-def]
    return await aiohttp_client(create_app(settings, catalog))


@pytest.fixture
def project_root() -> Path:
    return Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- the invocation pipeline, end to end
# The real SDK talks HTTP to the sandbox; a real arq worker runs in the test's event loop; the API in front.

import asyncio  # noqa: E402
import signal  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import msgspec  # noqa: E402
from arq.worker import Worker  # noqa: E402

from sandbox.config import KeyPair, SandboxConfig  # noqa: E402
from sandbox.testing import RunningSandbox, run_sandbox  # noqa: E402
from shared.catalog import load_specs  # noqa: E402
from shared.operator import parse_operator_terms  # noqa: E402
from workers.settings import worker_options  # noqa: E402

PIPELINE_KEY_ID = "pipeline-key-id"
PIPELINE_SECRET = "pipeline-key-secret"
FREE_AND_FAST = {"defaults": {"amountCents": 0, "qps": 1000}}


def build_catalog(terms: dict[str, Any]) -> Catalog:
    specs = load_specs()
    return Catalog.build(specs, parse_operator_terms(terms, {spec.id for spec in specs}))


@dataclass
class Pipeline:
    api: TestClient
    sandbox: RunningSandbox
    settings: Settings
    catalog: Catalog
    redis: Redis

    async def call(self, tool: str, body: Any, **headers: str) -> tuple[int, Any, Any]:
        data = body if isinstance(body, bytes | str) else msgspec.json.encode(body)
        response = await self.api.post(
            f"/api/tools/{tool}", data=data, headers={"Content-Type": "application/json", **headers}
        )
        return response.status, await response.json(), response.headers


class RunningWorker:
    def __init__(self, settings: Settings, catalog: Catalog) -> None:
        self.worker = Worker(**{**worker_options(settings, catalog), "handle_signals": False})
        self.task = asyncio.create_task(self.worker.async_run())

    async def stop(self) -> None:
        self.worker.handle_sig(signal.SIGUSR1)
        await asyncio.gather(self.task, *self.worker.tasks.values(), return_exceptions=True)
        if self.worker._pool is not None:
            await self.worker.pool.aclose(close_connection_pool=True)


@pytest.fixture
def operator_terms() -> dict[str, Any]:
    """Override in a test module to change prices or QPS for its pipeline."""
    return FREE_AND_FAST


@pytest.fixture
def sandbox_qps() -> int:
    return 1000


@pytest.fixture
async def pipeline(
    aiohttp_client, redis_server: EmbeddedRedis, operator_terms: dict[str, Any], sandbox_qps: int
) -> AsyncIterator[Pipeline]:  # type: ignore[no-untyped-def]
    config = SandboxConfig(key_pairs=(KeyPair(PIPELINE_KEY_ID, PIPELINE_SECRET),), qps=sandbox_qps)
    async with run_sandbox(config) as sandbox:
        settings = Settings.from_env(
            {
                "REDIS_URL": redis_server.url,
                "ALIBABA_CLOUD_ACCESS_KEY_ID": PIPELINE_KEY_ID,
                "ALIBABA_CLOUD_ACCESS_KEY_SECRET": PIPELINE_SECRET,
                "SERVER402_FACEBODY_ENDPOINT": sandbox.endpoint,
                "SERVER402_CLOUDAUTH_ENDPOINT": sandbox.endpoint,
                "SERVER402_RETRY_BASE_S": "0.02",
                "SERVER402_RETRY_CAP_S": "0.1",
                "SERVER402_JOB_DEADLINE_S": "20",
            }
        )
        catalog_ = build_catalog(operator_terms)
        client = Redis.from_url(settings.redis_url)
        await client.flushdb()
        api_client = await aiohttp_client(create_app(settings, catalog_))
        worker = RunningWorker(settings, catalog_)
        try:
            yield Pipeline(api_client, sandbox, settings, catalog_, client)
        finally:
            await worker.stop()
            await client.aclose()
