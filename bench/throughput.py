"""Paid calls per second end to end (one API process; one, two and four worker processes), with the sandbox
upstream at zero latency and at 1.2 s, beside the same SDK call made directly and plain arq enqueue-and-wait
(a no-op, and a 1.2 s sleep), each measured in the same run. At 1.2 s the callers are stepped up on one worker
to show how many calls a worker process holds in flight before latency grows.

    .venv/bin/python -m bench.throughput [--seconds 5] [--warmup 2]

Each step runs closed-loop callers (each sends its next call when the last one answered) for warmup + seconds and
counts the calls that ended in the last `seconds`. CPU time per call of every process (from /proc) shows where
the cores went; `machine busy` includes other processes on the machine. Starts its own Redis, sandbox,
facilitator, API and workers on free loopback ports; asserts nothing. Writes bench/results/throughput.json and .md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
from typing import Any

import aiohttp
from alibabacloud_facebody20191230 import models
from alibabacloud_tea_util.models import RuntimeOptions
from redis.asyncio import Redis

from bench import plain_arq, report
from bench.added_latency import sdk_client
from bench.measure import CpuMeter, summary, windowed
from bench.stack import Stack, start, stop
from bench.wallet import PRICED_TERMS, buy_tokens
from shared.liveness import read_running_jobs

TOOL = "face-detection"
SLOW_MS = 1200
ARQ_WORKER = ("--poll-delay", "0.02", "--max-jobs", "512")  # plain arq configured as our worker is
# (what, sandbox latency ms, worker processes, callers)
STEPS: list[tuple[str, int, int, int]] = [
    ("direct SDK", 0, 0, 64),
    ("plain arq no-op, 1 worker, 20 ms polls", 0, 1, 64),
    ("gateway", 0, 1, 64),
    ("gateway", 0, 2, 64),
    ("gateway", 0, 4, 64),
    ("plain arq sleep 1.2 s, 1 worker, 20 ms polls, 512 jobs", SLOW_MS, 1, 512),
    ("gateway", SLOW_MS, 1, 64),
    ("gateway", SLOW_MS, 1, 128),
    ("gateway", SLOW_MS, 1, 256),
    ("gateway", SLOW_MS, 1, 512),
    ("gateway", SLOW_MS, 1, 1024),
    ("gateway", SLOW_MS, 2, 512),
    ("gateway", SLOW_MS, 4, 512),
]


class Runner:
    def __init__(self, stack: Stack, tokens: list[str], warmup_s: float, seconds: float) -> None:
        self.stack, self.tokens = stack, tokens
        self.warmup_s, self.seconds = warmup_s, seconds

    async def step(self, what: str, latency_ms: int, workers: int, callers: int) -> dict[str, Any]:
        await self._latency(latency_ms)
        if what == "gateway":
            await asyncio.to_thread(self.stack.set_workers, workers)
        arq_worker = start("bench.plain_arq", {}, *ARQ_WORKER, self.stack.redis.url) if "arq" in what else None
        try:
            if arq_worker is not None:
                await self._arq_ready()
            meter = CpuMeter(self._pids(what, arq_worker))
            metered = asyncio.create_task(self._meter(meter))
            peak = asyncio.create_task(self._running_peak()) if what == "gateway" else None
            samples, rate = await self._run(what, callers)
            cpu = await metered
            running_peak = await peak if peak is not None else None
        finally:
            if arq_worker is not None:
                await asyncio.to_thread(stop, [arq_worker])
        calls = rate * self.seconds
        per_call = {
            name: round(seconds * 1000 / max(calls, 1), 2) for name, seconds in cpu["seconds"].items() if seconds
        }
        return {"what": what, "latency_ms": latency_ms, "workers": workers, "callers": callers,
                "calls_per_s": round(rate, 1), **summary(samples), "cpu_ms_per_call": per_call,
                "machine_busy": cpu["machine_busy"], "running_peak": running_peak}  # fmt: skip

    def _pids(self, what: str, arq_worker: subprocess.Popen[bytes] | None) -> dict[str, list[int]]:
        """The processes that work for this step (idle ones left out): the gateway's, or the baseline's."""
        pids = {**self.stack.pids(), "client": [os.getpid()]}
        if what == "gateway":
            return pids
        if arq_worker is not None:
            return {"redis": pids["redis"], "arq worker": [arq_worker.pid], "client": pids["client"]}
        return {"sandbox": pids["sandbox"], "client": pids["client"]}

    async def _meter(self, meter: CpuMeter) -> dict[str, Any]:
        """CPU over the counted window only (after the warm-up)."""
        await asyncio.sleep(self.warmup_s)
        meter.start()
        await asyncio.sleep(self.seconds)
        return meter.stop()

    async def _running_peak(self) -> int:
        """The most jobs running at once during the counted window, as the server402_jobs_running gauge reads it
        (the jobs the live workers hold, as each writes its count every second; sampled every 50 ms)."""
        redis = Redis.from_url(self.stack.redis.url)
        try:
            await asyncio.sleep(self.warmup_s)
            peak, ends = 0, asyncio.get_running_loop().time() + self.seconds
            while asyncio.get_running_loop().time() < ends:
                peak = max(peak, await read_running_jobs(redis))
                await asyncio.sleep(0.05)
            return peak
        finally:
            await redis.aclose()

    async def _run(self, what: str, callers: int) -> tuple[list[float], float]:
        if what == "gateway":
            return await self._gateway(callers)
        if what == "direct SDK":
            return await self._direct(callers)
        return await self._arq(callers, SLOW_MS / 1000 if "sleep" in what else 0.0)

    async def _latency(self, latency_ms: int) -> None:
        async with aiohttp.ClientSession() as http:
            if latency_ms:
                rule = {"action": "*", "latencyMs": {"fixed": latency_ms}}
                async with http.put(f"{self.stack.sandbox}/_sandbox/faults", json=rule) as response:
                    response.raise_for_status()
            else:
                async with http.delete(f"{self.stack.sandbox}/_sandbox/faults") as response:
                    response.raise_for_status()

    async def _gateway(self, callers: int) -> tuple[list[float], float]:
        connector = aiohttp.TCPConnector(limit=callers + 4)
        timeout = aiohttp.ClientTimeout(total=120)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:

            async def one(n: int) -> None:
                headers = {"X-Payment-Token": self.tokens[n % len(self.tokens)], "Prefer": "wait=60"}
                body = {"ImageURL": f"https://images.example.com/t{n}.jpg"}
                async with http.post(f"{self.stack.api}/api/tools/{TOOL}", json=body, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"gateway call: {response.status} {await response.text()}")

            return await windowed(self.warmup_s, self.seconds, callers, one)

    async def _direct(self, callers: int) -> tuple[list[float], float]:
        client = sdk_client(self.stack.sandbox_port)
        runtime = RuntimeOptions(autoretry=False, read_timeout=10000, connect_timeout=3000)

        async def one(n: int) -> None:
            request = models.DetectFaceRequest(image_url=f"https://images.example.com/d{n}.jpg")
            await client.detect_face_with_options_async(request, runtime)

        return await windowed(self.warmup_s, self.seconds, callers, one)

    async def _arq_ready(self) -> None:
        redis = await plain_arq.pool(self.stack.redis.url)
        try:
            await plain_arq.call(redis, 0.02)
        finally:
            await redis.aclose()

    async def _arq(self, callers: int, sleep_s: float) -> tuple[list[float], float]:
        redis = await plain_arq.pool(self.stack.redis.url)
        try:
            function, args = ("sleep", (sleep_s,)) if sleep_s else ("noop", ())
            return await windowed(
                self.warmup_s, self.seconds, callers, lambda _: plain_arq.call(redis, 0.02, function, *args)
            )
        finally:
            await redis.aclose()


def expected_calls(seconds: float) -> int:
    """Generous: every step at 1,000 calls/s."""
    return int(sum(1000 * seconds for what, *_ in STEPS if what == "gateway"))


async def run_steps(stack: Stack, warmup_s: float, seconds: float) -> list[dict[str, Any]]:
    tokens = await buy_tokens(stack.api, stack.facilitator, TOOL, expected_calls(warmup_s + seconds))
    runner = Runner(stack, tokens, warmup_s, seconds)
    results = []
    for what, latency_ms, workers, callers in STEPS:
        results.append(await runner.step(what, latency_ms, workers, callers))
        print(results[-1], flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    args = parser.parse_args()
    host = report.machine()
    with Stack(terms=PRICED_TERMS, workers=1, facilitator=True) as stack:
        results = asyncio.run(run_steps(stack, args.warmup, args.seconds))
    rows = []
    for r in results:
        cpu = r["cpu_ms_per_call"]
        where = ", ".join(f"{name.replace('sandbox.facilitator', 'facilitator')} {value}" for name, value in cpu.items()
                          if value >= 0.05 and name != "sandbox.facilitator")  # fmt: skip
        busy = f"{round(r['machine_busy'] * 100)}%" if r["machine_busy"] is not None else "-"
        rows.append([r["what"], r["latency_ms"], r["workers"] or "-", r["callers"], r["calls_per_s"],
                     f"{r['p50_ms']} / {r['p99_ms']}", where, r.get("running_peak") or "-", busy])  # fmt: skip
    body = report.table(
        [
            "what",
            "upstream latency ms",
            "workers",
            "callers",
            "calls/s",
            "p50 / p99 ms",
            "CPU ms per call",
            "running at most",
            "machine busy",
        ],
        rows,
    )
    report.write(
        "throughput", results, [(f"Paid calls per second, one API process ({args.seconds:g} s per step)", body)], host
    )


if __name__ == "__main__":
    main()
