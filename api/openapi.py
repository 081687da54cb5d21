"""The OpenAPI 3.1 document, built once at start-up from the catalog.

One operation per tool and path (canonical, and legacy marked deprecated), each with the tool's own input and
output schemas and examples (api/openapi_tools.py, with /mcp); plus the catalog, payment, job, batch, webhook and
health operations, each with every status it may answer (api/openapi_errors.py). Schemas of our own response
objects come from the msgspec Structs themselves, so the document cannot drift from the code.
"""

from __future__ import annotations

from typing import Any

import msgspec

from api.openapi_errors import (
    BATCH,
    BODY,
    CALLER,
    ERROR_SCHEMA,
    JOB,
    NEEDS_CALLER,
    REF,
    error_responses,
    json_content,
    ref,
)
from api.openapi_tools import JSON_RPC_MESSAGE, OPTIONAL_SECURITY, WEBHOOK_PARAMETERS, mcp_operation, tool_operation
from shared.batches import MAX_CUSTOM_ID, MAX_ITEMS, BatchView, ResultLine
from shared.catalog import Catalog
from shared.config import Settings
from shared.jobs import JobView
from shared.models import Service
from shared.payment_docs import CREATE_PAYMENT_BODY_SCHEMA, PAYMENT_REQUIRED_BODY_SCHEMA
from shared.payments import MAX_CALLS_PER_PAYMENT, Payment
from shared.webhooks import BATCH_EVENTS, COMPLETED, JOB_EVENTS, DeliveryView, SecretInfo


def build_openapi(catalog: Catalog, settings: Settings) -> dict[str, Any]:
    (service_ref, payment_ref, job_ref, batch_ref, line_ref, secret_ref, delivery_ref), components = (
        msgspec.json.schema_components(
            [Service, Payment, JobView, BatchView, ResultLine, SecretInfo, DeliveryView], ref_template=REF
        )
    )
    components["Error"] = ERROR_SCHEMA
    components["PaymentRequired"] = {
        **PAYMENT_REQUIRED_BODY_SCHEMA,
        "properties": {
            **PAYMENT_REQUIRED_BODY_SCHEMA["properties"],
            "code": {"type": "string"},
            "message": {"type": "string"},
            "payment": payment_ref,
        },
    }
    components["CatalogPayment"] = {"type": "object", "description": "How to pay; see any service's discovery."}
    components["ServiceMatch"] = _service_match(components["Service"])
    components["JsonRpcMessage"] = JSON_RPC_MESSAGE
    priced = sorted(service.id for service in catalog if service.pricing.amount_cents > 0)
    paths: dict[str, Any] = {
        **_catalog_paths(service_ref),
        **_payment_paths(payment_ref, priced),
        **_job_paths(job_ref),
        **_batch_paths(batch_ref, line_ref, delivery_ref),
        **_webhook_paths(secret_ref, delivery_ref),
        **_health_paths(),
    }
    for service in catalog:
        paths[service.endpoint] = {"post": tool_operation(service, job_ref, legacy=False)}
        paths[service.legacy_endpoint] = {"post": tool_operation(service, job_ref, legacy=True)}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "server402",
            "version": "1.0.0",
            "summary": "Pay-per-call Alibaba Cloud Face & Body AI for agents, MCP clients and batch programs.",
            "description": "Call a tool without payment to receive HTTP 402 with payment terms, pay, then retry.",
        },
        "servers": [{"url": settings.server.public_url}],
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


def _payment_paths(payment_ref: dict[str, Any], priced: list[str]) -> dict[str, Any]:
    payment_id = [{"name": "paymentId", "in": "path", "required": True, "schema": {"type": "string"}}]
    return {
        "/api/payments": {
            "post": {
                "operationId": "createPayment",
                "summary": "Buy calls of one service: 402 with x402 terms, then 201 with the paid payment and token.",
                "tags": ["payments"],
                "security": [*OPTIONAL_SECURITY, {"x402": []}],
                "requestBody": {"required": True, "content": json_content(create_payment_schema(priced))},
                "responses": {
                    "201": {"description": "Paid: the payment and its token.", "content": json_content(payment_ref)},
                    "202": {"description": "The facilitator's answer was lost: the payment is settling (its token "
                                           "works once paid); GET it to see paid or failed.",
                            "content": json_content(payment_ref)},
                    "200": {"description": "This signed payment was already settled: the same payment; its token "
                                           "and private fields only with the buyer's API key or the first "
                                           "request's Idempotency-Key, else {paymentId, serviceId, status}.",
                            "content": json_content(payment_ref)},
                    "402": {"description": "Pay with the x402 terms in the PAYMENT-REQUIRED header.",
                            "content": json_content(ref("PaymentRequired"))},
                    **error_responses(CALLER, BODY, {400: "Bad body, an unknown service or a free one.",
                                             403: "The API key may not call this service.",
                                             409: "The same signed payment is being settled by another request "
                                                  "(settlement_in_progress); retry after Retry-After.",
                                             503: "The payment facilitator or Redis is unavailable (whether a "
                                                  "payment it did not answer for settled is not known: retry the "
                                                  "same signed payment); retry after Retry-After."}),
                },
            }
        },
        "/api/payments/{paymentId}": {
            "get": {
                **_get("getPayment", "A payment: an offer to anyone; a paid one's calls, payer, transaction "
                       "and token only to its owner (its API key or token), {paymentId, serviceId, status} to "
                       "others.", payment_ref,
                       tag="payments", errors=error_responses(CALLER, {404: "No such payment."})),
                "parameters": payment_id,
                "security": [*OPTIONAL_SECURITY, {"paymentToken": []}],
            }
        },
    }  # fmt: skip


