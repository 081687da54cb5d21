"""Timing helpers shared by the benchmarks: closed-loop callers, percentiles, CPU time."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def summary(samples: list[float]) -> dict[str, Any]:
    """p50 / p99 (and the count) of samples in milliseconds."""
    ordered = sorted(samples)
    if not ordered:
        return {"n": 0, "p50_ms": None, "p99_ms": None}
    return {
        "n": len(ordered),
        "p50_ms": round(percentile(ordered, 0.5), 2),
        "p99_ms": round(percentile(ordered, 0.99), 2),
    }


async def timed(calls: int, concurrency: int, one: Callable[[int], Awaitable[Any]]) -> list[float]:
    """`calls` calls of `one(n)`, `concurrency` at a time; each one's duration in ms."""
    samples: list[float] = []
    counter = iter(range(calls))

    async def caller() -> None:
        for n in counter:
            started = time.perf_counter()
            await one(n)
            samples.append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return samples


async def windowed(
    warmup_s: float, seconds: float, concurrency: int, one: Callable[[int], Awaitable[Any]]
) -> tuple[list[float], float]:
    """`concurrency` closed-loop callers of `one(n)` for `warmup_s + seconds`; the durations (ms) of the calls
    that ended within the last `seconds`, and their rate per second."""
    samples: list[float] = []
    started = time.perf_counter()
    window_from, stop_at = started + warmup_s, started + warmup_s + seconds
    counter = iter(range(1 << 62))

    async def caller() -> None:
        while (began := time.perf_counter()) < stop_at:
            await one(next(counter))
            ended = time.perf_counter()
            if window_from <= ended <= stop_at:
                samples.append((ended - began) * 1000)

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return samples, len(samples) / seconds


class CpuMeter:
    """CPU time of processes (by pid) and of the whole machine over an interval, from /proc (Linux; elsewhere
    every figure is None). `busy_share` tells how loaded the machine was, other people's processes included."""

    TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def __init__(self, pids: dict[str, list[int]]) -> None:
        self.pids = pids
        self._start: tuple[dict[str, float], tuple[float, float]] | None = None

    def _process_s(self, pid: int) -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / self.TICK  # utime + stime

    def _sample(self) -> tuple[dict[str, float], tuple[float, float]]:
        per = {name: sum(self._process_s(pid) for pid in pids) for name, pids in self.pids.items()}
        cpu = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = cpu[3] + cpu[4]
        return per, (sum(cpu) / self.TICK, idle / self.TICK)

    def start(self) -> None:
        self._start = self._sample() if Path("/proc/stat").exists() else None

    def stop(self) -> dict[str, Any]:
        """CPU seconds per process group over the interval, and the machine's busy share (0..1)."""
        if self._start is None:
            return {"seconds": {}, "machine_busy": None}
        per, (total, idle) = self._sample()
        per0, (total0, idle0) = self._start
        busy = 1 - (idle - idle0) / max(total - total0, 1e-9)
        return {"seconds": {name: round(per[name] - per0[name], 3) for name in per}, "machine_busy": round(busy, 3)}
