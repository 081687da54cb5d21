"""`fan_out_batch`: turn a stored batch's items into jobs, a chunk at a time.

CREATE_BATCH queues this arq job with the batch (ahead of every tool call: it only writes to Redis). Each chunk
is made exactly once (FAN_OUT_BATCH checks the cursor it read), so two fan-outs of one batch, or a rerun after a
worker died halfway (the lease lapses and arq runs it again), never make an item twice.
"""

from __future__ import annotations

import asyncio

import redis.exceptions
import structlog
from arq import Retry

from shared.batches import BatchStore
from workers.tasks import WorkerContext, hold_lease

log = structlog.get_logger("workers.batches")

FAN_OUT_CHUNK = 250  # items per Lua call: a few milliseconds of Redis each, so others' commands interleave


async def fan_out_batch(ctx: WorkerContext, batch_id: str) -> None:
    lease = asyncio.create_task(hold_lease(ctx["redis"], "fanout_" + batch_id))
    store: BatchStore = ctx["batches"]
    try:
        chunks = 0
        while not await store.fan_out_next(batch_id, FAN_OUT_CHUNK):
            chunks += 1
        log.info("batch fanned out", batch_id=batch_id, chunks=chunks + 1)
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        # Redis went away mid-way: what was made stays made (each chunk is one script); the rest comes next time
        log.warning("batch fan-out interrupted, retrying", batch_id=batch_id, error=type(exc).__name__)
        raise Retry(defer=1.0) from exc
    finally:
        lease.cancel()
        await asyncio.gather(lease, return_exceptions=True)