def create_payment_schema(priced: list[str]) -> dict[str, Any]:
    """The body of POST /api/payments: `serviceId` one of the priced services (free ones are not sold)."""
    service_id = {**CREATE_PAYMENT_BODY_SCHEMA["properties"]["serviceId"]}
    if priced:
        service_id["enum"] = priced
    return {
        **CREATE_PAYMENT_BODY_SCHEMA,
        "properties": {
            **CREATE_PAYMENT_BODY_SCHEMA["properties"],
            "serviceId": service_id,
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
                       tag="jobs", errors=error_responses(CALLER, JOB, {400: "Bad wait."})),
                "parameters": [*parameters, wait],
                "security": [*OPTIONAL_SECURITY, {"paymentToken": []}],
            },
            "delete": {
                **_get("cancelJob", "Cancel a queued job (200) or ask a running one to stop (202).", job_ref,
                       tag="jobs", errors=error_responses(CALLER, JOB, {409: "The job has already finished."}),
                       accepted="Running: asked to stop before its next upstream call."),
                "parameters": parameters,
                "security": [*OPTIONAL_SECURITY, {"paymentToken": []}],
            },
        }
    }  # fmt: skip


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
                    **json_content(BATCH_BODY_SCHEMA),
                    "application/x-ndjson": {"schema": {
                        "type": "array", "items": BATCH_ITEM_SCHEMA, "minItems": 1, "maxItems": MAX_ITEMS,
                        "description": "The items as JSON lines: one item per line."}},
                }},
                "responses": {
                    "201": {"description": "Accepted: every item is queued.", "content": json_content(batch_ref)},
                    "200": {"description": "This Idempotency-Key made this batch already.",
                            "content": json_content(batch_ref)},
                    **error_responses(CALLER, BODY, {
                        400: "Malformed body or webhook.",
                        402: "Payment tokens are missing or short: `needed` says what to buy.",
                        403: "A payment token is bound to another API key.",
                        413: f"Body over SERVER402_BATCH_MAX_BYTES, or more than {MAX_ITEMS} items.",
                        415: "Not JSON or JSON lines.",
                        422: "Invalid items (itemErrors lists them; nothing was charged), or an Idempotency-Key "
                             "reused with another body.",
                    }),
                },
            }
        },
        "/api/batches/{batchId}": {
            "get": {**_get("getBatch", "A batch's counts and progress (long-polls with ?wait=N).", batch_ref,
                           tag="batches", errors=error_responses(CALLER, BATCH, {400: "Bad wait."})),
                    "parameters": [batch_id, wait], "security": security},
            "delete": {**_get("cancelBatch", "Cancel what has not started (credited back).", batch_ref,
                              tag="batches", errors=error_responses(CALLER, BATCH, {409: "The batch has finished."})),
                       "parameters": [batch_id], "security": security},
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
                    **error_responses(CALLER, BATCH, {400: "Bad offset."}),
                },
            }
        },
        "/api/batches/{batchId}/deliveries": {
            "get": {**_get("getBatchDeliveries", "The batch's webhook deliveries and their attempts.",
                           {"type": "object", "properties": {"deliveries": {"type": "array", "items": delivery_ref}}},
                           tag="webhooks", errors=error_responses(CALLER, BATCH)), "parameters": [batch_id],
                "security": security},
        },
    }  # fmt: skip


