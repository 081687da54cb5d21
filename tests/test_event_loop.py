"""The API and the workers run on the event loop SERVER402_EVENT_LOOP names (uvloop by default), and a call goes
through on either. What a process logs at start is the type of the loop it runs on, not the setting."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
from stack import Stack

from scripts.embedded_redis import EmbeddedRedis

FREE = "face-detection"
OPERATOR_TOML = f"""
[defaults]
amountCents = 20

[services.{FREE}]
amountCents = 0
"""


def started(stack: Stack, event: str) -> dict[str, object]:
    for line in stack.logs().splitlines():
        if line.startswith("{") and (record := json.loads(line)).get("event") == event:
            return dict(record)
    raise AssertionError(f"no {event!r} line:\n{stack.logs()[-2000:]}")


@pytest.mark.parametrize("setting", [None, "asyncio"])
def test_processes_run_on_the_loop_the_setting_names(
    setting: str | None, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    (tmp_path / "operator.toml").write_text(OPERATOR_TOML)
    env = {
        "REDIS_URL": redis_server.url.rsplit("/", 1)[0] + "/13",
        "SERVER402_OPERATOR_FILE": str(tmp_path / "operator.toml"),
    }
    if setting is not None:
        env["SERVER402_EVENT_LOOP"] = setting
    stack = Stack(tmp_path, env).start()
    try:
        body = json.dumps({"ImageURL": stack.image()}).encode()
        request = urllib.request.Request(
            f"{stack.url}/api/tools/{FREE}", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
            assert json.loads(response.read())["data"]["Result"]["FaceCount"] == 1
        expected = setting or "uvloop"
        assert started(stack, "api listening")["event_loop"] == expected
        assert started(stack, "worker ready")["event_loop"] == expected
    finally:
        stack.stop()
