"""Prometheus metrics from every process, scraped in one place: `GET /metrics` on the API.

The API keeps its own in prometheus-client (`ApiMetrics`); workers add theirs up in memory and write them to Redis
every FLUSH_INTERVAL_S in one round trip (`WorkerMetrics`), and the API reads them back when scraped. Every label
has a small, fixed set of values. More, and the Redis layout: docs/architecture.md, "Processes" and "Redis".
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.keys import PREFIX, RUNNING_JOBS

KEY_PREFIX = f"{PREFIX}:metrics:"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
SEPARATOR = "|"
RUNNING_KEEP_MS = 60_000  # the running counts' hash outlives its last write by this much
RUNNING_REFRESH_S = 10.0  # a worker's unchanged count above 0 is written again this often
FLUSH_INTERVAL_S = 1.0  # how stale a worker's figures in /metrics may be (scrapers ask every 15 s or so)

log = structlog.get_logger("shared.metrics")


@dataclass(frozen=True)
class WorkerMetric:
    name: str
    kind: Literal["histogram", "counter"]
    help: str
    labels: tuple[str, ...]


UPSTREAM_CALL = WorkerMetric(
    "server402_upstream_call_duration_seconds",
    "histogram",
    "Upstream (Alibaba) calls by action and outcome (ok, client_error, server_error, throttled, unavailable).",
    ("action", "outcome"),
)
RATE_LIMIT_WAIT = WorkerMetric(
    "server402_ratelimit_wait_seconds",
    "histogram",
    "Time a worker waited for its slot of the distributed upstream rate limit, by action.",
    ("action",),
)
QUEUE_WAIT = WorkerMetric(
    "server402_queue_wait_seconds",
    "histogram",
    "Time from a job's creation to the start of its first attempt, by service.",
    ("service",),
)
JOBS_FINISHED = WorkerMetric(
    "server402_jobs_finished_total",
    "counter",
    "Jobs that ended, by service and status (succeeded, failed, canceled, expired).",
    ("service", "status"),
)
WORKER_METRICS: tuple[WorkerMetric, ...] = (UPSTREAM_CALL, RATE_LIMIT_WAIT, QUEUE_WAIT, JOBS_FINISHED)


class WorkerMetrics:
    """What workers observe, added up in memory and flushed into Redis, where every worker's figures add up.

    `observe` and `inc` cost no round trip; `start` flushes every `interval_s` until `stop` (which flushes what is
    left) or until the task it is tied to ends. Figures that cannot be written (Redis away) are kept for the next
    flush, so an outage delays them; only a worker that stops while Redis is away (it is replaced after losing
    Redis) drops its last unwritten second, and logs it."""

    def __init__(
        self,
        redis: Redis,
        *,
        interval_s: float = FLUSH_INTERVAL_S,
        running: Callable[[], int] | None = None,
        worker_id: str = "",
    ) -> None:
        """`running`: how many jobs the worker holds now, written with each flush when it changed (under
        `worker_id`, its heartbeat's: read_running_jobs counts only live workers')."""
        self.redis = redis
        self._interval_s = interval_s
        self._running, self._worker_id = running, worker_id
        self._running_written: int | None = None
        self._running_written_at = 0.0  # (time.monotonic)
        self._counts: defaultdict[tuple[str, str], int] = defaultdict(int)  # (hash, field) -> increment
        self._sums: defaultdict[tuple[str, str], float] = defaultdict(float)
        self._task: asyncio.Task[None] | None = None

    def observe(self, metric: WorkerMetric, labels: Sequence[str], seconds: float) -> None:
        index = bisect.bisect_left(LATENCY_BUCKETS, seconds)
        le = repr(LATENCY_BUCKETS[index]) if index < len(LATENCY_BUCKETS) else "+Inf"
        key, prefix = KEY_PREFIX + metric.name, SEPARATOR.join(labels)
        self._counts[key, f"{prefix}{SEPARATOR}{le}"] += 1
        self._counts[key, f"{prefix}{SEPARATOR}count"] += 1
        self._sums[key, f"{prefix}{SEPARATOR}sum"] += seconds

    def inc(self, metric: WorkerMetric, labels: Sequence[str], amount: int = 1) -> None:
        self._counts[KEY_PREFIX + metric.name, SEPARATOR.join(labels)] += amount

    async def flush(self) -> None:
        """Write what was observed since the last flush, in one round trip (MULTI/EXEC: all of it or none)."""
        counts, sums = self._counts, self._sums
        running = self._running() if self._running is not None else None
        now = time.monotonic()
        # written when it changed, and a count above 0 again every RUNNING_REFRESH_S (the hash's TTL is renewed
        # by every write: a worker holding the same jobs for long keeps it, and its count, alive)
        stale = bool(running) and now - self._running_written_at >= RUNNING_REFRESH_S
        write_running = running is not None and (running != self._running_written or stale)
        if not counts and not sums and not write_running:
            return
        self._counts, self._sums = defaultdict(int), defaultdict(float)
        pipe = self.redis.pipeline(transaction=True)
        if write_running:
            pipe.hset(RUNNING_JOBS, self._worker_id, str(running))
            pipe.pexpire(RUNNING_JOBS, RUNNING_KEEP_MS)
        for (key, field), amount in counts.items():
            pipe.hincrby(key, field, amount)
        for (key, field), total in sums.items():
            pipe.hincrbyfloat(key, field, total)
        try:
            await pipe.execute()
            if write_running:
                self._running_written, self._running_written_at = running, now
        except BaseException:
            for entry, amount in counts.items():  # kept for the next flush
                self._counts[entry] += amount
            for entry, total in sums.items():
                self._sums[entry] += total
            raise

    def start(self, *, tied_to: asyncio.Task[object] | None = None) -> None:
        self._task = asyncio.create_task(self._run(), name="metrics-flush")
        if tied_to is not None:
            tied_to.add_done_callback(lambda _: self._task.cancel() if self._task is not None else None)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        try:
            await self.flush()
            if self._running is not None:
                await self.redis.hdel(RUNNING_JOBS, self._worker_id)  # type: ignore[misc]  # it holds none now
        except (RedisError, OSError) as exc:
            log.warning("worker metrics of the last second lost: redis away", error=type(exc).__name__)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.flush()
            except (RedisError, OSError) as exc:
                log.warning("worker metrics not written; kept for the next flush", error=type(exc).__name__)

    async def read(self) -> list[Metric]:
        """Every worker metric as prometheus families (for the API's /metrics)."""
        pipe = self.redis.pipeline(transaction=False)
        for metric in WORKER_METRICS:
            pipe.hgetall(KEY_PREFIX + metric.name)
        raws: list[dict[bytes, bytes]] = await pipe.execute()
        return [_family(metric, raw) for metric, raw in zip(WORKER_METRICS, raws, strict=True)]


def _family(metric: WorkerMetric, raw: dict[bytes, bytes]) -> Metric:
    fields = {k.decode(): v.decode() for k, v in raw.items()}
    if metric.kind == "counter":
        counter = CounterMetricFamily(metric.name.removesuffix("_total"), metric.help, labels=metric.labels)
        for field, value in sorted(fields.items()):
            counter.add_metric(field.split(SEPARATOR), float(value))
        return counter
    histogram = HistogramMetricFamily(metric.name, metric.help, labels=metric.labels)
    series: dict[tuple[str, ...], dict[str, float]] = {}
    for field, value in fields.items():
        *label_values, part = field.split(SEPARATOR)
        series.setdefault(tuple(label_values), {})[part] = float(value)
    for labels, parts in sorted(series.items()):
        cumulative, buckets = 0.0, []
        for le in (*(repr(b) for b in LATENCY_BUCKETS), "+Inf"):
            cumulative += parts.get(le, 0.0)
            buckets.append((le, cumulative))
        histogram.add_metric(list(labels), buckets, parts.get("sum", 0.0))
    return histogram


class ApiMetrics:
    """The API process's own metrics, in a registry of its own (one per app, so tests may build many apps)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Histogram(
            "server402_http_request_duration_seconds",
            "HTTP requests by route template, method and status.",
            ("route", "method", "status"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._request_children: dict[tuple[str, str, int], Any] = {}  # (route, method, status): few, fixed
        self.payments = Counter(
            "server402_payments",
            "Payment attempts by kind (inline, purchase, token) and outcome (settled, consumed, refused, "
            "replayed, facilitator_unavailable, offered).",
            ("kind", "outcome"),
            registry=self.registry,
        )

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """One request in the duration histogram (its labelled child looked up once per route, method, status)."""
        child = self._request_children.get((route, method, status))
        if child is None:
            child = self._request_children[route, method, status] = self.requests.labels(route, method, str(status))
        child.observe(seconds)


class Snapshot(Collector):
    """Families read from Redis just before a scrape, served once."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        yield from self._families
