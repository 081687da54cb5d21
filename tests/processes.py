"""Real server402 processes for tests that kill them: the API, invocation workers and the health worker, each a
`python -m` child on loopback with its own environment and log file, signalled by pid, on a Redis of its own
(EmbeddedRedis in the test's directory, so it can be stopped and started again without touching the session's).

    deployment = Deployment(tmp_path, EmbeddedRedis(tmp_path / "redis", appendfsync="always").start(), env)
    api = await deployment.start_api()          # answers /healthz
    worker = await deployment.start_worker()    # its heartbeat is in Redis
    await worker.kill()                         # SIGKILL by pid, waits for the exit
    await deployment.close()                    # stops whatever still runs
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from redis.asyncio import Redis

from scripts.embedded_redis import EmbeddedRedis, free_port
from shared.liveness import WorkerKind, workers_key

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 30.0
STOP_GRACE_S = 10.0
POLL_S = 0.05


class Child:
    """One `python -m module` process; stdout and stderr go to `log`."""

    def __init__(self, name: str, module: str, env: dict[str, str], log: Path) -> None:
        self.name, self.module, self.env, self.log = name, module, env, log
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> Child:
        with self.log.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", self.module, cwd=ROOT, env={**os.environ, **self.env},
                stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def kill(self, sig: signal.Signals = signal.SIGKILL) -> int:
        """Send `sig` to the process and wait for it to end; its exit code."""
        assert self.process is not None
        if self.running:
            self.process.send_signal(sig)
        return await asyncio.wait_for(self.process.wait(), STOP_GRACE_S)

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not ended after STOP_GRACE_S."""
        if not self.running:
            return
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), STOP_GRACE_S)
        except TimeoutError:
            await self.kill()

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- {self.name} (pid {self.process.pid if self.process else '-'}) {self.log}:\n" + "\n".join(
            text.splitlines()[-lines:]
        )


class Deployment:
    """A Redis and the server402 processes started on it, sharing one environment (plus each one's extras)."""

    def __init__(self, root: Path, redis_server: EmbeddedRedis, env: dict[str, str]) -> None:
        self.root = root
        self.redis_server = redis_server
        self.api_port = free_port()
        self.env = {
            "REDIS_URL": redis_server.url,
            "SERVER402_HOST": "127.0.0.1",
            "SERVER402_PORT": str(self.api_port),
            "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
            **env,
        }
        self.redis = Redis.from_url(redis_server.url)
        self.children: list[Child] = []

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def _child(self, name: str, module: str, env: dict[str, str]) -> Child:
        log = self.root / f"{name}-{len(self.children)}.log"
        child = Child(name, module, {**self.env, **env}, log)
        self.children.append(child)
        return child

    async def start_api(self, **env: str) -> Child:
        """The API on `api_port` (the same port each time), once it answers /healthz."""
        child = await self._child("api", "api", env).start()
        await self._until_up(child, self._api_answers)
        return child

    async def start_worker(self, **env: str) -> Child:
        """An invocation worker, once its heartbeat is in Redis."""
        child = await self._child("worker", "workers", env).start()
        await self._until_up(child, lambda: self._beats(child, "invocation"))
        return child

    async def start_health_worker(self, **env: str) -> Child:
        child = await self._child("health", "workers.health", env).start()
        await self._until_up(child, lambda: self._beats(child, "health"))
        return child

    def logs(self) -> str:
        return "\n".join(child.tail() for child in self.children)

    async def close(self) -> None:
        await asyncio.gather(*(child.stop() for child in self.children))
        await self.redis.aclose()

    async def _until_up(self, child: Child, ready: Callable[[], Awaitable[bool]]) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_S
        while not await ready():
            if not child.running or loop.time() > deadline:
                raise RuntimeError(f"{child.name} did not come up\n{child.tail()}")
            await asyncio.sleep(POLL_S)

    async def _api_answers(self) -> bool:
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http,
                http.get(f"{self.api_url}/healthz") as response,
            ):
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    async def _beats(self, child: Child, kind: WorkerKind) -> bool:
        members = await self.redis.zrange(workers_key(kind), 0, -1)
        return any(f":{child.pid}:".encode() in member for member in members)
