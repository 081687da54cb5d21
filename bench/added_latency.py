"""The gateway's added latency: a paid-path tool call through the API, Redis, an arq worker and the SDK, against
the same SDK call made directly to the sandbox, measured side by side in one run. Prints p50/p99 and the ratio.

    .venv/bin/python -m bench.added_latency [--calls 200] [--concurrency 1]

Starts its own Redis, sandbox, API and worker processes on free loopback ports; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"

import aiohttp
from alibabacloud_facebody20191230 import models
from alibabacloud_facebody20191230.client import Client
from alibabacloud_tea_openapi.models import Config
from alibabacloud_tea_util.models import RuntimeOptions

from scripts.embedded_redis import EmbeddedRedis, free_port

ROOT = Path(__file__).resolve().parents[1]
KEY_ID, SECRET = "bench-key-id", "bench-key-secret"


def start(module: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", module], cwd=ROOT, env={**os.environ, **env},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


async def wait_up(url: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            try:
                async with http.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} never came up")


async def timed(calls: int, concurrency: int, one: object) -> list[float]:
    samples: list[float] = []
    semaphore = asyncio.Semaphore(concurrency)

    async def run(n: int) -> None:
        async with semaphore:
            started = time.perf_counter()
            await one(n)  # type: ignore[operator]
            samples.append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(run(n) for n in range(calls)))
    return samples


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2),
    }


async def measure(api_port: int, sandbox_port: int, calls: int, concurrency: int) -> dict[str, object]:
    client = Client(Config(access_key_id=KEY_ID, access_key_secret=SECRET,
                           endpoint=f"127.0.0.1:{sandbox_port}", protocol="http"))  # fmt: skip
    runtime = RuntimeOptions(autoretry=False, read_timeout=10000, connect_timeout=3000)

    async def direct(n: int) -> None:
        request = models.DetectFaceRequest(image_url=f"https://example.com/{n}.jpg")
        await client.detect_face_with_options_async(request, runtime)

    async with aiohttp.ClientSession() as http:

        async def gateway(n: int) -> None:
            url = f"http://127.0.0.1:{api_port}/api/tools/face-detection"
            async with http.post(url, json={"ImageURL": f"https://example.com/g{n}.jpg"}) as response:
                assert response.status == 200, await response.text()
                await response.read()

        await timed(20, 4, gateway)  # warm up both paths
        await timed(20, 4, direct)
        direct_ms = summary(await timed(calls, concurrency, direct))
        gateway_ms = summary(await timed(calls, concurrency, gateway))
    return {
        "calls": calls,
        "concurrency": concurrency,
        "direct_sdk": direct_ms,
        "gateway": gateway_ms,
        "added_p50_ms": round(gateway_ms["p50_ms"] - direct_ms["p50_ms"], 2),
        "ratio_p50": round(gateway_ms["p50_ms"] / direct_ms["p50_ms"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        redis = EmbeddedRedis(Path(tmp) / "redis").start()
        operator = Path(tmp) / "operator.toml"
        operator.write_text("[defaults]\namountCents = 0\nqps = 10000\n")
        api_port, sandbox_port = free_port(), free_port()
        env = {
            "REDIS_URL": redis.url, "SERVER402_PORT": str(api_port), "SERVER402_SANDBOX_PORT": str(sandbox_port),
            "ALIBABA_CLOUD_ACCESS_KEY_ID": KEY_ID, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET,
            "SERVER402_SANDBOX_QPS": "100000", "SERVER402_OPERATOR_FILE": str(operator),
            "SERVER402_LOG_LEVEL": "warning", "SERVER402_SANDBOX_LOG_LEVEL": "warning",
        }  # fmt: skip
        processes = [start(module, env) for module in ("sandbox", "api", "workers")]
        try:
            asyncio.run(wait_up(f"http://127.0.0.1:{api_port}/readyz"))
            asyncio.run(wait_up(f"http://127.0.0.1:{sandbox_port}/_sandbox/health"))
            results = [asyncio.run(measure(api_port, sandbox_port, args.calls, c)) for c in args.concurrency]
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=15)
            redis.stop()
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "added_latency.json").write_text(json.dumps(results, indent=2) + "\n")
    print("| concurrency | direct SDK p50 / p99 ms | gateway p50 / p99 ms | added p50 ms | ratio p50 |")
    print("|---|---|---|---|---|")
    for r in results:
        d, g = r["direct_sdk"], r["gateway"]
        print(f"| {r['concurrency']} | {d['p50_ms']} / {d['p99_ms']} | {g['p50_ms']} / {g['p99_ms']} "  # type: ignore[index]
              f"| {r['added_p50_ms']} | {r['ratio_p50']} |")  # fmt: skip


if __name__ == "__main__":
    main()
