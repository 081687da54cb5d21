"""A worker killed in the middle of a call (SIGKILL: no cleanup at all) loses nothing: its job runs again on
another worker as soon as the killed attempt's short lease lapses, not after arq's job timeout."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest
from support import PIPELINE_KEY_ID, PIPELINE_SECRET, Pipeline

from workers.settings import attempt_timeout_s


@pytest.mark.no_worker
async def test_a_job_of_a_killed_worker_runs_again_on_another(pipeline: Pipeline, project_root: Path) -> None:
    await pipeline.sandbox.put_fault(action="DetectFace", hangRate=1.0)  # the first call never answers
    env = {
        **os.environ,
        "REDIS_URL": pipeline.settings.redis_url,
        "ALIBABA_CLOUD_ACCESS_KEY_ID": PIPELINE_KEY_ID,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": PIPELINE_SECRET,
        "SERVER402_FACEBODY_ENDPOINT": pipeline.settings.upstream.facebody_endpoint,
        "SERVER402_CLOUDAUTH_ENDPOINT": pipeline.settings.upstream.cloudauth_endpoint,
        "SERVER402_OPERATOR_FILE": str(project_root / "deploy" / "operator.demo.toml"),  # face-detection free
        "SERVER402_LOG_LEVEL": "warning",
    }
    doomed = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "workers", cwd=project_root, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        status, job, _ = await pipeline.call(
            "face-detection", {"ImageURL": pipeline.sandbox.image("face.jpg")}, Prefer="respond-async"
        )
        assert status == 202
        # until the doomed worker's call is in flight (the sandbox in another task has no event to await)
        while (await pipeline.sandbox.stats())["actions"].get("DetectFace", {}).get("calls", 0) == 0:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    finally:
        doomed.send_signal(signal.SIGKILL)
        await asyncio.wait_for(doomed.wait(), timeout=10)
    await pipeline.sandbox.clear_faults()
    status, view = await pipeline.job(job["jobId"])
    assert view["status"] == "running" and view["attempts"] == 1
    pipeline.start_worker()
    # arq alone would wait the attempt timeout + 10 s before running it again; the lease lapses in seconds
    status, view = await pipeline.job(job["jobId"], wait=attempt_timeout_s(pipeline.settings))
    assert (status, view["status"], view["attempts"]) == (200, "succeeded", 2)
    assert (await pipeline.sandbox.stats())["actions"]["DetectFace"]["calls"] == 2
