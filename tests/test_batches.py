"""Batches end to end: items paid by bundle tokens bought with the official x402 client, validated whole, fanned
out to jobs that real workers run against the sandbox, counted, streamed back as JSONL, canceled and credited."""

from __future__ import annotations

import asyncio
import io
import json
from collections import Counter
from typing import Any

import msgspec
import pytest
from support import Pipeline
from x402.http.clients.httpx import x402HttpxClient
from x402_support import buyer

from sandbox.facilitator.testing import RunningFacilitator
from shared import keys

OK, REFUSED, BROKEN = "face-detection", "face-detection", "face-attribute-recognition"


@pytest.fixture
def operator_terms() -> dict[str, Any]:
    return {
        "defaults": {"amountCents": 1, "qps": 1000},
        "services": {"facial-expression-recognition": {"amountCents": 0}},
    }


@pytest.fixture
def pipeline_env(facilitator: RunningFacilitator) -> dict[str, str]:
    return {"SERVER402_X402_FACILITATOR_URL": facilitator.url}


def base_url(pipeline: Pipeline) -> str:
    return str(pipeline.api.make_url("")).rstrip("/")


async def buy(pipeline: Pipeline, service: str, calls: int) -> str:
    wallet = buyer()
    wallet.set_spend_controls(False)  # bundles of thousands of calls cost more than the client's default $1 cap
    async with x402HttpxClient(wallet, base_url=base_url(pipeline), timeout=30) as client:
        response = await client.post("/api/payments", json={"serviceId": service, "calls": calls})
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


async def payment(pipeline: Pipeline, token: str) -> dict[str, Any]:
    payment_id = token.removeprefix("s402pt_").partition(".")[0]
    response = await pipeline.api.get(f"/api/payments/{payment_id}", headers={"X-Payment-Token": token})
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    return body


async def submit(
    pipeline: Pipeline, items: Any, *tokens: str, content_type: str = "application/json", **headers: str
) -> tuple[int, Any]:
    data = items if isinstance(items, bytes) else msgspec.json.encode(items)
    all_headers = {"Content-Type": content_type, **headers}
    if tokens:
        all_headers["X-Payment-Token"] = ", ".join(tokens)
    response = await pipeline.api.post("/api/batches", data=io.BytesIO(data), headers=all_headers)
    return response.status, await response.json()


async def wait_done(pipeline: Pipeline, batch_id: str, token: str, timeout_s: float = 60) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        response = await pipeline.api.get(
            f"/api/batches/{batch_id}", params={"wait": "10"}, headers={"X-Payment-Token": token}
        )
        view: dict[str, Any] = await response.json()
        if view["status"] in ("completed", "canceled") or loop.time() > deadline:
            return view


async def results(pipeline: Pipeline, batch_id: str, token: str, offset: int = 0) -> list[dict[str, Any]]:
    response = await pipeline.api.get(
        f"/api/batches/{batch_id}/results", params={"offset": str(offset)}, headers={"X-Payment-Token": token}
    )
    assert response.status == 200 and response.content_type == "application/x-ndjson"
    return [json.loads(line) for line in (await response.text()).splitlines()]


async def ledger(pipeline: Pipeline) -> list[dict[str, str]]:
    entries = await pipeline.redis.xrange(keys.LEDGER)
    return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in entries]


async def queued_jobs(pipeline: Pipeline) -> int:
    """Jobs on the batch lane's queue (batch items are queued there, never on the single calls' queue)."""
    assert not [m for m in await pipeline.redis.zrange(keys.QUEUE_NAME, 0, -1) if m.startswith(b"job_")]
    members = await pipeline.redis.zrange(keys.BATCH_QUEUE_NAME, 0, -1)
    return sum(member.startswith(b"job_") for member in members)


def item(custom_id: str, service: str, image: str) -> dict[str, Any]:
    return {"customId": custom_id, "serviceId": service, "input": {"ImageURL": image}}


# ---------------------------------------------------------------- end to end


