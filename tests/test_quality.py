"""Live quality figures: calls, 402s, upstream attempts and outcomes show in the catalog, search and services."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from redis.asyncio import Redis
from support import Pipeline

from api import appkeys
from api.app import create_app
from scripts.embedded_redis import EmbeddedRedis, free_port
from shared.catalog import Catalog
from shared.config import Settings
from shared.models import Quality
from shared.quality import (
    HISTORY_LENGTH,
    LATENCY_ALPHA,
    LatencyRun,
    QualityStore,
    probes_key,
    quality_key,
    quality_score,
)

IMAGE = {"ImageURL": "https://example.com/quality.jpg"}
STATIC_QUALITY = msgspec.to_builtins(Quality())


@pytest.fixture
def operator_terms() -> dict[str, Any]:
    return {"defaults": {"amountCents": 0, "qps": 1000}, "services": {"face-comparison": {"amountCents": 20}}}


@pytest.fixture
def pipeline_env() -> dict[str, str]:
    return {"SERVER402_JOB_DEADLINE_S": "2"}  # a persistent 5xx gives up after 2 s of retries


async def _quality(pipeline: Pipeline, service_id: str, *, flushed: bool = True) -> dict[str, Any]:
    """The service's figures as the API shows them; `flushed`: once every process has written its own (as each
    does every second), else as this API sees them (its own unwritten ones added)."""
    if flushed:
        await pipeline.flush_quality()
    response = await pipeline.api.get(f"/api/services/{service_id}")
    assert response.status == 200
    quality: dict[str, Any] = (await response.json())["quality"]
    return quality


async def test_calls_and_outcomes_show_in_the_service_the_catalog_and_search(pipeline: Pipeline) -> None:
    for n in range(2):
        assert (await pipeline.call("face-detection", {"ImageURL": f"https://example.com/{n}.jpg"}))[0] == 200
    for _ in range(2):  # the second is a replay of the first: not a new call, no new attempt
        assert (await pipeline.call("face-detection", IMAGE, **{"Idempotency-Key": "quality-1"}))[0] == 200
    refused = await pipeline.call("face-detection", {"ImageURL": pipeline.sandbox.image("no-such-image.jpg")})
    assert refused[0] == 422  # the caller's input: an attempt, but neither a success nor an error

    quality = await _quality(pipeline, "face-detection")
    assert quality["callCount"] == 4 and quality["executionCount"] == 4
    assert quality["successCount"] == 3 and quality["errorCount"] == 0
    assert quality["successRate"] == 1.0 and quality["paymentRequireds"] == 0
    assert datetime.now(UTC) - datetime.fromisoformat(quality["lastCallAt"]) < timedelta(minutes=1)
    assert quality["healthStatus"] == "unknown" and quality["qualityScore"] == 5.0  # no probe yet: left out

    catalog = {s["id"]: s["quality"] for s in (await (await pipeline.api.get("/api/catalog")).json())["services"]}
    assert catalog["face-detection"] == quality
    assert catalog["face-comparison"] == STATIC_QUALITY
    search = await (await pipeline.api.get("/api/catalog/search", params={"q": "face-detection"})).json()
    assert search["services"][0]["id"] == "face-detection" and search["services"][0]["quality"] == quality


async def test_a_failing_upstream_counts_every_attempt_and_one_error(pipeline: Pipeline) -> None:
    await pipeline.sandbox.put_fault(action="DetectFace", error5xxRate=1.0)
    status, body, _ = await pipeline.call("face-detection", IMAGE)
    assert status == 502
    quality = await _quality(pipeline, "face-detection")
    assert quality["callCount"] == 1 and quality["executionCount"] == body["job"]["attempts"] > 1
    assert quality["successCount"] == 0 and quality["errorCount"] == 1
    assert quality["successRate"] == 0.0 and quality["qualityScore"] == 0.0


async def test_402_answers_count_as_payment_requireds_not_calls(pipeline: Pipeline) -> None:
    body = {"ImageURLA": "https://example.com/a.jpg", "ImageURLB": "https://example.com/b.jpg"}
    for _ in range(2):
        assert (await pipeline.call("face-comparison", body))[0] == 402
    quality = await _quality(pipeline, "face-comparison", flushed=False)
    assert quality["paymentRequireds"] == 2  # this API counts its own 402s not yet written
    assert quality["callCount"] == quality["executionCount"] == 0
    # 402s are written every second (and when the API stops): then every process sees them
    await pipeline.api.app[appkeys.QUALITY].flush()
    assert await pipeline.redis.hget(quality_key("face-comparison"), "paymentRequireds") == b"2"  # type: ignore[misc]


async def test_402s_not_written_while_redis_is_away_are_kept_for_the_next_flush(tmp_path: Path) -> None:
    """A Redis of its own, stopped while the figures are flushed and started again on the same port."""
    service_id = "quality-402-flush-test"
    server = EmbeddedRedis(tmp_path).start()
    client = Redis(port=server.port, socket_connect_timeout=1)
    try:
        store = QualityStore(client)
        server.stop()
        store.record_payment_required(service_id)
        store.record_payment_required(service_id)
        await store.flush()  # refused: logged, kept
        server.start()  # Redis is back, on the same port (its data kept: AOF)
        assert not await client.exists(quality_key(service_id))
        await store.flush()
        assert await client.hget(quality_key(service_id), "paymentRequireds") == b"2"  # type: ignore[misc]
        await store.flush()  # nothing more to write: written once
        assert await client.hget(quality_key(service_id), "paymentRequireds") == b"2"  # type: ignore[misc]
    finally:
        await client.aclose()
        server.stop()


async def test_the_catalog_answers_with_the_static_figures_when_redis_is_down(
    aiohttp_client,  # type: ignore[no-untyped-def]
    catalog: Catalog,
) -> None:
    settings = Settings.from_env({"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    client = await aiohttp_client(create_app(settings, catalog))
    listing = await client.get("/api/catalog")
    assert listing.status == 200
    assert all(s["quality"] == STATIC_QUALITY for s in (await listing.json())["services"])
    service = await client.get("/api/services/face-detection")
    assert service.status == 200 and (await service.json())["quality"] == STATIC_QUALITY
    assert (await client.get("/api/catalog/search", params={"q": "face"})).status == 200


async def test_probe_history_is_capped_and_read_oldest_first(redis: Redis) -> None:
    store, service_id = QualityStore(redis), "quality-history-test"
    start = datetime(2026, 1, 1, tzinfo=UTC)
    try:
        for n in range(HISTORY_LENGTH + 5):
            await store.record_probe(service_id, "healthy", float(n), start + timedelta(seconds=n))
        figures = (await store.figures([service_id]))[service_id]
        assert await redis.llen(probes_key(service_id)) == HISTORY_LENGTH  # type: ignore[misc]
        assert [probe.latency_ms for probe in figures.history] == list(range(5, HISTORY_LENGTH + 5))
        assert figures.quality.health_checked_at == "2026-01-01T00:00:34Z"
        assert figures.quality.health_latency_ms == HISTORY_LENGTH + 4
    finally:
        await redis.delete(quality_key(service_id), probes_key(service_id))


@pytest.mark.parametrize(
    ("health", "success_rate", "latency_ms", "score"),
    [
        ("unknown", None, None, 0.0),  # nothing known
        ("healthy", 1.0, 500.0, 5.0),
        ("degraded", None, None, 2.5),  # only the health is known
        ("healthy", 0.5, 5500.0, 3.5),  # 5 * (2 * 1 + 2 * 0.5 + 1 * 0.5) / 5
        ("unknown", 1.0, 10000.0, 3.3),  # 5 * (2 * 1 + 1 * 0) / 3: a 10 s latency counts 0
        ("unhealthy", 1.0, 500.0, 1.0),  # 3.0 by the weights, capped at 1.0 while unhealthy
    ],
)
def test_the_quality_score_follows_the_documented_formula(
    health: str, success_rate: float | None, latency_ms: float | None, score: float
) -> None:
    assert quality_score(health, success_rate, latency_ms) == score


def _folded(mean: float | None, samples: list[float], alpha: float = LATENCY_ALPHA) -> float:
    """The weighted mean as folding each sample in one at a time gives it (the first sample starts it)."""
    for sample in samples:
        mean = sample if mean is None else mean + alpha * (sample - mean)
    assert mean is not None
    return mean


@pytest.mark.parametrize("before", [None, 100.0])
def test_a_run_of_latencies_moves_the_mean_as_folding_them_one_at_a_time_would(before: float | None) -> None:
    samples = [200.0, 50.0, 1200.0, 80.0, 95.5, 3000.0, 10.0]
    whole = LatencyRun()
    for sample in samples:
        whole.observe(sample)
    first, later = LatencyRun(), LatencyRun()  # a flush failed after three: kept, then the rest came
    for sample in samples[:3]:
        first.observe(sample)
    for sample in samples[3:]:
        later.observe(sample)
    for run in (whole, first.then(later)):
        moved = run.fresh if before is None else run.decay * before + run.add
        assert moved == pytest.approx(_folded(before, samples))
        assert (run.last, run.samples) == (10.0, len(samples))


async def test_figures_counted_in_memory_show_at_once_here_and_once_written_everywhere(redis: Redis) -> None:
    service_id = "quality-memory-test"
    here, there = QualityStore(redis), QualityStore(redis)  # two processes
    try:
        await redis.hset(quality_key(service_id), mapping={"successCount": 1, "latencyMs": "100.0"})  # type: ignore[misc]
        here.record_call(service_id, 1_800_000_000_000)
        here.record_execution(service_id)
        here.record_result(service_id, ok=True, latency_ms=200.0)
        here.record_result(service_id, ok=False)
        mine, theirs = (await here.snapshot([service_id]))[service_id], (await there.snapshot([service_id]))[service_id]
        assert (mine.call_count, mine.execution_count, mine.success_count, mine.error_count) == (1, 1, 2, 1)
        assert mine.last_call_at == "2027-01-15T08:00:00Z"
        assert (theirs.call_count, theirs.success_count, theirs.last_call_at) == (0, 1, None)
        await here.flush()
        written = (await there.snapshot([service_id]))[service_id]
        assert (written.call_count, written.execution_count, written.success_count, written.error_count) == (1, 1, 2, 1)
        assert written.last_call_at == "2027-01-15T08:00:00Z"
        assert (await redis.hget(quality_key(service_id), "latencyMs")) == b"120.0"  # type: ignore[misc]
        assert (await here.snapshot([service_id]))[service_id] == written  # nothing counted twice
    finally:
        await redis.delete(quality_key(service_id))


async def test_stopping_writes_every_figure_once(redis: Redis) -> None:
    service_id = "quality-stop-test"
    store = QualityStore(redis)
    store.start()
    try:
        for _ in range(3):
            store.record_call(service_id, 1_800_000_000_000)
        await store.stop()  # the loop's write (if one is under way) ends, then the rest is written
        assert await redis.hget(quality_key(service_id), "callCount") == b"3"  # type: ignore[misc]
        await store.stop()
        assert await redis.hget(quality_key(service_id), "callCount") == b"3"  # type: ignore[misc]
    finally:
        await redis.delete(quality_key(service_id))
