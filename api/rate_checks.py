"""GCRA checks of request rates (an API key's, a client address's) against Redis, for the price of as few Redis
calls as the limit allows.

Three things keep a check off Redis:
- **Gathering.** The checks that reach Redis in one turn of the event loop go as one CHECK_RATE call
  (shared/lua/rate_check.lua), in the order they came, a key's checks together: the same answers as one call
  each, for one round trip and one script call (about 60 µs of the API's CPU each, with redis-py).
- **Leases.** A caller that sent this process at least `LEASE_MIN` requests in the last `LEASE_S` gets, with its
  next answer, as many more as it sent then, granted and counted by Redis at once; the process lets its next
  requests go against them, with no Redis call, until they are used or `LEASE_S` after they were asked for (then
  what is left is dropped, never given back: a caller can only lose a lease, not gain one). A lease is at most
  `MAX_LEASE`, an eighth of the burst (a burst under 8 is never leased) and `LEASE_S` worth of the rate (a limit of
  10 a second or slower is never leased); one key has at most one lease being asked for at a time.
- **Kept refusals.** Until the wait Redis named is over (at most `MAX_KEPT_REFUSAL_S`), every check of that key
  is refused here, with the wait that is left: a refused request changes nothing in Redis, and a key's next slot
  only moves later as others spend it.

What leases change, and their bound: every request that goes was counted in Redis, so over any stretch of time
no more go than the limit allows, across all API processes. At one moment, though, a request may go up to
`LEASE_S` after it was counted, while the limit has refilled: at most `LEASE_S` worth of the rate more than GCRA
alone would let through at once (2 with the anonymous defaults, 20/s). A caller busy on two API processes may be
refused by one while the other holds unused tokens of its lease. Keys whose interval or burst differ from what a
lease was taken for ask Redis again.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

import redis.exceptions

from shared.lua import Function


@dataclass(frozen=True)
class RateState:
    """One GCRA check, in microseconds of Redis's clock: `wait_us` 0 when the request may proceed (and it is
    counted), else the time until one may; `remaining` requests could still go at once; `reset_us` until the whole
    burst is available again."""

    wait_us: int
    remaining: int
    reset_us: int

    @property
    def wait_s(self) -> float:
        return self.wait_us / 1_000_000


class _Held:
    """What this process holds of one key's limit: the tokens of its lease, a refusal, Redis's last answer and
    the caller's recent demand. Times are the event loop's clock (seconds)."""

    __slots__ = ("answered", "asking", "burst", "expires", "interval_us", "last_count", "refused_until", "remaining",
                 "reset_us", "tokens", "window_count", "window_start")  # fmt: skip

    def __init__(self, interval_us: int, burst: int) -> None:
        self.interval_us, self.burst = interval_us, burst
        self.tokens = 0  # counted in Redis, not yet used
        self.expires = 0.0  # tokens left then are dropped
        self.refused_until = 0.0  # every check before then is refused
        self.remaining, self.reset_us, self.answered = 0, 0, 0.0  # Redis's last answer, and when it came
        self.asking = 0  # calls to Redis for this key under way
        self.window_start, self.window_count, self.last_count = 0.0, 0, 0  # checks in this window and the last

    def take(self, now: float, window_s: float) -> RateState | None:
        """The answer this process can give by itself (a refusal still running, or a token of the lease), else
        None: Redis must be asked."""
        if now < self.refused_until:
            wait_us = math.ceil((self.refused_until - now) * 1_000_000)
            return RateState(wait_us=wait_us, remaining=0, reset_us=max(wait_us, self._reset_left(now, 0)))
        if now - self.window_start >= window_s:  # a new window: the one that ended counts if it was the last
            self.last_count = self.window_count if now - self.window_start < 2 * window_s else 0
            self.window_start, self.window_count = now, 0
        self.window_count += 1
        if self.tokens > 0:
            if now < self.expires:
                self.tokens -= 1
                remaining = min(self.burst - 1, self.remaining + self.tokens)
                return RateState(wait_us=0, remaining=remaining, reset_us=self._reset_left(now, self.tokens))
            self.tokens = 0
        return None

    def extra(self, cap: int, least: int) -> int:
        """How many requests more than those waiting to ask for: what the caller sent in the last window (or this
        one, if more), when that is at least `least`, at most `cap`; none while another call is asking."""
        demand = max(self.last_count, self.window_count)
        return min(cap, demand) if self.asking == 0 and demand >= least else 0

    def _reset_left(self, now: float, tokens: int) -> int:
        # Redis's reset less the time since, and less the tokens still held here (they are the caller's)
        elapsed_us = int((now - self.answered) * 1_000_000)
        return max(0, self.reset_us - elapsed_us - tokens * self.interval_us)


_Check = tuple[str, int, int, "asyncio.Future[RateState]"]


class RateChecks:
    """The GCRA checks of one process (see the module's text). A check that waits longer than `timeout_s` for
    Redis fails with redis's TimeoutError; a lease or refusal held here answers even when Redis cannot."""

    MAX_BATCH = 256  # keys in one script call
    LEASE_S = 0.1
    LEASE_MIN = 4  # requests in LEASE_S (40 a second) before a caller is leased any
    MAX_LEASE = 64
    MAX_KEPT_REFUSAL_S = 1.0
    MAX_HELD = 10_000  # keys held; at it, those without a lease or refusal go, and all if half would stay

    def __init__(self, script: Function, timeout_s: float = 0.5) -> None:
        self._script = script
        self._timeout_s = timeout_s
        self._pending: list[_Check] = []
        self._flushing_on: asyncio.AbstractEventLoop | None = None  # the loop a flush is scheduled on
        self._running: set[asyncio.Task[None]] = set()
        self._held: dict[str, _Held] = {}

    async def check(self, rate_key: str, interval_us: int, burst: int) -> RateState:
        loop = asyncio.get_running_loop()
        now = loop.time()
        held = self._hold(now, rate_key, interval_us, burst)
        state = held.take(now, self.LEASE_S)
        if state is not None:
            return state
        answer: asyncio.Future[RateState] = loop.create_future()
        if self._flushing_on is not loop:  # none scheduled (or on a loop that has gone): one on this loop
            self._pending = [entry for entry in self._pending if entry[3].get_loop() is loop]
            self._flushing_on = loop
            loop.call_soon(self._flush)
        self._pending.append((rate_key, interval_us, burst, answer))
        return await answer

    def lease_cap(self, interval_us: int, burst: int) -> int:
        """The most a lease of this limit may hold: MAX_LEASE, an eighth of the burst, LEASE_S of the rate."""
        return min(self.MAX_LEASE, burst // 8, int(self.LEASE_S * 1_000_000) // interval_us)

    def _flush(self) -> None:
        pending, self._pending, self._flushing_on = self._pending, [], None
        groups: dict[tuple[str, int, int], list[asyncio.Future[RateState]]] = {}
        for rate_key, interval_us, burst, answer in pending:  # a key's checks together, keys in the order they came
            groups.setdefault((rate_key, interval_us, burst), []).append(answer)
        batch = list(groups.items())
        for start in range(0, len(batch), self.MAX_BATCH):
            task = asyncio.ensure_future(self._run(batch[start : start + self.MAX_BATCH]))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(self, batch: list[tuple[tuple[str, int, int], list[asyncio.Future[RateState]]]]) -> None:
        loop = asyncio.get_running_loop()
        asked = loop.time()
        args: list[int] = []
        holds: list[_Held] = []
        for (rate_key, interval_us, burst), answers in batch:
            held = self._hold(asked, rate_key, interval_us, burst)
            args += (interval_us, burst, len(answers) + held.extra(self.lease_cap(interval_us, burst), self.LEASE_MIN))
            held.asking += 1
            holds.append(held)
        kind: type[redis.exceptions.RedisError] = redis.exceptions.ConnectionError
        reason: tuple[object, ...] = ("rate-limit check failed",)
        try:
            async with asyncio.timeout(self._timeout_s):
                replies = await self._script(keys=[rate_key for (rate_key, _, _), _ in batch], args=args)
            for (_, answers), held, reply in zip(batch, holds, replies, strict=True):
                wait_us, remaining, reset_us, granted = (int(value) for value in reply)
                self._answer(asked, loop.time(), held, answers, (wait_us, remaining, reset_us, granted))
        except TimeoutError:
            kind, reason = redis.exceptions.TimeoutError, ("rate-limit check timed out",)
        except redis.exceptions.RedisError as exc:
            kind, reason = type(exc), exc.args
        except (TypeError, ValueError):  # not the reply the script gives: nobody is let through on it
            reason = ("rate-limit check got an unexpected reply",)
        finally:  # whatever ended this call, no check waits for ever; each waiter gets its own exception
            for held in holds:
                held.asking -= 1
            for _, answers in batch:
                for answer in answers:
                    if not answer.done():
                        answer.set_exception(kind(*reason))

    def _answer(
        self,
        asked: float,
        now: float,
        held: _Held,
        answers: list[asyncio.Future[RateState]],
        reply: tuple[int, int, int, int],
    ) -> None:
        """Hands a key's reply to its waiting checks, in order, and keeps the rest of the grant (or the refusal).
        A lease lasts from when it was asked for (Redis counted it after that), a refusal likewise."""
        interval_us, burst = held.interval_us, held.burst
        wait_us, remaining, reset_us, granted = reply
        served = min(granted, len(answers))
        if served < len(answers) and granted > 0:  # room for some: the rest wait for the interval after the last
            wait_us = max(1, reset_us + interval_us - interval_us * burst)
        for i, answer in enumerate(answers):
            if i < served:
                left = granted - i - 1  # the grant's tokens after this one, the caller's still
                state = RateState(wait_us=0, remaining=min(burst - 1, remaining + left),
                                  reset_us=max(0, reset_us - left * interval_us))  # fmt: skip
            else:
                state = RateState(wait_us=wait_us, remaining=0, reset_us=reset_us)
            if not answer.done():
                answer.set_result(state)
        held.remaining, held.reset_us, held.answered = remaining, reset_us, now
        if granted > served:  # a lease (only one call of a key asks for one at a time)
            held.tokens, held.expires = granted - served, asked + self.LEASE_S
        if served < len(answers):
            held.refused_until = asked + min(wait_us / 1_000_000, self.MAX_KEPT_REFUSAL_S)
        else:
            held.refused_until = 0.0

    def _hold(self, now: float, rate_key: str, interval_us: int, burst: int) -> _Held:
        held = self._held.get(rate_key)
        if held is not None and held.interval_us == interval_us and held.burst == burst:
            return held
        if len(self._held) >= self.MAX_HELD:  # what holds nothing goes; if half would stay, all go (amortised O(1))
            live = {key: entry for key, entry in self._held.items()
                    if (entry.tokens and entry.expires > now) or entry.refused_until > now}  # fmt: skip
            self._held = live if len(live) < self.MAX_HELD // 2 else {}
        held = self._held[rate_key] = _Held(interval_us, burst)
        return held
