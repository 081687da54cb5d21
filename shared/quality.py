"""Live quality figures per service: what the catalog's `quality` and `GET /api/status` show.

Who counts what (the API, the job scripts, the health worker), which outcomes count, the score's formula and the
two keys per service: docs/architecture.md, "Quality and health" and "Redis".
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.clock import utc_iso
from shared.keys import PREFIX, QUALITY_FLUSH, registered
from shared.lua import pack
from shared.models import Camel, Quality

HealthStatus = Literal["healthy", "degraded", "unhealthy", "unknown"]
HEALTHY: HealthStatus = "healthy"
DEGRADED: HealthStatus = "degraded"
UNHEALTHY: HealthStatus = "unhealthy"
UNKNOWN: HealthStatus = "unknown"

HISTORY_LENGTH = 30
LATENCY_ALPHA = 0.2
HEALTH_WEIGHT, SUCCESS_WEIGHT, LATENCY_WEIGHT = 2.0, 2.0, 1.0
HEALTH_VALUE: dict[str, float] = {HEALTHY: 1.0, DEGRADED: 0.5, UNHEALTHY: 0.0}
FAST_MS, SLOW_MS = 1000.0, 10000.0
UNHEALTHY_CAP = 1.0

log = structlog.get_logger("shared.quality")
_json = msgspec.json.Encoder()


def quality_key(service_id: str) -> str:
    return f"{PREFIX}:quality:{service_id}"


def probes_key(service_id: str) -> str:
    return f"{PREFIX}:quality:{service_id}:probes"


EXECUTION_COUNT = "executionCount"
CALL_COUNT, LAST_CALL_AT = "callCount", "lastCallAt"
SUCCESS_COUNT, ERROR_COUNT = "successCount", "errorCount"
PAYMENT_REQUIREDS = "paymentRequireds"
FLUSH_INTERVAL_S = 1.0


class LatencyRun(msgspec.Struct):
    """The weighted mean's move over the latency samples since a flush, whatever the mean was before them: after
    them it is `decay * mean + add`, or `fresh` when there was none (the first sample starts it); `last` is the
    latest sample. Folding the samples in one at a time gives the same figure (tests/test_quality.py)."""

    decay: float = 1.0
    add: float = 0.0
    fresh: float = 0.0
    last: float = 0.0
    samples: int = 0

    def observe(self, sample: float, alpha: float = LATENCY_ALPHA) -> None:
        self.fresh = sample if self.samples == 0 else self.fresh + alpha * (sample - self.fresh)
        self.decay *= 1 - alpha
        self.add = self.add * (1 - alpha) + alpha * sample
        self.last, self.samples = sample, self.samples + 1

    def then(self, later: LatencyRun) -> LatencyRun:
        """This run followed by `later` (what a failed flush kept, then what came since)."""
        if later.samples == 0:
            return self
        if self.samples == 0:
            return later
        return LatencyRun(
            decay=self.decay * later.decay, add=self.add * later.decay + later.add,
            fresh=self.fresh * later.decay + later.add, last=later.last, samples=self.samples + later.samples,
        )  # fmt: skip


class Pending(msgspec.Struct):
    """One service's figures counted in this process and not written yet."""

    counts: dict[str, int] = msgspec.field(default_factory=dict)
    last_call: str = ""  # the latest call's ISO time
    latency: LatencyRun = msgspec.field(default_factory=LatencyRun)

    def count(self, field: str) -> None:
        self.counts[field] = self.counts.get(field, 0) + 1

    def then(self, later: Pending) -> Pending:
        counts = dict(self.counts)
        for field, n in later.counts.items():
            counts[field] = counts.get(field, 0) + n
        return Pending(counts, max(self.last_call, later.last_call), self.latency.then(later.latency))

    def row(self) -> dict[str, Any]:
        """QUALITY_FLUSH's row for this service."""
        run = self.latency
        latency = [run.decay, run.add, run.fresh, run.last] if run.samples else []
        return {"counts": self.counts, "last_call": self.last_call, "latency": latency}


class ProbeRecord(Camel, frozen=True):
    """One probe of a service, as kept in its history."""

    at: str
    status: str
    latency_ms: int | None


class ServiceFigures(msgspec.Struct, frozen=True, kw_only=True):
    """Everything known live about one service: its `Quality`, its call latency and its recent probes."""

    quality: Quality
    latency_ms: int | None
    history: tuple[ProbeRecord, ...] = ()


