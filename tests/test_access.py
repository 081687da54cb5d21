"""API keys on the request path (allowlists, required keys, per-key rate limits), job visibility per caller, and
tenant isolation of face databases, end to end through real workers and the sandbox."""

from __future__ import annotations

from typing import Any

import pytest
from support import Pipeline

from api.apikeys import ApiKeyStore


@pytest.fixture
def operator_terms() -> dict[str, Any]:
    return {
        "defaults": {"amountCents": 0, "qps": 1000},
        "services": {"body-pose-estimation": {"requiresApiKey": True}},
    }


async def new_key(pipeline: Pipeline, services: list[str] | None = None, rate: float = 1000, burst: int = 1000) -> str:
    _, plaintext = await ApiKeyStore(pipeline.redis).create("test", services, rate, burst)
    return plaintext


def face(pipeline: Pipeline) -> dict[str, str]:
    return {"ImageURL": pipeline.sandbox.image("face.jpg")}


async def test_a_service_that_requires_a_key_refuses_anonymous_and_bogus_callers(pipeline: Pipeline) -> None:
    status, body, headers = await pipeline.call("body-pose-estimation", face(pipeline))
    assert (status, body["error"], body["code"]) == (401, "api key required", "api_key_required")
    assert headers["WWW-Authenticate"].startswith("Bearer")
    for bogus in ({"X-API-Key": "s402k_000000000000_nope"}, {"Authorization": "Basic abc"}, {"X-API-Key": "🙂" * 50}):
        status, body, _ = await pipeline.call("body-pose-estimation", face(pipeline), **bogus)
        assert (status, body["code"]) == (401, "invalid_api_key")
    key = await new_key(pipeline)
    status, body, _ = await pipeline.call("body-pose-estimation", face(pipeline), Authorization=f"Bearer {key}")
    assert status == 200, body
    assert (await pipeline.sandbox.stats())["actions"]["BodyPosture"]["calls"] == 1


async def test_a_key_calls_only_the_services_it_lists(pipeline: Pipeline) -> None:
    key = await new_key(pipeline, services=["face-detection"])
    status, _, _ = await pipeline.call("face-detection", face(pipeline), **{"X-API-Key": key})
    assert status == 200
    status, body, _ = await pipeline.call("body-pose-estimation", face(pipeline), **{"X-API-Key": key})
    assert (status, body["error"]) == (403, "api key is not allowed to call this service")
    assert "BodyPosture" not in (await pipeline.sandbox.stats())["actions"]


async def test_a_revoked_key_stops_working(pipeline: Pipeline) -> None:
    store = ApiKeyStore(pipeline.redis)
    api_key, plaintext = await store.create("soon gone", None, 1000, 1000)
    await store.revoke(api_key.id)
    status, body, _ = await pipeline.call("face-detection", face(pipeline), **{"X-API-Key": plaintext})
    assert (status, body["code"]) == (401, "invalid_api_key")


async def test_a_key_over_its_rate_gets_429_with_retry_after(pipeline: Pipeline) -> None:
    key = await new_key(pipeline, rate=0.5, burst=2)
    statuses = []
    for _ in range(3):
        status, body, headers = await pipeline.call("face-detection", face(pipeline), **{"X-API-Key": key})
        statuses.append(status)
    assert statuses == [200, 200, 429]
    assert body["code"] == "rate_limited" and int(headers["Retry-After"]) >= 1
    other = await new_key(pipeline)
    status, _, _ = await pipeline.call("face-detection", face(pipeline), **{"X-API-Key": other})
    assert status == 200  # the limit is per key


async def test_a_job_made_with_a_key_is_visible_only_with_that_key(pipeline: Pipeline) -> None:
    mine, theirs = await new_key(pipeline), await new_key(pipeline)
    status, job, _ = await pipeline.call(
        "face-detection", face(pipeline), **{"X-API-Key": mine, "Prefer": "respond-async"}
    )
    assert status == 202
    path = f"/api/jobs/{job['jobId']}"
    assert (await pipeline.api.get(path)).status == 404
    assert (await pipeline.api.get(path, headers={"X-API-Key": theirs})).status == 404
    assert (await pipeline.api.delete(path, headers={"X-API-Key": theirs})).status == 404
    response = await pipeline.api.get(path + "?wait=10", headers={"X-API-Key": mine})
    assert response.status == 200 and (await response.json())["status"] == "succeeded"


async def test_an_idempotency_key_is_per_caller(pipeline: Pipeline) -> None:
    mine, theirs = await new_key(pipeline), await new_key(pipeline)
    headers = {"Idempotency-Key": "order-1", "Prefer": "respond-async"}
    _, first, _ = await pipeline.call("face-detection", face(pipeline), **headers, **{"X-API-Key": mine})
    _, again, _ = await pipeline.call("face-detection", face(pipeline), **headers, **{"X-API-Key": mine})
    _, other, _ = await pipeline.call("face-detection", face(pipeline), **headers, **{"X-API-Key": theirs})
    assert first["jobId"] == again["jobId"] != other["jobId"]


async def test_face_databases_are_per_caller(pipeline: Pipeline) -> None:
    alice, bob = await new_key(pipeline), await new_key(pipeline)
    for key in (alice, bob):
        status, body, _ = await pipeline.call("face-database-create", {"Name": "people"}, **{"X-API-Key": key})
        assert status == 200, body
    status, body, _ = await pipeline.call("face-database-create", {"Name": "alice_only"}, **{"X-API-Key": alice})
    assert status == 200, body

    async def names(key: str) -> list[str]:
        status, body, _ = await pipeline.call("face-database-list", {}, **{"X-API-Key": key})
        assert status == 200, body
        return sorted(db["Name"] for db in body["data"]["Result"]["DbList"])

    assert await names(alice) == ["alice_only", "people"]
    assert await names(bob) == ["people"]
    status, body, _ = await pipeline.call("face-database-delete", {"Name": "alice_only"}, **{"X-API-Key": bob})
    assert status == 422, body
    assert await names(alice) == ["alice_only", "people"]
