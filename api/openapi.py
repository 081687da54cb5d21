"""The OpenAPI 3.1 document, built once at start-up from the catalog.

One operation per tool and path (canonical, and legacy marked deprecated), each with the tool's own input and
output schemas and examples; plus the catalog, search, service and health operations. Schemas of our own
response objects come from the msgspec Structs themselves, so the document cannot drift from the code.
"""

from __future__ import annotations

from typing import Any

import msgspec

from shared.batches import MAX_CUSTOM_ID, MAX_ITEMS, BatchView, ResultLine
from shared.catalog import Catalog
from shared.config import Settings
from shared.jobs import JobView
from shared.models import Service
from shared.payment_docs import CREATE_PAYMENT_BODY_SCHEMA, PAYMENT_REQUIRED_BODY_SCHEMA
from shared.payments import MAX_CALLS_PER_PAYMENT, Payment
from shared.webhooks import BATCH_EVENTS, COMPLETED, JOB_EVENTS, DeliveryView, SecretInfo

REF = "#/components/schemas/{name}"
JSON = "application/json"

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "error": {"type": "string", "description": "What went wrong, for people."},
        "code": {"type": "string", "description": "Stable machine-readable error code."},
        "requestId": {"type": "string"},
        "details": {},
    },
    "required": ["error", "code", "requestId"],
}


def build_openapi(catalog: Catalog, settings: Settings) -> dict[str, Any]:
    (service_ref, payment_ref, job_ref, batch_ref, line_ref, secret_ref, delivery_ref), components = (
        msgspec.json.schema_components(
            [Service, Payment, JobView, BatchView, ResultLine, SecretInfo, DeliveryView], ref_template=REF
        )
    )
    components["Error"] = ERROR_SCHEMA
    components["PaymentRequired"] = PAYMENT_REQUIRED_BODY_SCHEMA
    components["CatalogPayment"] = {"type": "object", "description": "How to pay; see any service's discovery."}
    paths: dict[str, Any] = {
        **_catalog_paths(service_ref),
        **_payment_paths(payment_ref),
        **_job_paths(job_ref),
        **_batch_paths(batch_ref, line_ref, delivery_ref),
        **_webhook_paths(secret_ref, delivery_ref),
        **_health_paths(),
    }
    for service in catalog:
        paths[service.endpoint] = {"post": _tool_operation(service, legacy=False)}
        paths[service.legacy_endpoint] = {"post": _tool_operation(service, legacy=True)}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "server402",
            "version": "1.0.0",
            "summary": "Pay-per-call Alibaba Cloud Face & Body AI for agents, MCP clients and batch programs.",
            "description": "Call a tool without payment to receive HTTP 402 with payment terms, pay, then retry.",
        },
        "servers": [{"url": settings.public_url}],
        "tags": [
            *({"name": name} for name in ("catalog", "payments", "jobs", "batches", "webhooks", "health")),
            *({"name": c} for c in _categories(catalog)),
        ],
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": SECURITY_SCHEMES},
    }


SECURITY_SCHEMES: dict[str, Any] = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "An API key (python -m api.admin keys create)."},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    "paymentToken": {"type": "apiKey", "in": "header", "name": "X-Payment-Token"},
    "x402": {"type": "apiKey", "in": "header", "name": "PAYMENT-SIGNATURE", "description": "An x402 v2 payment."},
}
# Every operation may be called anonymously; keys and payments are optional alternatives.
OPTIONAL_SECURITY: list[dict[str, list[str]]] = [{}, {"bearer": []}, {"apiKey": []}]


def _payment_paths(payment_ref: dict[str, Any]) -> dict[str, Any]:
    payment_id = [{"name": "paymentId", "in": "path", "required": True, "schema": {"type": "string"}}]
    return {
        "/api/payments": {
            "post": {
                "operationId": "createPayment",
                "summary": "Buy calls of one service: 402 with x402 terms, then 201 with the paid payment and token.",
                "tags": ["payments"],
                "security": [*OPTIONAL_SECURITY, {"x402": []}],
                "requestBody": {"required": True, "content": _json_content(CREATE_PAYMENT_SCHEMA)},
                "responses": {
                    "201": {"description": "Paid: the payment and its token.", "content": _json_content(payment_ref)},
                    "200": {"description": "This signed payment was already settled: the same payment.",
                            "content": _json_content(payment_ref)},
                    "400": _error("Bad body or unknown service."),
                    "402": {"description": "Pay with the x402 terms in the PAYMENT-REQUIRED header.",
                            "content": _json_content(_ref("PaymentRequired"))},
                    "503": _error("The payment facilitator is unavailable; nothing was charged."),
                },
            }
        },
        "/api/payments/{paymentId}": {
            "get": {
                **_get("getPayment", "A payment's status and calls (the token only to its owner).", payment_ref,
                       tag="payments"),
                "parameters": payment_id,
                "security": [*OPTIONAL_SECURITY, {"paymentToken": []}],
            }
        },
    }  # fmt: skip