def _webhook_paths(secret_ref: dict[str, Any], delivery_ref: dict[str, Any]) -> dict[str, Any]:
    security: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}, {"paymentToken": []}]
    job_id = {"name": "jobId", "in": "path", "required": True, "schema": {"type": "string"}}
    deliveries = {"type": "object", "properties": {"deliveries": {"type": "array", "items": delivery_ref}}}
    return {
        "/api/webhooks/secret": {
            "get": {**_get("getWebhookSecret", "Your webhook signing secret (whsec_...).", secret_ref,
                           tag="webhooks", errors=error_responses(CALLER, NEEDS_CALLER)), "security": security},
        },
        "/api/webhooks/secret/rotate": {
            "post": {**_get("rotateWebhookSecret", "A new signing secret; the previous one co-signs for a day.",
                            secret_ref, tag="webhooks", errors=error_responses(CALLER, NEEDS_CALLER)),
                     "security": security},
        },
        "/api/jobs/{jobId}/deliveries": {
            "get": {**_get("getJobDeliveries", "The job's webhook deliveries and their attempts.", deliveries,
                           tag="webhooks", errors=error_responses(CALLER, JOB)), "parameters": [job_id],
                    "security": [*OPTIONAL_SECURITY, {"paymentToken": []}]},
        },
    }  # fmt: skip


def _categories(catalog: Catalog) -> list[str]:
    return sorted({service.category for service in catalog})


def _catalog_paths(service_ref: dict[str, Any]) -> dict[str, Any]:
    services = {"type": "array", "items": service_ref}
    listing: dict[str, Any] = {
        "type": "object",
        "properties": {
            "schemaVersion": {"type": "string"},
            "generatedAt": {"type": "string", "format": "date-time"},
            "total": {"type": "integer"},
            "services": services,
            "payment": ref("CatalogPayment"),
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
            "services": {"type": "array", "items": ref("ServiceMatch")},
        },
        "required": [*listing["required"], "query", "expandedTerms", "filters"],
    }
    return {
        "/api/catalog": {"get": _get("listCatalog", "Every service.", listing, tag="catalog")},
        "/api/catalog/search": {
            "get": {
                **_get(
                    "searchCatalog",
                    "Search services (English and Chinese).",
                    search,
                    tag="catalog",
                    errors=error_responses({400: "Bad limit or query."}),
                ),
                "parameters": _SEARCH_PARAMETERS,
            }
        },
        "/api/services/{serviceId}": {
            "get": {
                **_get(
                    "getService",
                    "One service by id, legacy id or MCP tool name.",
                    service_ref,
                    tag="catalog",
                    errors=error_responses({404: "No such service."}),
                ),
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


def _service_match(service: dict[str, Any]) -> dict[str, Any]:
    """A search hit: a Service with its matchScore, matchTerms and why."""
    return {
        **service,
        "title": "ServiceMatch",
        "properties": {**service["properties"], **_MATCH_SCHEMA["properties"]},
        "required": [*service["required"], *_MATCH_SCHEMA["required"]],
    }


def _get(
    operation_id: str,
    summary: str,
    schema: dict[str, Any],
    *,
    tag: str,
    errors: dict[str, Any] | None = None,
    accepted: str | None = None,
) -> dict[str, Any]:
    responses = {"200": {"description": "OK", "content": json_content(schema)}, **(errors or {})}
    if accepted is not None:
        responses["202"] = {"description": accepted, "content": json_content(schema)}
    return {"operationId": operation_id, "summary": summary, "tags": [tag], "responses": responses}


def _health_paths() -> dict[str, Any]:
    status = {"type": "object", "properties": {"status": {"type": "string"}}, "required": ["status"]}
    ready = _get(
        "readyz",
        "Readiness: Redis reachable and an invocation worker alive (503 otherwise).",
        status,
        tag="health",
        errors=error_responses({503: "Not ready: Redis or every invocation worker is away."}),
    )
    return {
        "/healthz": {"get": _get("healthz", "Liveness: the process answers.", status, tag="health")},
        "/readyz": {"get": ready},
        "/api/status": {
            "get": _get("getStatus", "Live health, success rate and latency of every service; the workers.",
                        {"type": "object"}, tag="health", errors=error_responses({503: "Redis is unavailable."})),
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics (text format).",
                "tags": ["health"],
                "responses": {
                    "200": {"description": "Prometheus text",
                            "content": {"text/plain": {"schema": {"type": "string"}}}},
                    **error_responses({503: "Redis is unavailable."}),
                },
            }
        },
        "/mcp": {"post": mcp_operation()},
        "/openapi.json": {
            "get": _get("openapi", "This document.", {"type": "object"}, tag="health"),
        },
    }  # fmt: skip
