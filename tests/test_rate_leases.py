"""Rate-limit leases and kept refusals (api/rate_checks.py), on the suite's real Redis: a busy caller's checks are
answered in process against tokens Redis has already counted, and a refused key is refused in process until its
wait is over; neither ever lets more requests go than the limit allows over the time they took, in one process
or across two, and a caller that is not busy, a slow limit or a small burst is never leased."""

from __future__ import annotations

import asyncio
import uuid

from redis.asyncio import Redis

from api.apikeys import ApiKeyStore
from api.rate_checks import RateState
from shared import keys
from shared.config import Settings

FAST = 10_000  # 100 a second: a lease may hold up to 10 (LEASE_S of the rate)
SLOW = 1_000_000  # one a second: nothing refills during a test's burst, and never leased


async def script_calls(redis: Redis) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_fcall", {}).get("calls", 0))


async def redis_now_us(redis: Redis) -> int:
    seconds, micros = await redis.time()
    return int(seconds) * 1_000_000 + int(micros)


def fresh_key() -> str:
    return f"{keys.PREFIX}:anon:rl:lease-{uuid.uuid4().hex}"


async def checks(store: ApiKeyStore, rate_key: str, n: int, interval_us: int, burst: int) -> list[RateState]:
    return [await store.gcra(rate_key, interval_us, burst) for _ in range(n)]


def most_allowed(burst: int, started_us: int, ended_us: int, interval_us: int) -> int:
    """What GCRA lets go from a fresh key between two instants of Redis's clock."""
    return burst + (ended_us - started_us) // interval_us + 1


async def test_a_busy_caller_is_served_from_its_lease_and_gets_no_more_than_its_limit(redis: Redis) -> None:
    store, rate_key = ApiKeyStore(redis), fresh_key()
    await store.gcra(fresh_key(), SLOW, 1)  # the library loaded
    before, started = await script_calls(redis), await redis_now_us(redis)
    states = await checks(store, rate_key, 300, FAST, burst=64)
    ended, calls = await redis_now_us(redis), await script_calls(redis) - before
    went = sum(state.wait_us == 0 for state in states)
    assert 64 <= went <= most_allowed(64, started, ended, FAST)
    assert calls <= went // 4  # leases of up to 8: a few calls, not one a check (nor one a refusal)
    assert all(0 <= state.remaining <= 63 for state in states)
    assert all(0 < state.wait_us <= FAST and state.remaining == 0 for state in states if state.wait_us)


async def test_a_refusal_is_kept_until_its_wait_is_over_and_its_wait_counts_down(redis: Redis) -> None:
    store, rate_key = ApiKeyStore(redis), fresh_key()
    interval_us = 50_000  # 20 a second
    assert (await store.gcra(rate_key, interval_us, 1)).wait_us == 0
    first = await store.gcra(rate_key, interval_us, 1)
    before = await script_calls(redis)
    again = [await store.gcra(rate_key, interval_us, 1) for _ in range(20)]
    assert await script_calls(redis) == before  # refused here, Redis not asked
    assert 0 < first.wait_us <= interval_us
    assert all(0 < state.wait_us <= first.wait_us for state in again)
    await asyncio.sleep(first.wait_s + 0.005)
    assert (await store.gcra(rate_key, interval_us, 1)).wait_us == 0  # the wait over: it may go
    assert await script_calls(redis) == before + 1


async def test_two_processes_leasing_one_key_let_no_more_go_than_its_limit(redis: Redis) -> None:
    first, second, rate_key = ApiKeyStore(redis), ApiKeyStore(redis), fresh_key()
    went, started = 0, await redis_now_us(redis)
    for _ in range(150):
        for store in (first, second):
            went += (await store.gcra(rate_key, FAST, 40)).wait_us == 0
    ended = await redis_now_us(redis)
    assert went <= most_allowed(40, started, ended, FAST)  # every one that went was counted in Redis
    assert went >= 40 - 2 * 5  # and what the other process held unused is at most its lease