CREATE_PAYMENT_SCHEMA: dict[str, Any] = {
    **CREATE_PAYMENT_BODY_SCHEMA,
    "properties": {
        **CREATE_PAYMENT_BODY_SCHEMA["properties"],
        "calls": {"type": "integer", "minimum": 1, "maximum": MAX_CALLS_PER_PAYMENT,
                  "description": "How many calls to buy (default: the operator's maxCalls); costs calls x price."},
    },
    "additionalProperties": False,
}  # fmt: skip


def _job_paths(job_ref: dict[str, Any]) -> dict[str, Any]:
    parameters = [{"name": "jobId", "in": "path", "required": True, "schema": {"type": "string"}}]
    wait = {"name": "wait", "in": "query", "schema": {"type": "number", "minimum": 0, "maximum": 60}}
    return {
        "/api/jobs/{jobId}": {
            "get": {
                **_get("getJob", "A job: status, result or error, what it cost (long-polls with ?wait=N).", job_ref,
                       tag="jobs"),
                "parameters": [*parameters, wait],
                "security": [*OPTIONAL_SECURITY, {"paymentToken": []}],
            },
            "delete": {
                **_get("cancelJob", "Cancel a queued job (200) or ask a running one to stop (202).", job_ref,
                       tag="jobs"),
                "parameters": parameters,
                "security": [*OPTIONAL_SECURITY, {"paymentToken": []}],
            },
        }
    }  # fmt: skip


WEBHOOK_PARAMETERS: list[dict[str, Any]] = [
    {"name": "webhook", "in": "query", "schema": {"type": "string", "format": "uri", "maxLength": 2048},
     "description": "Where to POST signed events (Standard Webhooks); not private or loopback addresses."},
    {"name": "webhookEvents", "in": "query", "schema": {"type": "string"},
     "description": f"Comma-separated events: {', '.join((*JOB_EVENTS, COMPLETED))} (default job.completed)."},
]  # fmt: skip
BATCH_ITEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "customId": {"type": "string", "minLength": 1, "maxLength": MAX_CUSTOM_ID},
        "serviceId": {"type": "string"},
        "input": {"type": "object", "description": "The tool's parameters."},
    },
    "required": ["customId", "serviceId"],
    "additionalProperties": False,
}
BATCH_BODY_SCHEMA: dict[str, Any] = {
    "oneOf": [
        {"type": "array", "items": BATCH_ITEM_SCHEMA, "minItems": 1, "maxItems": MAX_ITEMS},
        {
            "type": "object",
            "properties": {
                "items": {"type": "array", "items": BATCH_ITEM_SCHEMA, "minItems": 1, "maxItems": MAX_ITEMS},
                "webhook": {"type": "string", "format": "uri"},
                "webhookEvents": {"type": "array", "items": {"enum": [*BATCH_EVENTS, *JOB_EVENTS, COMPLETED]}},
            },
            "required": ["items"],
            "additionalProperties": False,
        },
    ]
}


