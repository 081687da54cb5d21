"""The payment step of a tool call: access rules, then how the call is paid.

1. The operator may require an API key for a service ("api key required", 401); a key may be limited to some
   services ("api key is not allowed to call this service", 403).
2. A tool priced at 0 runs unpaid.
3. `X-Payment-Token`: the call is paid from a bought payment. The token is checked here for a clear answer;
   the call is consumed atomically with the job's creation (ENQUEUE_JOB), so N bought calls run exactly N times.
4. `PAYMENT-SIGNATURE` (or `X-PAYMENT`): an x402 payment for this one call is settled first, recorded as a paid
   payment of one call and spent the same way.
5. Otherwise 402: the seed's `{error, payment}` body (a pending payment offer for this call) and the x402
   `PAYMENT-REQUIRED` header the official clients pay.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec
from aiohttp import web

from api import keys
from api.identity import Caller, identify, token_owner
from api.x402_gate import FacilitatorUnavailable, PaymentRejected
from shared import errors
from shared.jobs import ANONYMOUS
from shared.models import Service
from shared.payments import PaymentRecord, PaymentStore, payment_id_of, payment_view

SIGNATURE_HEADERS = ("PAYMENT-SIGNATURE", "X-PAYMENT")
INVALID_TOKEN = "unknown or unpaid payment token"


@dataclass(frozen=True)
class PaymentInput:
    """What a call offers to pay with, and its Idempotency-Key: from HTTP headers, or MCP arguments and _meta."""

    token: str | None = None  # X-Payment-Token / MCP paymentToken
    signature: str | None = None  # PAYMENT-SIGNATURE / X-PAYMENT / MCP _meta["x402/payment"], base64 JSON
    idempotency_key: str | None = None

    @classmethod
    def from_headers(cls, request: web.Request) -> PaymentInput:
        token = request.headers.get("X-Payment-Token")
        return cls(
            token=token.strip() if token is not None else None,
            signature=signature_of(request),
            idempotency_key=request.headers.get("Idempotency-Key"),
        )


@dataclass(frozen=True)
class Charge:
    """How a call is paid and whose it is."""

    payment_id: str | None  # None: a free call
    paid_with: str | None  # 'token' | 'x402'
    owner: str  # who may read the job
    tenant: str  # whose face databases it acts on
    caller_key: str  # the presenting API key's client id, for tokens bound to a key
    tenant_from_payment: bool = False  # the tenant is the payment's client (ENQUEUE_JOB reads it), else `tenant`
    headers: dict[str, str] = field(default_factory=dict)  # PAYMENT-RESPONSE for an inline x402 payment


def check_access(caller: Caller, service: Service, request: web.Request) -> None:
    terms = request.app[keys.CATALOG].terms.for_service(service.id)
    if terms.requires_api_key and caller.api_key is None:
        raise errors.Unauthorized("api key required")
    if caller.api_key is not None and not caller.api_key.allows(service.id):
        raise errors.Forbidden("api key is not allowed to call this service", code="api_key_not_allowed")


def idempotency_scope(request: web.Request, caller: Caller, service: Service, payment: PaymentInput) -> str:
    """Whose Idempotency-Keys a call's are: its API key's; else its payment token's; for an inline x402 payment,
    that signed payment's (a retry carries the same one: a different payment is a different call); else shared by
    anonymous free calls. So a guessed key and body never hand someone else's paid result to a caller."""
    if caller.api_key is not None:
        return caller.key_client_id
    if service.pricing.amount_cents == 0:
        return ANONYMOUS
    if payment.token is not None:
        payment_id = payment_id_of(request.app[keys.SETTINGS].token_secret, payment.token)
        return token_owner(payment_id) if payment_id else "invalid"
    if payment.signature is not None:
        nonce_key = request.app[keys.X402].nonce_key_of(payment.signature)
        return "x402:" + nonce_key.rsplit(":", 1)[-1] if nonce_key else "invalid"
    return ANONYMOUS


def signature_of(request: web.Request) -> str | None:
    return next((request.headers[h] for h in SIGNATURE_HEADERS if h in request.headers), None)


async def charge_for(request: web.Request, service: Service, payment: PaymentInput) -> Charge:
    caller = await identify(request)
    check_access(caller, service, request)
    key_id = caller.key_client_id
    if service.pricing.amount_cents == 0:
        return Charge(None, None, owner=key_id or ANONYMOUS, tenant=key_id or ANONYMOUS, caller_key=key_id)
    if payment.token is not None:  # ENQUEUE_JOB checks the payment as it consumes the call (no read before)
        payment_id = payment_id_of(request.app[keys.SETTINGS].token_secret, payment.token)
        if payment_id is None:
            raise await payment_required(request, service, code="invalid_token", message=INVALID_TOKEN)
        return Charge(
            payment_id=payment_id,
            paid_with="token",
            owner=key_id or token_owner(payment_id),
            tenant=key_id or token_owner(payment_id),
            caller_key=key_id,
            tenant_from_payment=not key_id,
        )
    if payment.signature is not None:
        record, headers, _ = await settle_inline(
            request, service, payment.signature, calls=1, kind="inline", client_id=key_id
        )
        return Charge(
            payment_id=record.paymentId,
            paid_with="x402",
            owner=key_id or ANONYMOUS,
            tenant=key_id or record.clientId,
            caller_key=key_id,
            headers=headers,
        )
    raise await payment_required(request, service)


