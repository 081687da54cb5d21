"""Waiting for a process's HTTP endpoint to answer 200, for the code that starts processes for tests, benchmarks
and runs: `wait_http_ok` from a running event loop (tests/test_scale.py, bench/stack.py), `wait_ready` from
synchronous code watching several processes (tests/stack.py, scripts/conformance.py)."""

from __future__ import annotations

import asyncio
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping

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


class NotReady(Exception):
    """`wait_ready` gave up: `exited` names the processes that exited first (empty: the time ran out)."""

    def __init__(self, url: str, exited: list[str]) -> None:
        super().__init__(f"{', '.join(exited)} exited" if exited else f"{url} was not ready in time")
        self.url = url
        self.exited = exited


def wait_ready(
    url: str, processes: Mapping[str, subprocess.Popen[bytes]], *, timeout_s: float, interval_s: float = 0.1
) -> None:
    """Until `url` answers 200 (one-second requests, `interval_s` apart); raises NotReady when one of `processes`
    exits first, or after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        exited = [name for name, process in processes.items() if process.poll() is not None]
        if exited:
            raise NotReady(url, exited)
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(interval_s)
    raise NotReady(url, [])
