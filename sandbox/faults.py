"""Fault rules for tests and benchmarks, set through PUT /_sandbox/faults (see sandbox/admin.py).

One rule per action, or "*" for every action without its own rule (a rule for the action replaces "*" entirely,
except `qps`, which falls back to the "*" rule's and then to the configured default). Each rule has its own
random.Random seeded with `seed` (default 0) when it is set, so a given sequence of calls always meets the same
faults. Per call, in order: `failNext` (the next N calls answer 500 InternalError, exact), then one draw decides
hang / 5xx / throttle / non-JSON / refuse (403 InvalidApi.NotPurchase: not subscribed) by the cumulative rates
(their sum must be <= 1), then the latency is drawn.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import random
from collections.abc import Collection
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec

MAX_LATENCY_MS = 600_000.0
Rate = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
Millis = Annotated[float, msgspec.Meta(ge=0.0, le=MAX_LATENCY_MS)]


class LogNormal(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    median: Annotated[float, msgspec.Meta(gt=0.0, le=MAX_LATENCY_MS)]
    sigma: Annotated[float, msgspec.Meta(ge=0.0, le=5.0)]


class Latency(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    fixed: Millis | None = None
    uniform: tuple[Millis, Millis] | None = None
    lognormal: LogNormal | None = None

    def __post_init__(self) -> None:
        if sum(value is not None for value in (self.fixed, self.uniform, self.lognormal)) != 1:
            raise ValueError("latencyMs needs exactly one of fixed, uniform, lognormal")
        if self.uniform is not None and self.uniform[0] > self.uniform[1]:
            raise ValueError("latencyMs.uniform needs [low, high] with low <= high")

    def sample_s(self, rng: random.Random) -> float:
        if self.fixed is not None:
            millis = self.fixed
        elif self.uniform is not None:
            millis = rng.uniform(*self.uniform)
        else:
            assert self.lognormal is not None
            millis = rng.lognormvariate(0.0, self.lognormal.sigma) * self.lognormal.median
        return min(millis, MAX_LATENCY_MS) / 1000.0


class FaultRule(msgspec.Struct, frozen=True, rename="camel", forbid_unknown_fields=True, kw_only=True):
    action: str
    latency_ms: Latency | None = None
    error5xx_rate: Rate = 0.0
    status5xx: Literal[500, 503] = 500
    throttle_rate: Rate = 0.0
    hang_rate: Rate = 0.0
    non_json_rate: Rate = 0.0
    refuse_rate: Rate = 0.0  # answer 403 InvalidApi.NotPurchase: the gateway's account may not call this action
    fail_next: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 0
    qps: Annotated[int, msgspec.Meta(ge=1, le=100_000)] | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        total = self.hang_rate + self.error5xx_rate + self.throttle_rate + self.non_json_rate + self.refuse_rate
        if total > 1.0 + 1e-9:
            raise ValueError("hangRate + error5xxRate + throttleRate + nonJsonRate + refuseRate must not exceed 1")


class Outcome(enum.Enum):
    NONE = "none"
    FAIL_NEXT = "failNext"
    HANG = "hang"
    ERROR_5XX = "error5xx"
    THROTTLE = "throttle"
    NON_JSON = "nonJson"
    REFUSE = "refuse"


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    delay_s: float = 0.0
    status: int = 500


NO_FAULT = Decision(Outcome.NONE)


class _Active:
    def __init__(self, rule: FaultRule) -> None:
        self.rule = rule
        self.rng = random.Random(rule.seed)
        self.remaining_fail = rule.fail_next

    def decide(self) -> Decision:
        rule = self.rule
        if self.remaining_fail > 0:
            self.remaining_fail -= 1
            outcome = Outcome.FAIL_NEXT
        else:
            outcome = self._draw()
        delay = rule.latency_ms.sample_s(self.rng) if rule.latency_ms is not None else 0.0
        return Decision(outcome, delay, 500 if outcome is Outcome.FAIL_NEXT else rule.status5xx)

    def _draw(self) -> Outcome:
        rule = self.rule
        draw = self.rng.random()
        for rate, outcome in (
            (rule.hang_rate, Outcome.HANG),
            (rule.error5xx_rate, Outcome.ERROR_5XX),
            (rule.throttle_rate, Outcome.THROTTLE),
            (rule.non_json_rate, Outcome.NON_JSON),
            (rule.refuse_rate, Outcome.REFUSE),
        ):
            if draw < rate:
                return outcome
            draw -= rate
        return Outcome.NONE


class FaultTable:
    def __init__(self, known_actions: Collection[str]) -> None:
        self._known = frozenset(known_actions)
        self._active: dict[str, _Active] = {}

    def put(self, rule: FaultRule) -> None:
        if rule.action != "*" and rule.action not in self._known:
            raise ValueError(f"unknown action {rule.action!r}: use '*' or one of the catalog's actions")
        self._active[rule.action] = _Active(rule)

    def clear(self, action: str | None = None) -> None:
        if action is None:
            self._active.clear()
        else:
            self._active.pop(action, None)

    def describe(self) -> list[dict[str, Any]]:
        return [
            {**msgspec.to_builtins(active.rule), "remainingFailNext": active.remaining_fail}
            for _, active in sorted(self._active.items())
        ]

    def qps(self, action: str) -> int | None:
        for key in (action, "*"):
            active = self._active.get(key)
            if active is not None and active.rule.qps is not None:
                return active.rule.qps
        return None

    def decide(self, action: str) -> Decision:
        active = self._active.get(action) or self._active.get("*")
        return NO_FAULT if active is None else active.decide()


class Hangs:
    """Calls held open by hangRate: released (answered 503) at shutdown or reset, else after `timeout_s`."""

    def __init__(self) -> None:
        self._release = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self.waiting = 0

    async def hold(self, timeout_s: float) -> None:
        release = self._release
        self.waiting += 1
        self._idle.clear()
        try:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(release.wait(), timeout_s)
        finally:
            self.waiting -= 1
            if self.waiting == 0:
                self._idle.set()

    async def release_all(self, timeout_s: float = 2.0) -> None:
        """Wake every held call and wait (at most timeout_s) until they have all let go."""
        self._release.set()
        self._release = asyncio.Event()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout_s)
