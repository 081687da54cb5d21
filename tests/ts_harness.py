"""What the tests of the official TypeScript clients share (tests/test_ts_x402.py, tests/test_ts_mcp.py), and the
paid MCP pipeline tests/test_mcp_tasks.py shares with them.

`ts_client`: tests/js installed from its lock (`npm ci`, once per session, and not at all while node_modules
matches the lock). `run_node`: one of tests/js/*.mjs run with the machine's Node as a process started with asyncio,
so the test's loop keeps serving the in-process API. `operator_terms` and `pipeline_env`: a pipeline where calls
cost 20 cents (facial-expression-recognition is free) and x402 settles through the sandbox facilitator. A test
module takes a fixture by naming it at its top (`ts_client = ts_harness.ts_client`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sandbox.facilitator.testing import RunningFacilitator

JS_DIR = Path(__file__).resolve().parent / "js"
LOCK = JS_DIR / "package-lock.json"
STAMP = JS_DIR / "node_modules" / ".server402-lock.sha256"  # the lock node_modules was installed from
NPM_TIMEOUT_S = 100  # under the per-test timeout (120 s), so a slow install fails with npm's own output
PRICE_ATOMIC = 200_000  # USD 0.20 in USDC's 6 decimals
PAID_TOOL = "face_detection"  # service face-detection
FREE_TOOL = "facial_expression_recognition"


@pytest.fixture(scope="session")
def ts_client() -> Path:
    """tests/js installed from its lock (npm ci), unless node_modules was already installed from this lock; the
    x402 client's script, tests/js/pay.mjs (the others are beside it)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed to run the official x402 TypeScript client")
    lock_hash = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    if not (STAMP.is_file() and STAMP.read_text().strip() == lock_hash):
        ran = subprocess.run(  # before any event loop of a test: nothing to block
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=JS_DIR,
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT_S,
            check=False,
        )
        if ran.returncode != 0:  # an unreachable registry is a failure here, not a reason to skip
            pytest.fail(f"npm ci in {JS_DIR} failed ({ran.returncode}):\n{ran.stdout}\n{ran.stderr}", pytrace=False)
        STAMP.write_text(lock_hash)
    return JS_DIR / "pay.mjs"


async def run_node(script: Path, request: dict[str, Any], *, timeout_s: float) -> list[dict[str, Any]]:
    """Run `script` (in tests/js) with `request` as its one JSON argument; the JSON lines it printed. Fails the test
    when it exits other than 0 or runs past `timeout_s`."""
    process = await asyncio.create_subprocess_exec(
        "node", str(script), json.dumps(request), cwd=JS_DIR, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with asyncio.timeout(timeout_s):
            out, err = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, f"{script.name} exited {process.returncode}:\n{out.decode()}\n{err.decode()}"
    return [json.loads(line) for line in out.decode().splitlines() if line.strip()]


@pytest.fixture
def operator_terms() -> dict[str, Any]:
    """Calls cost 20 cents, except facial-expression-recognition (FREE_TOOL), which is free."""
    return {
        "defaults": {"amountCents": 20, "qps": 1000},
        "services": {"facial-expression-recognition": {"amountCents": 0}},
    }


@pytest.fixture
def pipeline_env(facilitator: RunningFacilitator) -> dict[str, str]:
    """x402 settles through the sandbox facilitator."""
    return {"SERVER402_X402_FACILITATOR_URL": facilitator.url}
