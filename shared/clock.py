"""Every timestamp server402 writes, in UTC, in one module:

utc_iso   to the second, as the seed writes them (`2026-06-03T13:57:31Z`): payments, quality figures, worker
          heartbeats, catalog answers, webhooks
iso_ms    to the millisecond (`2026-06-03T13:57:31.042Z`): jobs, MCP tasks, the ledger and settlements
iso_us    to the microsecond: API key records

and the one clock upstream slots are timed by (`monotonic`).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

ISO_SECONDS = "%Y-%m-%dT%H:%M:%SZ"


def utc_iso(moment: datetime | float | None = None) -> str:
    """`moment` as a datetime or as epoch milliseconds; now when None."""
    if moment is None:
        moment = datetime.now(UTC)
    elif not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment / 1000, UTC)
    return moment.astimezone(UTC).strftime(ISO_SECONDS)


def iso_ms(ms: int | None) -> str | None:
    """Epoch milliseconds to the millisecond (None stays None)."""
    if ms is None:
        return None
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def iso(ms: int) -> str:
    return iso_ms(ms) or ""


def iso_us() -> str:
    """Now, to the microsecond."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def monotonic() -> float:
    """Seconds on the clock the upstream limiter times its slots by (workers/ratelimit.py): `time.monotonic`, not
    the event loop's time. uvloop's loop counts whole milliseconds and its timers fire to the millisecond, so a
    slot timed by it could pass up to a millisecond or two early; asyncio's loop time is this clock."""
    return time.monotonic()
