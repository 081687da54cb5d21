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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
import structlog
from x402.extensions.payment_identifier import extract_payment_identifier
from x402.schemas import PaymentPayload, SettleResponse

from api import errors
from api.callcore.parties import Caller, buyer_of, tenant_of, token_owner
from api.callcore.refusals import refusal
from api.callcore.settlements import Intent, SettlementStore
from api.callcore.x402_gate import SETTLE_SLACK_S, FacilitatorUnavailable, X402Gate
from api.callcore.x402_payment import PaymentRejected, VerifiedPayment
from shared.catalog import Catalog
from shared.clock import iso
from shared.config import Settings
from shared.jobs import ANONYMOUS, now_ms
from shared.metrics import ApiMetrics
from shared.models import Service
from shared.payments import (
    KEEP_AFTER_EXPIRY_MS,
    NonceClaim,
    PaymentKind,
    PaymentRecord,
    PaymentStore,
    payment_id_of,
)
from shared.payments import Settlement as X402Settlement
from shared.quality import QualityStore

log = structlog.get_logger("api.payments")
NONCE_CLAIM_MARGIN_S = 60
RECONCILE_MARGIN_MS = 10_000  # an intent whose request died is looked at this long after its settle's bound
RECONCILE_FIRST_MS = 1000  # an intent whose request got no answer: looked at again this soon


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


@dataclass(frozen=True)
class PaymentOutcome:
    """What settling an x402 payment came to: paid (`certain`), or `settling` until the reconciler knows."""

    record: PaymentRecord
    response: SettleResponse | None  # the facilitator's proof, when this request got it
    certain: bool
    joined_job: str = ""  # a repeat of a payment whose payload carries a payment-identifier: the job it paid for


