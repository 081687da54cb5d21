"""Fixtures for the sandbox tests: a sandbox on a free loopback port, in-process, called with the real SDKs.

Helpers are fixtures (not imports), so these tests do not depend on how pytest puts test directories on sys.path.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from sandbox.config import KeyPair, SandboxConfig
from sandbox.testing import RunningSandbox, run_sandbox

# Before any SDK import (test modules import the SDKs after this file; this file only lazily): the credentials
# library reads these at import time, and nothing may leave loopback.
os.environ.setdefault("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
for _name in ("NO_PROXY", "no_proxy"):
    os.environ[_name] = ",".join(filter(None, [os.environ.get(_name, ""), "127.0.0.1", "localhost", "::1"]))

KEY_ID = "test-key-id-0001"
SECRET = "test-secret-0001"
OTHER_KEY_ID = "other-key-id-0002"
OTHER_SECRET = "other-secret-0002"


@dataclass(frozen=True)
class Keys:
    key_id: str = KEY_ID
    secret: str = SECRET
    other_key_id: str = OTHER_KEY_ID
    other_secret: str = OTHER_SECRET


@pytest.fixture
def keys() -> Keys:
    return Keys()


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    """Generous QPS by default; the limit tests set their own."""
    return SandboxConfig(key_pairs=(KeyPair(KEY_ID, SECRET), KeyPair(OTHER_KEY_ID, OTHER_SECRET)), qps=1000)


@pytest_asyncio.fixture
async def sandbox(sandbox_config: SandboxConfig) -> AsyncIterator[RunningSandbox]:
    async with run_sandbox(sandbox_config) as running:
        yield running


@pytest.fixture
def facebody(sandbox: RunningSandbox) -> Callable[..., Any]:
    """facebody(key_id=..., secret=..., **Config kwargs) -> a real facebody SDK client aimed at the sandbox."""
    from alibabacloud_facebody20191230.client import Client
    from alibabacloud_tea_openapi.models import Config

    def make(key_id: str = KEY_ID, secret: str = SECRET, **extra: Any) -> Any:
        return Client(
            Config(access_key_id=key_id, access_key_secret=secret, endpoint=sandbox.endpoint, protocol="http", **extra)
        )

    return make


@pytest.fixture
def cloudauth(sandbox: RunningSandbox) -> Callable[..., Any]:
    from alibabacloud_cloudauth_intl20220809.client import Client
    from alibabacloud_tea_openapi.models import Config

    def make(key_id: str = KEY_ID, secret: str = SECRET) -> Any:
        return Client(
            Config(access_key_id=key_id, access_key_secret=secret, endpoint=sandbox.endpoint, protocol="http")
        )

    return make


@pytest.fixture
def runtime() -> Callable[..., Any]:
    """runtime(read_timeout_ms=5000) -> util_models.RuntimeOptions with explicit timeouts, as the workers send."""
    from alibabacloud_tea_util import models as util_models

    def make(read_timeout_ms: int = 5000) -> Any:
        return util_models.RuntimeOptions(read_timeout=read_timeout_ms, connect_timeout=2000)

    return make


@pytest.fixture
def missing_fields() -> Callable[[Any], list[str]]:
    """missing_fields(sdk_model) -> every attribute of the model tree left unset (None) or as an empty list."""
    from Tea.model import TeaModel

    def walk(model: Any, path: str = "body") -> list[str]:
        problems: list[str] = []
        for attr, value in vars(model).items():
            where = f"{path}.{attr}"
            if attr.startswith("_"):
                continue
            if value is None:
                problems.append(where)
            elif isinstance(value, TeaModel):
                problems += walk(value, where)
            elif isinstance(value, list):
                problems += [f"{where} (empty)"] if not value else []
                for index, item in enumerate(value):
                    problems += walk(item, f"{where}[{index}]") if isinstance(item, TeaModel) else []
        return problems

    return walk


@dataclass
class Served:
    """A tiny loopback file server of the test's own, for content the sandbox does not serve."""

    url: str
    files: dict[str, tuple[bytes, str]]
    hits: list[str]

    def __call__(self, name: str) -> str:
        return f"{self.url}/{name}"


@pytest_asyncio.fixture
async def served() -> AsyncIterator[Served]:
    server = Served("", {}, [])

    async def serve(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        server.hits.append(name)
        found = server.files.get(name)
        if found is None:
            raise web.HTTPNotFound()
        return web.Response(body=found[0], content_type=found[1])

    app = web.Application()
    app.router.add_get("/{name}", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    server.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield server
    await runner.cleanup()
