"""What a paid call costs Redis: commands and bytes per call (INFO commandstats and INFO stats deltas over N calls,
less what the idle processes send in the same time), and memory per queued job (INFO memory used_memory delta
with N jobs queued and no worker), beside plain arq doing the same (a no-op job, enqueue_job + job.result()).

    .venv/bin/python -m bench.redis_cost [--calls 500] [--queued 2000]

Round trips are the socket reads Redis processed (INFO stats total_reads_processed: a script or a pipeline is
one); commands are every command Redis executed (INFO commandstats), those run inside Lua scripts included.
Starts its own Redis, sandbox, facilitator, API and worker processes on free loopback ports; asserts nothing.
Writes bench/results/redis_cost.json and .md.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from typing import Any

import aiohttp
from redis.asyncio import Redis

from bench import plain_arq, report
from bench.measure import timed
from bench.stack import Stack, start, stop
from bench.wallet import PRICED_TERMS, buy_tokens
from shared import keys
from shared.jobs import JOB_ID_PREFIX

TOOL = "face-detection"
ARQ_POLL_S = 0.02
CONCURRENCY = 8
IDLE_S = 4.0
# socket reads Redis processed (about one per round trip: a pipeline or a script is one), bytes in and out
TRAFFIC = ("total_reads_processed", "total_net_input_bytes", "total_net_output_bytes")


async def snapshot(redis: Redis) -> tuple[Counter[str], dict[str, int]]:
    stats = await redis.info("commandstats")
    calls = Counter({name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()})
    traffic = await redis.info("stats")
    return calls, {key: int(traffic[key]) for key in TRAFFIC}


async def cost_of(
    redis: Redis, count: int, run: Any, idle: tuple[Counter[str], dict[str, int]] | None
) -> dict[str, Any]:
    """Commands and bytes per call of `count` calls made by `run()`, less the idle rates `idle` (per second)."""
    before_calls, before_bytes = await snapshot(redis)
    started = time.perf_counter()
    await run()
    elapsed = time.perf_counter() - started
    after_calls, after_bytes = await snapshot(redis)
    idle_calls, idle_bytes = idle if idle else (Counter(), {})
    per_command = {
        name: round((after_calls[name] - before_calls[name] - idle_calls[name] * elapsed) / count, 2)
        for name in after_calls
        if name not in ("info",)
    }
    per_command = {name: value for name, value in per_command.items() if value >= 0.05}
    net = {
        key: round((after_bytes[key] - before_bytes[key] - idle_bytes.get(key, 0) * elapsed) / count)
        for key in after_bytes
    }
    return {
        "calls": count,
        "seconds": round(elapsed, 2),
        "round_trips_per_call": net["total_reads_processed"],
        "commands_per_call": round(sum(per_command.values()), 1),
        "scripts_per_call": round(sum(per_command.get(name, 0) for name in ("fcall", "evalsha", "eval")), 1),
        "bytes_in_per_call": net["total_net_input_bytes"],
        "bytes_out_per_call": net["total_net_output_bytes"],
        "per_command": dict(sorted(per_command.items(), key=lambda item: -item[1])),
    }


async def idle_rates(redis: Redis) -> tuple[Counter[str], dict[str, int]]:
    """Commands and bytes per second while nobody calls (heartbeats, arq polls, ...)."""
    calls_0, bytes_0 = await snapshot(redis)
    await asyncio.sleep(IDLE_S)
    calls_1, bytes_1 = await snapshot(redis)
    calls = Counter({name: (calls_1[name] - calls_0[name]) / IDLE_S for name in calls_1})
    calls["info"] = 0
    return calls, {key: int((bytes_1[key] - bytes_0[key]) / IDLE_S) for key in bytes_1}


async def gateway_calls(stack: Stack, tokens: list[str], count: int, prefer: str = "wait=30") -> None:
    async with aiohttp.ClientSession() as http:

        async def one(n: int) -> None:
            headers = {"X-Payment-Token": tokens[n % len(tokens)], "Prefer": prefer}
            body = {"ImageURL": f"https://images.example.com/{n}.jpg"}
            async with http.post(f"{stack.api}/api/tools/{TOOL}", json=body, headers=headers) as response:
                await response.read()
                if response.status not in (200, 202):
                    raise RuntimeError(f"gateway call: {response.status}")

        await timed(count, CONCURRENCY, one)


async def used_memory(redis: Redis) -> int:
    return int((await redis.info("memory"))["used_memory"])


async def drained(redis: Redis, queue: str) -> None:
    """Until no tool-call job is left on the queue (the workers' cron entries share it)."""
    while any(member.startswith(JOB_ID_PREFIX.encode()) for member in await redis.zrange(queue, 0, -1)):  # noqa: ASYNC110
        await asyncio.sleep(0.1)


async def measure_gateway(stack: Stack, calls: int, queued: int) -> dict[str, Any]:
    tokens = await buy_tokens(stack.api, stack.facilitator, TOOL, calls + queued + 100)
    redis = Redis.from_url(stack.redis.url)
    try:
        await gateway_calls(stack, tokens, 50)  # warm up: scripts loaded, connections open
        idle = await idle_rates(redis)
        paid = await cost_of(redis, calls, lambda: gateway_calls(stack, tokens, calls), idle)
        await asyncio.to_thread(stack.set_workers, 0)
        before = await used_memory(redis)
        await gateway_calls(stack, tokens, queued, "respond-async")
        with_queued = await used_memory(redis)
        await asyncio.to_thread(stack.set_workers, 1)
        await drained(redis, keys.QUEUE_NAME)
        await asyncio.sleep(0.5)
        after_run = await used_memory(redis)
    finally:
        await redis.aclose()
    return {
        "paid_call": paid,
        "memory_per_queued_job": round((with_queued - before) / queued),
        "memory_per_finished_job": round((after_run - before) / queued),
    }


async def measure_arq(redis_url: str, calls: int, queued: int) -> dict[str, Any]:
    redis = Redis.from_url(redis_url)
    pool = await plain_arq.pool(redis_url)

    async def waited(count: int) -> None:
        await timed(count, CONCURRENCY, lambda _: plain_arq.call(pool, ARQ_POLL_S))

    try:
        worker = start("bench.plain_arq", {}, redis_url, "--poll-delay", str(ARQ_POLL_S), "--max-jobs", "512")
        try:
            await waited(50)  # warm up
            idle = await idle_rates(redis)
            per_call = await cost_of(redis, calls, lambda: waited(calls), idle)
        finally:
            stop([worker])
        before = await used_memory(redis)
        for _ in range(queued):
            await pool.enqueue_job("noop")
        with_queued = await used_memory(redis)
    finally:
        await pool.aclose()
        await redis.aclose()
    return {"call": per_call, "memory_per_queued_job": round((with_queued - before) / queued)}


def measure(calls: int, queued: int) -> dict[str, Any]:
    with Stack(terms=PRICED_TERMS, workers=1, facilitator=True) as stack:
        gateway = asyncio.run(measure_gateway(stack, calls, queued))
        arq = asyncio.run(measure_arq(stack.redis.url, calls, queued))
    return {"gateway": gateway, "plain_arq": arq}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--queued", type=int, default=2000)
    args = parser.parse_args()
    host = report.machine()
    result = measure(args.calls, args.queued)
    paid, arq = result["gateway"]["paid_call"], result["plain_arq"]["call"]
    rows = [
        [label, figures[key], arq_figures]
        for label, figures, key, arq_figures in (
            ("round trips (socket reads)", paid, "round_trips_per_call", arq["round_trips_per_call"]),
            ("commands executed (scripts' inner ones included)", paid, "commands_per_call", arq["commands_per_call"]),
            ("of which scripts (FCALL)", paid, "scripts_per_call", arq["scripts_per_call"]),
            ("bytes into Redis", paid, "bytes_in_per_call", arq["bytes_in_per_call"]),
            ("bytes out of Redis", paid, "bytes_out_per_call", arq["bytes_out_per_call"]),
        )
    ]
    rows.append(["memory per queued job, bytes", result["gateway"]["memory_per_queued_job"],
                 result["plain_arq"]["memory_per_queued_job"]])  # fmt: skip
    rows.append(["memory per finished job kept for its retention, bytes",
                 result["gateway"]["memory_per_finished_job"], "(results kept 3600 s by default)"])  # fmt: skip
    top = report.table(
        ["command", "gateway per paid call", "plain arq per call"],
        [[name, value, arq["per_command"].get(name, "")] for name, value in paid["per_command"].items()]
        + [[name, "", value] for name, value in arq["per_command"].items() if name not in paid["per_command"]],
    )
    report.write(
        "redis_cost",
        result,
        [
            (f"Per call ({args.calls} calls, {CONCURRENCY} callers; idle traffic subtracted)",
             report.table(["", "gateway, paid call", f"plain arq no-op, {ARQ_POLL_S * 1000:g} ms polls"], rows)),
            ("Commands per call, by command", top),
        ],
        host,
    )  # fmt: skip


if __name__ == "__main__":
    main()
