"""The baseline for the queue: plain arq, as a user would write it, with a trivial function enqueued with
`enqueue_job` and awaited with `job.result()`.

    .venv/bin/python -m bench.plain_arq REDIS_URL [--poll-delay 0.5] [--max-jobs 10]   (a worker)

The worker runs `noop` (returns at once) and `sleep(seconds)`; arq's defaults are poll_delay 0.5 s and max_jobs 10
(our worker polls every 0.02 s and runs 512 jobs, so the benchmarks also run arq with those). `call` enqueues and
waits; it returns the time the job finished (arq's own finish time, ms) for the notification latency.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.worker import Worker

QUEUE = "bench:plain-arq"


async def noop(_: dict[str, Any]) -> None:
    return None


async def sleep(_: dict[str, Any], seconds: float) -> None:
    await asyncio.sleep(seconds)


async def pool(redis_url: str) -> ArqRedis:
    return await create_pool(RedisSettings.from_dsn(redis_url), default_queue_name=QUEUE)


async def call(redis: ArqRedis, poll_delay: float, function: str = "noop", *args: Any) -> float:
    """Enqueue and wait for the result; returns ms from the job's finish (arq's finish time, ms resolution) to
    `job.result()` returning here."""
    job = await redis.enqueue_job(function, *args)
    assert job is not None
    await job.result(timeout=120, poll_delay=poll_delay)
    received_ms = time.time() * 1000
    info = await job.result_info()
    assert info is not None
    return received_ms - info.finish_time.timestamp() * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description="a plain arq worker running noop and sleep")
    parser.add_argument("redis_url")
    parser.add_argument("--poll-delay", type=float, default=0.5)
    parser.add_argument("--max-jobs", type=int, default=10)
    args = parser.parse_args()
    asyncio.set_event_loop(asyncio.new_event_loop())
    Worker(
        functions=[noop, sleep],  # type: ignore[list-item]
        queue_name=QUEUE,
        redis_settings=RedisSettings.from_dsn(args.redis_url),
        poll_delay=args.poll_delay,
        max_jobs=args.max_jobs,
        handle_signals=True,
    ).run()


if __name__ == "__main__":
    main()
