"""The official TypeScript MCP SDK client (@modelcontextprotocol/sdk 1.32.2, pinned by tests/js/package-lock.json)
against /mcp on the real pipeline: every kind of tools/call answer (success, pending job, payment required,
bad arguments, failed job, paid through `_meta`) must come back through the SDK's `client.callTool` without it
throwing, which it does (-32602) when structuredContent breaks the tool's outputSchema; and the 2025-11-25
experimental tasks (`client.experimental.tasks`: callToolStream with a task, tasks/get, tasks/result, tasks/list,
tasks/cancel).

The SDK 1.32.2 client speaks the initialize handshake only (LATEST_PROTOCOL_VERSION 2025-11-25; no 2026-07-28).
The client is tests/js/mcp.mjs, run with Node through tests/ts_harness.py (its `npm ci` fixture, its pipeline:
calls cost 20 cents, FREE_TOOL is free, x402 through the sandbox facilitator).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import ts_harness
from support import Pipeline
from ts_harness import FREE_TOOL, PAID_TOOL, PRICE_ATOMIC, run_node

from api.apikeys import ApiKeyStore
from sandbox.facilitator.config import DEMO_PAY_TO, DEMO_WALLET_ADDRESS, DEMO_WALLET_KEY
from sandbox.facilitator.testing import RunningFacilitator

ts_client = ts_harness.ts_client  # the session fixture: tests/js installed from its lock (npm ci), once
operator_terms = ts_harness.operator_terms
pipeline_env = ts_harness.pipeline_env

NODE_TIMEOUT_S = 30
TASK_CAPABILITY = {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}


@pytest.fixture
def mcp_script(ts_client: Path) -> Path:
    return ts_client.parent / "mcp.mjs"


def face(pipeline: Pipeline) -> dict[str, str]:
    return {"ImageURL": pipeline.sandbox.image("face.jpg")}


async def mcp(
    script: Path, pipeline: Pipeline, steps: list[dict[str, Any]], headers: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Run mcp.mjs on one connection to the pipeline's /mcp: one dict per step (see mcp.mjs)."""
    request = {
        "url": str(pipeline.api.make_url("/mcp")),
        "headers": headers or {},
        "privateKey": DEMO_WALLET_KEY,
        "steps": steps,
    }
    lines = await run_node(script, request, timeout_s=NODE_TIMEOUT_S)
    assert [line["step"] for line in lines] == [step["op"] for step in steps], lines
    return lines


def ok(line: dict[str, Any]) -> Any:
    """A step's result; the SDK's exact error when the step threw."""
    assert line["ok"], f"{line['step']} threw {line['error']}"
    return line["result"]


def text_of(result: dict[str, Any]) -> str:
    [content] = result["content"]
    assert content["type"] == "text"
    return str(content["text"])


async def api_key(pipeline: Pipeline) -> dict[str, str]:
    _, plaintext = await ApiKeyStore(pipeline.redis).create("ts-mcp", None, 100, 100)
    return {"Authorization": f"Bearer {plaintext}"}


# ---------------------------------------------------------------- listing


async def test_the_ts_client_handshakes_2025_11_25_and_lists_tools_with_annotations_and_task_support(
    mcp_script: Path, pipeline: Pipeline
) -> None:
    info, listed = await mcp(mcp_script, pipeline, [{"op": "serverInfo"}, {"op": "listTools"}])
    info = ok(info)
    assert info["protocolVersion"] == "2025-11-25" == info["sdk"]["LATEST_PROTOCOL_VERSION"]
    assert "2026-07-28" not in info["sdk"]["SUPPORTED_PROTOCOL_VERSIONS"]
    assert info["serverVersion"]["name"] == "server402"
    assert info["serverCapabilities"]["tasks"] == TASK_CAPABILITY
    tools = {tool["name"]: tool for tool in ok(listed)["tools"]}
    assert set(tools) == {service.discovery.tool_name for service in pipeline.catalog}
    for tool in tools.values():
        assert "anyOf" in tool["outputSchema"], tool["name"]
        assert isinstance(tool.get("annotations"), dict), tool["name"]
        assert tool.get("execution") == {"taskSupport": "optional"}, tool["name"]