async def test_a_2000_item_batch_counts_streams_and_credits_back_exactly(pipeline: Pipeline) -> None:
    # images the sandbox does not fetch (not on loopback): it answers from the URL, so the test measures the
    # gateway, not image decoding; the missing one is on loopback and answers 404
    face, missing = "https://images.example/face.jpg", pipeline.sandbox.image("missing.jpg")
    # this service refuses our account (not subscribed): not the caller's fault, so each call is given back
    await pipeline.sandbox.put_fault(action="RecognizeFace", refuseRate=1.0)
    items = [item(f"ok-{i}", OK, face) for i in range(1400)]
    items += [item(f"refused-{i}", REFUSED, missing) for i in range(300)]  # the upstream refuses the input
    items += [item(f"broken-{i}", BROKEN, face) for i in range(300)]
    items.reverse()  # mixed order
    detect, recognize = await buy(pipeline, OK, 1700), await buy(pipeline, BROKEN, 300)

    status, view = await submit(pipeline, items, detect, recognize)
    assert status == 201, view
    assert view["status"] == "in_progress" and view["requestCounts"]["total"] == 2000
    batch_id = view["batchId"]

    final = await wait_done(pipeline, batch_id, detect, timeout_s=120)
    assert final["status"] == "completed" and final["progress"] == 1.0
    counts = final["requestCounts"]
    assert counts == {"total": 2000, "queued": 0, "running": 0, "succeeded": 1400, "failed": 600, "canceled": 0,
                      "expired": 0}  # fmt: skip

    lines = await results(pipeline, batch_id, detect)
    assert len(lines) == 2000 and len({line["customId"] for line in lines}) == 2000
    by_kind = Counter((line["customId"].split("-")[0], line["status"]) for line in lines)
    assert by_kind == {("ok", "succeeded"): 1400, ("refused", "failed"): 300, ("broken", "failed"): 300}
    for line in lines:
        kind = line["customId"].split("-")[0]
        if kind == "ok":
            assert line["result"]["data"]["Action"] == "DetectFace" and "error" not in line
        elif kind == "refused":
            assert line["error"]["code"] == "InvalidImage.Download" and line["charge"]["refunded"] is False
        else:
            assert line["error"]["code"] == "InvalidApi.NotPurchase"
            assert line["charge"]["refunded"] and line["charge"]["refundReason"] == "operator_error"
    assert await results(pipeline, batch_id, detect, offset=1990) == lines[1990:]

    # the refused inputs were charged; the upstream's failures were given back, one call each
    assert (await payment(pipeline, detect))["remainingCalls"] == 0
    assert (await payment(pipeline, recognize))["remainingCalls"] == 300
    events = Counter((e["event"], e["serviceId"], e["calls"]) for e in await ledger(pipeline))
    assert events[("consumed", OK, "1700")] == 1 and events[("consumed", BROKEN, "300")] == 1
    assert events[("credited", BROKEN, "1")] == 300 and not events[("credited", OK, "1")]

    job = lines[0]["jobId"]  # each item is an ordinary job, readable with the same token
    response = await pipeline.api.get(f"/api/jobs/{job}", headers={"X-Payment-Token": detect})
    assert (await response.json())["batchId"] == batch_id


async def test_json_lines_and_free_services_need_no_token(pipeline: Pipeline) -> None:
    face = pipeline.sandbox.image("face.jpg")
    body = b"\n".join(msgspec.json.encode(item(f"f{i}", "facial-expression-recognition", face)) for i in range(5))
    status, view = await submit(pipeline, body + b"\n\n", content_type="application/x-ndjson")
    assert status == 201, view
    final = await wait_done(pipeline, view["batchId"], "")
    assert final["requestCounts"]["succeeded"] == 5


# ---------------------------------------------------------------- refused whole, nothing charged


