"""The last table of `make bench`: each figure of the performance goals, its goal, today's value and the ratio of
the two, read from the results the benchmarks before it wrote (bench/results/*.json of this run).

    .venv/bin/python -m bench.summary

A figure whose benchmark did not run (or ran without the step it needs) shows `-`. Writes bench/results/summary.json
and .md. Asserts nothing: the goals are the performance issue's, the values this machine's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from bench import report
from bench.report import RESULTS

Figure = tuple[str, str, float, Callable[[dict[str, Any]], float | None], str]


def _load(name: str) -> Any:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text())["results"] if path.exists() else None


def _step(rows: list[dict[str, Any]] | None, **match: Any) -> dict[str, Any] | None:
    for row in rows or []:
        if all(row.get(key) == value for key, value in match.items()):
            return row
    return None


def _402_cpu(r: dict[str, Any]) -> float | None:
    run = (r.get("request_rate") or {}).get("runs", {}).get("api_402")
    return run.get("server_cpu_us_per_request") if run else None


def _402_ratio(r: dict[str, Any]) -> float | None:
    return (r.get("request_rate") or {}).get("ratio_402_to_hello")


def _paid_cpu(r: dict[str, Any]) -> float | None:
    """The gateway's CPU per paid call (API, Redis, workers and its caller's client) less the direct SDK call's
    caller, at zero upstream latency, one worker."""
    gateway = _step(r.get("throughput"), what="gateway", latency_ms=0, workers=1)
    direct = _step(r.get("throughput"), what="direct SDK")
    if gateway is None or direct is None:
        return None
    cpu = gateway["cpu_ms_per_call"]
    spent = sum(cpu.get(name, 0.0) for name in ("api", "redis", "workers", "client"))
    return round(spent - direct["cpu_ms_per_call"].get("client", 0.0), 2)


def _added(callers: int) -> Callable[[dict[str, Any]], float | None]:
    def value(r: dict[str, Any]) -> float | None:
        row = _step(r.get("added_latency"), concurrency=callers)
        return row.get("added_p50_ms") if row else None

    return value


def _in_flight(r: dict[str, Any]) -> float | None:
    rows = [row for row in r.get("throughput") or [] if row.get("running_peak") is not None and row["workers"] == 1]
    return max((row["running_peak"] for row in rows), default=None)


def _cpu_at_1000_over_256(r: dict[str, Any]) -> float | None:
    many = _step(r.get("throughput"), what="gateway", latency_ms=1200, workers=1, callers=1024)
    some = _step(r.get("throughput"), what="gateway", latency_ms=1200, workers=1, callers=256)
    if many is None or some is None:
        return None
    total = sum(many["cpu_ms_per_call"].get(n, 0.0) for n in ("api", "redis", "workers"))
    base = sum(some["cpu_ms_per_call"].get(n, 0.0) for n in ("api", "redis", "workers"))
    return round(total / base, 2) if base else None


def _limit_share(r: dict[str, Any]) -> float | None:
    run = r.get("rate_limit")
    return round(100 * run["achieved_qps"] / run["qps_limit"], 1) if run else None


def _throttled(r: dict[str, Any]) -> float | None:
    run = r.get("rate_limit")
    return run["throttled_by_upstream"] if run else None


def _worst_window(r: dict[str, Any]) -> float | None:
    run = r.get("rate_limit")
    return run["worst_one_second_window"] - run["qps_limit"] if run else None


def _redis_cpu(r: dict[str, Any]) -> float | None:
    gateway = _step(r.get("throughput"), what="gateway", latency_ms=0, workers=1)
    return gateway["cpu_ms_per_call"].get("redis") if gateway else None


def _redis_commands(r: dict[str, Any]) -> float | None:
    run = r.get("redis_cost")
    return run["gateway"]["paid_call"]["commands_per_call"] if run else None


def _batch_ratio(r: dict[str, Any]) -> float | None:
    run = r.get("batch_isolation")
    if not run:
        return None
    return round(run["during_batch"]["same_action"]["p50_ms"] / run["alone"]["same_action"]["p50_ms"], 2)


def _batch_items(r: dict[str, Any]) -> float | None:
    run = r.get("batch_isolation")
    return run["items"] if run else None


# (figure, the goal as written, the goal's number, how today's value is read, "max" or "min": which side passes)
FIGURES: list[Figure] = [
    ("1. 402: server CPU per answer, µs", "≤ 120", 120, _402_cpu, "max"),
    ("1. 402: requests/s as a share of hello's", "≥ 0.4", 0.4, _402_ratio, "min"),
    ("2. paid call: gateway CPU beyond the direct SDK call, ms", "≤ 1.3", 1.3, _paid_cpu, "max"),
    ("2. paid call: added latency p50 at 1 caller, ms", "≤ 3", 3, _added(1), "max"),
    ("2. paid call: added latency p50 at 64 callers, ms", "≤ 25", 25, _added(64), "max"),
    ("3. calls in flight in one worker at 1.2 s (running-jobs gauge)", "≥ 1000", 1000, _in_flight, "min"),
    ("3. CPU per call at 1,024 callers / at 256", "≤ 1.0", 1.0, _cpu_at_1000_over_256, "max"),
    ("4. limiter: share of the configured QPS used, %", "≥ 97.5", 97.5, _limit_share, "min"),
    ("4. limiter: calls throttled upstream", "0", 0, _throttled, "max"),
    ("4. limiter: worst 1-s window above the limit", "≤ 0", 0, _worst_window, "max"),
    ("5. Redis CPU per paid call, ms", "≤ 0.25", 0.25, _redis_cpu, "max"),
    ("5. Redis commands per paid call", "≤ 30", 30, _redis_commands, "max"),
    ("6. single call during a batch: p50 / alone", "≤ 2", 2, _batch_ratio, "max"),
    ("6. items in that batch", "≥ 10000", 10000, _batch_items, "min"),
]


def summarise() -> list[dict[str, Any]]:
    results = {
        name: _load(name)
        for name in ("request_rate", "added_latency", "throughput", "rate_limit", "redis_cost", "batch_isolation")
    }
    rows = []
    for figure, goal, number, read, side in FIGURES:
        value = read(results)
        if value is None:
            rows.append({"figure": figure, "goal": goal, "value": None, "ratio": None, "met": None})
            continue
        ratio = round(value / number, 2) if number else None
        met = value <= number if side == "max" else value >= number
        rows.append({"figure": figure, "goal": goal, "value": value, "ratio": ratio, "met": met})
    return rows


def main() -> None:
    rows = summarise()
    table = report.table(
        ["figure", "goal", "today", "today / goal", "met"],
        [
            [r["figure"], r["goal"], "-" if r["value"] is None else r["value"], "-" if r["ratio"] is None else
             r["ratio"], "-" if r["met"] is None else ("yes" if r["met"] else "no")]
            for r in rows
        ],
    )  # fmt: skip
    report.write(
        "summary", rows, [("The goals of the performance issue, and today's figures", table)], report.machine()
    )


if __name__ == "__main__":
    main()
