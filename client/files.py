"""Writing a file whole or not at all, for the command lines (ledger exports, batch results)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO


@contextmanager
def output(path: str | None) -> Iterator[TextIO]:
    """stdout, or FILE written as FILE.partial and renamed once complete (a failure leaves no FILE). Lines are
    written as given (`newline=""`, as the csv module needs)."""
    if path is None:
        yield sys.stdout
        return
    partial = Path(f"{path}.partial")
    try:
        with partial.open("w", encoding="utf-8", newline="") as out:
            yield out
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(path)
