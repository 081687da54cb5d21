"""Suite-wide fixtures: one real Redis (Valkey) per session on a free loopback port, settings, the API app.

The environment is made safe before anything imports the Alibaba SDK: no metadata-service lookups, no proxies.
"""

from __future__ import annotations

import os

os.environ["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost,::1"
for _proxy in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
    os.environ.pop(_proxy, None)
# The anonymous per-address limit (api/ratelimits.py) out of the way: the suite calls from 127.0.0.1 far faster than
# one client may. Here for the processes tests start, and below for the apps built in-process;
# tests/test_client_rate_limit.py sets small limits of its own.
ANON_UNLIMITED = {"SERVER402_ANON_RATE": "100000", "SERVER402_ANON_BURST": "100000"}
os.environ.update(ANON_UNLIMITED)

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
    return Settings.from_env({"REDIS_URL": redis_server.url, "SERVER402_LOG_FORMAT": "json", **ANON_UNLIMITED})


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

from typing import Any  # noqa: E402

from support import FREE_AND_FAST, PIPELINE_KEY_ID, PIPELINE_SECRET, Pipeline, build_catalog  # noqa: E402

from sandbox.config import KeyPair, SandboxConfig  # noqa: E402
from sandbox.facilitator.config import FacilitatorConfig  # noqa: E402
from sandbox.facilitator.testing import RunningFacilitator, run_facilitator  # noqa: E402
from sandbox.testing import run_sandbox  # noqa: E402


@pytest.fixture
def operator_terms() -> dict[str, Any]:
    """Override in a test module to change prices or QPS for its pipeline."""
    return FREE_AND_FAST


@pytest.fixture
def sandbox_qps() -> int:
    return 1000


@pytest.fixture
def pipeline_env() -> dict[str, str]:
    """Extra settings for a module's pipeline (override in the module)."""
    return {}


def pipeline_settings(redis_url: str, sandbox_endpoint: str, extra: dict[str, str]) -> Settings:
    return Settings.from_env(
        {
            "REDIS_URL": redis_url,
            "ALIBABA_CLOUD_ACCESS_KEY_ID": PIPELINE_KEY_ID,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": PIPELINE_SECRET,
            "SERVER402_FACEBODY_ENDPOINT": sandbox_endpoint,
            "SERVER402_CLOUDAUTH_ENDPOINT": sandbox_endpoint,
            "SERVER402_RETRY_BASE_S": "0.02",
            "SERVER402_RETRY_CAP_S": "0.1",
            "SERVER402_JOB_DEADLINE_S": "20",
            **ANON_UNLIMITED,
            **extra,
        }
    )


@pytest.fixture
async def pipeline(
    request: pytest.FixtureRequest,
    aiohttp_client,  # type: ignore[no-untyped-def]
    redis_server: EmbeddedRedis,
    operator_terms: dict[str, Any],
    sandbox_qps: int,
    pipeline_env: dict[str, str],
) -> AsyncIterator[Pipeline]:
    config = SandboxConfig(key_pairs=(KeyPair(PIPELINE_KEY_ID, PIPELINE_SECRET),), qps=sandbox_qps)
    async with run_sandbox(config) as sandbox:
        settings = pipeline_settings(redis_server.url, sandbox.endpoint, pipeline_env)
        catalog_ = build_catalog(operator_terms)
        client = Redis.from_url(settings.redis_url)
        await client.flushdb()
        api_client = await aiohttp_client(create_app(settings, catalog_))
        running = Pipeline(api_client, sandbox, settings, catalog_, client)
        if request.node.get_closest_marker("no_worker") is None:
            running.start_worker()
        try:
            yield running
        finally:
            await running.stop_worker()
            await client.aclose()


@pytest.fixture
async def facilitator() -> AsyncIterator[RunningFacilitator]:
    """The sandbox x402 facilitator, in-process on a free loopback port (point pipeline_env at its url)."""
    async with run_facilitator(FacilitatorConfig()) as running:
        yield running
