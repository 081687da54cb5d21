"""MCP at /mcp, driven by the official `mcp` client (2025-11-25 handshake and 2026-07-28 stateless) and the
official x402 MCP client, against the real pipeline: Redis, an arq worker, the sandbox upstream, the sandbox
facilitator. Malformed traffic is sent raw."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import httpx2
import pytest
from mcp import ClientSession
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult
from support import FREE_AND_FAST, Pipeline
from x402.mcp import x402MCPSession
from x402_support import buyer, httpx_buyer

from sandbox.facilitator.config import DEMO_PAY_TO, DEMO_WALLET_ADDRESS
from sandbox.facilitator.testing import RunningFacilitator
from shared import keys

PRICE_ATOMIC = 200_000  # 20 cents of USDC
PAID_TOOL = "face_detection"  # service face-detection
FREE_TOOL = "facial_expression_recognition"
SEED_PAYMENT_FIELDS = {"paymentId", "serviceId", "amountCents", "currency", "status", "token", "payTo", "provider"}
MODERN = "2026-07-28"


@pytest.fixture
def operator_terms() -> dict[str, Any]:
    return {
        "defaults": {"amountCents": 20, "qps": 1000},
        "services": {
            "facial-expression-recognition": {"amountCents": 0},
            "body-pose-estimation": {"amountCents": 0, "requiresApiKey": True},
        },
    }


@pytest.fixture
def pipeline_env(facilitator: RunningFacilitator) -> dict[str, str]:
    return {"SERVER402_X402_FACILITATOR_URL": facilitator.url}


def mcp_url(pipeline: Pipeline) -> str:
    return str(pipeline.api.make_url("/mcp"))


def face(pipeline: Pipeline) -> dict[str, str]:
    return {"ImageURL": pipeline.sandbox.image("face.jpg")}


async def rpc(pipeline: Pipeline, body: Any, **headers: str) -> tuple[int, Any]:
    """One raw POST to /mcp; the JSON-RPC answer (or None for an empty body)."""
    data = body if isinstance(body, bytes | io.BytesIO) else json.dumps(body).encode()
    response = await pipeline.api.post(
        "/mcp",
        data=data,
        headers={"Content-Type": "application/json", "Accept": "application/json, text/event-stream", **headers},
    )
    text = await response.text()
    return response.status, json.loads(text) if text else None


def modern_request(method: str, params: dict[str, Any] | None = None, **headers: str) -> tuple[Any, dict[str, str]]:
    meta = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}
    body = {"jsonrpc": "2.0", "id": 7, "method": method, "params": {**(params or {}), "_meta": meta}}
    return body, {"MCP-Protocol-Version": MODERN, "Mcp-Method": method, **headers}


class SessionForX402:
    """The official ClientSession as x402 2.25's `x402MCPSession` expects it: x402 reads results by their mcp 1.x
    attribute names (`isError`, `structuredContent`) and passes timeouts as timedelta, where mcp 2.x has
    `is_error`, `structured_content` and float seconds. Everything else (probe, sign, `_meta`, settlement) is
    the x402 client's own."""

    def __init__(self, session: ClientSession) -> None:
        self._session = session

    async def initialize(self) -> None:
        await self._session.initialize()

    async def call_tool(
        self, name: str, arguments: dict[str, Any], read_timeout_seconds: timedelta, meta: Any = None
    ) -> SimpleNamespace:
        result = await self._session.call_tool(
            name, arguments, read_timeout_seconds=read_timeout_seconds.total_seconds(), meta=meta
        )
        return SimpleNamespace(
            content=result.content,
            isError=result.is_error,
            structuredContent=result.structured_content,
            meta=result.meta,
        )


def structured(result: CallToolResult) -> Any:
    assert result.structured_content is not None
    return result.structured_content


# ---------------------------------------------------------------- 2025-11-25


async def test_the_official_client_lists_and_calls_tools_over_the_2025_11_25_handshake(pipeline: Pipeline) -> None:
    async with streamable_http_client(mcp_url(pipeline)) as (read, write), ClientSession(read, write) as session:
        init = await session.initialize()
        assert init.protocol_version == "2025-11-25" and init.server_info.name == "server402"
        await session.send_ping()
        listed = await session.list_tools()
        tools = {tool.name: tool for tool in listed.tools}
        assert len(tools) == len(pipeline.catalog)
        tool = tools[FREE_TOOL]
        assert tool.output_schema is not None and "paymentToken" in tool.input_schema["properties"]
        assert "Free" in (tool.description or "")
        result = await session.call_tool(FREE_TOOL, face(pipeline))  # the client checks it against outputSchema
    assert not result.is_error
    envelope = structured(result)
    assert envelope["data"]["Action"] == "RecognizeExpression" and envelope["code"] == "200"
    assert json.loads(result.content[0].text) == envelope  # type: ignore[union-attr]
    assert (await pipeline.sandbox.stats())["actions"]["RecognizeExpression"]["calls"] == 1


