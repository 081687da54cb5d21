"""Per-(access key, action) QPS limit, like Alibaba's flow control: over it, Throttling.User.

A strict sliding one-second window: a call is accepted when fewer than `qps` calls of the same access key and
action were accepted in the second before it. That is never looser than Alibaba's per-second window, so a gateway
that passes here passes there. Throttled calls do not use up the window (they are not billed upstream either).
"""

from __future__ import annotations

from collections import deque

WINDOW_S = 1.0


class RateLimiter:
    def __init__(self) -> None:
        self._accepted: dict[tuple[str, str], deque[float]] = {}

    def try_acquire(self, key_id: str, action: str, qps: int, now: float) -> bool:
        window = self._accepted.setdefault((key_id, action), deque())
        while window and window[0] <= now - WINDOW_S:
            window.popleft()
        if len(window) >= qps:
            return False
        window.append(now)
        return True

    def clear(self) -> None:
        self._accepted.clear()
