"""The payment gate: access rules, then what pays for a call or a purchase, decided once.

1. The operator may require an API key for a service (401); a key may be limited to some services (403).
2. A tool priced at 0 runs unpaid.
3. A payment token: the call is paid from a bought payment. The token's HMAC is checked here; the call is
   consumed atomically with the job's creation (ENQUEUE_JOB), which also enforces the payment's binding.
4. An x402 payment: verified locally (api/callcore/x402_payment.py) before anything else, its authorization
   claimed in Redis for its payload digest, settled, recorded as a paid payment (of one call, or a bundle).
5. Otherwise 402: the seed's `{error, payment}` body and the x402 `PAYMENT-REQUIRED` terms.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

import msgspec
import structlog
from x402.schemas import PaymentPayload, SettleResponse

from api.callcore.parties import Caller, buyer_of, tenant_of, token_owner
from api.callcore.refusals import refusal
from api.callcore.x402_gate import FacilitatorUnavailable, X402Gate
from api.callcore.x402_payment import PaymentRejected, VerifiedPayment
from shared import errors
from shared.catalog import Catalog
from shared.config import Settings
from shared.jobs import ANONYMOUS
from shared.metrics import ApiMetrics
from shared.models import Service
from shared.payments import NonceClaim, PaymentKind, PaymentRecord, PaymentStore, payment_id_of, payment_view
from shared.quality import QualityStore

log = structlog.get_logger("api.payments")
NONCE_CLAIM_MARGIN_S = 60


@dataclass(frozen=True)
class PaymentInput:
    """What a call offers to pay with: typed values the adapters (HTTP headers, MCP arguments and _meta) made."""

    token: str | None = None
    x402: PaymentPayload | PaymentRejected | None = None  # a payload, or why what was sent is not one
    idempotency_key: str | None = None


@dataclass(frozen=True)
class CallContext:
    """Who calls, and what the adapter knows of the request that the core needs."""

    caller: Caller
    request_id: str
    resource_url: str  # the 402's resource.url


@dataclass(frozen=True)
class Charge:
    """How a call is paid and whose it is."""

    payment_id: str | None  # None: a free call
    paid_with: str | None  # 'token' | 'x402'
    owner: str  # who may read the job
    tenant: str  # whose face databases it acts on (ENQUEUE_JOB takes the payment's buyer when from_payment)
    caller_key: str  # the presenting API key's client id ('' for none): binding is checked against it
    tenant_from_payment: bool = False
    settled: SettleResponse | None = None  # an inline x402 payment's settlement (PAYMENT-RESPONSE)


@dataclass(frozen=True)
class Purchase:
    record: PaymentRecord
    fresh: bool  # settled by this request (201), else a repeat of the same signed payment (200)
    show_token: bool  # the request proved it is the buyer's (key, or the first request's Idempotency-Key)
    settled: SettleResponse | None


def key_hash(idempotency_key: str) -> str:
    return hashlib.sha256(idempotency_key.encode("utf-8", "surrogateescape")).hexdigest()


class PaymentGate:
    def __init__(  # noqa: PLR0917 - the stores and clients a gate uses, built once per app
        self,
        settings: Settings,
        catalog: Catalog,
        payments: PaymentStore,
        x402: X402Gate,
        metrics: ApiMetrics,
        quality: QualityStore,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.payments = payments
        self.x402 = x402
        self.metrics = metrics
        self.quality = quality

    # ------------------------------------------------------------ access and refusals

    def check_access(self, caller: Caller, service: Service) -> None:
        terms = self.catalog.terms.for_service(service.id)
        if terms.requires_api_key and caller.api_key is None:
            raise errors.Unauthorized("api key required")
        if caller.api_key is not None and not caller.api_key.allows(service.id):
            raise errors.Forbidden("api key is not allowed to call this service", code="api_key_not_allowed")

    def payment_required(
        self,
        service: Service,
        resource_url: str,
        *,
        calls: int = 1,
        error: str = "payment required",
        code: str = "payment_required",
        message: str | None = None,
        client_id: str = "",
    ) -> errors.PaymentRequired:
        """A 402 whose body offers a pending payment for the call and whose header carries the x402 terms."""
        offer = self.payments.offer(service, calls=calls, client_id=client_id)
        header = self.x402.payment_required_header(service, calls, resource_url, message or error)
        self.quality.record_payment_required(service.id)  # the service's paymentRequireds
        return errors.PaymentRequired(
            offer_body(offer), headers={"PAYMENT-REQUIRED": header}, error=error, code=code, message=message
        )

    def refused(self, service: Service, reason: str, resource_url: str) -> errors.Server402Error:
        """The answer for a payment ENQUEUE_JOB refused."""
        found = refusal(reason)
        if found.status == 403:
            return errors.Forbidden(found.error, code=found.code)
        return self.payment_required(service, resource_url, error=found.error, code=found.code, message=found.message)

    def rejected(
        self, service: Service, resource_url: str, exc: PaymentRejected, calls: int = 1
    ) -> errors.Server402Error:
        return self.payment_required(service, resource_url, calls=calls, code=exc.code, message=exc.message)

    # ------------------------------------------------------------ what pays

    def token_payment(self, token: str) -> str | None:
        """The payment a token spends (its HMAC checked), else None."""
        return payment_id_of(self.settings.token_secret, token)

    def verified(
        self, service: Service, payment: PaymentPayload | PaymentRejected, ctx: CallContext, calls: int
    ) -> VerifiedPayment:
        """The x402 payment checked locally; a 402 naming what is wrong otherwise (nothing stored or sent)."""
        try:
            if isinstance(payment, PaymentRejected):
                raise payment
            return self.x402.check(payment, service, calls)
        except PaymentRejected as exc:
            self.metrics.payments.labels("inline" if calls == 1 else "purchase", "refused").inc()
            raise self.rejected(service, ctx.resource_url, exc, calls) from None

    async def charge(
        self, ctx: CallContext, service: Service, *, token_payment: str | None, verified: VerifiedPayment | None
    ) -> Charge:
        """How this call is paid: free, a token's call (its payment, HMAC-checked by the caller), or a verified x402
        payment settled here. Raises the answer when nothing pays."""
        key_id = ctx.caller.key_client_id
        if service.pricing.amount_cents == 0:
            return Charge(None, None, owner=key_id or ANONYMOUS, tenant=key_id or ANONYMOUS, caller_key=key_id)
        if token_payment is not None:  # ENQUEUE_JOB checks the payment as it consumes the call (no read before)
            return Charge(
                payment_id=token_payment,
                paid_with="token",
                owner=key_id or token_owner(token_payment),
                tenant=tenant_of(ctx.caller, None, token_owner(token_payment)),  # no key: ENQUEUE_JOB takes the buyer
                caller_key=key_id,
                tenant_from_payment=not key_id,
            )
        if verified is not None:
            record, settled = await self.settle_inline(ctx, service, verified)
            return Charge(
                payment_id=record.paymentId,
                paid_with="x402",
                owner=key_id or ANONYMOUS,
                tenant=tenant_of(ctx.caller, record.clientId, ANONYMOUS),
                caller_key=key_id,
                settled=settled,
            )
        raise self.payment_required(service, ctx.resource_url)

    # ------------------------------------------------------------ settling x402 payments

    async def settle_inline(
        self, ctx: CallContext, service: Service, payment: VerifiedPayment
    ) -> tuple[PaymentRecord, SettleResponse]:
        claim = await self._claim(payment)
        if not claim.ours:
            self.metrics.payments.labels("inline", "replayed").inc()
            if claim.settling:
                raise errors.SettlementInProgress("this signed payment is being settled by another request")
            message = (
                "this payment authorization was already used"
                if claim.other
                else "this signed payment already paid for a call: resend that call with its Idempotency-Key to "
                "get its job again"
            )
            raise self.payment_required(service, ctx.resource_url, code="payment_replayed", message=message)
        record, settled = await self._settle(ctx, service, payment, calls=1, kind="inline")
        return record, settled

    async def purchase(
        self, ctx: CallContext, service: Service, payment: VerifiedPayment, calls: int, idempotency_key: str | None
    ) -> Purchase:
        """Buy `calls` calls with a verified payment; a repeat of the same signed payment returns its payment."""
        claim = await self._claim(payment)
        proof = key_hash(idempotency_key) if idempotency_key is not None else ""
        if claim.ours:
            record, settled = await self._settle(ctx, service, payment, calls=calls, kind="purchase", proof=proof)
            return Purchase(record, fresh=True, show_token=True, settled=settled)
        self.metrics.payments.labels("purchase", "replayed").inc()
        if claim.settling:
            raise errors.SettlementInProgress("this signed payment is being settled by another request")
        earlier = await self.payments.get(claim.payment_id) if claim.payment_id else None
        if (
            earlier is None
            or earlier.kind != "purchase"
            or earlier.serviceId != service.id
            or earlier.maxCalls != calls
        ):
            raise self.payment_required(
                service,
                ctx.resource_url,
                calls=calls,
                code="payment_replayed",
                message="this payment authorization was already used",
            )
        by_key = bool(ctx.caller.key_client_id) and ctx.caller.key_client_id == earlier.clientId
        by_secret = bool(proof) and proof == earlier.idempotencyHash
        return Purchase(earlier, fresh=False, show_token=by_key or by_secret, settled=None)

    async def _claim(self, payment: VerifiedPayment) -> NonceClaim:
        ttl_s = min(payment.valid_before - int(time.time()), 7 * 86_400) + NONCE_CLAIM_MARGIN_S
        return await self.payments.claim_nonce(self.x402.nonce_key(payment), payment.digest, ttl_s)

    async def _settle(
        self,
        ctx: CallContext,
        service: Service,
        payment: VerifiedPayment,
        *,
        calls: int,
        kind: PaymentKind,
        proof: str = "",
    ) -> tuple[PaymentRecord, SettleResponse]:
        """Settle a claimed payment and record it as paid (ledger: created, settled)."""
        counted = self.metrics.payments
        nonce_key = self.x402.nonce_key(payment)
        try:
            settled = await self.x402.settle(payment)
        except PaymentRejected as exc:
            await self.payments.release_nonce(nonce_key, payment.digest)
            counted.labels(kind, "refused").inc()
            raise self.rejected(service, ctx.resource_url, exc, calls) from None
        except FacilitatorUnavailable:
            await self.payments.release_nonce(nonce_key, payment.digest)
            counted.labels(kind, "facilitator_unavailable").inc()
            raise errors.ServiceUnavailable(
                "the payment facilitator did not answer, so whether it settled is not known: retry the same signed "
                "payment (one authorization can move money only once)",
                retry_after=2,
            ) from None
        except BaseException:
            await self.payments.release_nonce(nonce_key, payment.digest)
            raise
        buyer = buyer_of(ctx.caller, settled.settlement.payer)
        record = self.payments.new_record(
            service,
            calls=calls,
            kind=kind,
            client_id=buyer,
            settlement=settled.settlement,
            bound_to=buyer if service.pricing.bind_client else "",
            digest=payment.digest,
            idempotency_hash=proof,
        )
        await self.payments.save(record, events="created,settled")
        await self.payments.remember_settled(nonce_key, record.paymentId, payment.digest)
        counted.labels(kind, "settled").inc()
        return record, settled.response


def offer_body(record: PaymentRecord) -> dict[str, Any]:
    body: dict[str, Any] = msgspec.to_builtins(payment_view(record, token=""))
    return body
