"""The distributed rate limit holds across worker processes: the upstream never throttles us."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis
from support import PIPELINE_KEY_ID, PIPELINE_SECRET, build_catalog

from api.app import create_app
from sandbox.config import KeyPair, SandboxConfig
from sandbox.testing import RunningSandbox, run_sandbox
from scripts.embedded_redis import EmbeddedRedis
from shared.config import Settings

QPS = 4
JOBS = 24
WORKERS = 3


@pytest.fixture
async def sandbox() -> AsyncIterator[RunningSandbox]:
    config = SandboxConfig(key_pairs=(KeyPair(PIPELINE_KEY_ID, PIPELINE_SECRET),), qps=QPS)
    async with run_sandbox(config) as running:
        yield running


@pytest.fixture
def env(redis_server: EmbeddedRedis, sandbox: RunningSandbox, tmp_path: Path) -> dict[str, str]:
    operator = tmp_path / "operator.toml"
    operator.write_text(f"[defaults]\namountCents = 0\nqps = {QPS}\n")
    return {
        "REDIS_URL": redis_server.url,
        "ALIBABA_CLOUD_ACCESS_KEY_ID": PIPELINE_KEY_ID,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": PIPELINE_SECRET,
        "SERVER402_FACEBODY_ENDPOINT": sandbox.endpoint,
        "SERVER402_CLOUDAUTH_ENDPOINT": sandbox.endpoint,
        "SERVER402_OPERATOR_FILE": str(operator),
        "SERVER402_LOG_LEVEL": "warning",
    }


@pytest.fixture
def worker_processes(env: dict[str, str], project_root: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "workers"],
            cwd=project_root,
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(WORKERS)
    ]
    yield processes
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(timeout=15)


async def test_three_worker_processes_stay_under_the_upstream_qps(
    env: dict[str, str], sandbox: RunningSandbox, worker_processes: list[subprocess.Popen[bytes]]
) -> None:
    settings = Settings.from_env(env)
    redis = Redis.from_url(settings.redis_url)
    await redis.flushdb()
    await redis.aclose()
    catalog = build_catalog({"defaults": {"amountCents": 0, "qps": QPS}})
    async with TestClient(TestServer(create_app(settings, catalog))) as api:
        responses = await asyncio.gather(
            *(
                api.post(
                    "/api/tools/face-detection",
                    json={"ImageURL": f"https://example.com/{n}.jpg"},
                    headers={"Prefer": "respond-async"},
                )
                for n in range(JOBS)
            )
        )
        job_ids = [(await response.json())["jobId"] for response in responses]
        finals = [await (await api.get(f"/api/jobs/{job_id}", params={"wait": "30"})).json() for job_id in job_ids]
    assert [final["status"] for final in finals] == ["succeeded"] * JOBS
    assert all(process.poll() is None for process in worker_processes)
    stats = (await sandbox.stats())["actions"]["DetectFace"]
    assert stats["throttled"] == 0
    assert stats["ok"] == JOBS
    assert stats["maxPerSecond"] <= QPS
