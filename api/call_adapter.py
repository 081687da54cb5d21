"""What the HTTP routes and MCP hand the call core: typed payment input from headers, and the headers of a
settled payment. The decisions are the core's (api/callcore/)."""

from __future__ import annotations

from aiohttp import web
from x402.http.utils import encode_payment_response_header
from x402.schemas import PaymentPayload, SettleResponse

from api import appkeys
from api.callcore.calls import Started, Webhook
from api.callcore.gate import PaymentInput
from api.callcore.x402_payment import PaymentRejected, decode_header
from api.identity import call_context
from api.ratelimits import OWS
from shared.models import Service

SIGNATURE_HEADERS = ("PAYMENT-SIGNATURE", "X-PAYMENT")


def x402_from_headers(request: web.Request) -> PaymentPayload | PaymentRejected | None:
    """`PAYMENT-SIGNATURE` (or the older `X-PAYMENT`) decoded, or why it is not a payment; None when absent."""
    header = next((request.headers[h] for h in SIGNATURE_HEADERS if h in request.headers), None)
    if header is None:
        return None
    try:
        return decode_header(header)
    except PaymentRejected as exc:
        return exc


def payment_from_headers(request: web.Request) -> PaymentInput:
    token = request.headers.get("X-Payment-Token")
    return PaymentInput(
        token=token.strip(OWS) if token is not None else None,
        x402=x402_from_headers(request),
        idempotency_key=request.headers.get("Idempotency-Key"),
    )


def settle_headers(settled: SettleResponse | None) -> dict[str, str]:
    return {"PAYMENT-RESPONSE": encode_payment_response_header(settled)} if settled is not None else {}


async def start_call(
    request: web.Request,
    service: Service,
    params: dict[str, object],
    payment: PaymentInput,
    *,
    webhook: Webhook | None = None,
) -> Started:
    return await request.app[appkeys.CORE].start_call(
        await call_context(request), service, params, payment, webhook=webhook
    )
