"""Running a worker process: `run_worker` reads the settings, configures logging and runs `supervise`, which keeps
one arq worker running until SIGINT/SIGTERM. Used by `python -m workers` and `python -m workers.health`.

arq's worker ends, raising, as soon as Redis stops answering (its poll loop and its job bookkeeping do not retry),
and arq's own `conn_retries` only cover connecting at start. So `supervise` runs workers one after another: when
Redis is lost, the worker is dropped (the attempts it was running are cancelled: their jobs stay on arq's queue
and run again once their short leases lapse, as after a crash, see workers/tasks.py) and a new one starts, which
waits for Redis to answer (arq's `conn_retries`, then again after RESTART_DELAY_S). A Redis restart or failover
costs the jobs in flight a few seconds, never the jobs, and needs no process manager to restart the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import sys
from collections.abc import Callable
from typing import Any

import redis.exceptions
import structlog
from arq.worker import Worker

from shared.arq_seam import close_pool
from shared.config import ConfigError, Settings
from shared.eventloop import new_event_loop
from shared.logging import configure_logging

RESTART_DELAY_S = 1.0
MAX_OPEN_FILES = 65_536  # what a worker asks for (never less than it has)
ABANDON_GRACE_S = 2.0
# redis-py reports a connection lost during arq's WATCH (when it starts a job) as a WatchError
REDIS_LOST = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, redis.exceptions.WatchError)

log = structlog.get_logger("workers")


def run_worker(
    label: str,
    options: Callable[[Settings], dict[str, Any]],
    worker_class: type[Worker] = Worker,
    *,
    before: Callable[[Settings], None] | None = None,
) -> int:
    """`before`: run with the settings read, before the worker starts (the batch lane lowers its priority)."""
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"server402 {label}: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    open_files_limit()
    if before is not None:
        before(settings)
    with asyncio.Runner(loop_factory=lambda: new_event_loop(settings.event_loop)) as runner:
        runner.run(supervise(lambda: worker_class(**options(settings))))
    return 0


def open_files_limit() -> int:
    """Raise this process's open-file limit to what the system allows it: each upstream call in flight holds a
    socket (SERVER402_UPSTREAM_CONCURRENCY of them, 1,024 by default), and many systems start processes at 1,024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return soft
    wanted = MAX_OPEN_FILES if hard == resource.RLIM_INFINITY else min(hard, MAX_OPEN_FILES)
    if wanted > soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
    return soft


async def supervise(new_worker: Callable[[], Worker], *, restart_delay_s: float = RESTART_DELAY_S) -> None:
    """Run `new_worker()` until a signal stops it (then close it as arq's `Worker.run` does); each time it loses
    Redis, drop it and start another."""
    stopping = asyncio.Event()
    while not stopping.is_set():
        worker = new_worker()
        worker.on_stop = lambda _signal: stopping.set()  # arq's SIGINT/SIGTERM handler: cancels its main task
        try:
            await worker.async_run()
        except asyncio.CancelledError:
            if not stopping.is_set():
                raise
        except REDIS_LOST as exc:
            log.warning("redis lost: starting a new worker", error=type(exc).__name__, retry_in_s=restart_delay_s)
            await abandon(worker)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), restart_delay_s)
            continue
        await worker.close()
        return


async def abandon(worker: Worker) -> None:
    """Let go of a worker that lost Redis: cancel its running attempts (arq cannot record their end; their leases
    lapse and they run again), stop its background tasks and close its connections."""
    for attempt in worker.job_tasks.values():
        attempt.cancel()  # arq's task around each attempt then tries to put it back on the queue, and gives up
    runs = list(worker.tasks.values())
    if runs:
        _, stuck = await asyncio.wait(runs, timeout=ABANDON_GRACE_S)
        for run in stuck:
            run.cancel()
        await asyncio.gather(*runs, return_exceptions=True)
    if worker.on_shutdown is not None:
        with contextlib.suppress(*REDIS_LOST):
            await worker.on_shutdown(worker.ctx)
    await close_pool(worker)
