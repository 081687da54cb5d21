"""Per-(access key, action) QPS limit, like Alibaba's flow control: over it, Throttling.User.

A strict sliding one-second window: a call is accepted when fewer than `qps` calls of the same access key and
action were accepted in the second before it (and, for a call handled after later ones, in every second that
would hold it). That is never looser than Alibaba's per-second window, so a gateway
that passes here passes there. Throttled calls do not use up the window (they are not billed upstream either).

Calls are timed as they arrived (the middleware's time), as flow control in front of a service would time them,
not when their handler got to the limiter: so two handlers may run in the other order than their calls arrived,
and `Arrivals` keeps the times in order and checks every window the new one falls into.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort

WINDOW_S = 1.0
KEPT_S = 2 * WINDOW_S  # arrivals kept behind the latest one (a handler that ran late still sees its window)


class Arrivals:
    """Accepted calls' arrival times, in order."""

    def __init__(self) -> None:
        self._times: list[float] = []

    def busiest(self, at: float) -> int:
        """The most calls one sliding window (t - 1 s, t] that holds `at` would count with a call at `at` added:
        the window ending at `at`, and those ending at the arrivals after it (none when calls came in order)."""
        times = self._times
        after = bisect_right(times, at)
        most = after - bisect_right(times, at - WINDOW_S) + 1
        for later in times[after : bisect_left(times, at + WINDOW_S)]:
            most = max(most, bisect_right(times, later) - bisect_right(times, later - WINDOW_S) + 1)
        return most

    def add(self, at: float) -> None:
        insort(self._times, at)
        latest = self._times[-1]
        if self._times[0] <= latest - 2 * KEPT_S:  # (now and then: each removal moves the whole list)
            del self._times[: bisect_right(self._times, latest - KEPT_S)]


class RateLimiter:
    def __init__(self) -> None:
        self._accepted: dict[tuple[str, str], Arrivals] = {}

    def try_acquire(self, key_id: str, action: str, qps: int, now: float) -> bool:
        """`now`: when the call arrived."""
        window = self._accepted.setdefault((key_id, action), Arrivals())
        if window.busiest(now) > qps:
            return False
        window.add(now)
        return True

    def clear(self) -> None:
        self._accepted.clear()
