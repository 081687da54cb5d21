"""What one catalog search costs in CPU: µs per `SearchIndex.search` call for normal and hostile queries, in
process (no HTTP), optionally beside the search code of another git revision measured in the same run.

    .venv/bin/python -m bench.search_cost [--against HEAD] [--seconds 0.5]

`--against REV` loads api/search.py and api/search_terms.py as they are at REV (git show) under other module
names and times both on the same catalog, query by query, alternating so that other load on the cores hits both
alike. Figures are process CPU time (time.process_time) per call, the best of three rounds. Asserts nothing; writes
bench/results/search_cost.json and .md. For scale: an unpaid call's 402 answer costs about 300 µs of server CPU.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import string
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from types import ModuleType
from typing import Any

from api.search import SearchIndex
from bench import report
from bench.stack import ROOT
from shared.catalog import Catalog
from shared.config import Settings

ROUNDS = 3
COMMON = ("aliyun api facebody send face return photo url image vision computer person id people one result name "
          "database detection score check gallery each management analysis detect data list per db recognition up "
          "user create entity label search before body")  # fmt: skip


def queries() -> dict[str, str]:
    rnd = random.Random(402)

    def word(size: int) -> str:
        return "".join(rnd.choice(string.ascii_lowercase) for _ in range(size))

    many = " ".join(word(rnd.randint(5, 12)) for _ in range(250))[:2000]
    return {
        "face": "face",
        "人脸比对": "人脸比对",
        "body-pose-estimation": "body-pose-estimation",
        "liveness detecion (typo)": "liveness detecion",
        "I want to compare two faces": "I want to compare two faces",
        "one 256-letter word": word(256),
        "256 chars of 5-letter words": " ".join(word(5) for _ in range(43))[:256],
        "256 chars of 16-letter words": " ".join(word(16) for _ in range(16))[:256],
        "'face ' x 51": "face " * 51,
        "39 common words (each in most services)": COMMON,
        "256 Chinese characters": "人脸比对活体检测美颜换脸" * 21 + "人脸比对",
        "'㍿' x 256 (NFKC: 1024 chars)": "㍿" * 256,
        "2000 chars of words": many,
    }


def baseline(rev: str) -> type[Any]:
    """SearchIndex as it is at `rev`, importing that revision's search_terms."""
    terms = _load("_baseline_search_terms", _git_show(rev, "api/search_terms.py"))
    sys.modules[terms.__name__] = terms
    source = _git_show(rev, "api/search.py").replace("from api.search_terms ", f"from {terms.__name__} ")
    index_class: type[Any] = _load("_baseline_search", source).SearchIndex
    return index_class


def _git_show(rev: str, path: str) -> str:
    return subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, check=True, capture_output=True, text=True).stdout


def _load(name: str, source: str) -> ModuleType:
    spec = importlib.util.spec_from_loader(name, loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)
    return module


def cpu_us(calls: dict[str, Callable[[], object]], seconds: float) -> dict[str, float]:
    """CPU µs per call of each: the best of ROUNDS rounds of about `seconds` each, the calls taking turns."""
    counts = {label: max(1, int(seconds / _once(call))) for label, call in calls.items()}
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(ROUNDS):
        for label, call in calls.items():
            started = time.process_time()
            for _ in range(counts[label]):
                call()
            best[label] = min(best[label], (time.process_time() - started) / counts[label])
    return {label: value * 1e6 for label, value in best.items()}


def _once(call: Callable[[], object]) -> float:
    started = time.process_time()
    call()
    return max(time.process_time() - started, 1e-6)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--against", help="a git revision whose search code to time beside this one's")
    parser.add_argument("--seconds", type=float, default=0.5, help="per query, per round")
    args = parser.parse_args()
    host = report.machine()
    services = Catalog.load(Settings.from_env({}).operator_file).services
    indexes: dict[str, Any] = {"now": SearchIndex(services)}
    if args.against:
        indexes = {args.against: baseline(args.against)(services), **indexes}
    figures: list[dict[str, Any]] = []
    for name, query in queries().items():
        timings = cpu_us({label: partial(index.search, query) for label, index in indexes.items()}, args.seconds)
        figures.append({"query": name, "chars": len(query), **{f"{k}_us": round(v) for k, v in timings.items()}})
    header = ["query", "chars", *(f"{label} µs" for label in indexes)]
    rows = [[row["query"], row["chars"], *(row[f"{label}_us"] for label in indexes)] for row in figures]
    report.write("search_cost", figures, [("CPU per search call", report.table(header, rows))], host)


if __name__ == "__main__":
    main()
