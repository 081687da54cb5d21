"""Three ways the limits stay cheap and fair, on the suite's real Redis: rate-limit checks that arrive together are
one script call with the answers of one call each (api/apikeys.py `RateChecks`), a job's first upstream slot is
booked by the step that starts it (START_JOB), and batch items never book a backlog of upstream slots that a single
call would wait behind (workers/ratelimit.py, BATCH_HORIZON_S)."""

from __future__ import annotations

import asyncio

import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError
from support import ABOVE_MAXMEMORY, Pipeline, redis_config

from api.apikeys import ApiKeyStore
from scripts.embedded_redis import free_port
from shared import keys
from shared.jobs import JobRecord, JobStore, new_job_id, now_ms
from workers.ratelimit import BATCH_HORIZON_S, JobCall, RateLimiter

QPS = 100.0  # one slot each 10 ms: the batch's 20 items span 200 ms of slots


async def script_calls(redis: Redis) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_fcall", {}).get("calls", 0))


async def test_checks_that_arrive_together_are_one_call_with_the_answers_of_one_each(redis: Redis) -> None:
    store = ApiKeyStore(redis)
    rate_key = f"{keys.PREFIX}:anon:rl:gathered"
    await redis.delete(rate_key)
    await store.gcra(rate_key, 1_000_000, 5)  # the script loaded (and one of the burst spent)
    before = await script_calls(redis)
    states = await asyncio.gather(*(store.gcra(rate_key, 1_000_000, 5) for _ in range(8)))
    assert await script_calls(redis) - before == 1
    assert [s.remaining for s in states if s.wait_us == 0] == [3, 2, 1, 0]  # in the order they came
    assert all(s.wait_us > 0 and s.remaining == 0 for s in states[4:])


async def backlog_while(redis: Redis, rate_key: str, work: asyncio.Future[object]) -> int:
    """The furthest the limiter's booked slots ran ahead of Redis's clock while `work` ran (µs)."""
    furthest = 0
    while not work.done():
        tat, (seconds, micros) = await redis.get(rate_key), await redis.time()
        if tat is not None:
            furthest = max(furthest, int(tat) - (seconds * 1_000_000 + micros))
        await asyncio.sleep(0.002)
    return furthest


async def book(redis: Redis, *, batch: bool) -> int:
    limiter = RateLimiter(redis, f"lanes-{batch}", margin=1.0)
    rate_key = keys.rate_limit_key(f"lanes-{batch}", "DetectFace")
    await redis.delete(rate_key)
    items = asyncio.gather(*(limiter.acquire("DetectFace", QPS, max_wait_s=5, batch=batch) for _ in range(20)))
    furthest = await backlog_while(redis, rate_key, items)
    await items  # every item got its slot in the end
    return furthest


async def test_batch_items_book_no_backlog_a_single_call_would_wait_behind(redis: Redis) -> None:
    interval_us = int(1_000_000 / QPS)
    horizon_us = max(interval_us, int(BATCH_HORIZON_S * 1_000_000))
    as_single_calls = await book(redis, batch=False)
    as_batch_items = await book(redis, batch=True)
    assert as_single_calls > 10 * interval_us  # single calls book ahead: the measure sees a backlog when there is one
    assert as_batch_items <= horizon_us + interval_us


async def test_when_redis_cannot_answer_every_gathered_check_fails_on_its_own() -> None:
    dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2)
    store = ApiKeyStore(dead)
    try:
        outcomes = await asyncio.gather(*(store.gcra("k", 1000, 5) for _ in range(3)), return_exceptions=True)
    finally:
        await dead.aclose()
    assert all(isinstance(outcome, RedisError) for outcome in outcomes), outcomes
    assert len({id(outcome) for outcome in outcomes}) == 3  # each waiter its own exception


async def test_a_free_slot_is_taken_once_even_at_a_margin_of_one(redis: Redis) -> None:
    """At margin 1.0 a call on a free slot is never 'late' (it would book five slots and use one)."""
    limiter = RateLimiter(redis, "margin-one", margin=1.0)
    rate_key = keys.rate_limit_key("margin-one", "DetectFace")
    await redis.delete(rate_key)
    await limiter.acquire("DetectFace", 1.0, max_wait_s=5)  # one slot a second
    tat, (seconds, micros) = int(await redis.get(rate_key)), await redis.time()
    assert tat - (seconds * 1_000_000 + micros) <= 1_000_000  # one slot booked, not five


async def queued_job(redis: Redis) -> JobRecord:
    record = JobRecord(id=new_job_id(), service="face-detection", action="DetectFace", owner="anon", input="{}",
                       request_id="r", created_at=now_ms(), deadline=now_ms() + 60_000, status="queued")  # fmt: skip
    fields = {k: str(v) for k, v in msgspec.to_builtins(record).items() if v is not None}
    await redis.hset(keys.job_key(record.id), mapping=fields)  # type: ignore[misc]
    return record


