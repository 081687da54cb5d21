"""Waiting for SIGINT/SIGTERM in the sandbox servers' entry points (`python -m sandbox`, `-m sandbox.facilitator`)."""

from __future__ import annotations

import asyncio
import signal


async def wait_for_stop_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
