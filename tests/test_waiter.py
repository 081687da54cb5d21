"""The API's blocking waits (api/waiter.py) against a real Redis: a call waits for the job it has just created
without reading it first, and must never answer with that copy once the job has finished."""

from __future__ import annotations

import asyncio

import msgspec
from redis.asyncio import Redis
from support import Pipeline

from api.waiter import JobWaiter
from shared import keys
from shared.jobs import JobRecord, JobStore, announced_record, new_job_id, now_ms


def stored(record: JobRecord) -> dict[str, str]:
    return {k: str(v) for k, v in msgspec.to_builtins(record).items() if v is not None}


async def test_a_wait_given_the_callers_copy_answers_with_the_finished_job(redis: Redis) -> None:
    store = JobStore(redis, retention_s=60)
    waiter = JobWaiter(redis, store)
    await waiter.start()
    job_id = new_job_id()
    created = other = JobRecord(id=job_id, service="face-detection", action="DetectFace", owner="anon", input="{}",
                        request_id="r", created_at=now_ms(), deadline=now_ms() + 60_000, status="queued")  # fmt: skip
    try:
        await asyncio.wait_for(waiter.subscribed.wait(), 5)
        # the job finished (and was announced) before the caller began to wait with its copy
        await redis.hset(keys.job_key(job_id), mapping={**stored(created), "status": "succeeded"})  # type: ignore[misc]
        await redis.publish(keys.JOBS_DONE_CHANNEL, job_id)
        final = await waiter.wait(job_id, 0.5, current=created)
        assert final is not None and final.status == "succeeded"
        # a job not announced yet: the caller's copy is used, and the announcement wakes the wait
        other = msgspec.structs.replace(created, id=new_job_id())  # not announced yet: the wait is woken
        waiting = asyncio.create_task(waiter.wait(other.id, 5, current=other))
        await redis.hset(keys.job_key(other.id), mapping={**stored(other), "status": "failed"})  # type: ignore[misc]
        await redis.publish(keys.JOBS_DONE_CHANNEL, other.id)
        final = await waiting
        assert final is not None and final.status == "failed"
    finally:
        await waiter.stop()
        await redis.delete(keys.job_key(job_id), keys.job_key(other.id))


async def test_a_waiting_call_takes_its_finished_job_from_the_announcement_without_reading_it(redis: Redis) -> None:
    store = JobStore(redis, retention_s=60)
    waiter = JobWaiter(redis, store)
    await waiter.start()
    created = JobRecord(id=new_job_id(), service="face-detection", action="DetectFace", owner="anon", input="{}",
                        request_id="r", created_at=now_ms(), deadline=now_ms() + 60_000, status="running",
                        attempts=1)  # fmt: skip
    try:
        await asyncio.wait_for(waiter.subscribed.wait(), 5)
        await redis.hset(keys.job_key(created.id), mapping=stored(created))  # type: ignore[misc]
        waiting = asyncio.create_task(waiter.wait(created.id, 5, current=created))
        await asyncio.sleep(0.05)  # it waits
        reads = (await redis.info("commandstats")).get("cmdstat_hgetall", {}).get("calls", 0)
        assert await store.succeed(created, {"Data": {"FaceCount": 1}})  # FINISH_JOB announces the job
        final = await waiting
        assert final == await store.get(created.id)  # what reading it would have given
        assert final is not None and final.status == "succeeded" and final.result is not None
        stats = await redis.info("commandstats")
        assert stats["cmdstat_hgetall"]["calls"] == reads + 1  # the get() just above: FINISH_JOB read nothing back
        assert not waiter._announced  # taken by the waiter it woke
    finally:
        await waiter.stop()
        await redis.delete(keys.job_key(created.id))


async def test_what_a_finished_job_is_announced_as_is_the_job_as_stored_end_to_end(pipeline: Pipeline) -> None:
    """The API, a real worker and the sandbox: each finished job's announcement (the worker's head and the
    payload as it is) reads as the job Redis holds once it has ended, for a result and for an error."""
    pubsub = pipeline.redis.pubsub()
    await pubsub.subscribe(keys.JOBS_DONE_CHANNEL)
    try:
        while (message := await pubsub.get_message(timeout=1.0)) is None or message["type"] != "subscribe":
            pass
        image = pipeline.sandbox.image("face.jpg")
        ok, succeeded, _ = await pipeline.call("face-detection", {"ImageURL": image})
        bad, failed, _ = await pipeline.call("face-detection", {"ImageURL": pipeline.sandbox.image("missing.jpg")})
        announced: dict[str, bytes] = {}
        while len(announced) < 2 and (message := await pubsub.get_message(timeout=5.0)) is not None:
            if message["type"] == "message":
                subject, _, data = message["data"].partition(b"\n")
                announced[subject.decode()] = data
    finally:
        await pubsub.aclose()
    assert ok == 200 and bad >= 400, (succeeded, failed)
    store = JobStore(pipeline.redis, retention_s=60)
    assert sorted(data.partition(b"\n")[0] for data in announced.values()) == [b"error", b"result"]
    for job_id, data in announced.items():
        assert data.partition(b"\n")[2].startswith(b"{")  # the worker's head, with the payload after it
        record = announced_record(data)
        assert record is not None and record == await store.get(job_id)


async def test_an_announcement_kept_for_a_wait_that_ends_unread_is_dropped_with_it(redis: Redis) -> None:
    """A caller that goes away (its request cancelled) after its job's announcement was kept for it, before reading
    it: the kept fields go with its wait, not at the 10,000-entry clear."""
    waiter = JobWaiter(redis, JobStore(redis, retention_s=60))
    await waiter.start()
    job = JobRecord(id=new_job_id(), service="face-detection", action="DetectFace", owner="anon", input="{}",
                    request_id="r", created_at=now_ms(), deadline=now_ms() + 60_000, status="running")  # fmt: skip
    try:
        await asyncio.wait_for(waiter.subscribed.wait(), 5)
        waiting = asyncio.create_task(waiter.wait(job.id, 5, current=job))
        await asyncio.sleep(0.02)  # it waits
        waiter._announced[job.id] = b"kept for it"  # as _listen keeps an announcement for a waiter of the job
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        assert job.id not in waiter._announced
    finally:
        await waiter.stop()
