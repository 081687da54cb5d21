"""The machine-readable payment instructions every service and search answer carries (seed `003_*.txt`).

The texts and field names are the contract clients parse: they match the seed exactly.
"""

from __future__ import annotations

from typing import Any

PAYMENT_FAILURES = (
    "payment required",
    "payment token expired",
    "payment token has no remaining calls",
    "api key required",
    "api key is not allowed to call this service",
)

_DATE_TIME = {"format": "date-time", "type": "string"}

PAYMENT_OBJECT_SCHEMA: dict[str, Any] = {
    "properties": {
        "amountCents": {"type": "integer"},
        "billingMode": {"type": "string"},
        "clientId": {"type": "string"},
        "currency": {"type": "string"},
        "expiresAt": _DATE_TIME,
        "internalServiceId": {
            "description": "Legacy internal service id, included only for backward compatibility.",
            "type": "string",
        },
        "maxCalls": {"type": "integer"},
        "paidAt": _DATE_TIME,
        "payTo": {"type": "string"},
        "paymentId": {"type": "string"},
        "provider": {"type": "string"},
        "providerId": {"type": "string"},
        "remainingCalls": {"type": "integer"},
        "serviceId": {"description": "Canonical public service id.", "type": "string"},
        "status": {"type": "string"},
        "token": {"type": "string"},
        "usedCalls": {"type": "integer"},
    },
    "type": "object",
}

PAYMENT_REQUIRED_BODY_SCHEMA: dict[str, Any] = {
    "properties": {"error": {"type": "string"}, "payment": PAYMENT_OBJECT_SCHEMA},
    "required": ["error", "payment"],
    "type": "object",
}

TOKEN_USAGE: dict[str, str] = {
    "header": "X-Payment-Token",
    "mcpArgument": "paymentToken",
    "httpUsage": "Send the paid token in the X-Payment-Token request header when calling /api/tools/*.",
    "mcpUsage": "Pass the paid token as the paymentToken argument when calling the MCP tool.",
}

REQUIRED_RESPONSE: dict[str, Any] = {
    "status": 402,
    "contentType": "application/json",
    "headers": {"X-Payment-Required": "true", "X-Payment-Token": "payment.token"},
    "bodySchema": PAYMENT_REQUIRED_BODY_SCHEMA,
}

RETRY: dict[str, Any] = {
    "when": "Retry after payment.status is paid and the token has remaining calls.",
    "http": [
        "Call POST /api/payments with serviceId to create a payment if the first service call returned 402.",
        "Complete or verify payment using GET /api/payments/{paymentId}.",
        "Retry the original /api/tools/* request with X-Payment-Token set to payment.token.",
    ],
    "mcp": [
        "Call the tool without paymentToken to receive payment_required structuredContent.",
        "Complete or verify payment using the returned payment.paymentId.",
        "Call the same MCP tool again with paymentToken set to payment.token.",
    ],
    "failures": list(PAYMENT_FAILURES),
}

CREATE_PAYMENT_BODY_SCHEMA: dict[str, Any] = {
    "properties": {
        "providerId": {"type": "string"},
        "serviceId": {
            "description": "Use the canonical service id from the catalog. "
            "Legacy internal ids remain accepted for backward compatibility.",
            "type": "string",
        },
    },
    "required": ["serviceId"],
    "type": "object",
}

PAYMENT_FLOW: dict[str, Any] = {
    "type": "http-402",
    "createPayment": {
        "method": "POST",
        "url": "/api/payments",
        "bodySchema": CREATE_PAYMENT_BODY_SCHEMA,
        "responseSchema": PAYMENT_OBJECT_SCHEMA,
    },
    "verifyPayment": {"method": "GET", "url": "/api/payments/{paymentId}", "responseSchema": PAYMENT_OBJECT_SCHEMA},
    "token": TOKEN_USAGE,
    "requiredResponse": REQUIRED_RESPONSE,
    "retry": RETRY,
}

CATALOG_PAYMENT: dict[str, Any] = {
    "paymentHeader": "X-Payment-Token",
    "createPayment": "/api/payments",
    "verifyPayment": "/api/payments/{paymentId}",
    "token": TOKEN_USAGE,
    "requiredResponse": REQUIRED_RESPONSE,
    "retry": RETRY,
    "flow": PAYMENT_FLOW,
}

RETRY_HINT = (
    "If the service returns HTTP 402, complete or verify the payment and retry the same request with the payment token."
)


def payment_hint(service_id: str) -> str:
    return (
        f'Create a payment with POST /api/payments using serviceId="{service_id}", '
        "then pass the returned token in X-Payment-Token or MCP paymentToken."
    )
