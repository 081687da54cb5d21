"""A real API process logs JSON lines off a terminal, one per request, with ids and no secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from scripts.embedded_redis import EmbeddedRedis, free_port
from shared.logging import redact_secrets


def _wait_ready(url: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{url} never answered")


def test_api_process_writes_json_lines_with_request_ids(redis_server: EmbeddedRedis, project_root: Path) -> None:
    port = free_port()
    env = {**os.environ, "SERVER402_PORT": str(port), "REDIS_URL": redis_server.url, "SERVER402_LOG_FORMAT": "auto"}
    process = subprocess.Popen(
        [sys.executable, "-m", "api"], cwd=project_root, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_ready(f"{base}/healthz")
        request = urllib.request.Request(f"{base}/api/catalog/search?q=pose", headers={"X-Request-ID": "trace-123"})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.headers["X-Request-ID"] == "trace-123"
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    lines = [json.loads(line) for line in stderr.decode().splitlines() if line.strip()]
    requests = [line for line in lines if line.get("event") == "request" and line.get("request_id") == "trace-123"]
    assert len(requests) == 1
    assert requests[0]["route"] == "/api/catalog/search" and requests[0]["status"] == 200
    assert any(line.get("event") == "api listening" for line in lines)
    assert all({"timestamp", "level"} <= line.keys() for line in lines)


def test_secret_looking_fields_are_redacted() -> None:
    event = {
        "event": "x",
        "payment_token": "pt_live_abcdefghijklmnop",
        "authorization": "Bearer sk-1234567890abcdef",
        "api_key": "short",
        "service_id": "face-detection",
    }
    redacted = redact_secrets(None, "info", dict(event))
    assert "abcdefghijklmnop" not in redacted["payment_token"]
    assert "1234567890abcdef" not in redacted["authorization"]
    assert redacted["api_key"] == "[redacted]"
    assert redacted["service_id"] == "face-detection"
