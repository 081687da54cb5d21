"""Starting a tool call, for `POST /api/tools/{id}` and MCP `tools/call` alike: access, idempotency, payment,
and the job created and enqueued with its payment consumed in the same step (ENQUEUE_JOB).

An Idempotency-Key is scoped to whoever could have paid: the API key; else the payment token's payment; else,
for an x402 payment, the digest of that verified signed payload (a retry carries the same one: another payment
is another call); anonymous free calls share one scope. A guessed key and body never hand someone else's paid
result to a caller, and nothing is looked up for a payment that was not verified first.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import msgspec
import structlog
from redis.asyncio import Redis
from x402.schemas import SettleResponse

from api.callcore.gate import CallContext, Charge, PaymentGate, PaymentInput
from api.callcore.idempotency import Idempotency, checked_key
from api.callcore.parties import token_owner
from api.callcore.refusals import INVALID_TOKEN
from api.callcore.x402_payment import VerifiedPayment
from shared import errors
from shared.config import Settings
from shared.jobs import ANONYMOUS, JobRecord, JobStore, arq_payload, new_job_id, now_ms
from shared.keys import idempotency_key
from shared.metrics import ApiMetrics
from shared.models import Service

log = structlog.get_logger("api.calls")
NO_STANDING = "a webhook needs an API key, or a payment token that pays for this call (its secret signs the deliveries)"
BODY = "request body"


@dataclass(frozen=True)
class Webhook:
    url: str
    events: str  # comma-separated


@dataclass(frozen=True)
class Started:
    record: JobRecord  # new, or the one the Idempotency-Key already made
    settled: SettleResponse | None  # an inline x402 payment settled by this request


class CallCore:
    def __init__(
        self, settings: Settings, gate: PaymentGate, jobs: JobStore, redis: Redis, metrics: ApiMetrics
    ) -> None:
        self.settings = settings
        self.gate = gate
        self.jobs = jobs
        self.redis = redis
        self.metrics = metrics

    async def start_call(
        self,
        ctx: CallContext,
        service: Service,
        params: dict[str, object],
        payment: PaymentInput,
        *,
        webhook: Webhook | None = None,
    ) -> Started:
        """The job of this call; `params` are validated, `webhook` checked. Raises the refusal's answer."""
        self.gate.check_access(ctx.caller, service)
        key = checked_key(payment.idempotency_key) if payment.idempotency_key is not None else None
        paid = service.pricing.amount_cents > 0
        if webhook is not None and ctx.caller.api_key is None and not (paid and payment.token is not None):
            raise errors.BadRequest(NO_STANDING)
        token_payment, verified = None, None
        if paid and payment.token is not None:
            token_payment = self.gate.token_payment(payment.token)
            if token_payment is None:
                raise self.gate.payment_required(service, ctx.resource_url, code="invalid_token", message=INVALID_TOKEN)
        elif paid and payment.x402 is not None:
            verified = self.gate.verified(service, payment.x402, ctx, calls=1)
        encoded_input = msgspec.json.encode(params)
        idempotency = None
        scope = self._scope(ctx, service, token_payment, verified) if key is not None else None
        if key is not None and scope is not None:
            fingerprint = hashlib.sha256(service.id.encode() + b"\0" + encoded_input).hexdigest()
            idempotency = Idempotency(idempotency_key(scope, key), fingerprint)
            earlier = await idempotency.earlier(self.redis, BODY)
            if earlier is not None:
                return Started(await self._existing(earlier), None)  # a retry is not paid again
        charge = await self.gate.charge(ctx, service, token_payment=token_payment, verified=verified)
        record = await self._submit(ctx, service, encoded_input, charge, idempotency, webhook)
        structlog.contextvars.bind_contextvars(job_id=record.id)
        return Started(record, charge.settled)

    @staticmethod
    def _scope(
        ctx: CallContext, service: Service, token_payment: str | None, verified: VerifiedPayment | None
    ) -> str | None:
        """Whose Idempotency-Keys this call's are (None: no lookup, the call is not paid)."""
        if ctx.caller.api_key is not None:
            return ctx.caller.key_client_id
        if service.pricing.amount_cents == 0:
            return ANONYMOUS
        if token_payment is not None:
            return token_owner(token_payment)
        return "x402:" + verified.digest if verified is not None else None

    async def _submit(  # noqa: PLR0917 - one call's parts, all needed
        self,
        ctx: CallContext,
        service: Service,
        encoded_input: bytes,
        charge: Charge,
        idempotency: Idempotency | None,
        webhook: Webhook | None,
    ) -> JobRecord:
        """Create and enqueue the job, paying with `charge` in the same step, or return the existing one for a
        repeated Idempotency-Key (then nothing is charged)."""
        created_ms = now_ms()
        record = JobRecord(
            id=new_job_id(created_ms),
            service=service.id,
            action=service.upstream.action,
            owner=charge.owner,
            input=encoded_input.decode(),
            requestId=ctx.request_id,
            createdAt=created_ms,
            deadline=created_ms + int(self.settings.job_deadline_s * 1000),
            status="queued",
            tenant=charge.tenant,
            paymentId=charge.payment_id,
            paymentKind=charge.paid_with,
            webhook=webhook.url if webhook else None,
            events=webhook.events if webhook else None,
        )
        stored_value = (idempotency.redis_key, idempotency.value_for(record.id)) if idempotency else None
        outcome, stored = await self.jobs.create(
            record,
            arq_payload(record.id, created_ms),
            idempotency=stored_value,
            caller_key=charge.caller_key,
            tenant_from_payment=charge.tenant_from_payment,
        )
        if charge.paid_with == "token":
            self.metrics.payments.labels("token", "refused" if outcome == -1 else "consumed").inc()
        if outcome == -1:
            raise self.gate.refused(service, stored, ctx.resource_url)
        if outcome == 1 or idempotency is None:  # a new job (counted as a call; a replayed Idempotency-Key is not)
            return record
        if charge.paid_with == "x402":  # lost a race with the same Idempotency-Key: the settled call stays unspent
            log.warning("idempotent replay after inline payment", payment_id=charge.payment_id)
        return await self._existing(idempotency.made(stored, BODY))

    async def _existing(self, job_id: str) -> JobRecord:
        existing = await self.jobs.get(job_id)
        if existing is None:
            raise errors.Gone("the job for this Idempotency-Key has expired")
        structlog.contextvars.bind_contextvars(idempotent_replay=True)
        return existing
