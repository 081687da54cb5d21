"""`python -m workers`: run the invocation worker (arq) until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import sys

from arq.worker import Worker

from shared.config import ConfigError, Settings
from shared.logging import configure_logging
from workers.settings import worker_options


def main() -> int:
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"server402 worker: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    asyncio.set_event_loop(asyncio.new_event_loop())
    Worker(**worker_options(settings)).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
