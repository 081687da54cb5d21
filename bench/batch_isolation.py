"""Does a 10,000-item batch slow anyone else down? Single tool calls and plain API reads are timed alone, then
again while a 10,000-item batch runs (same action and another action), side by side in one run. Both times the
three kinds run at once (4 callers of each action, 8 readers), so the runs differ by the batch only.

    .venv/bin/python -m bench.batch_isolation [--items 10000] [--calls 200] [--latency-ms 0]

Starts its own Redis, sandbox, API and one worker process on free loopback ports; asserts nothing. Prints a
Markdown table and writes bench/results/batch_isolation.json and .md.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import aiohttp

from bench import report
from bench.measure import summary, timed
from bench.stack import Stack


async def single_calls(api: str, tool: str, calls: int, concurrency: int) -> dict[str, float]:
    async with aiohttp.ClientSession() as http:

        async def one(n: int) -> None:
            async with http.post(f"{api}/api/tools/{tool}", json={"ImageURL": f"https://example.com/{n}.jpg"}) as r:
                assert r.status == 200, await r.text()
                await r.read()

        return summary(await timed(calls, concurrency, one))


async def reads(api: str, calls: int, concurrency: int) -> dict[str, float]:
    async with aiohttp.ClientSession() as http:

        async def one(_: int) -> None:
            async with http.get(f"{api}/api/services/face-detection") as r:
                await r.read()

        return summary(await timed(calls, concurrency, one))


async def side_by_side(api: str, calls: int) -> dict[str, dict[str, float]]:
    """The three kinds of request at once (16 callers in all), as they are timed both alone and during the batch:
    the two runs differ by the batch only."""
    same, other, read = await asyncio.gather(
        single_calls(api, "face-detection", calls, 4),
        single_calls(api, "face-attribute-recognition", calls, 4),
        reads(api, calls * 2, 8),
    )
    return {"same_action": same, "other_action": other, "api_read": read}


async def batch_done(http: aiohttp.ClientSession, api: str, batch_id: str, started: float) -> float:
    """Seconds from `started` until the batch has no item queued or running (long polls)."""
    while True:
        async with http.get(f"{api}/api/batches/{batch_id}", params={"wait": "30"}) as response:
            progress = (await response.json())["requestCounts"]
        if progress["queued"] + progress["running"] == 0:
            return time.perf_counter() - started


async def measure(api: str, items: int, calls: int, sandbox: str, latency_ms: float) -> dict[str, Any]:
    if latency_ms:
        async with aiohttp.ClientSession() as http:
            rule = {"action": "*", "latencyMs": {"fixed": latency_ms}}
            async with http.put(f"{sandbox}/_sandbox/faults", json=rule) as response:
                assert response.status == 200, await response.text()
    await single_calls(api, "face-detection", 40, 4)  # warm up
    alone = await side_by_side(api, calls)
    batch = [
        {"customId": f"b{n}", "serviceId": "face-detection", "input": {"ImageURL": f"https://example.com/b{n}.jpg"}}
        for n in range(items)
    ]
    async with aiohttp.ClientSession() as http:
        started = time.perf_counter()
        async with http.post(f"{api}/api/batches", json=batch) as response:
            assert response.status == 201, await response.text()
            batch_id = (await response.json())["batchId"]
        submit_ms = (time.perf_counter() - started) * 1000
        finished = asyncio.create_task(batch_done(http, api, batch_id, started))  # timed on its own
        # all three at once, so each runs while the batch does (one after another, the last ones could start
        # after the batch ended and look isolated when they were only late)
        during = await side_by_side(api, calls)
        measured_s = time.perf_counter() - started
        batch_s = await finished
    return {
        "items": items,
        "latency_ms": latency_ms,
        "submit_ms": round(submit_ms, 1),
        "batch_seconds": round(batch_s, 1),
        "batch_items_per_s": round(items / batch_s, 1),
        "measured_within_batch": measured_s < batch_s,
        "alone": alone,
        "during_batch": during,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args()
    host = report.machine()
    with Stack(workers=1) as stack:
        result = asyncio.run(measure(stack.api, args.items, args.calls, stack.sandbox, args.latency_ms))
    rows = []
    for name in ("same_action", "other_action", "api_read"):
        a, d = result["alone"][name], result["during_batch"][name]
        rows.append([name, f"{a['p50_ms']} / {a['p99_ms']}", f"{d['p50_ms']} / {d['p99_ms']}",
                     round(d["p50_ms"] / a["p50_ms"], 2)])  # fmt: skip
    title = (
        f"{result['items']}-item batch: submitted in {result['submit_ms']} ms, done in {result['batch_seconds']} s"
        f" ({result['batch_items_per_s']} items/s); sandbox latency {result['latency_ms']} ms; the calls "
        f"{'all ran' if result['measured_within_batch'] else 'did NOT all run'} while the batch did"
    )
    body = report.table(
        ["measured (4 callers; reads 8)", "alone p50 / p99 ms", "during the batch p50 / p99 ms", "ratio p50"], rows
    )
    report.write("batch_isolation", result, [(title, body)], host)


if __name__ == "__main__":
    main()