class QualityStore:
    """Records and reads the figures. The record_* methods never raise for Redis trouble: a figure lost is logged,
    the call it describes goes on.

    Calls, attempts, outcomes and 402s are counted in memory by the process that sees them (the API: calls and
    402s; a worker: attempts and outcomes) and written every FLUSH_INTERVAL_S in one script (QUALITY_FLUSH;
    `start`, and `stop` writes the rest): counting costs a call no Redis command. A process adds its own unwritten
    counts to what it reads, so a caller of this process sees them at once, and other processes see them within a
    second. A process that dies unannounced loses at most a second of its figures (statistics, never money). A
    write whose answer is lost (a timeout after Redis ran it) is written again with the next: at least once."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._flush = registered(redis, QUALITY_FLUSH)
        self._pending: dict[str, Pending] = {}  # by service
        self._inflight: dict[str, Pending] = {}  # being written now: still this process's own until written
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._writing = asyncio.Lock()

    def _of(self, service_id: str) -> Pending:
        pending = self._pending.get(service_id)
        if pending is None:
            pending = self._pending[service_id] = Pending()
        return pending

    def record_payment_required(self, service_id: str) -> None:
        self._of(service_id).count(PAYMENT_REQUIREDS)

    def record_call(self, service_id: str, at_ms: int) -> None:
        """A job created for the service (ENQUEUE_JOB said so)."""
        pending = self._of(service_id)
        pending.count(CALL_COUNT)
        pending.last_call = max(pending.last_call, utc_iso(datetime.fromtimestamp(at_ms / 1000, UTC)))

    def record_execution(self, service_id: str) -> None:
        """An upstream attempt about to go out (its job's cancel flag checked)."""
        self._of(service_id).count(EXECUTION_COUNT)

    def record_result(self, service_id: str, *, ok: bool, latency_ms: float | None = None) -> None:
        """A job's outcome, once the step that ended it has (`ok`: the service worked, else it failed the caller;
        docs/architecture.md, "Quality and health")."""
        pending = self._of(service_id)
        pending.count(SUCCESS_COUNT if ok else ERROR_COUNT)
        if ok and latency_ms is not None:
            pending.latency.observe(latency_ms)

    async def flush(self) -> None:
        """Write the figures counted since the last flush (kept for the next one when Redis cannot take them)."""
        async with self._writing:  # one write at a time: what is in flight stays this process's own
            await self._write()

    async def _write(self) -> None:
        pending, self._pending = self._pending, {}
        if not pending:
            return
        services = sorted(pending)
        rows = [pending[service_id].row() for service_id in services]
        self._inflight = pending
        try:
            await self._flush(keys=[quality_key(service_id) for service_id in services], args=[pack(rows=rows)])
        except (RedisError, OSError) as exc:
            self._keep(pending)
            log.warning("quality figures not written; kept for the next flush", error=type(exc).__name__)
        except BaseException:  # cancelled mid-write (the loop ending): kept for the final flush
            self._keep(pending)
            raise
        finally:
            self._inflight = {}

    def _keep(self, unwritten: dict[str, Pending]) -> None:
        for service_id, earlier in unwritten.items():
            later = self._pending.get(service_id)
            self._pending[service_id] = earlier.then(later) if later is not None else earlier

    def _unwritten(self, service_id: str) -> Pending | None:
        inflight, pending = self._inflight.get(service_id), self._pending.get(service_id)
        if inflight is None or pending is None:
            return inflight or pending
        return inflight.then(pending)

    def start(self, *, tied_to: asyncio.Task[object] | None = None) -> None:
        """Write every FLUSH_INTERVAL_S until `stop`, or until the task it is tied to ends (a worker's main task)."""
        self._stopping.clear()
        self._task = asyncio.create_task(self._flush_forever(), name="quality-flush")
        if tied_to is not None:
            tied_to.add_done_callback(lambda _: self._stopping.set())

    async def stop(self) -> None:
        """Let a write under way finish (cancelled, its answer lost, it would be written twice), then write the
        rest."""
        self._stopping.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.flush()

    async def _flush_forever(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), FLUSH_INTERVAL_S)
            if not self._stopping.is_set():
                await self.flush()

    async def record_probe(
        self, service_id: str, status: HealthStatus, latency_ms: float | None, checked_at: datetime
    ) -> None:
        at = utc_iso(checked_at)
        rounded = None if latency_ms is None else round(latency_ms)
        pipe = self._redis.pipeline(transaction=True)
        fields: dict[str, Any] = {"healthStatus": status, "healthCheckedAt": at}
        if rounded is not None:
            fields["healthLatencyMs"] = rounded
        pipe.hset(quality_key(service_id), mapping=fields)
        if rounded is None:
            pipe.hdel(quality_key(service_id), "healthLatencyMs")
        pipe.lpush(probes_key(service_id), _json.encode(ProbeRecord(at=at, status=status, latency_ms=rounded)))
        pipe.ltrim(probes_key(service_id), 0, HISTORY_LENGTH - 1)
        await self._quietly("probe", service_id, pipe.execute())

    async def snapshot(self, service_ids: Sequence[str]) -> dict[str, Quality]:
        """Each service's live `Quality`, in one pipeline. Raises RedisError/OSError when Redis cannot answer."""
        pipe = self._redis.pipeline(transaction=False)
        for service_id in service_ids:
            pipe.hgetall(quality_key(service_id))
        rows = await pipe.execute()
        return {
            service_id: _figures(raw, unwritten=self._unwritten(service_id)).quality
            for service_id, raw in zip(service_ids, rows, strict=True)
        }

    async def figures(self, service_ids: Sequence[str]) -> dict[str, ServiceFigures]:
        """`snapshot` plus latency and probe history (oldest first), in one pipeline."""
        pipe = self._redis.pipeline(transaction=False)
        for service_id in service_ids:
            pipe.hgetall(quality_key(service_id))
            pipe.lrange(probes_key(service_id), 0, HISTORY_LENGTH - 1)
        rows = await pipe.execute()
        return {
            service_id: _figures(rows[2 * i], rows[2 * i + 1], unwritten=self._unwritten(service_id))
            for i, service_id in enumerate(service_ids)
        }

    async def _quietly(self, kind: str, service_id: str, operation: Awaitable[Any]) -> None:
        try:
            await operation
        except (RedisError, OSError) as exc:
            log.warning("quality figure not recorded", figure=kind, service_id=service_id, error=type(exc).__name__)


