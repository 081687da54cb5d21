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
