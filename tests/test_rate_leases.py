"""Rate-limit leases and kept refusals (api/rate_checks.py), on the suite's real Redis: a busy caller's checks are
answered in process against tokens Redis has already counted, and a refused key is refused in process until its
wait is over; neither ever lets more requests go than the limit, in one process or across two."""

from __future__ import annotations

import asyncio
import uuid

from redis.asyncio import Redis

from api.apikeys import ApiKeyStore
from api.rate_checks import RateState
from shared import keys

SLOW = 1_000_000  # one request a second: nothing refills during a test's burst


async def script_calls(redis: Redis) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_fcall", {}).get("calls", 0))


def fresh_key() -> str:
    return f"{keys.PREFIX}:anon:rl:lease-{uuid.uuid4().hex}"


async def checks(store: ApiKeyStore, rate_key: str, n: int, burst: int) -> list[RateState]:
    return [await store.gcra(rate_key, SLOW, burst) for _ in range(n)]


async def test_a_busy_caller_is_served_from_its_lease_and_gets_exactly_its_burst(redis: Redis) -> None:
    store, rate_key = ApiKeyStore(redis), fresh_key()
    await store.gcra(fresh_key(), SLOW, 1)  # the library loaded
    before = await script_calls(redis)
    states = await checks(store, rate_key, 200, burst=64)
    calls = await script_calls(redis) - before
    assert sum(state.wait_us == 0 for state in states) == 64  # not one more than the burst
    assert [state.wait_us == 0 for state in states] == [True] * 64 + [False] * 136  # and the first 64 of them
    assert [state.remaining for state in states[:64]] == list(range(63, -1, -1))
    assert calls <= 64 // 8 + 2  # leases of up to burst/8: a handful of calls, not one a check (nor one a refusal)
    assert all(0 < state.wait_us <= SLOW and state.remaining == 0 for state in states[64:])


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


async def test_two_processes_leasing_one_key_let_no_more_go_than_its_burst(redis: Redis) -> None:
    first, second, rate_key = ApiKeyStore(redis), ApiKeyStore(redis), fresh_key()
    went = 0
    for _ in range(100):
        for store in (first, second):
            went += (await store.gcra(rate_key, SLOW, 40)).wait_us == 0
    assert went <= 40  # every one that went was counted in Redis
    assert went >= 40 - 2 * (40 // 8)  # and what the other process held unused is at most its lease


async def test_gathered_checks_of_a_key_are_one_grant_shared_in_order(redis: Redis) -> None:
    store, rate_key = ApiKeyStore(redis), fresh_key()
    states = await asyncio.gather(*(store.gcra(rate_key, SLOW, 16) for _ in range(20)))
    assert [state.wait_us == 0 for state in states] == [True] * 16 + [False] * 4
    assert [state.remaining for state in states[:16]] == list(range(15, -1, -1))
    assert len({state.wait_us for state in states[16:]}) == 1  # all wait for the same next slot


async def test_a_lease_not_used_in_time_is_dropped_not_carried(redis: Redis) -> None:
    store, rate_key = ApiKeyStore(redis), fresh_key()
    store._rate_checks.LEASE_S = 0.05  # a short lease, so the test need not wait long
    await checks(store, rate_key, 3, burst=64)  # the third check takes a lease
    held = store._rate_checks._held[rate_key]
    assert held.tokens > 0
    await asyncio.sleep(0.06)
    before = await script_calls(redis)
    assert (await store.gcra(rate_key, SLOW, 64)).wait_us == 0
    assert await script_calls(redis) == before + 1  # Redis asked again: the old lease's tokens are gone
    tat, (seconds, micros) = int(await redis.get(rate_key)), await redis.time()
    counted = round((tat - (seconds * 1_000_000 + micros)) / SLOW)
    assert counted > 4  # Redis counted the dropped tokens as spent: the caller lost them, nobody gained them


async def test_small_bursts_are_never_leased(redis: Redis) -> None:
    store, rate_key = ApiKeyStore(redis), fresh_key()
    before = await script_calls(redis)
    states = await checks(store, rate_key, 7, burst=7)
    assert all(state.wait_us == 0 for state in states)
    assert await script_calls(redis) - before == 7  # one check, one call: each answer is Redis's own
