"""`python -m workers`: run the invocation worker (arq, `workers.queue.ServerWorker`) until SIGINT/SIGTERM,
supervised (workers/supervisor.py: a new worker after Redis is lost)."""

from __future__ import annotations

from workers.queue import ServerWorker
from workers.settings import worker_options
from workers.supervisor import run_worker


def main() -> int:
    return run_worker("worker", worker_options, ServerWorker)


if __name__ == "__main__":
    raise SystemExit(main())