async def settle_inline(
    request: web.Request, service: Service, signature: str, *, calls: int, kind: str, client_id: str
) -> tuple[PaymentRecord, dict[str, str], bool]:
    """Settle an x402 payment for `calls` calls of `service` and record it as paid (ledger: created, settled).

    Returns (payment, response headers, settled now). A purchase (`kind='purchase'`) whose signed payment was
    already settled for the same service and calls returns that payment again (settled now: False)."""
    store: PaymentStore = request.app[keys.PAYMENTS]
    counted = request.app[keys.METRICS].payments
    try:
        settled = await request.app[keys.X402].settle(signature, service, calls, store)
    except PaymentRejected as exc:
        counted.labels(kind, "replayed" if exc.code == "payment_replayed" else "refused").inc()
        earlier = await _bought_before(store, exc, service, calls) if kind == "purchase" else None
        if earlier is not None:
            return earlier, {}, False
        raise await payment_required(request, service, calls=calls, code=exc.code, message=exc.message) from None
    except FacilitatorUnavailable:
        counted.labels(kind, "facilitator_unavailable").inc()
        raise errors.ServiceUnavailable(
            "the payment facilitator is unavailable; nothing was charged, retry the same payment", retry_after=2
        ) from None
    record = store.new_record(
        service,
        calls=calls,
        kind="inline" if kind == "inline" else "purchase",
        client_id=client_id or settled.settlement.payer,
        settlement=settled.settlement,
    )
    await store.save(record, events="created,settled")
    await store.remember_settled(settled.nonce_key, record.paymentId)
    counted.labels(kind, "settled").inc()
    return record, {"PAYMENT-RESPONSE": settled.response_header}, True


async def _bought_before(
    store: PaymentStore, exc: PaymentRejected, service: Service, calls: int
) -> PaymentRecord | None:
    payment_id = await store.settled_by(exc.nonce_key) if exc.nonce_key else None
    record = await store.get(payment_id) if payment_id else None
    if record is None or record.kind != "purchase" or record.serviceId != service.id or record.maxCalls != calls:
        return None
    return record


async def payment_required(
    request: web.Request,
    service: Service,
    *,
    calls: int = 1,
    error: str = "payment required",
    code: str = "payment_required",
    message: str | None = None,
    offer: PaymentRecord | None = None,
) -> errors.PaymentRequired:
    """A 402 whose body offers a pending payment for the call and whose header carries the x402 terms."""
    store: PaymentStore = request.app[keys.PAYMENTS]
    if offer is None:
        offer = store.offer(service, calls=calls)
    settings = request.app[keys.SETTINGS]
    header = request.app[keys.X402].payment_required_header(
        service, calls, settings.public_url + request.path, message or error
    )
    request.app[keys.QUALITY].record_payment_required(service.id)  # the service's paymentRequireds
    return errors.PaymentRequired(
        offer_body(offer), headers={"PAYMENT-REQUIRED": header}, error=error, code=code, message=message
    )


def offer_body(record: PaymentRecord) -> dict[str, Any]:
    body: dict[str, Any] = msgspec.to_builtins(payment_view(record, token=""))
    return body


# ENQUEUE_JOB's refusals: (status, seed failure text, code, message)
FAILURES: dict[str, tuple[int, str, str, str]] = {
    "payment_required": (402, "payment required", "invalid_token", INVALID_TOKEN),
    "token_expired": (402, "payment token expired", "token_expired", "the payment token has expired"),
    "no_calls_left": (402, "payment token has no remaining calls", "no_calls_left", "every call has been used"),
    "wrong_service": (402, "payment required", "token_wrong_service", "this payment token pays for another service"),
    "wrong_client": (403, "payment token is bound to another client", "token_bound_to_other_client",
                     "this payment token was bought with another API key; present that key"),
}  # fmt: skip


async def refused(request: web.Request, service: Service, reason: str) -> errors.Server402Error:
    status, error, code, message = FAILURES.get(reason, FAILURES["payment_required"])
    if status == 403:
        return errors.Forbidden(error, code=code)
    return await payment_required(request, service, error=error, code=code, message=message)