async def test_one_invalid_item_refuses_the_whole_batch_with_every_problem_and_charges_nothing(
    pipeline: Pipeline,
) -> None:
    face = pipeline.sandbox.image("face.jpg")
    token = await buy(pipeline, OK, 10)
    items: list[Any] = [item(f"i{i}", OK, face) for i in range(6)]
    items[1] = {"customId": "i1", "serviceId": OK, "input": {"ImageURL": "not a url"}}
    items[2] = {"customId": "i0", "serviceId": OK, "input": {"ImageURL": face}}  # duplicate customId
    items[3] = {"customId": "i3", "serviceId": "no-such-service", "input": {}}
    items[4] = "not an object"
    body = msgspec.json.encode(items)
    status, answer = await submit(pipeline, body, token)
    assert status == 422 and answer["code"] == "invalid_batch" and answer["invalidCount"] == 4
    problems = {e["index"]: e["code"] for e in answer["itemErrors"]}
    assert problems == {1: "validation_failed", 2: "duplicate_custom_id", 3: "service_not_found", 4: "invalid_item"}
    assert "nothing was charged" in answer["message"]
    assert (await payment(pipeline, token))["remainingCalls"] == 10
    assert await pipeline.redis.keys(keys.BATCH_KEY_PREFIX + "*") == []
    assert await queued_jobs(pipeline) == 0

    jsonl = b'{"customId": "a", "serviceId": "face-detection", "input": {}}\n{not json\n'
    status, answer = await submit(pipeline, jsonl, token, content_type="application/x-ndjson")
    assert status == 422 and {e["code"] for e in answer["itemErrors"]} == {"validation_failed", "invalid_json"}

    for bad_body, code in ((b"[]", "invalid_batch"), (b"{", "invalid_json"), (b'{"items": 3}', "invalid_json"),
                           (b'{"items": [], "extra": 1}', "bad_request")):  # fmt: skip
        status, answer = await submit(pipeline, bad_body, token)
        assert status in (400, 422) and answer["code"] == code, (bad_body, answer)
    too_many = [item(f"x{i}", OK, face) for i in range(10_001)]
    status, answer = await submit(pipeline, too_many, token)
    assert status == 422 and "at most 10000" in answer["message"]
    assert (await payment(pipeline, token))["remainingCalls"] == 10


async def test_a_batch_without_enough_paid_calls_gets_402_saying_what_to_buy(pipeline: Pipeline) -> None:
    face = pipeline.sandbox.image("face.jpg")
    items = [item(f"d{i}", OK, face) for i in range(3)] + [item(f"r{i}", BROKEN, face) for i in range(2)]
    status, answer = await submit(pipeline, items)
    assert status == 402 and answer["error"] == "payment required"
    assert {(n["serviceId"], n["calls"]) for n in answer["needed"]} == {(OK, 3), (BROKEN, 2)}
    assert all(n["payment"]["status"] == "pending" for n in answer["needed"])

    short = await buy(pipeline, OK, 2)
    recognize = await buy(pipeline, BROKEN, 2)
    status, answer = await submit(pipeline, items, short, recognize)
    assert status == 402 and answer["code"] == "no_calls_left" and answer["needed"][0]["calls"] == 3
    assert (await payment(pipeline, short))["remainingCalls"] == 2  # nothing was consumed from either token
    assert (await payment(pipeline, recognize))["remainingCalls"] == 2

    status, answer = await submit(pipeline, items, "s402pt_pay_forged.bad", recognize)
    assert status == 402 and answer["code"] == "invalid_token"


async def test_the_same_idempotency_key_returns_the_same_batch_and_charges_once(pipeline: Pipeline) -> None:
    face = pipeline.sandbox.image("face.jpg")
    token = await buy(pipeline, OK, 5)
    items = [item(f"k{i}", OK, face) for i in range(3)]
    key = {"Idempotency-Key": "chunk-1"}
    answers = await asyncio.gather(*(submit(pipeline, items, token, **key) for _ in range(4)))
    assert sorted(status for status, _ in answers) == [200, 200, 200, 201]
    assert len({view["batchId"] for _, view in answers}) == 1
    assert (await payment(pipeline, token))["remainingCalls"] == 2
    status, answer = await submit(pipeline, items[:2], token, **{"Idempotency-Key": "chunk-1"})
    assert status == 422 and answer["code"] == "idempotency_key_reused"


