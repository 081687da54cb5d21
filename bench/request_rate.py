"""402 answers per second from one API process against a bare aiohttp "hello" JSON endpoint, side by side in one
run: the same load generator (bench/loadgen.py, its own process), the same connection count and duration.

    .venv/bin/python -m bench.request_rate [--connections 64] [--seconds 6]

Also measured: the API's `GET /healthz` (the app's middlewares and routing, no work), so the 402's own cost and
the framework's show apart. The server's CPU time per request (from /proc, Linux) is the steadier figure when
other work shares the cores. Starts its own Redis, sandbox, API and hello processes on free loopback ports;
asserts nothing. Writes bench/results/request_rate.json and .md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
from typing import Any

from bench import report
from bench.measure import CpuMeter
from bench.stack import ROOT, Stack, start, stop, wait_up
from bench.wallet import PRICED_TERMS
from scripts.embedded_redis import free_port

PRICED_TOOL = "face-attribute-recognition"
BODY = json.dumps({"ImageURL": "https://images.example.com/face.jpg"})


def load(url: str, connections: int, seconds: float, *extra: str, server: int | None = None) -> dict[str, Any]:
    """The load generator's figures; with `server` (a pid), also that process's CPU time per request (µs)."""
    command = [sys.executable, "-m", "bench.loadgen", url, "--connections", str(connections), "--seconds", str(seconds)]
    meter = CpuMeter({"server": [server] if server else []})
    meter.start()
    done = subprocess.run([*command, *extra], cwd=ROOT, capture_output=True, text=True, check=True)
    cpu = meter.stop()
    figures: dict[str, Any] = json.loads(done.stdout)
    served = figures["requests"] + figures["warmup_requests"]
    if server and cpu["seconds"]:
        figures["server_cpu_us_per_request"] = round(cpu["seconds"]["server"] * 1e6 / max(served, 1))
    figures["machine_busy"] = cpu["machine_busy"]
    return figures


def measure(connections: int, seconds: float) -> dict[str, Any]:
    hello_port, hello_uv_port = free_port(), free_port()
    hello = start("bench.hello", {}, "--port", str(hello_port))
    hello_uv = start("bench.hello", {}, "--port", str(hello_uv_port), "--loop", "uvloop")
    try:
        asyncio.run(wait_up(f"http://127.0.0.1:{hello_port}/", hello))
        asyncio.run(wait_up(f"http://127.0.0.1:{hello_uv_port}/", hello_uv))
        with Stack(terms=PRICED_TERMS, workers=0) as stack:
            api = stack.pids()["api"][0]
            tool = f"{stack.api}/api/tools/{PRICED_TOOL}"
            runs = {
                "hello": load(f"http://127.0.0.1:{hello_port}/", connections, seconds, server=hello.pid),
                "hello_uvloop": load(f"http://127.0.0.1:{hello_uv_port}/", connections, seconds, server=hello_uv.pid),
                "api_healthz": load(f"{stack.api}/healthz", connections, seconds, server=api),
                "api_402": load(tool, connections, seconds, "--json", BODY, server=api),
            }
    finally:
        stop([hello, hello_uv])
    return {
        "connections": connections,
        "seconds": seconds,
        "load_generator": "bench.loadgen (asyncio protocols, one process, closed loop, keep-alive)",
        "runs": runs,
        "ratio_402_to_hello": round(runs["api_402"]["rps"] / runs["hello"]["rps"], 3),
        "ratio_healthz_to_hello": round(runs["api_healthz"]["rps"] / runs["hello"]["rps"], 3),
        "cpu_ratio_402_to_hello": cpu_ratio(runs["api_402"], runs["hello"]),
        "cpu_ratio_402_to_hello_uvloop": cpu_ratio(runs["api_402"], runs["hello_uvloop"]),
    }


def busy(run: dict[str, Any]) -> str:
    return f"{round(run['machine_busy'] * 100)}%" if run.get("machine_busy") is not None else "-"


def cpu_ratio(run: dict[str, Any], baseline: dict[str, Any]) -> float | None:
    if "server_cpu_us_per_request" not in run or "server_cpu_us_per_request" not in baseline:
        return None
    return round(float(run["server_cpu_us_per_request"]) / float(baseline["server_cpu_us_per_request"]), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=6.0)
    args = parser.parse_args()
    host = report.machine()
    result = measure(args.connections, args.seconds)
    hello_rps = result["runs"]["hello"]["rps"]
    rows = [
        [
            name,
            run["rps"],
            round(run["rps"] / hello_rps, 3),
            f"{run['p50_ms']} / {run['p99_ms']}",
            run.get("server_cpu_us_per_request", "-"),
            busy(run),
            run["statuses"],
        ]
        for name, run in (
            ('aiohttp "hello" (bench.hello)', result["runs"]["hello"]),
            ('the same "hello" on uvloop (the API\'s loop)', result["runs"]["hello_uvloop"]),
            ("API GET /healthz", result["runs"]["api_healthz"]),
            (f"API POST /api/tools/{PRICED_TOOL}, unpaid: 402", result["runs"]["api_402"]),
        )
    ]
    title = f"Requests per second, one process each, {args.connections} connections, {args.seconds:g} s"
    body = report.table(
        ["server", "req/s", "ratio to hello", "p50 / p99 ms", "server CPU µs per request", "machine busy", "statuses"],
        rows,
    )
    notes = (
        f"402 / hello: {result['ratio_402_to_hello']} of the requests per second, "
        f"{result['cpu_ratio_402_to_hello']} times the server CPU per request (against hello on uvloop, the loop "
        f"the API runs on: {result['cpu_ratio_402_to_hello_uvloop']} times).\n\n"
        f"Load generator: {result['load_generator']}."
    )
    report.write("request_rate", result, [(title, body + "\n\n" + notes)], host)


if __name__ == "__main__":
    main()
