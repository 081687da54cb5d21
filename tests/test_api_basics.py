"""The front door's plumbing: health, readiness, request ids, and JSON errors for every failure."""

from __future__ import annotations

from aiohttp.test_utils import TestClient
from redis.asyncio import Redis
from structlog.testing import capture_logs

from api.app import create_app
from scripts.embedded_redis import free_port
from shared.catalog import Catalog
from shared.config import Settings
from shared.liveness import Heartbeat


async def test_healthz_answers_without_dependencies(api: TestClient) -> None:
    response = await api.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_readyz_is_ready_when_redis_answers_and_an_invocation_worker_beats(api: TestClient, redis: Redis) -> None:
    heartbeat = Heartbeat(redis, "invocation")  # as an invocation worker does (tests/test_health_worker.py: a real one)
    await heartbeat.beat()
    try:
        response = await api.get("/readyz")
        assert response.status == 200
        body = await response.json()
        assert body["status"] == "ready" and body["redis"] == "ok"
        assert body["workers"]["invocation"] >= 1
    finally:
        await heartbeat.stop()


async def test_readyz_is_503_with_retry_after_when_redis_is_down(aiohttp_client, catalog: Catalog) -> None:  # type: ignore[no-untyped-def]
    settings = Settings.from_env({"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    client = await aiohttp_client(create_app(settings, catalog))
    response = await client.get("/readyz")
    assert response.status == 503
    assert response.headers["Retry-After"] == "2"
    body = await response.json()
    assert body["code"] == "store_unavailable"
    assert body["details"] == {"checks": {"redis": "unreachable"}}
    assert body["requestId"] == response.headers["X-Request-ID"]


async def test_a_sane_request_id_is_echoed(api: TestClient) -> None:
    response = await api.get("/healthz", headers={"X-Request-ID": "batch-7:item-42"})
    assert response.headers["X-Request-ID"] == "batch-7:item-42"


async def test_an_absent_or_hostile_request_id_is_replaced(api: TestClient) -> None:
    first = await api.get("/healthz")
    hostile = await api.get("/healthz", headers={"X-Request-ID": "x" * 500})
    injected = await api.get("/healthz", headers={"X-Request-ID": "a b\tc"})
    ids = {r.headers["X-Request-ID"] for r in (first, hostile, injected)}
    assert len(ids) == 3
    assert all(len(i) == 32 and i.isalnum() for i in ids)


async def test_unknown_route_is_a_json_404(api: TestClient) -> None:
    response = await api.get("/no/such/thing")
    assert response.status == 404
    body = await response.json()
    assert body["code"] == "not_found"
    assert body["error"] == "no such route; see /openapi.json"
    assert body["requestId"] == response.headers["X-Request-ID"]


async def test_wrong_method_is_a_json_405_naming_the_allowed_ones(api: TestClient) -> None:
    response = await api.delete("/api/catalog")
    assert response.status == 405
    body = await response.json()
    assert body["code"] == "method_not_allowed"
    assert "GET" in body["error"] and "GET" in response.headers["Allow"]


async def test_one_canonical_log_line_per_request_with_its_request_id(api: TestClient) -> None:
    with capture_logs() as logs:
        await api.get("/api/services/face-detection", headers={"X-Request-ID": "rid-1"})
    lines = [entry for entry in logs if entry["event"] == "request"]
    assert len(lines) == 1
    line = lines[0]
    assert line["status"] == 200 and line["method"] == "GET"
    assert line["path"] == "/api/services/face-detection"
    assert line["route"] == "/api/services/{service_id}"
    assert line["duration_ms"] >= 0
