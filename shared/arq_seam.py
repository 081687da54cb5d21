"""Everything server402 relies on of arq beyond its documented API, in one place. arq (0.28, pinned in
requirements.lock) runs the workers. What we take from it (key prefixes, the job serializer, the Worker
internals ServerWorker and the supervisor use) and what moving to another queue would cost: docs/architecture.md,
"Workers and arq". tests/test_arq_seam.py fails, naming the member, when an arq upgrade removes or reshapes one.
"""

from __future__ import annotations

from typing import Any

import msgspec
from arq.constants import in_progress_key_prefix, job_key_prefix, retry_key_prefix
from arq.worker import Worker

ARQ_JOB_PREFIX = job_key_prefix  # a job's payload (cron jobs only: a tool job's id is the whole job)
ARQ_RETRY_PREFIX = retry_key_prefix  # its try counter
ARQ_IN_PROGRESS_PREFIX = in_progress_key_prefix  # its in-progress mark (a cron job's lease)
RUN_TOOL = "run_tool"  # the arq function every tool job runs (workers/tasks.py), with its id

# The Worker members ServerWorker and the supervisor override or use that arq does not document.
RELIED_ON: tuple[str, ...] = (
    "_poll_iteration", "finish_job", "sem", "_release_sem_dec_counter_on_complete", "run_job", "_jobs_started",
    "_cancel_aborted_jobs", "heart_beat", "_pool", "functions", "job_tasks", "job_timeout_s",
    "on_job_start", "jobs_complete", "jobs_retried", "jobs_failed",
)  # fmt: skip

_msgpack = msgspec.msgpack.Encoder()


def arq_serialize(data: dict[str, Any]) -> bytes:
    """arq job payloads as msgpack, not pickle (WorkerSettings.job_serializer)."""
    return _msgpack.encode(data)


def arq_deserialize(raw: bytes) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.msgpack.decode(raw)
    return data


async def close_pool(worker: Worker) -> None:
    """Close a worker's Redis connections (arq's Worker.close does so only for a worker that ran to its end)."""
    if worker._pool is not None:
        await worker._pool.aclose(close_connection_pool=True)
        worker._pool = None
