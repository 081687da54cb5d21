"""Benchmark results: each benchmark writes bench/results/<name>.json (the figures) and <name>.md (its Markdown
tables, as printed), and prints the tables."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import msgspec

from bench.stack import ROOT

RESULTS = ROOT / "bench" / "results"


def table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """What the figures were measured on: other load on the same cores shows in the load average."""
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else []
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_average_before": [float(value) for value in load],
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write(name: str, figures: Any, sections: list[tuple[str, str]], host: dict[str, Any]) -> None:
    """Write <name>.json and <name>.md; print the Markdown. `sections`: (title, Markdown table)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    document = {"benchmark": name, "machine": host, "results": msgspec.to_builtins(figures)}
    (RESULTS / f"{name}.json").write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    loads = " ".join(str(value) for value in host["load_average_before"])
    text = f"# {name}\n\n{host['cpus']} CPUs, Python {host['python']}, load average before: {loads}\n"
    for title, body in sections:
        text += f"\n## {title}\n\n{body}\n"
    (RESULTS / f"{name}.md").write_text(text)
    print(text)
