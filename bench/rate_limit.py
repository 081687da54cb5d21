"""Rate limiter precision: 4 invocation-worker processes share a 20 QPS operator limit for one action while more
callers than that keep them busy for 30 s. The sandbox upstream enforces the same 20 QPS and counts what it
saw: the achieved rate, the worst sliding one-second window (`maxPerSecond`) and the calls it had to throttle
(goal: 0).

    .venv/bin/python -m bench.rate_limit [--seconds 30] [--qps 20] [--workers 4] [--callers 64]

Starts its own Redis, sandbox, API and workers on free loopback ports; asserts nothing. Writes
bench/results/rate_limit.json and .md.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import aiohttp

from bench import report
from bench.measure import summary
from bench.stack import Stack

TOOL, ACTION = "face-detection", "DetectFace"


async def sandbox(http: aiohttp.ClientSession, url: str, method: str, path: str, body: Any = None) -> Any:
    async with http.request(method, f"{url}/_sandbox/{path}", json=body) as response:
        response.raise_for_status()
        return await response.json()


async def measure(stack: Stack, seconds: float, qps: int, callers: int) -> dict[str, Any]:
    samples: list[float] = []
    statuses: dict[int, int] = {}
    stop_at = 0.0
    timeout = aiohttp.ClientTimeout(total=180)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=callers + 4), timeout=timeout) as http:
        await sandbox(http, stack.sandbox, "PUT", "faults", {"action": ACTION, "qps": qps})
        await sandbox(http, stack.sandbox, "POST", "reset")

        async def caller(index: int) -> None:
            n = 0
            while time.perf_counter() < stop_at:
                body = {"ImageURL": f"https://images.example.com/r{index}-{n}.jpg"}
                began = time.perf_counter()
                async with http.post(f"{stack.api}/api/tools/{TOOL}", json=body, headers={"Prefer": "wait=60"}) as r:
                    await r.read()
                    statuses[r.status] = statuses.get(r.status, 0) + 1
                samples.append((time.perf_counter() - began) * 1000)
                n += 1

        started = time.perf_counter()
        stop_at = started + seconds
        load = asyncio.gather(*(caller(index) for index in range(callers)))
        await asyncio.sleep(seconds)
        stats = (await sandbox(http, stack.sandbox, "GET", "stats"))["actions"].get(ACTION, {})
        elapsed = time.perf_counter() - started
        await load  # the calls still queued finish (not counted in the rate)
    return {
        "seconds": round(elapsed, 2),
        "qps_limit": qps,
        "workers": len(stack.workers),
        "callers": callers,
        "upstream_calls": stats.get("calls", 0),
        "achieved_qps": round(stats.get("ok", 0) / elapsed, 2),
        "worst_one_second_window": stats.get("maxPerSecond", 0),
        "throttled_by_upstream": stats.get("throttled", 0),
        "upstream_errors": stats.get("errors", 0),
        "caller_statuses": {str(status): count for status, count in sorted(statuses.items())},
        "caller_latency": summary(samples),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--qps", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--callers", type=int, default=64)
    args = parser.parse_args()
    host = report.machine()
    terms = f"[defaults]\namountCents = 0\nqps = 10000\n\n[services.{TOOL}]\nqps = {args.qps}\n"
    with Stack(terms=terms, workers=args.workers) as stack:
        result = asyncio.run(measure(stack, args.seconds, args.qps, args.callers))
    r = result
    share = round(r["achieved_qps"] / r["qps_limit"] * 100, 1)
    body = report.table(
        ["limit", "workers", "callers", "achieved", "worst 1-s window", "throttled by upstream", "upstream calls",
         "caller p50 / p99 ms"],
        [[f"{r['qps_limit']} QPS", r["workers"], r["callers"], f"{r['achieved_qps']}/s ({share}%)",
          r["worst_one_second_window"], r["throttled_by_upstream"], r["upstream_calls"],
          f"{r['caller_latency']['p50_ms']} / {r['caller_latency']['p99_ms']}"]],
    )  # fmt: skip
    title = f"{ACTION} for {args.seconds:g} s through the gateway; the sandbox enforces the same limit and counts"
    report.write("rate_limit", result, [(title, body)], host)


if __name__ == "__main__":
    main()