# ---------------------------------------------------------------- 2026-07-28


async def test_the_official_client_negotiates_2026_07_28_and_calls_a_tool(pipeline: Pipeline) -> None:
    async with Client(mcp_url(pipeline)) as client:
        assert client.protocol_version == MODERN
        assert client.server_info is not None and client.server_info.name == "server402"
        listed = await client.list_tools()
        assert {tool.name for tool in listed.tools} == {s.discovery.tool_name for s in pipeline.catalog}
        assert listed.ttl_ms > 0 and listed.cache_scope == "public"
        result = await client.call_tool(FREE_TOOL, face(pipeline))
    assert not result.is_error and result.result_type == "complete"
    assert structured(result)["data"]["Action"] == "RecognizeExpression"


# ---------------------------------------------------------------- progress and long jobs


@pytest.mark.parametrize("era", ["2025-11-25", MODERN])
async def test_a_call_with_a_progress_token_streams_progress_until_the_result(pipeline: Pipeline, era: str) -> None:
    await pipeline.sandbox.put_fault(action="RecognizeExpression", latencyMs={"fixed": 1200})
    updates: list[tuple[float, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append((progress, message))

    async with Client(mcp_url(pipeline), mode="legacy" if era != MODERN else "auto") as client:
        assert client.protocol_version == era
        result = await client.call_tool(FREE_TOOL, face(pipeline), progress_callback=on_progress)
    assert not result.is_error and structured(result)["data"]["Action"] == "RecognizeExpression"
    messages = [message or "" for _, message in updates]
    assert messages[0].startswith("queued") and any(m.startswith("running") for m in messages), messages
    progress = [value for value, _ in updates]
    assert progress == sorted(set(progress))  # strictly increasing, as the spec requires


async def test_a_call_still_running_when_the_wait_ends_returns_the_job_to_poll(pipeline: Pipeline) -> None:
    await pipeline.stop_worker()  # nothing runs it yet
    http = httpx2.AsyncClient(headers={"Prefer": "respond-async"})
    async with (
        http,
        streamable_http_client(mcp_url(pipeline), http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        result = await session.call_tool(FREE_TOOL, face(pipeline))  # validated against outputSchema
    assert not result.is_error
    pending = structured(result)
    assert pending["status"] == "queued" and pending["links"]["self"] == f"/api/jobs/{pending['jobId']}"
    assert "poll" in pending["note"]
    pipeline.start_worker()
    status, job = await pipeline.job(pending["jobId"], wait=10)
    assert (status, job["status"]) == (200, "succeeded")


# ---------------------------------------------------------------- paying


async def test_an_unpaid_call_is_an_error_result_carrying_the_x402_terms_and_the_seed_payment(
    pipeline: Pipeline,
) -> None:
    async with Client(mcp_url(pipeline)) as client:
        result = await client.call_tool(PAID_TOOL, face(pipeline))
    assert result.is_error
    body = structured(result)
    assert (body["x402Version"], body["error"], body["code"]) == (2, "payment required", "payment_required")
    [accepted] = body["accepts"]
    assert (accepted["scheme"], accepted["amount"], accepted["payTo"]) == ("exact", str(PRICE_ATOMIC), DEMO_PAY_TO)
    assert accepted["extra"]["serviceId"] == "face-detection"
    assert set(body["payment"]) >= SEED_PAYMENT_FIELDS and body["payment"]["status"] == "pending"
    assert json.loads(result.content[0].text) == body  # type: ignore[union-attr]  # the x402 MCP transport
    assert (await pipeline.sandbox.stats())["actions"].get("DetectFace", {}).get("calls", 0) == 0


async def test_a_payment_token_argument_pays_for_exactly_its_calls(pipeline: Pipeline) -> None:
    async with httpx_buyer(str(pipeline.api.make_url(""))) as buying:
        response = await buying.post("/api/payments", json={"serviceId": "face-detection", "calls": 1})
    assert response.status_code == 201, response.text
    token = response.json()["token"]
    async with Client(mcp_url(pipeline)) as client:
        paid = await client.call_tool(PAID_TOOL, {**face(pipeline), "paymentToken": token})
        again = await client.call_tool(PAID_TOOL, {**face(pipeline), "paymentToken": token})
    assert not paid.is_error and structured(paid)["data"]["Action"] == "DetectFace"
    assert again.is_error and structured(again)["error"] == "payment token has no remaining calls"
    assert (await pipeline.sandbox.stats())["actions"]["DetectFace"]["calls"] == 1


async def test_the_official_x402_mcp_client_pays_inline_and_gets_the_settlement(
    pipeline: Pipeline, facilitator: RunningFacilitator
) -> None:
    async with streamable_http_client(mcp_url(pipeline)) as (read, write), ClientSession(read, write) as session:
        paying = x402MCPSession(SessionForX402(session), buyer())
        await paying.initialize()
        result = await paying.call_tool(PAID_TOOL, face(pipeline))
    assert result.payment_made and not result.is_error
    settled = result.payment_response
    assert settled is not None and not isinstance(settled, dict)
    assert settled.success and settled.payer == DEMO_WALLET_ADDRESS and settled.transaction
    assert await facilitator.balance(DEMO_PAY_TO) == PRICE_ATOMIC
    assert json.loads(result.content[0].text)["data"]["Action"] == "DetectFace"


async def test_an_mcp_call_waits_through_a_settlement_whose_answer_was_lost(
    pipeline: Pipeline, facilitator: RunningFacilitator
) -> None:
    """The facilitator settles and drops its answer: the call's job waits `settling` for the reconciler, and the
    official x402 MCP client gets the tool's result in the same tools/call, paid once."""
    await facilitator.put_faults(settle={"mode": "settle_then_drop", "times": 1})
    async with streamable_http_client(mcp_url(pipeline)) as (read, write), ClientSession(read, write) as session:
        paying = x402MCPSession(SessionForX402(session), buyer())
        await paying.initialize()
        result = await paying.call_tool(PAID_TOOL, face(pipeline))
    assert result.payment_made and not result.is_error
    assert json.loads(result.content[0].text)["data"]["Action"] == "DetectFace"
    assert await facilitator.balance(DEMO_PAY_TO) == PRICE_ATOMIC  # paid once
    assert (await facilitator.all_counts())["outcomes"]["settle"] == {"settled_then_dropped": 1, "replayed": 1}


# ---------------------------------------------------------------- tool errors and access


async def test_bad_arguments_and_a_failed_job_are_error_results_and_an_unknown_tool_is_a_protocol_error(
    pipeline: Pipeline,
) -> None:
    async with Client(mcp_url(pipeline)) as client:
        missing = await client.call_tool(FREE_TOOL, {})
        refused = await client.call_tool(FREE_TOOL, {"ImageURL": pipeline.sandbox.image("no-such-image.jpg")})
        with pytest.raises(MCPError) as unknown:
            await client.call_tool("no_such_tool", {})
    assert missing.is_error and missing.content[0].text == "ImageURL is required"  # type: ignore[union-attr]
    assert structured(missing)["code"] == "validation_failed"
    assert refused.is_error and structured(refused)["job"]["status"] == "failed"
    assert structured(refused)["code"].startswith("InvalidImage")
    assert unknown.value.error.code == -32602


async def test_api_keys_come_from_the_http_headers_of_the_mcp_connection(pipeline: Pipeline) -> None:
    from api.apikeys import ApiKeyStore

    _, plaintext = await ApiKeyStore(pipeline.redis).create("mcp", None, 100, 100)
    args = {"ImageURL": pipeline.sandbox.image("body.jpg")}
    async with Client(mcp_url(pipeline)) as anonymous:
        refused = await anonymous.call_tool("body_pose_estimation", args)
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {plaintext}"})
    async with http, Client(streamable_http_client(mcp_url(pipeline), http_client=http)) as keyed:
        allowed = await keyed.call_tool("body_pose_estimation", args)
    assert refused.is_error and structured(refused)["error"] == "api key required"
    assert not allowed.is_error, allowed


@pytest.mark.parametrize("operator_terms", [FREE_AND_FAST])
async def test_every_tools_result_conforms_to_its_advertised_output_schema(pipeline: Pipeline) -> None:
    names = {service.id: service.discovery.tool_name for service in pipeline.catalog}
    stateless = [s for s in pipeline.catalog if not s.id.startswith(("face-database", "face-template", "real-person"))]
    stateless = [s for s in stateless if s.id != "face-fusion"]
    async with Client(mcp_url(pipeline)) as client:
        for service in stateless:  # the official client raises on structuredContent that breaks outputSchema
            result = await client.call_tool(names[service.id], service.example_request)
            assert not result.is_error, (service.id, result.content)
    assert (await pipeline.sandbox.stats())["totals"]["calls"] == len(stateless)


# ---------------------------------------------------------------- the wire: headers, garbage, methods


async def test_2026_07_28_headers_must_match_the_body(pipeline: Pipeline) -> None:
    params = {"name": FREE_TOOL, "arguments": face(pipeline)}
    cases = [
        modern_request("tools/call", params, **{"Mcp-Method": "tools/list", "Mcp-Name": FREE_TOOL}),
        modern_request("tools/call", params, **{"Mcp-Name": PAID_TOOL}),
        modern_request("tools/list", **{"MCP-Protocol-Version": "2025-11-25"}),
    ]
    for body, headers in cases:
        status, answer = await rpc(pipeline, body, **headers)
        assert (status, answer["error"]["code"], answer["id"]) == (400, -32020, 7), answer
    body, headers = modern_request("tools/list")
    status, answer = await rpc(pipeline, body, **headers)
    assert status == 200 and answer["result"]["resultType"] == "complete"
    assert (await pipeline.sandbox.stats())["totals"]["calls"] == 0


async def test_malformed_traffic_gets_json_rpc_errors(pipeline: Pipeline) -> None:
    status, answer = await rpc(pipeline, b"{not json")
    assert (status, answer["error"]["code"], answer["id"]) == (400, -32700, None)
    status, answer = await rpc(pipeline, [{"jsonrpc": "2.0", "id": 1, "method": "ping"}])
    assert (status, answer["error"]["code"]) == (400, -32600)
    for bad in ({"jsonrpc": "1.0", "id": 1, "method": "ping"}, {"jsonrpc": "2.0", "id": True, "method": "ping"}, 5):
        status, answer = await rpc(pipeline, bad)
        assert (status, answer["error"]["code"]) == (400, -32600), bad
    padding = b"a" * pipeline.settings.server.max_body_bytes
    too_big = io.BytesIO(b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"x": "' + padding + b'"}}')
    status, answer = await rpc(pipeline, too_big)
    assert (status, answer["error"]["code"]) == (413, -32600)
    status, answer = await rpc(pipeline, {"jsonrpc": "2.0", "id": 2, "method": "sampling/createMessage"})
    assert (status, answer["error"]["code"]) == (200, -32601)
    body, headers = modern_request("initialize")
    status, answer = await rpc(pipeline, body, **headers)
    assert (status, answer["error"]["code"]) == (404, -32601)  # no handshake in 2026-07-28
    status, answer = await rpc(pipeline, {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": 5}})
    assert (status, answer["error"]["code"]) == (200, -32602)
    assert await rpc(pipeline, {"jsonrpc": "2.0", "method": "notifications/initialized"}) == (202, None)
    for method in ("GET", "DELETE"):  # no server-initiated stream, no session to end
        response = await pipeline.api.request(method, "/mcp")
        assert (response.status, response.headers["Allow"]) == (405, "POST")
    unacceptable = await pipeline.api.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                                           headers={"Accept": "text/html"})  # fmt: skip
    assert unacceptable.status == 406
    assert not await pipeline.redis.keys(keys.job_key("*"))  # none of it started a job


@pytest.mark.parametrize("era", ["2025-11-25", MODERN])
async def test_every_kind_of_result_conforms_to_the_tools_output_schema(pipeline: Pipeline, era: str) -> None:
    """Success, pending job, payment required, bad arguments and a failed job, through the official client in both
    versions, each checked again with an independent validator against the outputSchema tools/list gave."""
    import jsonschema

    async def results(client: Client) -> dict[str, CallToolResult]:
        return {
            "success": await client.call_tool(FREE_TOOL, face(pipeline)),
            "payment required": await client.call_tool(PAID_TOOL, face(pipeline)),
            "bad arguments": await client.call_tool(FREE_TOOL, {"ImageURL": 5}),
            "failed job": await client.call_tool(FREE_TOOL, {"ImageURL": pipeline.sandbox.image("no-such.jpg")}),
        }

    mode = "legacy" if era != MODERN else "auto"
    async with Client(mcp_url(pipeline), mode=mode) as client:
        assert client.protocol_version == era
        schemas = {tool.name: tool.output_schema for tool in (await client.list_tools()).tools}
        answered = await results(client)
    await pipeline.stop_worker()
    http = httpx2.AsyncClient(headers={"Prefer": "respond-async"})
    async with http, Client(streamable_http_client(mcp_url(pipeline), http_client=http), mode=mode) as client:
        answered["pending job"] = await client.call_tool(FREE_TOOL, face(pipeline))
    errors = {"payment required", "bad arguments", "failed job"}
    for kind, result in answered.items():
        assert result.is_error == (kind in errors), (kind, result)
        tool = PAID_TOOL if kind == "payment required" else FREE_TOOL
        jsonschema.validate(structured(result), schemas[tool])  # type: ignore[arg-type]
    assert structured(answered["pending job"])["status"] == "queued"
    assert structured(answered["payment required"])["accepts"]
