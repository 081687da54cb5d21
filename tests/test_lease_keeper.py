"""The running attempts' leases on their jobs (workers/queue.py `Leases`), on the suite's real Redis: renewed
together while the attempts run, never after one ended, never putting back a job that has left its queue, and a
Redis that does not answer is not the renewals' end."""

from __future__ import annotations

import asyncio
import socket
import uuid

from redis.asyncio import Redis

from workers.queue import Leases


async def score(redis: Redis, queue: str, job_id: str) -> float | None:
    return await redis.zscore(queue, job_id)


async def test_leases_are_renewed_while_held_and_not_after(redis: Redis) -> None:
    queue = f"lease-test:{uuid.uuid4().hex[:8]}"
    await redis.zadd(queue, {"job_a": 1, "job_b": 1})
    leases = Leases(redis, queue, every_s=0.05)
    leases.hold("job_a")
    leases.hold("job_b")
    leases.start()
    try:
        await asyncio.sleep(0.03)
        assert await score(redis, queue, "job_a") == 1  # not before it is due
        await asyncio.sleep(0.1)
        renewed = await score(redis, queue, "job_a")
        assert renewed is not None and renewed > 1
        assert (await score(redis, queue, "job_b") or 0) > 1  # both, in the same renewal
        await asyncio.sleep(0.06)
        assert (await score(redis, queue, "job_a") or 0) > renewed  # and again
        leases.release("job_a")
        released_at = await score(redis, queue, "job_a")
        await asyncio.sleep(0.12)
        assert await score(redis, queue, "job_a") == released_at  # nothing after its attempt ended
        assert (await score(redis, queue, "job_b") or 0) > (released_at or 0)  # the other still held
        assert leases.held() == 1
    finally:
        await leases.stop()


async def test_a_lease_taken_just_now_waits_for_its_period(redis: Redis) -> None:
    queue = f"lease-test:{uuid.uuid4().hex[:8]}"
    await redis.zadd(queue, {"job_old": 1, "job_new": 1})
    leases = Leases(redis, queue, every_s=0.2)
    leases.hold("job_old")
    await asyncio.sleep(0.2)
    leases.hold("job_new")
    await leases.renew()
    assert (await score(redis, queue, "job_old") or 0) > 1
    assert await score(redis, queue, "job_new") == 1  # its lease from the claim has most of its time left


async def test_a_renewal_never_puts_back_a_job_that_left_its_queue(redis: Redis) -> None:
    queue = f"lease-test:{uuid.uuid4().hex[:8]}"
    leases = Leases(redis, queue, every_s=0.02)
    leases.hold("job_gone")
    leases.start()
    await asyncio.sleep(0.08)
    await leases.stop()
    assert await score(redis, queue, "job_gone") is None


async def test_a_redis_that_does_not_answer_does_not_stop_the_renewals(redis: Redis) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    nobody = Redis(host="127.0.0.1", port=closed_port, socket_connect_timeout=0.2)
    leases = Leases(nobody, f"lease-test:{uuid.uuid4().hex[:8]}", every_s=0.02)
    leases.hold("job_a")
    leases.start()
    try:
        await asyncio.sleep(0.1)
        assert leases._task is not None and not leases._task.done()  # still renewing
    finally:
        await leases.stop()
        await nobody.aclose()
