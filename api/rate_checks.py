"""GCRA checks of request rates (an API key's, a client address's) against Redis, for the price of as few Redis
calls as the limit allows.

Two things keep a check off Redis:
- **Gathering.** The checks that reach Redis in one turn of the event loop go as one CHECK_RATE call
  (shared/lua/rate_check.lua), in the order they came, a key's checks together: the same answers as one call
  each, for one round trip and one script call (about 60 µs of the API's CPU each, with redis-py).
- **Leases.** A caller that keeps this process busy gets, with its next answer, up to `RateChecks.LEASE_S` worth
  of its recent rate in requests more (at most `MAX_LEASE`, and at most an eighth of its burst, so a burst under 8
  is never leased): Redis counts them at once, and this process lets the caller's next requests go against them,
  with no Redis call, until they are used or `LEASE_S` has passed (then what is left is dropped, never given
  back: a caller can only lose a lease, not gain one). A refusal is kept too: until the wait Redis named is
  over, every check of that key is refused here, with the wait that is left (a refused request changes nothing in
  Redis, and a key's limit only moves later when others spend it, so the refusal cannot end sooner).

What a lease changes, and its bound: the limit across processes is still exact (every request that goes was
counted in Redis); a request may go up to LEASE_S after Redis counted it, and a caller busy on two API
processes may be refused on one while the other holds unused tokens of its lease (at most MAX_LEASE, for at most
LEASE_S). Keys whose interval or burst differ from what a lease was taken for ask Redis again.
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
    """What this process holds of one key's limit: the tokens of its lease, a refusal, and the caller's demand
    since Redis last answered (to size the next lease). Times are the event loop's clock (seconds)."""

    __slots__ = ("answered", "burst", "expires", "interval_us", "refused_until", "remaining", "reset_us", "seen",
                 "tokens")  # fmt: skip

    def __init__(self, interval_us: int, burst: int) -> None:
        self.interval_us, self.burst = interval_us, burst
        self.tokens = 0  # counted in Redis, not yet used
        self.expires = 0.0  # tokens left then are dropped
        self.refused_until = 0.0  # every check before then is refused
        self.remaining, self.reset_us, self.answered = 0, 0, 0.0  # Redis's last answer, and when it came
        self.seen = 0  # checks since that answer

    def take(self, now: float) -> RateState | None:
        """The answer this process can give by itself (a refusal still running, or a token of the lease), else
        None: Redis must be asked."""
        if now < self.refused_until:
            wait_us = math.ceil((self.refused_until - now) * 1_000_000)
            return RateState(wait_us=wait_us, remaining=0, reset_us=max(wait_us, self._reset_left(now, 0)))
        self.seen += 1
        if self.tokens > 0:
            if now < self.expires:
                self.tokens -= 1
                return RateState(
                    wait_us=0, remaining=self.remaining + self.tokens, reset_us=self._reset_left(now, self.tokens)
                )
            self.tokens = 0
        return None

    def extra(self, now: float, cap: int, lease_s: float) -> int:
        """How many requests more than those waiting to ask for: the caller's rate since the last answer, over
        `lease_s`, at most `cap`."""
        if cap < 1 or self.answered == 0.0:
            return 0
        rate = self.seen / max(now - self.answered, 0.001)
        return min(cap, int(rate * lease_s))

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
    MAX_LEASE = 64
    MAX_HELD = 10_000  # keys held; past it expired ones go, and if that is not enough, all (leases lost, not gained)

    def __init__(self, script: Function, timeout_s: float = 0.5) -> None:
        self._script = script
        self._timeout_s = timeout_s
        self._pending: list[_Check] = []
        self._flushing_on: asyncio.AbstractEventLoop | None = None  # the loop a flush is scheduled on
        self._running: set[asyncio.Task[None]] = set()
        self._held: dict[str, _Held] = {}

    async def check(self, rate_key: str, interval_us: int, burst: int) -> RateState:
        loop = asyncio.get_running_loop()
        held = self._held.get(rate_key)
        if held is not None and held.interval_us == interval_us and held.burst == burst:
            state = held.take(loop.time())
            if state is not None:
                return state
        answer: asyncio.Future[RateState] = loop.create_future()
        if self._flushing_on is not loop:  # none scheduled (or on a loop that has gone): one on this loop
            self._pending = [entry for entry in self._pending if entry[3].get_loop() is loop]
            self._flushing_on = loop
            loop.call_soon(self._flush)
        self._pending.append((rate_key, interval_us, burst, answer))
        return await answer

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
        for (rate_key, interval_us, burst), answers in batch:
            held = self._held.get(rate_key)
            same = held is not None and held.interval_us == interval_us and held.burst == burst
            extra = held.extra(asked, min(self.MAX_LEASE, burst // 8), self.LEASE_S) if same and held else 0
            args += (interval_us, burst, len(answers) + extra)
        kind: type[redis.exceptions.RedisError] = redis.exceptions.ConnectionError
        reason: tuple[object, ...] = ("rate-limit check failed",)
        try:
            async with asyncio.timeout(self._timeout_s):
                replies = await self._script(keys=[rate_key for (rate_key, _, _), _ in batch], args=args)
            now = loop.time()
            for (limit, answers), reply in zip(batch, replies, strict=True):
                wait_us, remaining, reset_us, granted = (int(value) for value in reply)
                self._answer(now, limit, answers, (wait_us, remaining, reset_us, granted))
        except TimeoutError:
            kind, reason = redis.exceptions.TimeoutError, ("rate-limit check timed out",)
        except redis.exceptions.RedisError as exc:
            kind, reason = type(exc), exc.args
        finally:  # whatever ended this call, no check waits for ever; each waiter gets its own exception
            for _, answers in batch:
                for answer in answers:
                    if not answer.done():
                        answer.set_exception(kind(*reason))

    def _answer(
        self,
        now: float,
        limit: tuple[str, int, int],
        answers: list[asyncio.Future[RateState]],
        reply: tuple[int, int, int, int],
    ) -> None:
        """Hands a key's reply to its waiting checks, in order, and keeps the rest of the grant (or the refusal)."""
        rate_key, interval_us, burst = limit
        wait_us, remaining, reset_us, granted = reply
        served = min(granted, len(answers))
        if served < len(answers) and granted > 0:  # room for some: the rest wait for the interval after the last
            wait_us = max(1, reset_us + interval_us - interval_us * burst)
        for i, answer in enumerate(answers):
            if i < served:
                left = granted - i - 1  # the grant's tokens after this one, the caller's still
                state = RateState(wait_us=0, remaining=remaining + left, reset_us=max(0, reset_us - left * interval_us))
            else:
                state = RateState(wait_us=wait_us, remaining=0, reset_us=reset_us)
            if not answer.done():
                answer.set_result(state)
        held = self._hold(now, rate_key, interval_us, burst)
        held.remaining, held.reset_us, held.answered, held.seen = remaining, reset_us, now, 0
        held.tokens = (held.tokens if now < held.expires else 0) + granted - served
        held.expires = now + self.LEASE_S
        if served < len(answers):
            held.refused_until = now + wait_us / 1_000_000

    def _hold(self, now: float, rate_key: str, interval_us: int, burst: int) -> _Held:
        held = self._held.get(rate_key)
        if held is not None and held.interval_us == interval_us and held.burst == burst:
            return held
        if len(self._held) >= self.MAX_HELD:
            self._held = {
                key: entry
                for key, entry in self._held.items()
                if (entry.tokens and entry.expires > now) or entry.refused_until > now
            }
            if len(self._held) >= self.MAX_HELD:
                self._held.clear()
        held = self._held[rate_key] = _Held(interval_us, burst)
        return held
