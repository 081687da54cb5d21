"""`python -m workers`: run the invocation worker (arq) until SIGINT/SIGTERM. `run_worker` also runs the health
worker (`python -m workers.health`)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import Any

from arq.worker import Worker

from shared.config import ConfigError, Settings
from shared.logging import configure_logging
from workers.settings import worker_options


def run_worker(label: str, options: Callable[[Settings], dict[str, Any]]) -> int:
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"server402 {label}: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    asyncio.set_event_loop(asyncio.new_event_loop())
    Worker(**options(settings)).run()
    return 0


def main() -> int:
    return run_worker("worker", worker_options)


if __name__ == "__main__":
    raise SystemExit(main())
