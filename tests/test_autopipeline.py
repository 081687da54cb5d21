"""Commands that start in one turn of the event loop share a round trip (shared/autopipeline.py), on the suite's
real Redis: each caller gets its own reply, its own error reply or its own copy of a connection failure, a caller
cancelled before its turn ends sends nothing, and the script calls of the whole system go this way."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from api.apikeys import ApiKeyStore
from scripts.embedded_redis import free_port
from shared import autopipeline, keys


async def reads(redis: Redis) -> int:
    return int((await redis.info("stats"))["total_reads_processed"])


def prefix() -> str:
    return f"autopipeline:{uuid.uuid4().hex[:8]}:"


async def test_commands_of_one_turn_share_a_round_trip_and_each_gets_its_own_reply(redis: Redis) -> None:
    p = prefix()
    await asyncio.gather(*(autopipeline.call(redis, "PING") for _ in range(3)))  # two connections made
    before = await reads(redis)
    answers = await asyncio.gather(*(autopipeline.call(redis, "INCRBY", f"{p}{i}", i) for i in range(50)))
    assert answers == list(range(50))
    assert await reads(redis) - before <= 8  # the first alone, the other 49 in one pipeline (not 50 trips)


async def test_an_error_reply_is_its_callers_alone(redis: Redis) -> None:
    p = prefix()
    await redis.set(f"{p}text", "not a number")
    outcomes = await asyncio.gather(
        autopipeline.call(redis, "SET", f"{p}a", "1"),
        autopipeline.call(redis, "INCR", f"{p}text"),
        autopipeline.call(redis, "INCR", f"{p}a"),
        return_exceptions=True,
    )
    assert outcomes[0] is True or outcomes[0] == b"OK"
    assert isinstance(outcomes[1], ResponseError)
    assert outcomes[2] == 2


async def test_a_caller_cancelled_before_its_turn_ends_sends_nothing(redis: Redis) -> None:
    p = prefix()
    first = asyncio.ensure_future(autopipeline.call(redis, "SET", f"{p}first", "1"))
    await asyncio.sleep(0)  # first has gone; the next two are of one later turn
    cancelled = asyncio.ensure_future(autopipeline.call(redis, "SET", f"{p}cancelled", "1"))
    kept = asyncio.ensure_future(autopipeline.call(redis, "SET", f"{p}kept", "1"))
    third = asyncio.ensure_future(autopipeline.call(redis, "SET", f"{p}third", "1"))
    await asyncio.sleep(0)  # each has queued (or gone, the first of its turn)
    cancelled.cancel()
    await asyncio.gather(first, kept, third)
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert await redis.exists(f"{p}first", f"{p}kept", f"{p}third") == 3
    assert not await redis.exists(f"{p}cancelled")


async def test_a_connection_failure_reaches_every_caller_as_its_own_exception() -> None:
    dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2)
    try:
        outcomes = await asyncio.gather(*(autopipeline.call(dead, "PING") for _ in range(4)), return_exceptions=True)
    finally:
        await dead.aclose()
    assert all(isinstance(outcome, RedisConnectionError | OSError) for outcome in outcomes), outcomes
    assert len({id(outcome) for outcome in outcomes}) == 4


async def test_script_calls_of_one_turn_go_together(redis: Redis) -> None:
    """The system's script calls (here gathered rate checks of distinct keys, each its own call) share trips."""
    store = ApiKeyStore(redis)
    await asyncio.gather(*(store.gcra(f"{keys.PREFIX}:anon:rl:{prefix()}", 1_000_000, 1) for _ in range(3)))
    rate_keys = [f"{keys.PREFIX}:anon:rl:{prefix()}{i}" for i in range(30)]
    before = await reads(redis)
    states = await asyncio.gather(
        *(keys.registered(redis, keys.SCRIPTS["rate_check"])(keys=[k], args=[1_000_000, 5, 1]) for k in rate_keys)
    )
    assert [state[0][3] for state in states] == [1] * 30  # each granted its one
    assert await reads(redis) - before <= 8
