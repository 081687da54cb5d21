"""Live quality figures per service: what the catalog's `quality` and `GET /api/status` show.

Who counts what (the API, the job scripts, the health worker), which outcomes count, the score's formula and the
two keys per service: docs/architecture.md, "Quality and health" and "Redis".
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Sequence
from datetime import datetime
from typing import Any, Literal, NamedTuple

import msgspec
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.clock import utc_iso
from shared.keys import PREFIX
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
CALL_COUNT, LAST_CALL_AT = "callCount", "lastCallAt"  # counted by ENQUEUE_JOB as it creates the job
PAYMENT_REQUIREDS = "paymentRequireds"
FLUSH_INTERVAL_S = 1.0


class ResultFigure(NamedTuple):
    """A finished job's figure, counted by FINISH_JOB: (quality hash, counter field, latency ms or '', alpha)."""

    key: str
    field: str
    latency: str
    alpha: float


def result_figure(service_id: str, ok: bool, latency_ms: float | None) -> ResultFigure:
    """`ok`: the service worked, else it failed the caller (docs/architecture.md, "Quality and health")."""
    field = "successCount" if ok else "errorCount"
    latency = f"{latency_ms:.1f}" if ok and latency_ms is not None else ""
    return ResultFigure(quality_key(service_id), field, latency, LATENCY_ALPHA)


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

    402s are the one figure counted in memory: a 402 costs no round trip (it was a sixth of a 402's CPU). The API
    writes them every FLUSH_INTERVAL_S (`start`; `stop` writes the rest), and adds its own unwritten ones to what
    it reads, so a caller of this process sees them at once and other processes within a second."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._payment_requireds: Counter[str] = Counter()  # 402s not written yet, by service
        self._task: asyncio.Task[None] | None = None

    def record_payment_required(self, service_id: str) -> None:
        self._payment_requireds[service_id] += 1

    async def flush(self) -> None:
        """Write the 402s counted since the last flush (kept for the next one when Redis cannot take them)."""
        pending, self._payment_requireds = self._payment_requireds, Counter()
        if not pending:
            return
        pipe = self._redis.pipeline(transaction=True)
        for service_id, count in pending.items():
            pipe.hincrby(quality_key(service_id), PAYMENT_REQUIREDS, count)
        try:
            await pipe.execute()
        except (RedisError, OSError) as exc:
            self._payment_requireds.update(pending)
            log.warning("quality figures not written; kept for the next flush", error=type(exc).__name__)
        except BaseException:  # cancelled mid-write (stopping): kept for the final flush
            self._payment_requireds.update(pending)
            raise

    def start(self) -> None:
        self._task = asyncio.create_task(self._flush_forever(), name="quality-flush")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.flush()

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_S)
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
            service_id: _figures(raw, unwritten=self._payment_requireds[service_id]).quality
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
            service_id: _figures(rows[2 * i], rows[2 * i + 1], unwritten=self._payment_requireds[service_id])
            for i, service_id in enumerate(service_ids)
        }

    async def _quietly(self, kind: str, service_id: str, operation: Awaitable[Any]) -> None:
        try:
            await operation
        except (RedisError, OSError) as exc:
            log.warning("quality figure not recorded", figure=kind, service_id=service_id, error=type(exc).__name__)


def _figures(raw: dict[bytes, bytes], history: Sequence[bytes] = (), *, unwritten: int = 0) -> ServiceFigures:
    fields = {key.decode(): value.decode() for key, value in raw.items()}
    successes, errors = _int(fields, "successCount"), _int(fields, "errorCount")
    finished = successes + errors
    success_rate = round(successes / finished, 4) if finished else None
    health = fields.get("healthStatus", UNKNOWN)
    health_latency = _optional_int(fields, "healthLatencyMs")
    latency = _optional_int(fields, "latencyMs")
    quality = Quality(
        quality_score=quality_score(health, success_rate, latency if latency is not None else health_latency),
        health_status=health,
        health_checked_at=fields.get("healthCheckedAt"),
        health_latency_ms=health_latency,
        success_rate=success_rate,
        call_count=_int(fields, "callCount"),
        execution_count=_int(fields, "executionCount"),
        success_count=successes,
        error_count=errors,
        payment_requireds=_int(fields, PAYMENT_REQUIREDS) + unwritten,
        last_call_at=fields.get("lastCallAt"),
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
    raw = fields.get(name)
    if raw is None or raw == "":
        return None
    try:
        return round(float(raw))
    except ValueError:
        return None