# ---------------------------------------------------------------- every kind of answer, through client.callTool


async def test_a_free_call_succeeds_through_the_sdks_output_schema_check(mcp_script: Path, pipeline: Pipeline) -> None:
    [call] = await mcp(mcp_script, pipeline, [{"op": "callTool", "name": FREE_TOOL, "arguments": face(pipeline)}])
    result = ok(call)
    assert not result.get("isError")
    envelope = result["structuredContent"]
    assert envelope["data"]["Action"] == "RecognizeExpression" and envelope["code"] == "200"
    assert json.loads(text_of(result)) == envelope
    assert (await pipeline.sandbox.stats())["actions"]["RecognizeExpression"]["calls"] == 1


async def test_a_call_still_running_when_the_wait_ends_comes_back_as_the_pending_job(
    mcp_script: Path, pipeline: Pipeline
) -> None:
    await pipeline.stop_worker()  # nothing runs it yet
    steps = [{"op": "callTool", "name": FREE_TOOL, "arguments": face(pipeline)}]
    [call] = await mcp(mcp_script, pipeline, steps, headers={"Prefer": "respond-async"})
    result = ok(call)
    assert not result.get("isError")
    pending = result["structuredContent"]
    assert pending["status"] == "queued" and pending["links"]["self"] == f"/api/jobs/{pending['jobId']}"
    assert "poll" in pending["note"]
    pipeline.start_worker()
    status, job = await pipeline.job(pending["jobId"], wait=10)
    assert (status, job["status"]) == (200, "succeeded")


async def test_an_unpaid_call_is_an_error_result_carrying_the_x402_payment_required(
    mcp_script: Path, pipeline: Pipeline
) -> None:
    [call] = await mcp(mcp_script, pipeline, [{"op": "callTool", "name": PAID_TOOL, "arguments": face(pipeline)}])
    result = ok(call)
    assert result["isError"] is True
    body = result["structuredContent"]
    assert body["x402Version"] == 2 and body["code"] == "payment_required"
    [accepted] = body["accepts"]
    assert (accepted["scheme"], accepted["amount"], accepted["payTo"]) == ("exact", str(PRICE_ATOMIC), DEMO_PAY_TO)
    assert accepted["network"] == "eip155:8453"
    assert json.loads(text_of(result)) == body
    assert (await pipeline.sandbox.stats())["actions"].get("DetectFace", {}).get("calls", 0) == 0


async def test_bad_arguments_are_an_error_result(mcp_script: Path, pipeline: Pipeline) -> None:
    [call] = await mcp(mcp_script, pipeline, [{"op": "callTool", "name": FREE_TOOL, "arguments": {}}])
    result = ok(call)
    assert result["isError"] is True
    assert text_of(result) == "ImageURL is required"
    assert result["structuredContent"]["code"] == "validation_failed"
    assert (await pipeline.sandbox.stats())["totals"]["calls"] == 0


async def test_a_failed_upstream_job_is_an_error_result(mcp_script: Path, pipeline: Pipeline) -> None:
    arguments = {"ImageURL": pipeline.sandbox.image("no-such-image.jpg")}
    [call] = await mcp(mcp_script, pipeline, [{"op": "callTool", "name": FREE_TOOL, "arguments": arguments}])
    result = ok(call)
    assert result["isError"] is True
    body = result["structuredContent"]
    assert body["job"]["status"] == "failed" and body["code"].startswith("InvalidImage"), body


async def test_the_ts_client_pays_through_meta_and_gets_the_settlement(
    mcp_script: Path, pipeline: Pipeline, facilitator: RunningFacilitator
) -> None:
    [paying] = await mcp(mcp_script, pipeline, [{"op": "pay", "name": PAID_TOOL, "arguments": face(pipeline)}])
    answer = ok(paying)
    assert answer["unpaid"]["isError"] is True and answer["paymentRequired"]["x402Version"] == 2
    paid = answer["paid"]
    assert not paid.get("isError"), paid
    assert paid["structuredContent"]["data"]["Action"] == "DetectFace"
    settled = paid["_meta"]["x402/payment-response"]
    assert settled == answer["paymentResponse"]
    assert settled["success"] is True and settled["network"] == "eip155:8453" and settled["transaction"]
    assert settled["payer"].lower() == DEMO_WALLET_ADDRESS.lower()
    assert await facilitator.balance(DEMO_PAY_TO) == PRICE_ATOMIC
    assert (await facilitator.counts())["settle"] == 1


