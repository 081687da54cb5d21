"""The processes a benchmark measures, each started as `make run` starts it, on free loopback ports: an embedded
Redis, the sandbox upstream, optionally the sandbox x402 facilitator, one API and any number of invocation
workers (added and stopped during a run). `with Stack(...) as stack:` stops every process it started, by pid.

Every process gets ALIBABA_CLOUD_ECS_METADATA_DISABLED=true and talks only to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from types import TracebackType

import aiohttp

from scripts.embedded_redis import EmbeddedRedis, free_port
from scripts.readiness import wait_http_ok

ROOT = Path(__file__).resolve().parents[1]
KEY_ID, SECRET = "bench-key-id", "bench-key-secret"
os.environ["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

# Free calls everywhere unless a benchmark prices them; QPS far above anything measured unless it sets a limit.
FREE_TERMS = "[defaults]\namountCents = 0\nqps = 10000\n"


def start(module: str, env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", module, *args], cwd=ROOT, env={**os.environ, **env},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def wait_up(url: str, process: subprocess.Popen[bytes] | None = None) -> None:
    async with aiohttp.ClientSession() as http:
        await wait_http_ok(http, url, process.poll if process is not None else lambda: None)


class Stack:
    """Redis, the sandbox upstream, the facilitator (when `facilitator`), the API and `workers` invocation workers.
    `terms`: the operator file's TOML; `env`: more settings for every process. `worker_module` is what runs as a
    worker (`python -m workers`; set it before adding workers to measure a patched one side by side)."""

    def __init__(
        self,
        *,
        terms: str = FREE_TERMS,
        workers: int = 1,
        facilitator: bool = False,
        env: dict[str, str] | None = None,
    ) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="bench-")
        tmp = Path(self._tmp.name)
        self.redis = EmbeddedRedis(tmp / "redis")
        operator = tmp / "operator.toml"
        operator.write_text(terms)
        self.api_port, self.sandbox_port, self.facilitator_port = free_port(), free_port(), free_port()
        self.env = {
            "SERVER402_PORT": str(self.api_port), "SERVER402_SANDBOX_PORT": str(self.sandbox_port),
            "SERVER402_FACILITATOR_PORT": str(self.facilitator_port),
            "SERVER402_X402_FACILITATOR_URL": self.facilitator,
            "ALIBABA_CLOUD_ACCESS_KEY_ID": KEY_ID, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET,
            "SERVER402_SANDBOX_QPS": "100000", "SERVER402_OPERATOR_FILE": str(operator),
            "SERVER402_LOG_LEVEL": "warning", "SERVER402_SANDBOX_LOG_LEVEL": "warning",
            # The load generators are one client address: the anonymous limit (20/s) stays on, so its cost per
            # request is measured, but high enough never to refuse.
            "SERVER402_ANON_RATE": "1000000", "SERVER402_ANON_BURST": "1000000",
            "SERVER402_ANON_BATCH_FREE_ITEMS": "1000000",  # batch_isolation sends 5,000+ items without a key
            "SERVER402_FACILITATOR_LOG_LEVEL": "warning", **(env or {}),
        }  # fmt: skip
        self._want = (workers, facilitator)
        self._services: dict[str, subprocess.Popen[bytes]] = {}
        self.workers: list[subprocess.Popen[bytes]] = []
        self.worker_module = "workers"

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def sandbox(self) -> str:
        return f"http://127.0.0.1:{self.sandbox_port}"

    @property
    def facilitator(self) -> str:
        return f"http://127.0.0.1:{self.facilitator_port}"

    def __enter__(self) -> Stack:
        workers, facilitator = self._want
        try:
            self.redis.start()
            self.env["REDIS_URL"] = self.redis.url
            self._up("sandbox", f"{self.sandbox}/_sandbox/health")
            if facilitator:
                self._up("sandbox.facilitator", f"{self.facilitator}/_facilitator/health")
            self._up("api", f"{self.api}/healthz")
            self.set_workers(workers)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        stop(self.workers + list(self._services.values()))
        self.workers, self._services = [], {}
        self.redis.stop()
        self._tmp.cleanup()

    def pids(self) -> dict[str, list[int]]:
        """The running processes by role: redis, sandbox, sandbox.facilitator, api, workers."""
        found = {module: [process.pid] for module, process in self._services.items()}
        if self.redis.process is not None:
            found["redis"] = [self.redis.process.pid]
        found["workers"] = [process.pid for process in self.workers]
        return found

    def set_workers(self, count: int) -> None:
        """Start or stop invocation workers until `count` run; with the API up, wait until /readyz counts them."""
        while len(self.workers) > count:
            stop([self.workers.pop()])
        while len(self.workers) < count:
            self.workers.append(start(self.worker_module, self.env))
        if count:
            asyncio.run(self._wait_workers(count))

    async def _wait_workers(self, count: int) -> None:
        async with aiohttp.ClientSession() as http:
            for _ in range(600):
                async with http.get(f"{self.api}/readyz") as response:
                    body = await response.json()
                if response.status == 200 and body.get("workers", {}).get("invocation") == count:
                    return
                await asyncio.sleep(0.05)
        raise RuntimeError(f"/readyz never counted {count} invocation workers")

    def _up(self, module: str, url: str) -> None:
        process = start(module, self.env)
        self._services[module] = process
        asyncio.run(wait_up(url, process))
