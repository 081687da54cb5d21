"""`POST /api/payments` (buy calls of one service, with x402) and `GET /api/payments/{paymentId}` (verify).

POST without a payment answers 402 with the pending payment and the x402 `PAYMENT-REQUIRED` terms for its
amount; the same POST carrying `PAYMENT-SIGNATURE` (or `X-PAYMENT`) settles and answers 201 with the paid payment
and its token, so the official x402 client buys a token in one call. Sending the same signed payment again (the
same payload, byte for byte once canonical) returns the same payment (200), never paid twice; its token only to
a request that shows it is the buyer's (the API key that bought it, or the first request's `Idempotency-Key`):
the signed authorization is public on chain once settled, so it alone proves nothing. When the facilitator's
answer is lost, the answer is 202 with the payment `settling` (and its token, usable once paid); the reconciler
ends it, and `GET` shows `paid` or `failed`.

GET shows a pending offer to anyone (it holds no one's data); a paid payment's payer, transaction, key and token
only to its owner (the key that bought it, or its own token); anyone else sees that it exists and its status.
"""

from __future__ import annotations

from typing import Any

import msgspec
import structlog
from aiohttp import web

from api import appkeys, errors
from api.call_adapter import settle_headers, x402_from_headers
from api.callcore.idempotency import checked_key
from api.callcore.parties import owns_payment
from api.identity import call_context, token_payments
from api.request_body import read_json_object
from api.responses import json_response
from shared.models import Service
from shared.payments import MAX_CALLS_PER_PAYMENT, payment_view, status_view, token_for

routes = web.RouteTableDef()
BODY_FIELDS = frozenset({"serviceId", "providerId", "calls"})


@routes.post("/api/payments")
async def create_payment(request: web.Request) -> web.Response:
    body = await read_json_object(request, "the purchase")
    service, calls = _purchase(request, body)
    ctx = await call_context(request)
    gate = request.app[appkeys.GATE]
    gate.check_access(ctx.caller, service)
    structlog.contextvars.bind_contextvars(service_id=service.id, calls=calls)
    offered = x402_from_headers(request)
    idempotency_key = request.headers.get("Idempotency-Key")
    if idempotency_key is not None:
        checked_key(idempotency_key)
    if offered is None:
        raise gate.payment_required(service, ctx.resource_url, calls=calls, client_id=ctx.caller.key_client_id)
    verified = gate.verified(service, offered, ctx, calls)
    bought = await gate.purchase(ctx, service, verified, calls, idempotency_key)
    record = bought.record
    structlog.contextvars.bind_contextvars(payment_id=record.payment_id, replayed=not bought.fresh)
    headers = {**settle_headers(bought.settled), "Location": f"/api/payments/{record.payment_id}"}
    token = (
        token_for(request.app[appkeys.SETTINGS].payments.token_secret, record.payment_id) if bought.show_token else ""
    )
    view: Any = payment_view(record, token=token) if bought.show_token else status_view(record)
    return web.Response(
        body=msgspec.json.encode(view),
        status=202 if record.status == "settling" else 201 if bought.fresh else 200,
        content_type="application/json",
        headers=headers,
    )


@routes.get("/api/payments/{payment_id}")
async def get_payment(request: web.Request) -> web.Response:
    payment_id = request.match_info["payment_id"]
    store = request.app[appkeys.PAYMENTS]
    record = await store.get(payment_id) or store.offer_for(payment_id, request.app[appkeys.CATALOG].resolve)
    if record is None:
        raise errors.NotFound("payment not found")
    if record.kind == "offer":
        return json_response(payment_view(record, token=""))
    ctx = await call_context(request)
    presented = next(iter(token_payments(request)), None)
    if not owns_payment(ctx.caller, presented, record.client_id, record.payment_id):
        return json_response(status_view(record))
    return json_response(
        payment_view(record, token=token_for(request.app[appkeys.SETTINGS].payments.token_secret, payment_id))
    )


def _purchase(request: web.Request, body: dict[str, Any]) -> tuple[Service, int]:
    unknown = sorted(set(body) - BODY_FIELDS)
    if unknown:
        raise errors.ValidationFailed(f"unknown field(s): {', '.join(unknown)[:200]}")
    service_id = body.get("serviceId")
    if not isinstance(service_id, str) or not service_id:
        raise errors.ValidationFailed("serviceId is required")
    service = request.app[appkeys.CATALOG].resolve(service_id)
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
