"""The distributed upstream rate limit: a reserve-style GCRA in Redis, shared by every worker process.

Each call books the next free slot of its (access key, action) in one Lua script using Redis's clock
(shared/lua/reserve_slot.lua), then sleeps until the slot. Slots are spaced by 1/QPS seconds (plus a small safety
margin for network jitter), so all workers together stay under the limit and the upstream never has to throttle us.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

from redis.asyncio import Redis

from shared import keys
from shared.clock import monotonic
from shared.jobs import BookedSlot, SlotBooking
from shared.keys import registered
from shared.metrics import RATE_LIMIT_WAIT, WorkerMetrics

# Slots spaced `margin` (SERVER402_RATELIMIT_MARGIN, 1.02) times 1/QPS: the calls QPS apart are then `margin`
# seconds apart, so the upstream's one-second windows never see QPS + 1 calls as long as two calls' delays between
# their slot and their arrival upstream differ by less than margin - 1 seconds (20 ms). Half of that is for a late
# wake-up (a busy event loop): a call woken later than that after its slot books another (see acquire); the other
# half is for the way to the upstream (building, signing and sending the request). A machine whose processes starve
# each other for longer needs a wider margin (and leaves more of the limit unused: 1/margin of it is used).
MAX_REBOOKINGS = 5
MIN_LATE_S = 0.002  # (at a margin of 1.0 a call would otherwise always be "late")
# A batch item books only a slot at most this far ahead (or one interval, when that is longer), else it waits and
# asks again: batch items never queue up a backlog of booked slots that a single call would wait behind.
BATCH_HORIZON_S = 0.005
CANCELED = -2  # RESERVE_SLOT's answer for a job whose cancel was asked for


class SlotTooFar(Exception):
    """The next free slot is further away than the caller can wait."""


class CallCanceled(Exception):
    """The job's cancel was asked for (seen by the booking script): no call may be made."""


@dataclass(frozen=True)
class JobCall:
    """A job's call, for the booking script: the job's hash (its cancel flag)."""

    job_key: str


class RateLimiter:
    def __init__(
        self, redis: Redis, access_key_id: str, metrics: WorkerMetrics | None = None, *, margin: float
    ) -> None:
        self._reserve = registered(redis, keys.RESERVE_SLOT)
        self._margin = margin
        self._late_s = max((margin - 1) / 2, MIN_LATE_S)  # how late after its slot a call may go (comment above)
        self._access_key_id = access_key_id
        self._metrics = metrics

    def interval_us(self, qps: float) -> int:
        return int(1_000_000 / qps * self._margin)

    def horizon_us(self, qps: float) -> int:
        """The longest a batch item's booking may wait (see acquire)."""
        return max(self.interval_us(qps), int(BATCH_HORIZON_S * 1_000_000))

    def booking(self, action: str, qps: float, *, cap_s: float) -> SlotBooking:
        """A job's first booking, for START_JOB to make as the job starts (one round trip fewer); its answer goes to
        `acquire(booked=...)`. The same slot, interval and longest wait as acquire's own first booking: the
        horizon applies when the job's record says it is a batch item, as `acquire(batch=record.batch)` does."""
        return SlotBooking(
            limiter=keys.rate_limit_key(self._access_key_id, action),
            interval_us=self.interval_us(qps),
            cap_us=int(cap_s * 1_000_000),
            horizon_us=self.horizon_us(qps),
        )

    async def acquire(
        self,
        action: str,
        qps: float,
        *,
        max_wait_s: float,
        job: JobCall | None = None,
        batch: bool = False,
        booked: BookedSlot | None = None,
    ) -> bool:
        """Wait for this call's slot. Raises SlotTooFar past `max_wait_s`, and for a `job` whose cancel was asked
        for, CallCanceled. Returns True when the booking script let the job's call through itself (its slot was
        free at once: cancel flag checked); False when it waited, so the caller checks (JobStore.begin_call).

        A call that gets to go well after its slot (a busy event loop) does not go out late: arriving late next to
        an on-time call would put QPS + 1 calls into one of the upstream's one-second windows. It books the next
        free slot instead (the missed one stays unused). A slot's time is when the booking's answer arrived plus
        its wait, so a call that reaches this point late (after START_JOB booked its slot) is late too.

        A `batch` item books only a slot within BATCH_HORIZON_S (or one interval), and otherwise waits about that
        long and asks again: the slots booked ahead are never more than that, so a single call of the same action
        waits at most that long behind a batch (isolation by design; the batch still gets every free slot).

        `booked`: the booking START_JOB made for the job (see `booking`), taken for this call's first booking."""
        interval_us = self.interval_us(qps)
        horizon_us = self.horizon_us(qps) if batch else None
        started = monotonic()
        booking = [keys.rate_limit_key(self._access_key_id, action), job.job_key if job is not None else ""]
        checked = False  # the script checked the cancel flag just before the call goes
        rebookings = 0
        while rebookings < MAX_REBOOKINGS:
            remaining_us = max(0, int((max_wait_s - (monotonic() - started)) * 1_000_000))
            may_wait_us = min(remaining_us, horizon_us) if horizon_us is not None else remaining_us
            if booked is not None:  # START_JOB booked it (its cancel flag read in the same step)
                wait_us, answered, booked = booked.wait_us, booked.at, None
            else:
                wait_us = int(await self._reserve(keys=booking, args=[interval_us, may_wait_us]))
                answered = monotonic()
            if wait_us == CANCELED:
                raise CallCanceled(action)
            if wait_us < 0 and horizon_us is not None and remaining_us > horizon_us:
                pause_us = min(random.uniform(0.5, 1.5) * horizon_us, remaining_us - horizon_us)  # within max_wait
                await asyncio.sleep(pause_us / 1_000_000)  # a batch item asks again
                continue
            if wait_us < 0:
                raise SlotTooFar(action)
            rebookings += 1
            checked = wait_us == 0 and job is not None
            slot = answered + wait_us / 1_000_000
            while (ahead := slot - monotonic()) > 0:  # noqa: ASYNC110 (uvloop's timers fire to the ms: again)
                await asyncio.sleep(ahead)
            if monotonic() - slot <= self._late_s:
                break
            checked = False  # late: the next booking decides
        if self._metrics is not None:
            self._metrics.observe(RATE_LIMIT_WAIT, (action,), monotonic() - started)
        return checked
