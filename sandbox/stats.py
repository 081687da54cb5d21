"""Per-action call counters for GET /_sandbox/stats.

Every call that names a known action is counted once in `calls` and, when answered, in exactly one of `ok`
(HTTP 200), `throttled` (Throttling.User, from the limiter or an injected fault) or `errors` (any other answer);
`faults` counts calls a fault rule changed (latency only does not count). A hung call stays in `calls` only.
`maxPerSecond` is the largest number of calls the QPS limiter accepted within any sliding one-second window:
what a test checks to see that the gateway respected the limit. `connections` (in the totals) counts the TCP
connections the calls came on since the last reset (each connection's transport, remembered while it lives): a
caller that keeps its connections makes fewer than one a call.
"""

from __future__ import annotations

import weakref
from typing import Any

import msgspec

from sandbox.limits import Arrivals


class ActionStats(msgspec.Struct, rename="camel"):
    calls: int = 0
    ok: int = 0
    throttled: int = 0
    errors: int = 0
    faults: int = 0
    max_per_second: int = 0


class Stats:
    def __init__(self) -> None:
        self._actions: dict[str, ActionStats] = {}
        self._accepted: dict[str, Arrivals] = {}
        self._connections: weakref.WeakSet[object] = weakref.WeakSet()
        self._connection_count = 0

    def call(self, action: str, *, connection: object = None) -> None:
        """`connection`: the transport the call came on (asyncio's, which takes weak references), None when not
        known."""
        self._for(action).calls += 1
        if connection is not None and connection not in self._connections:
            self._connections.add(connection)
            self._connection_count += 1

    def accepted(self, action: str, now: float) -> None:
        """`now`: when the call arrived (sandbox/limits.py)."""
        window = self._accepted.setdefault(action, Arrivals())
        stats = self._for(action)
        stats.max_per_second = max(stats.max_per_second, window.busiest(now))
        window.add(now)

    def answered(self, action: str, status: int, code: str, fault: bool) -> None:
        stats = self._for(action)
        if status == 200:
            stats.ok += 1
        elif code == "Throttling.User":
            stats.throttled += 1
        else:
            stats.errors += 1
        if fault:
            stats.faults += 1

    def fault(self, action: str) -> None:
        self._for(action).faults += 1

    def snapshot(self) -> dict[str, Any]:
        actions = {name: msgspec.to_builtins(stats) for name, stats in sorted(self._actions.items())}
        totals = ActionStats()
        for stats in self._actions.values():
            totals.calls += stats.calls
            totals.ok += stats.ok
            totals.throttled += stats.throttled
            totals.errors += stats.errors
            totals.faults += stats.faults
            totals.max_per_second = max(totals.max_per_second, stats.max_per_second)
        return {"actions": actions, "totals": {**msgspec.to_builtins(totals), "connections": self._connection_count}}

    def clear(self) -> None:
        self._actions.clear()
        self._accepted.clear()
        self._connections.clear()
        self._connection_count = 0

    def _for(self, action: str) -> ActionStats:
        return self._actions.setdefault(action, ActionStats())
