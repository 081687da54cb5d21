"""The gateway's added latency: a paid tool call (token check, enqueue, worker, sandbox at zero latency, result back
through the blocking wait) against the same SDK call made directly to the sandbox, and against plain arq
enqueue-and-wait of a trivial function, side by side in one run, at 1 and 64 concurrent callers. Also the
blocking wait's notification latency: from the job's finish (the worker's FINISH, `finishedAt`) to the waiting
client's receipt of the answer, against arq's (its finish time to `job.result()` returning).

    .venv/bin/python -m bench.added_latency [--calls 300] [--concurrency 1 64]

Paid calls use bundle tokens the official x402 client buys from the sandbox facilitator (the demo wallet).
Starts its own Redis, sandbox, facilitator, API, one invocation worker and plain arq workers on free loopback
ports; asserts nothing. Writes bench/results/added_latency.json and .md.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time
from typing import Any

import aiohttp
from alibabacloud_facebody20191230 import models
from alibabacloud_facebody20191230.client import Client
from alibabacloud_tea_openapi.models import Config
from alibabacloud_tea_util.models import RuntimeOptions
from redis.asyncio import Redis

from bench import plain_arq, report
from bench.measure import summary, timed
from bench.stack import KEY_ID, SECRET, Stack, start, stop
from bench.wallet import PRICED_TERMS, buy_tokens
from shared import keys

TOOL = "face-detection"
# plain arq as configured by default (poll 0.5 s, 10 jobs) and as our worker is (poll 0.02 s, 512 jobs)
ARQ_VARIANTS = {"arq_default": (0.5, 10), "arq_20ms": (0.02, 512)}


def sdk_client(sandbox_port: int) -> Client:
    return Client(Config(access_key_id=KEY_ID, access_key_secret=SECRET,
                         endpoint=f"127.0.0.1:{sandbox_port}", protocol="http"))  # fmt: skip


async def direct(sandbox_port: int, calls: int, concurrency: int) -> dict[str, Any]:
    client = sdk_client(sandbox_port)
    runtime = RuntimeOptions(autoretry=False, read_timeout=10000, connect_timeout=3000)

    async def one(n: int) -> None:
        request = models.DetectFaceRequest(image_url=f"https://images.example.com/d{n}.jpg")
        await client.detect_face_with_options_async(request, runtime)

    await timed(20, 4, one)  # warm up
    return summary(await timed(calls, concurrency, one))


async def gateway(stack: Stack, tokens: list[str], calls: int, concurrency: int, tag: str) -> dict[str, Any]:
    """Paid blocking calls; each answer's receipt time against its job's finishedAt (found by X-Request-ID)."""
    received: dict[str, float] = {}
    token = itertools.cycle(tokens)  # round robin: each token pays its share
    connector = aiohttp.TCPConnector(limit=concurrency + 4)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def one(request_id: str) -> None:
            headers = {"X-Payment-Token": next(token), "X-Request-ID": request_id}
            body = {"ImageURL": f"https://images.example.com/{request_id}.jpg"}
            async with http.post(f"{stack.api}/api/tools/{TOOL}", json=body, headers=headers) as response:
                await response.read()
                received[request_id] = time.time() * 1000
                if response.status != 200:
                    raise RuntimeError(f"gateway call: {response.status} {await response.text()}")

        await timed(20, 4, lambda n: one(f"warm-{tag}-{n}"))
        samples = await timed(calls, concurrency, lambda n: one(f"{tag}-{n}"))
    finished = await finished_at(stack.redis.url, tag)
    notify = [received[rid] - at for rid, at in finished.items() if rid in received]
    return {"call": summary(samples), "notify": summary(notify)}


async def finished_at(redis_url: str, tag: str) -> dict[str, int]:
    """requestId -> finishedAt (ms) of the jobs whose request id starts with `tag`."""
    redis = Redis.from_url(redis_url)
    found: dict[str, int] = {}
    try:
        job_keys = [key async for key in redis.scan_iter(match=keys.JOB_KEY_PREFIX + "*", count=1000)]
        async with redis.pipeline(transaction=False) as pipe:
            for key in job_keys:
                pipe.hmget(key, ["requestId", "finishedAt"])
            rows = await pipe.execute()
    finally:
        await redis.aclose()
    for request_id, at in rows:
        if request_id and at and request_id.decode().startswith(f"{tag}-"):
            found[request_id.decode()] = int(at)
    return found


async def arq_calls(redis_url: str, poll_delay: float, calls: int, concurrency: int) -> dict[str, Any]:
    redis = await plain_arq.pool(redis_url)
    notify: list[float] = []
    try:

        async def one(_: int) -> None:
            notify.append(await plain_arq.call(redis, poll_delay))

        await timed(4, 2, one)  # warm up
        notify.clear()
        samples = await timed(calls, concurrency, one)
    finally:
        await redis.aclose()
    return {"call": summary(samples), "notify": summary(notify)}


def measure(calls: int, concurrencies: list[int]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [{"concurrency": c} for c in concurrencies]
    with Stack(terms=PRICED_TERMS, workers=1, facilitator=True) as stack:
        total = sum(calls_for(calls, c) for c in concurrencies) + 100
        tokens = asyncio.run(buy_tokens(stack.api, stack.facilitator, TOOL, total))
        for row in rows:
            row["direct_sdk"] = asyncio.run(
                direct(stack.sandbox_port, calls_for(calls, row["concurrency"]), row["concurrency"])
            )
            tag = f"c{row['concurrency']}"
            row["gateway_paid"] = asyncio.run(
                gateway(stack, tokens, calls_for(calls, row["concurrency"]), row["concurrency"], tag)
            )
        for name, (poll_delay, max_jobs) in ARQ_VARIANTS.items():
            worker = start(
                "bench.plain_arq", {}, stack.redis.url, "--poll-delay", str(poll_delay), "--max-jobs", str(max_jobs)
            )
            try:
                for row in rows:
                    count = arq_count(name, calls, row["concurrency"])
                    row[name] = asyncio.run(arq_calls(stack.redis.url, poll_delay, count, row["concurrency"]))
            finally:
                stop([worker])
    for row in rows:
        direct_ms, paid = row["direct_sdk"], row["gateway_paid"]["call"]
        row["added_p50_ms"] = round(paid["p50_ms"] - direct_ms["p50_ms"], 2)
        row["added_p99_ms"] = round(paid["p99_ms"] - direct_ms["p99_ms"], 2)
    return rows


def calls_for(calls: int, concurrency: int) -> int:
    """At least `calls`, and at least 20 rounds of every caller."""
    return max(calls, concurrency * 20)


def arq_count(variant: str, calls: int, concurrency: int) -> int:
    """arq's default 0.5 s polls make each call last about 0.5-1 s: fewer of them (4 rounds, at least 16)."""
    return max(16, concurrency * 4) if variant == "arq_default" else calls_for(calls, concurrency)


