"""Where the CPU goes: py-spy samples each process of the stack while it serves unpaid 402s or paid calls, and
this prints, per process, the share of its samples under each of our functions (the deepest of ours on the
stack) and under each library.

    .venv/bin/pip install py-spy   # not a dependency of server402
    .venv/bin/python -m bench.profile [402|paid] [--seconds 6]

Starts its own processes like the other benchmarks (zero upstream latency, 64 callers); needs permission to ptrace
them (root, or kernel.yama.ptrace_scope=0). Writes the raw samples to bench/results/profile-<what>-<process>.txt
(flame-graph input) and the tables to bench/results/profile-<what>.md.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import re
import shutil
import subprocess
import sys
from pathlib import Path

from bench import report
from bench.request_rate import BODY, PRICED_TOOL
from bench.stack import ROOT, Stack
from bench.throughput import TOOL, Runner
from bench.wallet import PRICED_TERMS, buy_tokens

OURS = re.compile(r"\((api|shared|workers|client)/")
LIBRARY = re.compile(r"\(([^/()]+)/")


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise SystemExit("bench.profile needs py-spy: .venv/bin/pip install py-spy")
    return found


def record(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    command = [py_spy(), "record", "-p", str(pid), "-d", str(round(seconds)), "-r", "250", "--format", "raw"]
    return subprocess.Popen([*command, "-o", str(out), "--nonblocking"], stdout=subprocess.DEVNULL)


def shares(raw: Path, top: int = 15) -> tuple[list[list[str]], list[list[str]]]:
    """(our functions, libraries): each with its share of the process's samples."""
    ours: collections.Counter[str] = collections.Counter()
    libraries: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n, frames = int(count), stack.split(";")
        total += n
        owned = [frame for frame in frames if OURS.search(frame)]
        ours[re.sub(r":\d+\)", ")", owned[-1]) if owned else "(outside our code)"] += n
        leaf = LIBRARY.search(frames[-1])
        libraries[leaf.group(1) if leaf else "(interpreter)"] += n

    def pct(n: int) -> str:
        return f"{100 * n / max(total, 1):.1f}%"

    return ([[name, pct(n)] for name, n in ours.most_common(top)],
            [[name, pct(n)] for name, n in libraries.most_common(8)])  # fmt: skip


async def paid_load(stack: Stack, seconds: float) -> None:
    tokens = await buy_tokens(stack.api, stack.facilitator, TOOL, int(1000 * (seconds + 4)))
    runner = Runner(stack, tokens, warmup_s=1.0, seconds=seconds + 2)
    await runner._gateway(64)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("what", choices=["402", "paid"], nargs="?", default="paid")
    parser.add_argument("--seconds", type=float, default=6.0)
    args = parser.parse_args()
    host = report.machine()
    report.RESULTS.mkdir(parents=True, exist_ok=True)
    sections = []
    with Stack(terms=PRICED_TERMS, workers=0 if args.what == "402" else 1, facilitator=args.what == "paid") as stack:
        pids = stack.pids()
        processes = {"api": pids["api"][0]} if args.what == "402" else {
            "api": pids["api"][0], "worker": stack.workers[0].pid, "sandbox": pids["sandbox"][0]}  # fmt: skip
        if args.what == "402":
            load = subprocess.Popen(
                [sys.executable, "-m", "bench.loadgen", f"{stack.api}/api/tools/{PRICED_TOOL}", "--connections", "64",
                 "--seconds", str(args.seconds + 3), "--json", BODY], cwd=ROOT, stdout=subprocess.DEVNULL)  # fmt: skip
            asyncio.run(asyncio.sleep(1.5))
            spies = {name: record(pid, args.seconds, raw_path(args.what, name)) for name, pid in processes.items()}
            load.wait()
        else:

            async def run() -> None:
                loaded = asyncio.create_task(paid_load(stack, args.seconds))
                await asyncio.sleep(2.5)
                spies.update({name: record(pid, args.seconds, raw_path(args.what, name))
                              for name, pid in processes.items()})  # fmt: skip
                await loaded

            spies: dict[str, subprocess.Popen[bytes]] = {}
            asyncio.run(run())
        for spy in spies.values():
            spy.wait()
    for name in processes:
        ours, libraries = shares(raw_path(args.what, name))
        sections.append((f"{name}: samples under each of our functions", report.table(["function", "share"], ours)))
        sections.append((f"{name}: samples by library (the innermost frame)", report.table(["library", "share"],
                                                                                          libraries)))  # fmt: skip
    report.write(f"profile-{args.what}", {"processes": list(processes)}, sections, host)


def raw_path(what: str, process: str) -> Path:
    return report.RESULTS / f"profile-{what}-{process}.txt"


if __name__ == "__main__":
    main()
