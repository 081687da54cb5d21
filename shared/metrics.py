"""Prometheus metrics from every process, scraped at one place: `GET /metrics` on the API.

The API keeps its own metrics in prometheus-client (per app, `ApiMetrics`). Workers are many processes on many
machines, so they add theirs to Redis (`WorkerMetrics`: one pipelined round trip per observation) and the API
reads them back as metric families when it is scraped. Every label has a small, fixed set of values: routes,
actions, service ids, outcomes; never a job id, client id or payment id.

Redis layout (prefix `s402:metrics:`):
    s402:metrics:{name}   hash   "{label values joined by |}|{bucket le}" -> count (histograms, non-cumulative),
                                 "{labels}|sum" and "{labels}|count"; counters: "{labels}" -> count
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.asyncio import Redis

from shared.keys import PREFIX

KEY_PREFIX = f"{PREFIX}:metrics:"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
SEPARATOR = "|"


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
    """What workers observe, added up in Redis across every worker process."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def observe(self, metric: WorkerMetric, labels: Sequence[str], seconds: float) -> None:
        index = bisect.bisect_left(LATENCY_BUCKETS, seconds)
        le = repr(LATENCY_BUCKETS[index]) if index < len(LATENCY_BUCKETS) else "+Inf"
        prefix = SEPARATOR.join(labels)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hincrby(KEY_PREFIX + metric.name, f"{prefix}{SEPARATOR}{le}", 1)
        pipe.hincrbyfloat(KEY_PREFIX + metric.name, f"{prefix}{SEPARATOR}sum", seconds)
        pipe.hincrby(KEY_PREFIX + metric.name, f"{prefix}{SEPARATOR}count", 1)
        await pipe.execute()

    async def inc(self, metric: WorkerMetric, labels: Sequence[str], amount: int = 1) -> None:
        await self.redis.hincrby(KEY_PREFIX + metric.name, SEPARATOR.join(labels), amount)  # type: ignore[misc]

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
        self.payments = Counter(
            "server402_payments",
            "Payment attempts by kind (inline, purchase, token) and outcome (settled, consumed, refused, "
            "replayed, facilitator_unavailable, offered).",
            ("kind", "outcome"),
            registry=self.registry,
        )


class Snapshot(Collector):
    """Families read from Redis just before a scrape, served once."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        yield from self._families
