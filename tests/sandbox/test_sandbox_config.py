"""Settings come from the environment in one place and are validated; `python -m sandbox` serves on loopback."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

from sandbox.config import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET, SandboxConfig, SandboxConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_defaults() -> None:
    config = SandboxConfig.from_env({})
    assert (config.host, config.port, config.qps) == ("127.0.0.1", 8403, 2)
    assert config.secrets == {DEFAULT_ACCESS_KEY_ID: DEFAULT_ACCESS_KEY_SECRET}
    assert config.tools_file.name == "tools.json"


def test_values_from_the_environment() -> None:
    config = SandboxConfig.from_env(
        {
            "SERVER402_SANDBOX_PORT": "9000",
            "SERVER402_SANDBOX_HOST": "::1",
            "SERVER402_SANDBOX_QPS": "5",
            "ALIBABA_CLOUD_ACCESS_KEY_ID": "id",
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "secret",
            "SERVER402_TOOLS_FILE": "/tmp/tools.json",
        }
    )
    assert (config.host, config.port, config.qps, config.secrets) == ("::1", 9000, 5, {"id": "secret"})
    assert config.tools_file == Path("/tmp/tools.json")


def test_every_bad_value_is_named() -> None:
    with pytest.raises(SandboxConfigError) as caught:
        SandboxConfig.from_env(
            {
                "SERVER402_SANDBOX_HOST": "0.0.0.0",
                "SERVER402_SANDBOX_PORT": "http",
                "SERVER402_SANDBOX_QPS": "0",
                "ALIBABA_CLOUD_ACCESS_KEY_ID": "only-the-id",
            }
        )
    message = str(caught.value)
    for name in (
        "SERVER402_SANDBOX_HOST",
        "SERVER402_SANDBOX_PORT",
        "SERVER402_SANDBOX_QPS",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    ):
        assert name in message


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sandbox_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SERVER402_", "ALIBABA_"))}
    return {**env, "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true", "SERVER402_SANDBOX_LOG_LEVEL": "warning", **extra}


@pytest.mark.asyncio
async def test_main_refuses_a_non_loopback_host() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandbox",
        cwd=ROOT,
        env=sandbox_env(SERVER402_SANDBOX_HOST="0.0.0.0"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 2
    assert b"SERVER402_SANDBOX_HOST" in stderr


@pytest.mark.asyncio
async def test_main_serves_until_sigterm() -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandbox",
        cwd=ROOT,
        env=sandbox_env(SERVER402_SANDBOX_PORT=str(port)),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with aiohttp.ClientSession() as http:
            body = None
            for _ in range(200):  # the child process gives no event to await: poll its health endpoint
                try:
                    async with http.get(f"http://127.0.0.1:{port}/_sandbox/health") as response:
                        body = await response.json()
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
        assert body is not None and len(body["actions"]) == 44
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 0