# ---------------------------------------------------------------- cancel


@pytest.mark.no_worker
async def test_canceling_a_batch_before_it_runs_gives_every_call_back_at_once(pipeline: Pipeline) -> None:
    face = pipeline.sandbox.image("face.jpg")
    token = await buy(pipeline, OK, 600)
    status, view = await submit(pipeline, [item(f"c{i}", OK, face) for i in range(600)], token)
    assert status == 201
    batch_id = view["batchId"]
    assert await queued_jobs(pipeline) == 256  # one window of the batch is queued, not all of it
    response = await pipeline.api.delete(f"/api/batches/{batch_id}", headers={"X-Payment-Token": token})
    final = await response.json()  # queued jobs and items not yet queued alike: canceled at once, given back
    assert response.status == 200 and final["status"] == "canceled" and final["requestCounts"]["canceled"] == 600
    assert await queued_jobs(pipeline) == 0
    again = await pipeline.api.delete(f"/api/batches/{batch_id}", headers={"X-Payment-Token": token})
    assert again.status == 409 and (await again.json())["code"] == "conflict"  # nothing left to cancel
    pipeline.start_worker()
    assert (await payment(pipeline, token))["remainingCalls"] == 600
    assert {line["status"] for line in await results(pipeline, batch_id, token)} == {"canceled"}
    assert pipeline.sandbox and (await pipeline.sandbox.stats()).get("calls", {}).get("DetectFace", 0) == 0


async def test_canceling_a_running_batch_keeps_what_finished_and_credits_the_rest(pipeline: Pipeline) -> None:
    await pipeline.sandbox.put_fault(action="DetectFace", latencyMs={"fixed": 200}, qps=20)
    face = pipeline.sandbox.image("face.jpg")
    token = await buy(pipeline, OK, 300)
    finished = pipeline.redis.pubsub()
    await finished.subscribe(keys.JOBS_DONE_CHANNEL)
    _, view = await submit(pipeline, [item(f"r{i}", OK, face) for i in range(300)], token)
    batch_id = view["batchId"]
    seen = 0
    while seen < 5:  # the first jobs have finished
        seen += await finished.get_message(ignore_subscribe_messages=True, timeout=10) is not None
    await finished.aclose()
    response = await pipeline.api.delete(f"/api/batches/{batch_id}", headers={"X-Payment-Token": token})
    assert response.status == 200
    final = await wait_done(pipeline, batch_id, token)
    counts = final["requestCounts"]
    assert final["status"] == "canceled" and counts["succeeded"] + counts["canceled"] == 300
    assert counts["canceled"] > 0 and counts["succeeded"] >= 5
    assert (await payment(pipeline, token))["remainingCalls"] == counts["canceled"]


# ---------------------------------------------------------------- who may read it


async def test_a_batch_is_visible_only_to_the_credential_that_made_it(pipeline: Pipeline) -> None:
    face = pipeline.sandbox.image("face.jpg")
    mine, theirs = await buy(pipeline, OK, 1), await buy(pipeline, OK, 1)
    _, view = await submit(pipeline, [item("only", OK, face)], mine)
    path = f"/api/batches/{view['batchId']}"
    for suffix in ("", "/results"):
        assert (await pipeline.api.get(path + suffix, headers={"X-Payment-Token": theirs})).status == 404
        assert (await pipeline.api.get(path + suffix)).status == 404
        assert (await pipeline.api.get(path + suffix, headers={"X-Payment-Token": mine})).status == 200
    assert (await pipeline.api.delete(path, headers={"X-Payment-Token": theirs})).status == 404
    assert (await pipeline.api.get("/api/batches/bat_nope")).status == 404
    response = await pipeline.api.get(path + "/results", params={"offset": "-1"}, headers={"X-Payment-Token": mine})
    assert response.status == 400