def _batch_paths(batch_ref: dict[str, Any], line_ref: dict[str, Any], delivery_ref: dict[str, Any]) -> dict[str, Any]:
    batch_id = {"name": "batchId", "in": "path", "required": True, "schema": {"type": "string"}}
    wait = {"name": "wait", "in": "query", "schema": {"type": "number", "minimum": 0, "maximum": 60}}
    offset = {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}}
    security = [*OPTIONAL_SECURITY, {"paymentToken": []}]
    batch_webhook = [{**WEBHOOK_PARAMETERS[0]}, {**WEBHOOK_PARAMETERS[1], "description":
                     f"Comma-separated events: {', '.join((*BATCH_EVENTS, *JOB_EVENTS, COMPLETED))} "
                     "(default batch.completed)."}]  # fmt: skip
    return {
        "/api/batches": {
            "post": {
                "operationId": "createBatch",
                "summary": f"Submit up to {MAX_ITEMS} tool calls: a JSON array, {{items}} or JSON lines.",
                "tags": ["batches"],
                "security": security,
                "parameters": batch_webhook,
                "requestBody": {"required": True, "content": {
                    **_json_content(BATCH_BODY_SCHEMA),
                    "application/x-ndjson": {"schema": {"type": "string", "description": "One item per line."}},
                }},
                "responses": {
                    "201": {"description": "Accepted: every item is queued.", "content": _json_content(batch_ref)},
                    "200": {"description": "This Idempotency-Key made this batch already.",
                            "content": _json_content(batch_ref)},
                    "400": _error("Malformed body or webhook."),
                    "402": _error("Payment tokens are missing or short: `needed` says what to buy."),
                    "413": _error("Body too large."),
                    "415": _error("Not JSON or JSON lines."),
                    "422": _error("Invalid items (itemErrors lists them; nothing was charged)."),
                },
            }
        },
        "/api/batches/{batchId}": {
            "get": {**_get("getBatch", "A batch's counts and progress (long-polls with ?wait=N).", batch_ref,
                           tag="batches"), "parameters": [batch_id, wait], "security": security},
            "delete": {**_get("cancelBatch", "Cancel what has not started (credited back).", batch_ref,
                              tag="batches"), "parameters": [batch_id], "security": security},
        },
        "/api/batches/{batchId}/results": {
            "get": {
                "operationId": "getBatchResults",
                "summary": "Finished items as JSON lines, in the order they finished (partial while running).",
                "tags": ["batches"],
                "parameters": [batch_id, offset],
                "security": security,
                "responses": {
                    "200": {"description": "One ResultLine per line.",
                            "content": {"application/x-ndjson": {"schema": line_ref}}},
                    "400": _error("Bad offset."),
                    "404": _error("No such batch (or not yours)."),
                },
            }
        },
        "/api/batches/{batchId}/deliveries": {
            "get": {**_get("getBatchDeliveries", "The batch's webhook deliveries and their attempts.",
                           {"type": "object", "properties": {"deliveries": {"type": "array", "items": delivery_ref}}},
                           tag="webhooks"), "parameters": [batch_id], "security": security},
        },
    }  # fmt: skip


def _webhook_paths(secret_ref: dict[str, Any], delivery_ref: dict[str, Any]) -> dict[str, Any]:
    security: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}, {"paymentToken": []}]
    job_id = {"name": "jobId", "in": "path", "required": True, "schema": {"type": "string"}}
    deliveries = {"type": "object", "properties": {"deliveries": {"type": "array", "items": delivery_ref}}}
    return {
        "/api/webhooks/secret": {
            "get": {**_get("getWebhookSecret", "Your webhook signing secret (whsec_...).", secret_ref,
                           tag="webhooks"), "security": security},
        },
        "/api/webhooks/secret/rotate": {
            "post": {**_get("rotateWebhookSecret", "A new signing secret; the previous one co-signs for a day.",
                            secret_ref, tag="webhooks"), "security": security},
        },
        "/api/jobs/{jobId}/deliveries": {
            "get": {**_get("getJobDeliveries", "The job's webhook deliveries and their attempts.", deliveries,
                           tag="webhooks"), "parameters": [job_id],
                    "security": [*OPTIONAL_SECURITY, {"paymentToken": []}]},
        },
    }  # fmt: skip


def _categories(catalog: Catalog) -> list[str]:
    return sorted({service.category for service in catalog})


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(name=name)}


def _json_content(schema: dict[str, Any], example: Any = None) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": schema}
    if example is not None:
        media["example"] = example
    return {JSON: media}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": _json_content(_ref("Error"))}


