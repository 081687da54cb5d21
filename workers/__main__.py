"""`python -m workers [--lane calls|batch]`: run the invocation worker (arq, `workers.queue.ServerWorker`) until
SIGINT/SIGTERM, supervised (workers/supervisor.py: a new worker after Redis is lost). With no `--lane`, the calls
lane here and the batch lane in a process of its own beside it (workers/lanes.py)."""

from __future__ import annotations

import argparse
import functools

from workers.lanes import BatchLane, become_batch_lane
from workers.queue import ServerWorker
from workers.settings import worker_options
from workers.supervisor import run_worker


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--lane", choices=("calls", "batch"), help="run this lane only (default: both)")
    lane = parser.parse_args(argv).lane
    if lane == "batch":
        return run_worker(
            "batch worker", functools.partial(worker_options, lane="batch"), ServerWorker,
            before=lambda settings: become_batch_lane(settings.jobs.batch_nice),
        )  # fmt: skip
    if lane == "calls":
        return run_worker("worker", worker_options, ServerWorker)
    with BatchLane():
        return run_worker("worker", worker_options, ServerWorker)


if __name__ == "__main__":
    raise SystemExit(main())
