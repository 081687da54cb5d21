"""The operations of the OpenAPI document that run tools: `POST /api/tools/{id}` for each tool and path (the legacy
ones deprecated), with the tool's own input and output schemas, and `POST /mcp` (JSON-RPC 2.0)."""

from __future__ import annotations

from typing import Any

from api.openapi_errors import BODY, CALLER, error_responses, json_content, ref
from shared.models import Service
from shared.webhooks import COMPLETED, JOB_EVENTS

# Every operation may be called anonymously; keys and payments are optional alternatives.
OPTIONAL_SECURITY: list[dict[str, list[str]]] = [{}, {"bearer": []}, {"apiKey": []}]
WEBHOOK_PARAMETERS: list[dict[str, Any]] = [
    {"name": "webhook", "in": "query", "schema": {"type": "string", "format": "uri", "maxLength": 2048},
     "description": "Where to POST signed events (Standard Webhooks); not private or loopback addresses."},
    {"name": "webhookEvents", "in": "query", "schema": {"type": "string", "maxLength": 512},
     "description": f"Comma-separated events: {', '.join((*JOB_EVENTS, COMPLETED))} (default job.completed)."},
]  # fmt: skip
TOOL_ERRORS: dict[int, str] = {
    **BODY,
    400: "Malformed JSON, input that does not match the tool's schema (an image URL on a private or loopback "
    "address included), a bad Idempotency-Key or webhook.",
    403: "api key is not allowed to call this service, or the payment token is bound to another client.",
    409: "The job was canceled, or the same signed payment is being settled by another request "
    "(settlement_in_progress; retry after Retry-After).",
    410: "The job an Idempotency-Key made has expired.",
    422: "The upstream refused this input (the job's error says why; the call is charged), or an Idempotency-Key "
    "reused with another body.",
    502: "The upstream kept failing after bounded retries (a paid call is given back).",
    503: "Throttled upstream past the deadline, storage or the payment facilitator unavailable (whether a payment "
    "it did not answer for settled is not known: retry the same signed payment); retry after Retry-After.",
    504: "The upstream never answered, or the job expired before it ran (a paid call is given back).",
}
TOOL_HEADERS: list[dict[str, Any]] = [
    {"name": "Prefer", "in": "header", "schema": {"type": "string", "maxLength": 100},
     "description": "`wait=N` (seconds, at most SERVER402_WAIT_MAX_S) or `respond-async` (202 at once)."},
    {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string", "minLength": 1, "maxLength": 255},
     "description": "The same key and body return the same job (printable characters)."},
]  # fmt: skip


def tool_operation(service: Service, job_ref: dict[str, Any], *, legacy: bool) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": f"{service.discovery.tool_name}{'_legacy' if legacy else ''}",
        "summary": f"{service.name} ({service.name_zh})",
        "description": service.description_for_model,
        "tags": [service.category],
        "requestBody": {
            "required": True,
            "content": json_content(service.input_schema, service.example_request),
        },
        "security": [*OPTIONAL_SECURITY, {"paymentToken": []}, {"x402": []}],
        "parameters": [*WEBHOOK_PARAMETERS, *TOOL_HEADERS],
        "responses": {
            "200": {"description": "The upstream result.", "content": json_content(service.output_schema)},
            "202": {"description": "Still running: the job (Location: /api/jobs/{jobId}).",
                    "content": json_content(job_ref)},
            "402": {
                "description": "Payment required: the body carries the payment terms.",
                "content": json_content(ref("PaymentRequired")),
            },
            **error_responses(CALLER, TOOL_ERRORS, {401: "api key required, or an invalid API key."}),
        },
    }  # fmt: skip
    if legacy:
        operation["deprecated"] = True
    return operation


JSON_RPC_MESSAGE: dict[str, Any] = {
    "type": "object",
    "description": "One JSON-RPC 2.0 message: a request (method and id), a notification (no id) or a response.",
    "properties": {
        "jsonrpc": {"const": "2.0"},
        "method": {"type": "string"},
        "id": {"type": ["integer", "string"]},
        "params": {"type": "object"},
        "result": {},
        "error": {},
    },
    "required": ["jsonrpc"],
}
JSON_RPC_ANSWER: dict[str, Any] = {
    "type": "object",
    "properties": {
        "jsonrpc": {"const": "2.0"},
        "id": {"type": ["integer", "string", "null"]},
        "result": {"type": "object"},
        "error": {
            "type": "object",
            "properties": {"code": {"type": "integer"}, "message": {"type": "string"}, "data": {}},
            "required": ["code", "message"],
        },
    },
    "required": ["jsonrpc", "id"],
}


def _rpc_error(description: str) -> dict[str, Any]:
    return {"description": description, "content": json_content(JSON_RPC_ANSWER)}


def mcp_operation() -> dict[str, Any]:
    return {
        "operationId": "mcp",
        "summary": "MCP over streamable HTTP (JSON-RPC 2.0).",
        "tags": ["health"],
        "requestBody": {"required": True, "content": json_content(ref("JsonRpcMessage"))},
        "responses": {
            "200": {
                "description": "The JSON-RPC answer, or an SSE stream of progress notifications ending with it.",
                "content": {**json_content(JSON_RPC_ANSWER), "text/event-stream": {"schema": {"type": "string"}}},
            },
            "202": {"description": "A notification (or a response): accepted, nothing to answer."},
            "400": _rpc_error("Not JSON, not a JSON-RPC request, or headers that do not match the body."),
            "404": _rpc_error("Unknown method (protocol 2026-07-28)."),
            "406": _rpc_error("The Accept header takes neither application/json nor text/event-stream."),
            "413": _rpc_error("Request body too large."),
            "415": _rpc_error("Not application/json."),
        },
    }
