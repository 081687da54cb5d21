"""MCP tasks over the wire, in both protocol versions (no Python MCP client has tasks yet: raw JSON-RPC over HTTP),
against the real pipeline: Redis, an arq worker, the sandbox upstream, the sandbox facilitator. A task is its job:
durable, its owner's only, cancelled by the job's rules, paid for as any tools/call."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import ts_harness
from support import Pipeline
from ts_harness import FREE_TOOL, PAID_TOOL, PRICE_ATOMIC
from x402 import PaymentPayload, PaymentRequired
from x402_support import buyer, httpx_buyer

from api.apikeys import ApiKeyStore
from api.app import create_app
from api.mcp_tasks import LIST_PAGE
from sandbox.facilitator.config import DEMO_PAY_TO
from sandbox.facilitator.testing import RunningFacilitator

V1 = "2025-11-25"
V2 = "2026-07-28"
TASKS = "io.modelcontextprotocol/tasks"
RELATED = "io.modelcontextprotocol/related-task"

operator_terms = ts_harness.operator_terms  # calls cost 20 cents, FREE_TOOL is free
pipeline_env = ts_harness.pipeline_env  # x402 through the sandbox facilitator


def face(pipeline: Pipeline, image: str = "face.jpg") -> dict[str, str]:
    return {"ImageURL": pipeline.sandbox.image(image)}


class Wire:
    """JSON-RPC over POST /mcp in one protocol version; `tasks`: (2026-07-28) declare the tasks extension."""

    def __init__(self, api: Any, version: str, *, tasks: bool = True, **headers: str) -> None:
        self.api, self.version, self.tasks, self.headers = api, version, tasks, headers
        self.ids = 0

    def _request(self, method: str, params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        self.ids += 1
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
                   "MCP-Protocol-Version": self.version, **self.headers}  # fmt: skip
        if self.version == V2:
            capabilities: dict[str, Any] = {"extensions": {TASKS: {}}} if self.tasks else {}
            params = {**params, "_meta": {**params.get("_meta", {}), "io.modelcontextprotocol/protocolVersion": V2,
                                          "io.modelcontextprotocol/clientCapabilities": capabilities}}  # fmt: skip
            headers |= {"Mcp-Method": method}
            if method == "tools/call":
                headers["Mcp-Name"] = params["name"]
        return {"jsonrpc": "2.0", "id": self.ids, "method": method, "params": params}, headers

    async def raw(self, method: str, params: dict[str, Any] | None = None, **extra: str) -> tuple[int, str, str]:
        body, headers = self._request(method, params or {})
        response = await self.api.post("/mcp", data=json.dumps(body), headers={**headers, **extra})
        return response.status, response.headers.get("Content-Type", ""), await response.text()

    async def answer(self, method: str, params: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        status, kind, text = await self.raw(method, params, Accept="application/json")
        assert kind.startswith("application/json"), (kind, text)
        return status, json.loads(text)

    async def result(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        status, answer = await self.answer(method, params)
        assert status == 200 and "result" in answer, (status, answer)
        return answer["result"]  # type: ignore[no-any-return]

    async def error(self, method: str, params: dict[str, Any] | None = None) -> tuple[int, int, str]:
        status, answer = await self.answer(method, params)
        assert "error" in answer, answer
        return status, answer["error"]["code"], answer["error"]["message"]

    async def call(self, tool: str, arguments: dict[str, Any], **params: Any) -> dict[str, Any]:
        return await self.result("tools/call", {"name": tool, "arguments": arguments, **params})

    async def task(self, tool: str, arguments: dict[str, Any], **params: Any) -> dict[str, Any]:
        """A tools/call asked for as a task: the task (either version's shape)."""
        extra = {"task": {"ttl": 60_000}} if self.version == V1 else {}
        created = await self.call(tool, arguments, **extra, **params)
        if self.version == V1:
            assert set(created) == {"task", "_meta"}, created
            return created["task"]  # type: ignore[no-any-return]
        assert created["resultType"] == "task", created
        return created


async def key(pipeline: Pipeline, name: str) -> str:
    _, plaintext = await ApiKeyStore(pipeline.redis).create(name, None, 1000, 1000)
    return plaintext


# ---------------------------------------------------------------- 2025-11-25


async def test_2025_11_25_declares_tasks_and_each_tool_may_run_as_one(pipeline: Pipeline) -> None:
    wire = Wire(pipeline.api, V1)
    init = await wire.result("initialize", {"protocolVersion": V1, "capabilities": {}, "clientInfo": {"name": "t"}})
    assert init["capabilities"]["tasks"] == {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}
    tools = (await wire.result("tools/list"))["tools"]
    assert {tool["execution"]["taskSupport"] for tool in tools} == {"optional"}
    hints = {tool["name"]: tool["annotations"] for tool in tools}
    assert hints["face_detection"]["readOnlyHint"] and hints["face_detection"]["openWorldHint"]
    deletes = [name for name in hints if "_delete" in name]
    assert deletes and all(hints[name]["destructiveHint"] and not hints[name]["readOnlyHint"] for name in deletes)
    adding = hints["face_database_add_face"]
    assert not adding["readOnlyHint"] and not adding["destructiveHint"] and not adding["idempotentHint"]
    assert all(tool["annotations"]["title"] == tool["title"] for tool in tools)


async def test_2025_11_25_a_task_answers_at_once_then_get_and_result_give_its_job(pipeline: Pipeline) -> None:
    await pipeline.sandbox.put_fault(action="RecognizeExpression", latencyMs={"fixed": 600})
    wire = Wire(pipeline.api, V1)
    created = await wire.call(FREE_TOOL, face(pipeline), task={"ttl": 5000})
    task = created["task"]
    assert task["status"] == "working" and task["ttl"] == pipeline.settings.jobs.retention_s * 1000
    assert task["pollInterval"] > 0 and task["createdAt"].endswith("Z") and task["lastUpdatedAt"]
    assert task["taskId"] in created["_meta"]["io.modelcontextprotocol/model-immediate-response"]
    got = await wire.result("tasks/get", {"taskId": task["taskId"]})
    assert got["taskId"] == task["taskId"] and got["status"] == "working"
    result = await wire.result("tasks/result", {"taskId": task["taskId"]})  # blocks until the job ends
    assert not result.get("isError") and result["structuredContent"]["data"]["Action"] == "RecognizeExpression"
    assert result["_meta"][RELATED] == {"taskId": task["taskId"]}
    assert (await wire.result("tasks/get", {"taskId": task["taskId"]}))["status"] == "completed"
    status, job = await pipeline.job(task["taskId"])  # the task is the job
    assert (status, job["status"]) == (200, "succeeded")
    assert (await pipeline.sandbox.stats())["actions"]["RecognizeExpression"]["calls"] == 1


async def test_tasks_result_over_sse_sends_status_notifications_then_the_result(pipeline: Pipeline) -> None:
    await pipeline.sandbox.put_fault(action="RecognizeExpression", latencyMs={"fixed": 600})
    wire = Wire(pipeline.api, V1)
    task = await wire.task(FREE_TOOL, face(pipeline))
    status, kind, text = await wire.raw("tasks/result", {"taskId": task["taskId"]})
    assert status == 200 and kind.startswith("text/event-stream")
    events = [json.loads(line[len("data: ") :]) for line in text.splitlines() if line.startswith("data: ")]
    notes = [event["params"] for event in events if event.get("method") == "notifications/tasks/status"]
    assert notes and all(note["taskId"] == task["taskId"] for note in notes)
    assert notes[-1]["status"] == "completed" and events[-1]["result"]["_meta"][RELATED]["taskId"] == task["taskId"]


async def test_a_failed_job_is_a_failed_task_whose_result_is_the_error(pipeline: Pipeline) -> None:
    wire = Wire(pipeline.api, V1)
    task = await wire.task(FREE_TOOL, face(pipeline, "no-such-image.jpg"))
    result = await wire.result("tasks/result", {"taskId": task["taskId"]})
    assert result["isError"] and result["structuredContent"]["job"]["status"] == "failed"
    got = await wire.result("tasks/get", {"taskId": task["taskId"]})
    assert got["status"] == "failed" and got["statusMessage"]


async def test_a_task_is_durable_across_an_api_restart(pipeline: Pipeline, aiohttp_client: Any) -> None:
    await pipeline.stop_worker()
    task = await Wire(pipeline.api, V1).task(FREE_TOOL, face(pipeline))
    other_api = await aiohttp_client(create_app(pipeline.settings, pipeline.catalog))  # another API process's app
    wire = Wire(other_api, V1)
    assert (await wire.result("tasks/get", {"taskId": task["taskId"]}))["status"] == "working"
    pipeline.start_worker()
    result = await wire.result("tasks/result", {"taskId": task["taskId"]})
    assert result["structuredContent"]["data"]["Action"] == "RecognizeExpression"


async def test_only_the_owner_sees_its_tasks_and_the_list_pages_through_them(pipeline: Pipeline) -> None:
    await pipeline.stop_worker()
    mine, theirs = await key(pipeline, "mine"), await key(pipeline, "theirs")
    owner = Wire(pipeline.api, V1, Authorization=f"Bearer {mine}")
    created = [(await owner.task(FREE_TOOL, face(pipeline)))["taskId"] for _ in range(LIST_PAGE + 1)]
    for stranger in (Wire(pipeline.api, V1), Wire(pipeline.api, V1, Authorization=f"Bearer {theirs}")):
        for method in ("tasks/get", "tasks/result", "tasks/cancel"):
            assert (await stranger.error(method, {"taskId": created[0]}))[1] == -32602
        assert (await stranger.result("tasks/list"))["tasks"] == []
    first = await owner.result("tasks/list")
    assert len(first["tasks"]) == LIST_PAGE and first["nextCursor"]
    second = await owner.result("tasks/list", {"cursor": first["nextCursor"]})
    assert "nextCursor" not in second
    listed = [task["taskId"] for task in first["tasks"] + second["tasks"]]
    assert sorted(listed) == sorted(created) and len(set(listed)) == len(created)
    assert (await owner.error("tasks/list", {"cursor": "not-a-cursor"}))[1] == -32602
    assert (await owner.error("tasks/get", {"taskId": "job_nonesuch"}))[1] == -32602


async def test_cancelling_a_queued_task_gives_its_paid_call_back(pipeline: Pipeline) -> None:
    async with httpx_buyer(str(pipeline.api.make_url(""))) as buying:
        bought = await buying.post("/api/payments", json={"serviceId": "face-detection", "calls": 1})
    assert bought.status_code == 201, bought.text
    token = bought.json()["token"]
    await pipeline.stop_worker()
    wire = Wire(pipeline.api, V1, **{"X-Payment-Token": token})  # the token's tasks are read with the token
    task = await wire.task(PAID_TOOL, {**face(pipeline), "paymentToken": token})
    assert [t["taskId"] for t in (await wire.result("tasks/list"))["tasks"]] == [task["taskId"]]
    cancelled = await wire.result("tasks/cancel", {"taskId": task["taskId"]})
    assert cancelled["status"] == "cancelled" and "given back" in cancelled["statusMessage"]
    status, code, message = await wire.error("tasks/cancel", {"taskId": task["taskId"]})
    assert (status, code) == (200, -32602) and "terminal" in message
    result = await wire.result("tasks/result", {"taskId": task["taskId"]})
    assert result["isError"] and result["structuredContent"]["job"]["status"] == "canceled"
    pipeline.start_worker()
    again = await wire.call(PAID_TOOL, {**face(pipeline), "paymentToken": token})  # the call came back
    assert not again.get("isError"), again
    assert (await pipeline.sandbox.stats())["actions"]["DetectFace"]["calls"] == 1


@pytest.mark.parametrize("version", [V1, V2])
async def test_a_task_is_paid_for_as_any_tools_call(
    pipeline: Pipeline, facilitator: RunningFacilitator, version: str
) -> None:
    wire = Wire(pipeline.api, version)
    unpaid = await wire.call(PAID_TOOL, face(pipeline), **({"task": {}} if version == V1 else {}))
    assert unpaid["isError"] and unpaid["structuredContent"]["code"] == "payment_required"  # no job, so no task
    terms = unpaid["structuredContent"]
    required = PaymentRequired.model_validate({k: terms[k] for k in ("x402Version", "resource", "accepts")})
    payment = await buyer().create_payment_payload(required)
    assert isinstance(payment, PaymentPayload)
    meta = {"_meta": {"x402/payment": payment.model_dump(mode="json", by_alias=True, exclude_none=True)}}
    task = await wire.task(PAID_TOOL, face(pipeline), **meta)
    if version == V1:
        result = await wire.result("tasks/result", {"taskId": task["taskId"]})
    else:
        result = await until_terminal(wire, task["taskId"])
        result = result["result"]
    assert result["structuredContent"]["data"]["Action"] == "DetectFace"
    assert await facilitator.balance(DEMO_PAY_TO) == PRICE_ATOMIC


# ---------------------------------------------------------------- 2026-07-28: the tasks extension


async def until_terminal(wire: Wire, task_id: str) -> dict[str, Any]:
    for _ in range(200):
        got = await wire.result("tasks/get", {"taskId": task_id})
        if got["status"] in ("completed", "failed", "cancelled"):
            return got
        await asyncio.sleep(0.05)
    raise AssertionError(f"task {task_id} did not end")


async def test_2026_07_28_offers_the_extension_and_answers_tasks_only_to_clients_that_declare_it(
    pipeline: Pipeline,
) -> None:
    plain = Wire(pipeline.api, V2, tasks=False)
    capabilities = (await plain.result("server/discover"))["capabilities"]
    assert capabilities["extensions"] == {TASKS: {}} and "tasks" not in capabilities
    tools = (await plain.result("tools/list"))["tools"]
    assert all("execution" not in tool for tool in tools)
    sync = await plain.call(FREE_TOOL, face(pipeline), task={"ttl": 1000})  # a legacy param changes nothing
    assert sync["resultType"] == "complete" and sync["structuredContent"]["data"]["Action"] == "RecognizeExpression"
    for method, params in (("tasks/get", {"taskId": "x"}), ("tasks/cancel", {"taskId": "x"}),
                           ("tasks/update", {"taskId": "x", "inputResponses": {}})):  # fmt: skip
        status, code, _ = await plain.error(method, params)
        assert (status, code) == (400, -32021), method
    tasks = Wire(pipeline.api, V2)
    for removed in ("tasks/result", "tasks/list"):
        assert (await tasks.error(removed, {"taskId": "x"}))[:2] == (404, -32601)
    assert (await tasks.error("tasks/get", {"taskId": "job_nonesuch"}))[:2] == (400, -32602)


async def test_2026_07_28_a_task_is_created_at_once_and_get_inlines_its_result(pipeline: Pipeline) -> None:
    await pipeline.sandbox.put_fault(action="RecognizeExpression", latencyMs={"fixed": 300})
    wire = Wire(pipeline.api, V2)
    task = await wire.task(FREE_TOOL, face(pipeline))
    assert task["status"] == "working" and task["ttlMs"] > 0 and task["pollIntervalMs"] > 0
    assert "ttl" not in task and "pollInterval" not in task and "task" not in task
    working = await wire.result("tasks/get", {"taskId": task["taskId"]})  # durable before the answer
    assert working["resultType"] == "complete" and "result" not in working
    done = await until_terminal(wire, task["taskId"])
    assert done["status"] == "completed" and done["result"]["structuredContent"]["data"]["Action"]
    assert RELATED not in done["result"].get("_meta", {})
    assert await wire.result("tasks/cancel", {"taskId": task["taskId"]}) == {"resultType": "complete",
                                                                             "_meta": done["_meta"]}  # fmt: skip
    update = await wire.result("tasks/update", {"taskId": task["taskId"], "inputResponses": {}})
    assert update["resultType"] == "complete"


async def test_2026_07_28_a_tool_error_completes_the_task_and_a_cancel_is_acknowledged(pipeline: Pipeline) -> None:
    wire = Wire(pipeline.api, V2)
    failed = await until_terminal(wire, (await wire.task(FREE_TOOL, face(pipeline, "no-such-image.jpg")))["taskId"])
    assert failed["status"] == "completed" and failed["result"]["isError"]
    await pipeline.stop_worker()
    queued = await wire.task(FREE_TOOL, face(pipeline))
    ack = await wire.result("tasks/cancel", {"taskId": queued["taskId"]})
    assert ack["resultType"] == "complete" and set(ack) <= {"resultType", "_meta"}
    assert (await wire.result("tasks/get", {"taskId": queued["taskId"]}))["status"] == "cancelled"


async def test_tasks_sharing_a_millisecond_are_all_listed_once(pipeline: Pipeline) -> None:
    await pipeline.stop_worker()
    owner_key = await key(pipeline, "many")
    owner = Wire(pipeline.api, V1, Authorization=f"Bearer {owner_key}")
    created = [(await owner.task(FREE_TOOL, face(pipeline)))["taskId"] for _ in range(2 * LIST_PAGE + 10)]
    [index] = await pipeline.redis.keys("s402:mcp:tasks:*")
    await pipeline.redis.zadd(index, dict.fromkeys(created, 1_700_000_000_000))  # one millisecond for all of them
    listed: list[str] = []
    page = await owner.result("tasks/list")
    while True:
        listed += [task["taskId"] for task in page["tasks"]]
        if "nextCursor" not in page:
            break
        page = await owner.result("tasks/list", {"cursor": page["nextCursor"]})
    assert sorted(listed) == sorted(created)


async def test_tasks_result_stops_at_the_longest_wait_and_says_the_task_goes_on(
    pipeline: Pipeline, aiohttp_client: Any
) -> None:
    import msgspec

    await pipeline.stop_worker()
    short = await aiohttp_client(
        create_app(
            msgspec.structs.replace(
                pipeline.settings, jobs=msgspec.structs.replace(pipeline.settings.jobs, wait_max_s=0.3)
            ),
            pipeline.catalog,
        )
    )
    wire = Wire(short, V1)
    task = await wire.task(FREE_TOOL, face(pipeline))
    status, code, message = await wire.error("tasks/result", {"taskId": task["taskId"]})
    assert (status, code) == (200, -32001) and "still working" in message
    assert (await wire.result("tasks/get", {"taskId": task["taskId"]}))["status"] == "working"


async def test_a_bad_key_gets_the_same_answer_whether_or_not_the_task_exists(pipeline: Pipeline) -> None:
    await pipeline.stop_worker()
    task = await Wire(pipeline.api, V1).task(FREE_TOOL, face(pipeline))
    bad = Wire(pipeline.api, V1, Authorization="Bearer s402_nope")
    answers = [await bad.error("tasks/get", {"taskId": task_id}) for task_id in (task["taskId"], "job_" + "a" * 36)]
    assert answers[0] == answers[1]
