"""Live quality figures: calls, 402s, upstream attempts and outcomes show in the catalog, search and services."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from redis.asyncio import Redis
from support import Pipeline

from api import appkeys
from api.app import create_app
from scripts.embedded_redis import free_port
from shared.catalog import Catalog
from shared.config import Settings
from shared.models import Quality
from shared.quality import HISTORY_LENGTH, QualityStore, probes_key, quality_key, quality_score

IMAGE = {"ImageURL": "https://example.com/quality.jpg"}
STATIC_QUALITY = msgspec.to_builtins(Quality())


@pytest.fixture
def operator_terms() -> dict[str, Any]:
    return {"defaults": {"amountCents": 0, "qps": 1000}, "services": {"face-comparison": {"amountCents": 20}}}


@pytest.fixture
def pipeline_env() -> dict[str, str]:
    return {"SERVER402_JOB_DEADLINE_S": "2"}  # a persistent 5xx gives up after 2 s of retries


async def _quality(pipeline: Pipeline, service_id: str) -> dict[str, Any]:
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
    quality = await _quality(pipeline, "face-comparison")
    assert quality["paymentRequireds"] == 2  # this API counts its own 402s not yet written
    assert quality["callCount"] == quality["executionCount"] == 0
    # 402s are written every second (and when the API stops): then every process sees them
    await pipeline.api.app[appkeys.QUALITY].flush()
    assert await pipeline.redis.hget(quality_key("face-comparison"), "paymentRequireds") == b"2"  # type: ignore[misc]


async def test_402s_not_written_while_redis_is_away_are_kept_for_the_next_flush(redis: Redis) -> None:
    service_id = "quality-402-flush-test"
    away = Redis(port=free_port(), socket_connect_timeout=1)
    try:
        store = QualityStore(away)
        store.record_payment_required(service_id)
        store.record_payment_required(service_id)
        await store.flush()  # refused: logged, kept
        assert not await redis.exists(quality_key(service_id))
        store._redis = redis  # Redis is back
        await store.flush()
        assert await redis.hget(quality_key(service_id), "paymentRequireds") == b"2"  # type: ignore[misc]
        await store.flush()  # nothing more to write: written once
        assert await redis.hget(quality_key(service_id), "paymentRequireds") == b"2"  # type: ignore[misc]
    finally:
        await away.aclose()
        await redis.delete(quality_key(service_id))


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