def _tool_operation(service: Service, *, legacy: bool) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": f"{service.discovery.tool_name}{'_legacy' if legacy else ''}",
        "summary": f"{service.name} ({service.name_zh})",
        "description": service.description_for_model,
        "tags": [service.category],
        "requestBody": {
            "required": True,
            "content": _json_content(service.input_schema, service.example_request),
        },
        "security": [*OPTIONAL_SECURITY, {"paymentToken": []}, {"x402": []}],
        "parameters": WEBHOOK_PARAMETERS,
        "responses": {
            "200": {"description": "The upstream result.", "content": _json_content(service.output_schema)},
            "202": {"description": "Still running: the job (Location: /api/jobs/{jobId})."},
            "400": _error("Malformed JSON or input that does not match the tool's schema."),
            "401": _error("api key required, or an invalid API key."),
            "403": _error("api key is not allowed to call this service."),
            "402": {
                "description": "Payment required: the body carries the payment terms.",
                "content": _json_content(_ref("PaymentRequired")),
            },
            "413": _error("Request body too large."),
            "429": _error("The API key's request rate is exceeded; retry after Retry-After."),
            "503": _error("Temporarily unavailable; retry after the Retry-After header."),
        },
    }
    if legacy:
        operation["deprecated"] = True
    return operation


def _catalog_paths(service_ref: dict[str, Any]) -> dict[str, Any]:
    services = {"type": "array", "items": service_ref}
    listing: dict[str, Any] = {
        "type": "object",
        "properties": {
            "schemaVersion": {"type": "string"},
            "generatedAt": {"type": "string", "format": "date-time"},
            "total": {"type": "integer"},
            "services": services,
            "payment": _ref("CatalogPayment"),
        },
        "required": ["schemaVersion", "generatedAt", "total", "services", "payment"],
    }
    search = {
        "type": "object",
        "properties": {
            **listing["properties"],
            "query": {"type": "string"},
            "expandedTerms": {"type": "array", "items": {"type": "string"}},
            "filters": {"type": "object"},
            "services": {"type": "array", "items": {"allOf": [service_ref, _MATCH_SCHEMA]}},
        },
        "required": [*listing["required"], "query", "expandedTerms", "filters"],
    }
    return {
        "/api/catalog": {"get": _get("listCatalog", "Every service.", listing, tag="catalog")},
        "/api/catalog/search": {
            "get": {
                **_get("searchCatalog", "Search services (English and Chinese).", search, tag="catalog"),
                "parameters": _SEARCH_PARAMETERS,
            }
        },
        "/api/services/{serviceId}": {
            "get": {
                **_get("getService", "One service by id, legacy id or MCP tool name.", service_ref, tag="catalog"),
                "parameters": [{"name": "serviceId", "in": "path", "required": True, "schema": {"type": "string"}}],
            }
        },
    }


_MATCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "matchScore": {"type": "integer"},
        "matchTerms": {"type": "array", "items": {"type": "string"}},
        "why": {"type": "string"},
    },
    "required": ["matchScore", "matchTerms", "why"],
}

_SEARCH_PARAMETERS: list[dict[str, Any]] = [
    {"name": "q", "in": "query", "schema": {"type": "string", "maxLength": 256}, "description": "Search text."},
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10}},
    {"name": "category", "in": "query", "schema": {"type": "string"}, "description": "Category or tag."},
]


def _get(operation_id: str, summary: str, schema: dict[str, Any], *, tag: str) -> dict[str, Any]:
    return {
        "operationId": operation_id,
        "summary": summary,
        "tags": [tag],
        "responses": {"200": {"description": "OK", "content": _json_content(schema)}, "400": _error("Bad input.")},
    }


def _health_paths() -> dict[str, Any]:
    status = {"type": "object", "properties": {"status": {"type": "string"}}, "required": ["status"]}
    ready = _get("readyz", "Readiness: Redis reachable and an invocation worker alive (503 otherwise).", status,
                 tag="health")  # fmt: skip
    ready["responses"]["503"] = _error("Not ready.")
    return {
        "/healthz": {"get": _get("healthz", "Liveness: the process answers.", status, tag="health")},
        "/readyz": {"get": ready},
        "/api/status": {
            "get": _get(
                "getStatus",
                "Live health, success rate and latency of every service; the workers.",
                {"type": "object"},
                tag="health",
            ),
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics (text format).",
                "tags": ["health"],
                "responses": {"200": {"description": "Prometheus text"}},
            }
        },
        "/mcp": {
            "post": {
                "operationId": "mcp",
                "summary": "MCP over streamable HTTP (JSON-RPC 2.0).",
                "tags": ["health"],
                "responses": {"200": {"description": "JSON-RPC response or SSE"}},
            }
        },
        "/openapi.json": {
            "get": _get("openapi", "This document.", {"type": "object"}, tag="health"),
        },
    }
