"""Run the sandbox in-process for tests and benchmarks: `async with run_sandbox(config) as sandbox: ...`.

It listens on a free loopback port; point the SDK at `sandbox.endpoint` (Config(endpoint=..., protocol="http")).
The admin helpers wrap the API documented in sandbox/admin.py. No SDK import here: callers bring their own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from sandbox.app import create_app
from sandbox.config import SandboxConfig


@dataclass
class RunningSandbox:
    app: web.Application
    endpoint: str  # 127.0.0.1:PORT
    http: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    def image(self, name: str) -> str:
        """URL of a sample image the sandbox serves: face.jpg, face.png, body.jpg, blank-WxH.png."""
        return f"{self.url}/_sandbox/images/{name}"

    async def admin(self, method: str, path: str, json: Any = None) -> tuple[int, Any]:
        async with self.http.request(method, f"{self.url}/_sandbox/{path}", json=json) as response:
            return response.status, await response.json()

    async def put_fault(self, **rule: Any) -> list[dict[str, Any]]:
        status, body = await self.admin("PUT", "faults", rule)
        if status != 200:
            raise ValueError(f"fault rule refused: {body}")
        return body["faults"]  # type: ignore[no-any-return]

    async def clear_faults(self) -> None:
        await self.admin("DELETE", "faults")

    async def stats(self) -> dict[str, Any]:
        return (await self.admin("GET", "stats"))[1]  # type: ignore[no-any-return]

    async def reset(self) -> None:
        await self.admin("POST", "reset")


@asynccontextmanager
async def serve_on_loopback(app: web.Application) -> AsyncIterator[tuple[str, aiohttp.ClientSession]]:
    """Serve `app` on a free loopback port; yields ("127.0.0.1:PORT", a client session for its admin API)."""
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        async with aiohttp.ClientSession() as http:
            yield f"127.0.0.1:{runner.addresses[0][1]}", http
    finally:
        await runner.cleanup()


@asynccontextmanager
async def run_sandbox(config: SandboxConfig) -> AsyncIterator[RunningSandbox]:
    app = create_app(config)
    async with serve_on_loopback(app) as (endpoint, http):
        yield RunningSandbox(app, endpoint, http)
