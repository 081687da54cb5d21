"""What an upstream call costs its caller with the connections kept (workers/transport.py, as the workers send
them) against the SDK's own transport (a new session and connection per call), side by side in one run: the same
SDK client, the same calls, on the workers' event loop, rounds alternating so other load hits both alike.

    .venv/bin/python -m bench.upstream_transport [--calls 2000] [--concurrency 64] [--rounds 3]

Figures: the caller's CPU per call (this process, time.process_time), the sandbox's (its process, /proc), calls per
second, and the TCP connections the calls came on (the sandbox's count). Over HTTP on loopback: with HTTPS, as
against Alibaba, the SDK's own transport also builds an SSL context, loads the CA bundle and shakes hands for
every call. Starts its own sandbox (and the stack's other processes, idle); asserts nothing. Writes
bench/results/upstream_transport.json and .md.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from typing import Any

import aiohttp
from alibabacloud_facebody20191230 import models
from alibabacloud_tea_util.models import RuntimeOptions

from bench import report
from bench.added_latency import sdk_client
from bench.measure import CpuMeter, timed
from bench.stack import Stack
from shared.eventloop import new_event_loop
from workers import transport

WAYS = ("kept", "sdk")


async def sandbox_stats(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/_sandbox/stats") as response:
        totals: dict[str, Any] = (await response.json())["totals"]
        return totals


async def one_round(stack: Stack, way: str, calls: int, concurrency: int) -> dict[str, Any]:
    client = sdk_client(stack.sandbox_port)
    runtime = RuntimeOptions(autoretry=False, read_timeout=10000, connect_timeout=3000)
    pool = transport.Pool(limit=concurrency)
    transport.install()

    async def one(n: int) -> None:
        request = models.DetectFaceRequest(image_url=f"https://images.example.com/t{n}.jpg")
        with pool.using() if way == "kept" else contextlib.nullcontext():
            await client.detect_face_with_options_async(request, runtime)

    await timed(concurrency, concurrency, one)  # warm up (and, kept, open the connections)
    before = await sandbox_stats(stack.sandbox)
    meter = CpuMeter({"sandbox": stack.pids()["sandbox"]})
    meter.start()
    cpu, wall = time.process_time(), time.perf_counter()
    await timed(calls, concurrency, one)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    sandbox_s = meter.stop()["seconds"].get("sandbox")
    after = await sandbox_stats(stack.sandbox)
    await pool.close()
    return {
        "way": way,
        "caller_cpu_us": round(cpu * 1e6 / calls),
        "sandbox_cpu_us": round(sandbox_s * 1e6 / calls) if sandbox_s is not None else None,
        "calls_per_s": round(calls / wall, 1),
        "connections": after["connections"] - before["connections"],
        "calls": after["calls"] - before["calls"],
    }


def best(rounds: list[dict[str, Any]], way: str) -> dict[str, Any]:
    mine = [r for r in rounds if r["way"] == way]
    return min(mine, key=lambda r: r["caller_cpu_us"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    host = report.machine()
    rounds: list[dict[str, Any]] = []
    with Stack(workers=0) as stack:
        loop = new_event_loop("uvloop")
        try:
            for _ in range(args.rounds):
                for way in WAYS:
                    rounds.append(loop.run_until_complete(one_round(stack, way, args.calls, args.concurrency)))
        finally:
            loop.close()
    kept, sdk = best(rounds, "kept"), best(rounds, "sdk")
    names = {"kept": "kept connections (workers/transport.py)", "sdk": "the SDK's own (a session per call)"}
    header = ["transport", "caller CPU µs per call", "sandbox CPU µs per call", "calls/s", "connections", "calls"]
    rows = [[names[r["way"]], r["caller_cpu_us"], r["sandbox_cpu_us"], r["calls_per_s"], r["connections"], r["calls"]]
            for r in rounds]  # fmt: skip
    ratio = round(kept["caller_cpu_us"] / sdk["caller_cpu_us"], 2)
    figures = {"rounds": rounds, "caller_cpu_ratio_kept_to_sdk": ratio, "concurrency": args.concurrency}
    summary = report.table(
        ["", "kept / the SDK's own (best round of each)"],
        [["caller CPU per call", ratio],
         ["sandbox CPU per call", round(kept["sandbox_cpu_us"] / sdk["sandbox_cpu_us"], 2)
          if kept["sandbox_cpu_us"] and sdk["sandbox_cpu_us"] else "-"],
         ["calls per second", round(kept["calls_per_s"] / sdk["calls_per_s"], 2)]],
    )  # fmt: skip
    report.write(
        "upstream_transport",
        figures,
        [(f"DetectFace through the SDK, {args.concurrency} at a time, rounds alternating", report.table(header, rows)),
         ("Ratios", summary)],
        host,
    )  # fmt: skip


if __name__ == "__main__":
    main()
