"""UTC timestamps to the second, as the seed writes them (`2026-06-03T13:57:31Z`): one formatter for every answer
and record that shows one (payments, quality figures, worker heartbeats, catalog answers)."""

from __future__ import annotations

from datetime import UTC, datetime

ISO_SECONDS = "%Y-%m-%dT%H:%M:%SZ"


def utc_iso(moment: datetime | float | None = None) -> str:
    """`moment` as a datetime or as epoch milliseconds; now when None."""
    if moment is None:
        moment = datetime.now(UTC)
    elif not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment / 1000, UTC)
    return moment.astimezone(UTC).strftime(ISO_SECONDS)