def pair(figures: dict[str, Any]) -> str:
    return f"{figures['p50_ms']} / {figures['p99_ms']}"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 64])
    args = parser.parse_args()
    host = report.machine()
    rows = measure(args.calls, args.concurrency)
    latency = report.table(
        ["callers", "direct SDK", "gateway, paid", "added", "plain arq, defaults", "plain arq, 20 ms polls"],
        [
            [r["concurrency"], pair(r["direct_sdk"]), pair(r["gateway_paid"]["call"]),
             f"{r['added_p50_ms']} / {r['added_p99_ms']}", pair(r["arq_default"]["call"]), pair(r["arq_20ms"]["call"])]
            for r in rows
        ],
    )  # fmt: skip
    notify = report.table(
        ["callers", "gateway: finishedAt to answer", "plain arq, defaults: finish to result()", "arq, 20 ms polls"],
        [[r["concurrency"], pair(r["gateway_paid"]["notify"]), pair(r["arq_default"]["notify"]),
          pair(r["arq_20ms"]["notify"])] for r in rows],
    )  # fmt: skip
    report.write(
        "added_latency",
        rows,
        [
            ("Round trip, p50 / p99 ms (sandbox at zero latency; plain arq runs a no-op)", latency),
            ("Notification latency, p50 / p99 ms (job finished to the caller holding the answer; ms clocks)", notify),
        ],
        host,
    )


if __name__ == "__main__":
    main()
