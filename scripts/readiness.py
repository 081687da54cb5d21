"""Waiting for a process's HTTP endpoint to answer 200, for the code that starts processes for tests and
benchmarks (tests/test_scale.py, bench/stack.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp


async def wait_http_ok(
    http: aiohttp.ClientSession,
    url: str,
    exit_code: Callable[[], int | None],
    *,
    attempts: int = 600,
    interval_s: float = 0.05,
) -> None:
    """Until `url` answers 200; raises RuntimeError when the process exits first (`exit_code()` not None) or
    after `attempts` tries `interval_s` apart."""
    for _ in range(attempts):
        if (code := exit_code()) is not None:
            raise RuntimeError(f"{url}: the process exited with {code}")
        try:
            async with http.get(url) as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(interval_s)
    raise RuntimeError(f"{url} never came up")
