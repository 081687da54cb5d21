"""`POST /api/payments` (buy calls of one service, with x402) and `GET /api/payments/{paymentId}` (verify).

POST without a payment answers 402 with the pending payment and the x402 `PAYMENT-REQUIRED` terms for its
amount; the same POST carrying `PAYMENT-SIGNATURE` (or `X-PAYMENT`) settles and answers 201 with the paid payment
and its token, so the official x402 client buys a token in one call. Sending the same signed payment again
returns the same payment (200): a lost answer can be fetched again, never paid twice.
"""

from __future__ import annotations

from typing import Any

import msgspec
import structlog
from aiohttp import web

from api import keys
from api.identity import identify
from api.payment_gate import check_access, payment_required, settle_inline, signature_of
from api.responses import json_response
from api.routes.tools import read_json_object
from shared import errors
from shared.models import Service
from shared.payments import MAX_CALLS_PER_PAYMENT, PaymentRecord, payment_id_of, payment_view, token_for

routes = web.RouteTableDef()
BODY_FIELDS = frozenset({"serviceId", "providerId", "calls"})


@routes.post("/api/payments")
async def create_payment(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    service, calls = _purchase(request, body)
    caller = await identify(request)
    check_access(caller, service, request)
    structlog.contextvars.bind_contextvars(service_id=service.id, calls=calls)
    signature = signature_of(request)
    store = request.app[keys.PAYMENTS]
    if signature is None:
        pending = store.offer(service, calls=calls, client_id=caller.key_client_id)
        raise await payment_required(request, service, calls=calls, offer=pending)
    record, headers, fresh = await settle_inline(
        request, service, signature, calls=calls, kind="purchase", client_id=caller.key_client_id
    )
    structlog.contextvars.bind_contextvars(payment_id=record.paymentId, replayed=not fresh)
    location = {"Location": f"/api/payments/{record.paymentId}"}
    return _answer(request, record, status=201 if fresh else 200, headers={**headers, **location})


@routes.get("/api/payments/{payment_id}")
async def get_payment(request: web.Request) -> web.Response:
    payment_id = request.match_info["payment_id"]
    store = request.app[keys.PAYMENTS]
    record = await store.get(payment_id) or store.offer_for(payment_id, request.app[keys.CATALOG].resolve)
    if record is None:
        raise errors.NotFound("payment not found")
    caller = await identify(request)
    settings = request.app[keys.SETTINGS]
    presented = request.headers.get("X-Payment-Token", "").strip()
    owner = (caller.api_key is not None and caller.key_client_id == record.clientId) or (
        payment_id_of(settings.token_secret, presented) == record.paymentId
    )
    token = token_for(settings.token_secret, record.paymentId) if owner and record.kind != "offer" else ""
    return json_response(payment_view(record, token=token))


def _purchase(request: web.Request, body: dict[str, Any]) -> tuple[Service, int]:
    unknown = sorted(set(body) - BODY_FIELDS)
    if unknown:
        raise errors.ValidationFailed(f"unknown field(s): {', '.join(unknown)[:200]}")
    service_id = body.get("serviceId")
    if not isinstance(service_id, str) or not service_id:
        raise errors.ValidationFailed("serviceId is required")
    service = request.app[keys.CATALOG].resolve(service_id)
    if service is None:
        raise errors.UnknownService(f"unknown service {service_id[:100]!r}; see /api/catalog")
    if "providerId" in body and body["providerId"] != service.payment.provider_id:
        raise errors.ValidationFailed(f"providerId must be {service.payment.provider_id!r} for this service")
    calls = body.get("calls", service.pricing.max_calls)
    if isinstance(calls, bool) or not isinstance(calls, int) or not 1 <= calls <= MAX_CALLS_PER_PAYMENT:
        raise errors.ValidationFailed(f"calls must be an integer from 1 to {MAX_CALLS_PER_PAYMENT}")
    if service.pricing.amount_cents == 0:
        raise errors.BadRequest(f"{service.id} is free: call /api/tools/{service.id} without paying")
    return service, calls


def _answer(request: web.Request, record: PaymentRecord, *, status: int, headers: dict[str, str]) -> web.Response:
    token = token_for(request.app[keys.SETTINGS].token_secret, record.paymentId)
    return web.Response(
        body=msgspec.json.encode(payment_view(record, token=token)),
        status=status,
        content_type="application/json",
        headers=headers,
    )
