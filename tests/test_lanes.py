"""The batch lane (workers/lanes.py), with real `python -m workers` processes: batch items wait on their own queue
for a batch-lane worker (a calls-lane worker never takes one, and its single calls go on meanwhile), and
`python -m workers` keeps that worker beside it, as a nicer child process that ends when its parent is killed."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest
from support import PIPELINE_KEY_ID, PIPELINE_SECRET, Pipeline

from shared import keys
from shared.liveness import workers_key

FREE = "face-detection"


@pytest.fixture
def operator_terms() -> dict[str, Any]:
    return {"defaults": {"amountCents": 0, "qps": 1000}}


def worker_env(pipeline: Pipeline, operator: Path) -> dict[str, str]:
    operator.write_text("[defaults]\namountCents = 0\nqps = 1000\n")  # the API's terms (operator_terms)
    return {
        **os.environ,
        "REDIS_URL": pipeline.settings.redis_url,
        "ALIBABA_CLOUD_ACCESS_KEY_ID": PIPELINE_KEY_ID,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": PIPELINE_SECRET,
        "SERVER402_FACEBODY_ENDPOINT": pipeline.settings.upstream.facebody_endpoint,
        "SERVER402_CLOUDAUTH_ENDPOINT": pipeline.settings.upstream.cloudauth_endpoint,
        "SERVER402_OPERATOR_FILE": str(operator),
        "SERVER402_LOG_LEVEL": "warning",
    }


async def spawn(env: dict[str, str], root: Path, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "workers", *args, cwd=root, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def until(check: Any, what: str, timeout_s: float = 30) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not (found := await check()):
        assert loop.time() < deadline, what
        await asyncio.sleep(0.05)
    return found


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (an orphan's reaper may be slow)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])


@pytest.mark.no_worker
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
async def test_batch_items_wait_for_the_batch_lane_which_runs_nicer_beside_the_calls_lane(
    pipeline: Pipeline, project_root: Path, tmp_path: Path
) -> None:
    env = worker_env(pipeline, tmp_path / "operator.toml")
    image = pipeline.sandbox.image("face.jpg")
    items = [{"customId": f"i{n}", "serviceId": FREE, "input": {"ImageURL": image}} for n in range(3)]

    calls_only = await spawn(env, project_root, "--lane", "calls")
    try:
        response = await pipeline.api.post("/api/batches", data=msgspec.json.encode(items),
                                           headers={"Content-Type": "application/json"})  # fmt: skip
        assert response.status == 201, await response.text()
        batch_id = (await response.json())["batchId"]
        status, result, _ = await pipeline.call(FREE, {"ImageURL": image}, Prefer="wait=20")
        assert status == 200, result  # the calls lane runs single calls
        await asyncio.sleep(0.5)  # several of its polls: it never takes a batch item
        assert await pipeline.redis.zcard(keys.BATCH_QUEUE_NAME) == 3
        assert (await pipeline.sandbox.stats())["actions"]["DetectFace"]["calls"] == 1
    finally:
        calls_only.send_signal(signal.SIGTERM)
        await asyncio.wait_for(calls_only.wait(), timeout=15)

    both = await spawn(env, project_root)
    try:

        async def batch_lane() -> int:
            members = await pipeline.redis.zrange(workers_key("batch"), 0, -1)
            return int(members[-1].split(b":")[-2]) if members else 0

        lane = await until(batch_lane, "no batch-lane worker beats")
        assert parent_of(lane) == both.pid
        assert os.getpriority(os.PRIO_PROCESS, lane) - os.getpriority(os.PRIO_PROCESS, both.pid) == 10

        async def completed() -> bool:
            return await pipeline.redis.hget(keys.batch_key(batch_id), "status") == b"completed"

        await until(completed, "the batch lane did not run the batch")
        assert (await pipeline.sandbox.stats())["actions"]["DetectFace"]["calls"] == 4
    finally:
        both.send_signal(signal.SIGKILL)  # no cleanup: the child learns of it from the kernel
        await asyncio.wait_for(both.wait(), timeout=10)

    async def ended() -> bool:
        return not alive(lane)

    await until(ended, "the batch lane outlived its parent", timeout_s=20)