Idem = tuple[str, str] | None  # (Redis key, stored value) of an Idempotency-Key, written with the intent


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
        settlements: SettlementStore,
    ) -> None:
        self.settings = settings
        self.settlements = settlements
        self.reconcile_after_ms = (
            int((settings.x402.facilitator_timeout_s + SETTLE_SLACK_S) * 1000) + RECONCILE_MARGIN_MS
        )
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
        body = self.payments.offer(service, calls=calls, client_id=client_id)
        header = self.x402.payment_required_header(service, calls, resource_url, message or error)
        self.quality.record_payment_required(service.id)  # the service's paymentRequireds
        return errors.PaymentRequired(
            body, headers={"PAYMENT-REQUIRED": header}, error=error, code=code, message=message
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
        return payment_id_of(self.settings.payments.token_secret, token)

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

    def charge(self, ctx: CallContext, service: Service, *, token_payment: str | None) -> Charge:
        """How a free call or a token's call is paid (the token's payment HMAC-checked by the caller; ENQUEUE_JOB
        checks and consumes it with the job). Raises the 402 when nothing pays (x402 calls settle elsewhere)."""
        key_id = ctx.caller.key_client_id
        if service.pricing.amount_cents == 0:
            return Charge(None, None, owner=key_id or ANONYMOUS, tenant=key_id or ANONYMOUS, caller_key=key_id)
        if token_payment is None:
            raise self.payment_required(service, ctx.resource_url)
        return Charge(
            payment_id=token_payment,
            paid_with="token",
            owner=key_id or token_owner(token_payment),
            tenant=tenant_of(ctx.caller, None, token_owner(token_payment)),  # no key: ENQUEUE_JOB takes the buyer
            caller_key=key_id,
            tenant_from_payment=not key_id,
        )

    # ------------------------------------------------------------ settling x402 payments

    async def settle_inline(
        self,
        ctx: CallContext,
        service: Service,
        payment: VerifiedPayment,
        *,
        payment_id: str,
        job: Mapping[str, Any],
        idem: Idem,
    ) -> PaymentOutcome:
        """Settle one call's payment, its job recorded (status `settling`) in the same step as the intent."""
        settlement = await self._settle(
            ctx, service, payment, calls=1, kind="inline", job=job, idem=idem, payment_id=payment_id
        )
        if isinstance(settlement, NonceClaim):
            self.metrics.payments.labels("inline", "replayed").inc()
            if payment.payment_identifier and not settlement.other:  # the first request's answer, to its sender
                intent = await self.settlements.get(payment.digest)
                record = await self.payments.get(intent.payment_id) if intent else None
                if intent is not None and record is not None:
                    return PaymentOutcome(record, None, certain=False, joined_job=intent.job_id)
            if settlement.settling:
                raise errors.SettlementInProgress("this signed payment is being settled by another request")
            message = (
                "this signed payment already paid for a call: resend that call with its Idempotency-Key to get its "
                "job again"
                if settlement.payment_id
                else "this payment authorization was already used"
            )
            raise self.payment_required(service, ctx.resource_url, code="payment_replayed", message=message)
        return settlement

    async def purchase(
        self, ctx: CallContext, service: Service, payment: VerifiedPayment, calls: int, idempotency_key: str | None
    ) -> Purchase:
        """Buy `calls` calls with a verified payment; a repeat of the same signed payment returns its payment."""
        proof = key_hash(idempotency_key) if idempotency_key is not None else ""
        settlement = await self._settle(ctx, service, payment, calls=calls, kind="purchase", proof=proof)
        if isinstance(settlement, PaymentOutcome):
            return Purchase(settlement.record, fresh=True, show_token=True, settled=settlement.response)
        self.metrics.payments.labels("purchase", "replayed").inc()
        identified = bool(payment.payment_identifier) and not settlement.other  # its sender's repeat: the token
        earlier = await self.payments.get(settlement.payment_id) if settlement.payment_id else None
        if settlement.settling or settlement.ended:  # its payment as it stands: settling, failed or unconfirmed
            earlier = await self.payments.get(await self._settling_payment(payment))
        if (
            earlier is None
            or earlier.kind != "purchase"
            or earlier.service_id != service.id
            or earlier.max_calls != calls
        ):
            if settlement.settling:
                raise errors.SettlementInProgress("this signed payment is being settled by another request")
            raise self.payment_required(
                service, ctx.resource_url, calls=calls, code="payment_replayed",
                message="this payment authorization was already used",
            )  # fmt: skip
        by_key = bool(ctx.caller.key_client_id) and ctx.caller.key_client_id == earlier.client_id
        by_secret = bool(proof) and proof == earlier.idempotency_hash
        return Purchase(earlier, fresh=False, show_token=by_key or by_secret or identified, settled=None)

    async def _settling_payment(self, payment: VerifiedPayment) -> str:
        intent = await self.settlements.get(payment.digest)
        return intent.payment_id if intent is not None else ""

    async def _settle(
        self,
        ctx: CallContext,
        service: Service,
        payment: VerifiedPayment,
        *,
        calls: int,
        kind: PaymentKind,
        proof: str = "",
        job: Mapping[str, Any] | None = None,
        idem: Idem = None,
        payment_id: str | None = None,
    ) -> PaymentOutcome | NonceClaim:
        """Record the intent (claiming the nonce), settle, and say how it ended: paid, or `settling` when the
        facilitator's answer did not say (the reconciler ends it). Raises the 402 of a refusal (all undone)."""
        await self._check_identifier(payment)
        buyer = buyer_of(ctx.caller, payment.payer)
        record = self.payments.new_record(
            service, calls=calls, kind=kind, client_id=buyer, bound_to=buyer if service.pricing.bind_client else "",
            digest=payment.digest, idempotency_hash=proof, payment_id=payment_id,
        )  # fmt: skip
        record = msgspec.structs.replace(record, status="settling", payer=payment.payer)
        intent = self._intent(payment, record, kind, str(job["id"]) if job else "")
        held = await self.settlements.begin(
            intent, claim_ttl_s=self._claim_ttl_s(payment), due_ms=now_ms() + self.reconcile_after_ms,
            keep_ms=self._keep_ms(payment), payment=msgspec.to_builtins(record), job=dict(job) if job else None,
            idempotency=idem,
        )  # fmt: skip
        if held:
            claim = NonceClaim.parse(held, payment.digest)
            if claim.other and payment.payment_identifier:  # this payload recorded nothing: its id names nothing
                await self.settlements.release_identifier(payment.payment_identifier, intent)
            return claim
        try:
            settled = await self.x402.settle(payment)
        except PaymentRejected as exc:
            return await self._refused(ctx, service, intent, exc, calls=calls, idem=idem)
        except FacilitatorUnavailable as exc:
            return await self._unanswered(ctx, service, intent, record, exc, calls=calls, idem=idem)
        paid = await self.mark_paid(intent, record, settled.settlement)
        self.metrics.payments.labels(kind, "settled").inc()
        return PaymentOutcome(paid, settled.response, certain=True)

    async def _refused(
        self, ctx: CallContext, service: Service, intent: Intent, exc: PaymentRejected, *, calls: int, idem: Idem
    ) -> PaymentOutcome:
        if not exc.definite:  # a transaction may have been sent: only the reconciler can tell
            return await self._unanswered(ctx, service, intent, None, exc, calls=calls, idem=idem)
        if not await self._abandon(intent, idem, exc.code):  # a reconciler ended it meanwhile: its outcome stands
            return await self._as_it_stands(intent)
        self.metrics.payments.labels(intent.kind, "refused").inc()
        raise self.rejected(service, ctx.resource_url, exc, calls) from None

    async def _abandon(self, intent: Intent, idem: Idem, reason: str) -> bool:
        error = msgspec.json.encode(
            {"code": "payment_refused", "message": f"the x402 payment was refused ({reason}): nothing was charged",
             "retryable": False}
        )  # fmt: skip
        return await self.settlements.abandon(
            intent, idem, identifier=self._identifier_of(intent), now_ms=now_ms(), job_error=error,
            retention_ms=self.settings.jobs.retention_s * 1000,
        )  # fmt: skip

    @staticmethod
    def _identifier_of(intent: Intent) -> str | None:
        return extract_payment_identifier(PaymentPayload.model_validate_json(intent.payload))

    async def _as_it_stands(self, intent: Intent) -> PaymentOutcome:
        current = await self.payments.get(intent.payment_id)
        if current is None:
            raise errors.ServiceUnavailable("the payment's record is gone; retry the same payment", retry_after=1)
        return PaymentOutcome(current, None, certain=False)

    async def _unanswered(
        self,
        ctx: CallContext,
        service: Service,
        intent: Intent,
        record: PaymentRecord | None,
        exc: Exception,
        *,
        calls: int,
        idem: Idem,
    ) -> PaymentOutcome:
        """No answer says whether money moved: unless nothing was sent, the payment stays `settling`."""
        if isinstance(exc, FacilitatorUnavailable) and not exc.sent:
            if not await self._abandon(intent, idem, "facilitator_unreachable"):
                return await self._as_it_stands(intent)
            self.metrics.payments.labels(intent.kind, "facilitator_unavailable").inc()
            raise errors.ServiceUnavailable(
                "the payment facilitator cannot be reached; nothing was charged, retry the same payment", retry_after=2
            ) from None
        reason = getattr(exc, "code", type(exc).__name__)
        await self.settlements.uncertain(
            intent, due_ms=now_ms() + RECONCILE_FIRST_MS, now_iso=iso(now_ms()), reason=reason,
            retention_ms=self.settings.jobs.retention_s * 1000,
        )  # fmt: skip
        self.metrics.payments.labels(intent.kind, "settling").inc()
        log.warning("x402 settlement uncertain", payment_id=intent.payment_id, reason=reason)
        current = record or await self.payments.get(intent.payment_id)
        assert current is not None  # begin stored it
        return PaymentOutcome(current, None, certain=False)

    async def mark_paid(self, intent: Intent, record: PaymentRecord, settlement: X402Settlement) -> PaymentRecord:
        """settling -> paid, once (whoever proves it first: this request or the reconciler)."""
        paid = self.payments.new_record(
            self._service(record.service_id), calls=record.max_calls, kind=record.kind,
            client_id=record.client_id, payment_id=record.payment_id, settlement=settlement, bound_to=record.bound_to,
            digest=record.digest, idempotency_hash=record.idempotency_hash,
        )  # fmt: skip
        paid = msgspec.structs.replace(paid, created_at=record.created_at)
        ttl_ms = paid.expires_at - now_ms() + KEEP_AFTER_EXPIRY_MS
        fields = {"status": "paid", "paidAt": paid.paid_at, "payer": paid.payer, "transaction": paid.transaction,
                  "network": paid.network, "expiresAt": paid.expires_at}  # fmt: skip
        found = await self.settlements.paid(
            intent, now_iso=iso(now_ms()), payment_ttl_ms=ttl_ms, expires_ms=paid.expires_at,
            release_due_ms=now_ms() + self.reconcile_after_ms, fields=fields,
        )  # fmt: skip
        if found not in ("settling", "unconfirmed", "paid", "done"):  # 'failed': proven unpayable, yet a proof came
            log.error("a payment proven unpayable was settled", payment_id=record.payment_id, stage=found)
        if found == "unconfirmed":
            log.warning("an unconfirmed payment proved paid late: its call is a credit", payment_id=record.payment_id)
        return paid

    async def _check_identifier(self, payment: VerifiedPayment) -> None:
        """x402 payment-identifier: required when the operator says so (400); one id names one payload (409)."""
        if payment.payment_identifier is None:
            if self.settings.x402.require_payment_id:
                raise errors.BadRequest(
                    "this server requires the x402 payment-identifier extension: put a unique "
                    "extensions['payment-identifier'].info.id (16-128 characters) in the payment"
                )
            return
        named = await self.settlements.claim_identifier(
            payment.payment_identifier, payment.payer, payment.digest, self._claim_ttl_s(payment)
        )
        if named:
            raise errors.PaymentIdentifierReused("this payment-identifier was already used with another payment")

    def _service(self, service_id: str) -> Service:
        service = self.catalog.resolve(service_id)
        if service is None:
            raise LookupError(f"service {service_id} left the catalog")
        return service

    def _intent(self, payment: VerifiedPayment, record: PaymentRecord, kind: str, job_id: str) -> Intent:
        return Intent(
            digest=payment.digest, kind=kind, payment_id=record.payment_id, job_id=job_id,
            nonce_key=self.x402.nonce_key(payment), payer=payment.payer,
            payload=payment.payload.model_dump_json(by_alias=True),
            requirements=payment.requirements.model_dump_json(by_alias=True), valid_before=payment.valid_before,
            stage="settling", created_at=now_ms(),
        )  # fmt: skip

    @staticmethod
    def _claim_ttl_s(payment: VerifiedPayment) -> int:
        return min(payment.valid_before - int(time.time()), 7 * 86_400) + NONCE_CLAIM_MARGIN_S

    @staticmethod
    def _keep_ms(payment: VerifiedPayment) -> int:
        """How long an intent and what it made stay: past the authorization's end, the reconciler's bound."""
        return (min(payment.valid_before - int(time.time()), 7 * 86_400) + 86_400) * 1000