async def test_gathered_checks_of_a_key_are_one_grant_shared_in_order(redis: Redis) -> None:
    store, rate_key = ApiKeyStore(redis), fresh_key()
    states = await asyncio.gather(*(store.gcra(rate_key, SLOW, 16) for _ in range(20)))
    assert [state.wait_us == 0 for state in states] == [True] * 16 + [False] * 4
    assert [state.remaining for state in states[:16]] == list(range(15, -1, -1))
    assert len({state.wait_us for state in states[16:]}) == 1  # all wait for the same next slot


async def test_a_lease_not_used_in_time_is_dropped_not_given_back(redis: Redis) -> None:
    store, rate_key = ApiKeyStore(redis), fresh_key()
    await checks(store, rate_key, 6, FAST, burst=64)  # the fourth check in the window takes a lease
    held = store._rate_checks._held[rate_key]
    assert held.tokens > 0
    counted = int(await redis.get(rate_key))
    await asyncio.sleep(store._rate_checks.LEASE_S + 0.01)
    before = await script_calls(redis)
    assert (await store.gcra(rate_key, FAST, 64)).wait_us == 0
    assert await script_calls(redis) == before + 1  # Redis asked again: the old lease's tokens are gone
    assert int(await redis.get(rate_key)) >= counted  # and nothing was given back to anyone


async def test_a_lease_is_asked_for_by_one_call_of_a_key_at_a_time(redis: Redis) -> None:
    store, rate_key = ApiKeyStore(redis), fresh_key()
    checker = store._rate_checks
    cap = checker.lease_cap(FAST, 64)
    await checks(store, rate_key, 5, FAST, burst=64)
    for _ in range(20):  # calls of one key in flight together (one a turn of the loop)
        tasks = []
        for _ in range(6):
            tasks.append(asyncio.ensure_future(store.gcra(rate_key, FAST, 64)))
            await asyncio.sleep(0)
        await asyncio.gather(*tasks)
        assert checker._held[rate_key].tokens <= cap  # leases never stack


async def test_callers_that_are_not_busy_slow_limits_and_small_bursts_are_never_leased(redis: Redis) -> None:
    store = ApiKeyStore(redis)
    cases = [(FAST, 7, 7, 0.08), (200_000, 64, 7, 0.0), (FAST, 64, 2, 0.15)]  # burst under 8; 5 a second; pairs
    for interval_us, burst, n, pause in cases:
        rate_key = fresh_key()
        before = await script_calls(redis)
        for _ in range(3):
            await checks(store, rate_key, n, interval_us, burst)
            await asyncio.sleep(pause)
        assert await script_calls(redis) - before == 3 * n, (interval_us, burst)  # each answer is Redis's own
        assert store._rate_checks._held[rate_key].tokens == 0


async def test_while_a_key_asks_for_a_lease_its_other_calls_ask_for_none(redis: Redis, settings: Settings) -> None:
    """Two calls of one key in flight together (Redis paused by another client: CLIENT PAUSE): only the
    first asks for a lease, so every token Redis counted went or is held here (none lost to a second lease)."""
    store, rate_key = ApiKeyStore(redis), fresh_key()
    checker = store._rate_checks
    checker.LEASE_S = 10.0  # a window long enough for a slow limit to be leased: nothing refills during the test
    await checks(store, rate_key, 8, SLOW, burst=64)  # the fourth takes a lease of 4, the next four use it
    assert checker._held[rate_key].tokens == 0
    counted = int(await redis.get(rate_key))
    other = Redis.from_url(settings.redis_url)
    try:
        await other.execute_command("CLIENT", "PAUSE", 200, "ALL")
        first = asyncio.ensure_future(store.gcra(rate_key, SLOW, 64))
        await asyncio.sleep(0.02)  # its call sent, held by the pause
        second = asyncio.ensure_future(store.gcra(rate_key, SLOW, 64))
        states = await asyncio.gather(first, second)
    finally:
        await other.aclose()
    assert all(state.wait_us == 0 for state in states)
    spent = (int(await redis.get(rate_key)) - counted) // SLOW
    assert spent == 2 + checker._held[rate_key].tokens > 2
