"""Commands that start in one turn of the event loop share a round trip (shared/autopipeline.py), on the suite's
real Redis: each caller gets its own reply, its own error reply or its own copy of a connection failure, a caller
cancelled before its turn ends sends nothing, and the script calls of the whole system go this way."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import pytest
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from api import appkeys
from api.apikeys import ApiKeyStore
from api.app import create_app, redis_ctx
from scripts.embedded_redis import free_port
from shared import autopipeline, keys
from shared.config import Settings


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
        autopipeline.call(redis, "INCRBY", f"{p}a", 1),
        autopipeline.call(redis, "INCR", f"{p}text"),
        autopipeline.call(redis, "INCRBY", f"{p}a", 1),
        return_exceptions=True,
    )
    assert outcomes[0] == 1
    assert isinstance(outcomes[1], ResponseError)
    assert outcomes[2] == 2


async def test_an_argument_that_cannot_be_sent_fails_its_caller_alone(redis: Redis) -> None:
    p = prefix()
    outcomes = await asyncio.gather(
        autopipeline.call(redis, "INCRBY", f"{p}a", 1),
        autopipeline.call(redis, "INCRBY", f"{p}b", None),
        autopipeline.call(redis, "INCRBY", f"{p}c", 1),
        return_exceptions=True,
    )
    assert outcomes[0] == 1 and isinstance(outcomes[1], DataError) and outcomes[2] == 1


async def test_a_caller_cancelled_before_its_turn_ends_sends_nothing(redis: Redis) -> None:
    p = prefix()
    first = asyncio.ensure_future(autopipeline.call(redis, "INCRBY", f"{p}first", 1))
    await asyncio.sleep(0)  # first has gone; the next three are of one later turn
    kept = asyncio.ensure_future(autopipeline.call(redis, "INCRBY", f"{p}kept", 1))
    cancelled = asyncio.ensure_future(autopipeline.call(redis, "INCRBY", f"{p}cancelled", 1))
    third = asyncio.ensure_future(autopipeline.call(redis, "INCRBY", f"{p}third", 1))
    await asyncio.sleep(0)  # each has queued (or gone, the first of its turn)
    cancelled.cancel()
    await asyncio.gather(first, kept, third)
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert await redis.exists(f"{p}first", f"{p}kept", f"{p}third") == 3
    assert not await redis.exists(f"{p}cancelled")


async def test_a_caller_that_gives_up_while_its_batch_waits_for_a_connection_sends_nothing(
    settings: Settings,
) -> None:
    p = prefix()
    pool = BlockingConnectionPool.from_url(settings.redis_url, max_connections=1, timeout=5)
    client = Redis(connection_pool=pool)
    try:
        busy = asyncio.ensure_future(client.blpop([f"{p}never"], timeout=0.3))  # holds the only connection
        await asyncio.sleep(0.05)

        async def impatient() -> object:
            async with asyncio.timeout(0.1):
                return await autopipeline.call(client, "INCRBY", f"{p}impatient", 1)

        first = asyncio.ensure_future(autopipeline.call(client, "INCRBY", f"{p}first", 1))
        late = asyncio.ensure_future(impatient())  # queued behind first, in the same turn
        outcomes = await asyncio.gather(first, late, busy, return_exceptions=True)
        assert outcomes[0] == 1 and isinstance(outcomes[1], TimeoutError)
        await asyncio.sleep(0.05)
        assert not await client.exists(f"{p}impatient")  # it gave up before anything was written
    finally:
        await client.aclose()
        await pool.disconnect()


async def test_when_the_connection_fails_midway_the_replies_that_arrived_are_kept(settings: Settings) -> None:
    p = prefix()
    client = Redis.from_url(settings.redis_url, socket_timeout=0.05)
    try:
        outcomes = await asyncio.gather(
            autopipeline.call(client, "INCRBY", f"{p}first", 1),
            autopipeline.call(client, "INCRBY", f"{p}arrived", 7),
            autopipeline.call(client, "BLMOVE", f"{p}empty", f"{p}to", "LEFT", "LEFT", 1),  # no reply in time
            autopipeline.call(client, "INCRBY", f"{p}after", 1),
            return_exceptions=True,
        )
    finally:
        await client.aclose()
    assert outcomes[0] == 1 and outcomes[1] == 7  # its charge ran and its caller knows it
    assert isinstance(outcomes[2], RedisTimeoutError) and isinstance(outcomes[3], RedisTimeoutError)
    assert outcomes[2] is not outcomes[3]


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


async def test_a_turn_left_behind_by_a_loop_that_stopped_is_never_joined(redis: Redis) -> None:
    """A loop stopped before its turn's end leaves its entry; a later loop and client with the same ids (objects
    can be reused once freed) must not queue behind it: the entry holds its own loop and client, checked by
    identity."""
    p = prefix()
    loop = asyncio.get_running_loop()
    stale_loop = asyncio.new_event_loop()
    try:
        autopipeline._turns[(id(loop), id(redis))] = (stale_loop, object(), [])
        assert await asyncio.wait_for(autopipeline.call(redis, "INCRBY", f"{p}k", 1), 2) == 1
    finally:
        autopipeline._turns.pop((id(loop), id(redis)), None)
        stale_loop.close()


async def test_the_api_never_sends_a_command_again_whatever_the_url_says(settings: Settings) -> None:
    """`?retry_on_timeout=true` in REDIS_URL would make redis-py send a command again after a timeout, when it may
    have run (a payment's call spent twice): the API's pool is built with no retries."""
    url = settings.redis_url + ("&" if "?" in settings.redis_url else "?") + "retry_on_timeout=true"
    app = create_app(Settings.from_env({"REDIS_URL": url}))
    contexts = redis_ctx(app)
    await anext(contexts)
    try:
        connection = app[appkeys.REDIS].connection_pool.make_connection()
        assert connection.retry._retries == 0
    finally:
        with contextlib.suppress(StopAsyncIteration):
            await anext(contexts)