def _figures(
    raw: dict[bytes, bytes], history: Sequence[bytes] = (), *, unwritten: Pending | None = None
) -> ServiceFigures:
    """The figures as stored, plus this process's `unwritten` ones."""
    fields = {key.decode(): value.decode() for key, value in raw.items()}
    counts = unwritten.counts if unwritten is not None else {}

    def count(name: str) -> int:
        return _int(fields, name) + counts.get(name, 0)

    successes, errors = count(SUCCESS_COUNT), count(ERROR_COUNT)
    finished = successes + errors
    success_rate = round(successes / finished, 4) if finished else None
    health = fields.get("healthStatus", UNKNOWN)
    health_latency = _optional_int(fields, "healthLatencyMs")
    latency = _optional_int(fields, "latencyMs")
    last_call = fields.get(LAST_CALL_AT)
    if unwritten is not None:
        if unwritten.latency.samples:
            mean = _optional_float(fields, "latencyMs")
            run = unwritten.latency
            latency = round(run.decay * mean + run.add if mean is not None else run.fresh)
        if unwritten.last_call and (last_call is None or unwritten.last_call > last_call):
            last_call = unwritten.last_call
    quality = Quality(
        quality_score=quality_score(health, success_rate, latency if latency is not None else health_latency),
        health_status=health,
        health_checked_at=fields.get("healthCheckedAt"),
        health_latency_ms=health_latency,
        success_rate=success_rate,
        call_count=count(CALL_COUNT),
        execution_count=count(EXECUTION_COUNT),
        success_count=successes,
        error_count=errors,
        payment_requireds=count(PAYMENT_REQUIREDS),
        last_call_at=last_call,
    )
    probes = tuple(msgspec.json.decode(entry, type=ProbeRecord) for entry in reversed(history))
    return ServiceFigures(quality=quality, latency_ms=latency, history=probes)


def quality_score(health: str, success_rate: float | None, latency_ms: float | None) -> float:
    """The documented formula (docs/architecture.md, "Quality and health")."""
    parts: list[tuple[float, float]] = []
    if health in HEALTH_VALUE:
        parts.append((HEALTH_WEIGHT, HEALTH_VALUE[health]))
    if success_rate is not None:
        parts.append((SUCCESS_WEIGHT, success_rate))
    if latency_ms is not None:
        parts.append((LATENCY_WEIGHT, min(1.0, max(0.0, (SLOW_MS - latency_ms) / (SLOW_MS - FAST_MS)))))
    if not parts:
        return 0.0
    score = 5 * sum(weight * value for weight, value in parts) / sum(weight for weight, _ in parts)
    if health == UNHEALTHY:
        score = min(score, UNHEALTHY_CAP)
    return round(score, 1)


def _int(fields: dict[str, str], name: str) -> int:
    return _optional_int(fields, name) or 0


def _optional_int(fields: dict[str, str], name: str) -> int | None:
    value = _optional_float(fields, name)
    return round(value) if value is not None else None


def _optional_float(fields: dict[str, str], name: str) -> float | None:
    raw = fields.get(name)
    if raw is None or raw == "":
        return None
    try:
        return float(raw)
    except ValueError:
        return None
