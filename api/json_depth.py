"""How deeply a JSON text nests, measured on the raw text before any decoder sees it.

The x402 SDK's EVM dependencies (py_ecc) raise Python's recursion limit to 100,000 when they are imported, so in
the API process the decoders' own recursion guards (msgspec's, the json module's) no longer stop before the C
stack overflows: 200 kB of nested arrays would crash the whole process. Real inputs nest a handful of levels (a
batch item's Tasks: 5), so every JSON text a caller sends (bodies, JSON lines, array parameters sent as strings,
x402 payment headers) is refused above MAX_DEPTH before it is decoded.
"""

from __future__ import annotations

import re

MAX_DEPTH = 64
NESTED_TOO_DEEPLY = f"request body is nested too deeply (more than {MAX_DEPTH} levels)"
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')  # a JSON string, escapes included: its brackets do not count
_BRACKET = re.compile(rb"[\[\]{}]")
_OPENING = frozenset(b"[{")


def too_deep(text: bytes | str, limit: int = MAX_DEPTH) -> bool:
    """Whether arrays and objects nest more than `limit` levels (in valid JSON; garbage may count either way)."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    depth = 0
    for match in _BRACKET.finditer(_STRING.sub(b"", raw)):
        if match.group()[0] in _OPENING:
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False
