"""A running attempt's lease on its job (workers/tasks.py `LeaseKeeper`), on the suite's real Redis: renewed while
the attempt runs, never after it stopped, and never putting back a job that has left its queue."""

from __future__ import annotations

import asyncio
import uuid

from redis.asyncio import Redis

from workers.tasks import LeaseKeeper


async def score(redis: Redis, queue: str, job_id: str) -> float | None:
    return await redis.zscore(queue, job_id)


async def test_a_lease_is_renewed_while_the_attempt_runs_and_not_after(redis: Redis) -> None:
    queue, job_id = f"lease-test:{uuid.uuid4().hex[:8]}", "job_a"
    await redis.zadd(queue, {job_id: 1})
    keeper = LeaseKeeper(redis, queue, job_id, every_s=0.05)
    await asyncio.sleep(0.03)
    assert await score(redis, queue, job_id) == 1  # not before it is due
    await asyncio.sleep(0.1)
    renewed = await score(redis, queue, job_id)
    assert renewed is not None and renewed > 1
    await asyncio.sleep(0.06)
    assert (await score(redis, queue, job_id) or 0) > renewed  # and again
    await keeper.stop()
    stopped_at = await score(redis, queue, job_id)
    await asyncio.sleep(0.12)
    assert await score(redis, queue, job_id) == stopped_at  # nothing after stop


async def test_a_renewal_never_puts_back_a_job_that_left_its_queue(redis: Redis) -> None:
    queue, job_id = f"lease-test:{uuid.uuid4().hex[:8]}", "job_b"
    keeper = LeaseKeeper(redis, queue, job_id, every_s=0.02)
    await asyncio.sleep(0.08)
    await keeper.stop()
    assert await score(redis, queue, job_id) is None


async def test_stopping_before_the_first_renewal_leaves_nothing_running(redis: Redis) -> None:
    keeper = LeaseKeeper(redis, f"lease-test:{uuid.uuid4().hex[:8]}", "job_c", every_s=10)
    await keeper.stop()
    assert keeper._renewing is None and keeper._timer.cancelled()