async def test_a_job_is_started_and_its_slot_booked_in_one_step(redis: Redis) -> None:
    """START_JOB books a job's first slot: on a free slot the call goes with no script call of the limiter's, and
    on a slot ahead the limiter waits for that booking (then the caller checks the cancel flag) without booking
    another."""
    store, limiter = JobStore(redis, retention_s=60), RateLimiter(redis, "start-books", margin=1.1)
    rate_key = keys.rate_limit_key("start-books", "DetectFace")
    await redis.delete(rate_key)
    booking = limiter.booking("DetectFace", 10.0, cap_s=5)  # a slot each 110 ms
    first, second, third = await queued_job(redis), await queued_job(redis), await queued_job(redis)
    try:
        status, attempt, record, booked = await store.start(first.id, min_budget_ms=500, booking=booking)
        assert (status, attempt) == ("running", 1) and booked is not None and booked.wait_us == 0
        assert record is not None and record.status == "running"
        before = await script_calls(redis)
        job = JobCall(keys.job_key(first.id))
        assert await limiter.acquire("DetectFace", 10.0, max_wait_s=5, job=job, booked=booked) is True
        assert await script_calls(redis) == before
        status, _, _, booked = await store.start(second.id, min_budget_ms=500, booking=booking)
        assert status == "running" and booked is not None and 0 < booked.wait_us <= 110_000
        before = await script_calls(redis)
        job = JobCall(keys.job_key(second.id))
        assert await limiter.acquire("DetectFace", 10.0, max_wait_s=5, job=job, booked=booked) is False
        assert await script_calls(redis) == before
        tat, (seconds, micros) = int(await redis.get(rate_key)), await redis.time()
        assert tat - (seconds * 1_000_000 + micros) <= 110_000  # two slots booked in all, none by the limiter
        # without a booking START_JOB books nothing (the limiter's own first booking is then RESERVE_SLOT)
        assert (await store.start(third.id, min_budget_ms=500))[3] is None
    finally:
        await redis.delete(*(keys.job_key(r.id) for r in (first, second, third)), rate_key)


async def test_a_call_on_a_free_slot_is_booked_by_the_step_that_starts_it_end_to_end(pipeline: Pipeline) -> None:
    """The API, a real worker and the sandbox: a call whose slot is free runs START_JOB (which books it) and no
    RESERVE_SLOT. The limiter's own booking is a fallback that would hide a broken path; the server's log of every
    command (SLOWLOG at 0 µs, for this call) shows which functions ran."""
    redis, functions = pipeline.redis, keys.FUNCTIONS.functions
    async with redis_config(redis, slowlog_log_slower_than=0, slowlog_max_len=100_000):
        await redis.slowlog_reset()
        status, body, _ = await pipeline.call("face-detection", {"ImageURL": pipeline.sandbox.image("face.jpg")})
        entries = await redis.slowlog_get(-1)
    assert status == 200, body
    called = [entry["command"].split()[1].decode() for entry in entries if entry["command"].startswith(b"FCALL ")]
    assert functions["start_job"] in called and functions["finish_job"] in called
    assert functions["reserve_slot"] not in called


async def test_a_store_above_its_memory_limit_answers_503_and_keeps_nothing(pipeline: Pipeline) -> None:
    """Above maxmemory (noeviction) the server refuses every function that writes: the call is told the store is
    unavailable (503, Retry-After), not an internal error, and no job is made."""
    redis = pipeline.redis
    async with redis_config(redis, **ABOVE_MAXMEMORY):
        status, body, headers = await pipeline.call("face-detection", {"ImageURL": pipeline.sandbox.image("face.jpg")})
        jobs = [key async for key in redis.scan_iter(match=keys.job_key("*"))]
    assert (status, body["code"], headers.get("Retry-After")) == (503, "store_unavailable", "2"), body
    assert jobs == []


async def test_a_call_that_reaches_the_slot_start_booked_too_late_books_another(redis: Redis) -> None:
    """START_JOB's wait counts from when its answer arrived: a worker that gets to the call later than the margin
    allows (a busy event loop between starting the job and waiting for its slot) does not go out late, next to an
    on-time call; it books again (RESERVE_SLOT, which checks the cancel flag)."""
    store, limiter = JobStore(redis, retention_s=60), RateLimiter(redis, "start-late", margin=1.1)  # late: 50 ms
    rate_key = keys.rate_limit_key("start-late", "DetectFace")
    await redis.delete(rate_key)
    record = await queued_job(redis)
    try:
        booking = limiter.booking("DetectFace", 10.0, cap_s=5)
        status, _, _, booked = await store.start(record.id, min_budget_ms=500, booking=booking)
        assert status == "running" and booked is not None and booked.wait_us == 0
        await asyncio.sleep(0.15)  # past its slot by more than 50 ms; the next one (110 ms on) is free by now
        before = await script_calls(redis)
        job = JobCall(keys.job_key(record.id))
        assert await limiter.acquire("DetectFace", 10.0, max_wait_s=5, job=job, booked=booked) is True
        assert await script_calls(redis) - before == 1
    finally:
        await redis.delete(keys.job_key(record.id), rate_key)