# ---------------------------------------------------------------- tasks (2025-11-25, client.experimental.tasks)


async def test_a_call_as_a_task_runs_to_a_result_shaped_like_a_normal_calls(
    mcp_script: Path, pipeline: Pipeline
) -> None:
    steps = [
        {"op": "callTool", "name": FREE_TOOL, "arguments": face(pipeline)},
        {"op": "callToolAsTask", "name": FREE_TOOL, "arguments": face(pipeline), "ttl": 60_000},
        {"op": "getTask", "taskId": "$last", "untilTerminal": True},
        {"op": "getTaskResult", "taskId": "$last", "name": FREE_TOOL},
    ]
    normal, streamed, task, task_result = await mcp(mcp_script, pipeline, steps)
    normal = ok(normal)
    messages = ok(streamed)["messages"]
    created, *statuses, final = messages
    assert created["type"] == "taskCreated" and final["type"] == "result", messages
    assert all(message["type"] == "taskStatus" for message in statuses) and statuses, messages
    assert statuses[-1]["task"]["status"] == "completed"
    task_id = created["task"]["taskId"]
    task = ok(task)
    assert (task["taskId"], task["status"]) == (task_id, "completed")
    task_result = ok(task_result)
    assert task_result["outputSchema"] == {"valid": True, "errorMessage": None}
    for result in (final["result"], task_result):
        assert not result.get("isError")
        assert result["structuredContent"]["data"]["Action"] == "RecognizeExpression"
        assert set(result["structuredContent"]) == set(normal["structuredContent"])
        assert [c["type"] for c in result["content"]] == [c["type"] for c in normal["content"]]
    assert task_result["structuredContent"] == final["result"]["structuredContent"]
    status, job = await pipeline.job(task_id)  # a task id is the job id
    assert (status, job["status"]) == (200, "succeeded")


async def test_tasks_list_on_a_keyed_connection_shows_its_task(mcp_script: Path, pipeline: Pipeline) -> None:
    steps = [
        {"op": "callToolAsTask", "name": FREE_TOOL, "arguments": face(pipeline), "detach": True},
        {"op": "getTask", "taskId": "$last", "untilTerminal": True},
        {"op": "listTasks"},
    ]
    created, task, listed = await mcp(mcp_script, pipeline, steps, headers=await api_key(pipeline))
    [message] = ok(created)["messages"]
    task_id = message["task"]["taskId"]
    assert ok(task)["status"] == "completed"
    tasks = {entry["taskId"]: entry for entry in ok(listed)["tasks"]}
    assert task_id in tasks and tasks[task_id]["status"] == "completed", tasks


async def test_cancelling_a_queued_task_cancels_its_job(mcp_script: Path, pipeline: Pipeline) -> None:
    await pipeline.stop_worker()  # the job stays queued
    steps = [
        {"op": "callToolAsTask", "name": FREE_TOOL, "arguments": face(pipeline), "detach": True},
        {"op": "cancelTask", "taskId": "$last"},
        {"op": "getTask", "taskId": "$last"},
    ]
    key = await api_key(pipeline)
    created, cancelled, task = await mcp(mcp_script, pipeline, steps, headers=key)
    [message] = ok(created)["messages"]
    task_id = message["task"]["taskId"]
    assert message["task"]["status"] == "working"
    assert (ok(cancelled)["taskId"], ok(cancelled)["status"]) == (task_id, "cancelled")
    assert ok(task)["status"] == "cancelled"
    response = await pipeline.api.get(f"/api/jobs/{task_id}", headers=key)  # a task id is the job id
    assert (response.status, (await response.json())["status"]) == (200, "canceled")
    assert (await pipeline.sandbox.stats())["totals"]["calls"] == 0
