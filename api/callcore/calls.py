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

from api import errors
from api.callcore.gate import CallContext, Charge, PaymentGate, PaymentInput
from api.callcore.idempotency import Idempotency, checked_key
from api.callcore.parties import buyer_of, tenant_of, token_owner
from api.callcore.refusals import INVALID_TOKEN
from api.callcore.settlements import intent_key
from api.callcore.x402_payment import VerifiedPayment
from shared.config import Settings
from shared.jobs import ANONYMOUS, JobRecord, JobStatus, JobStore, new_job_id, now_ms
from shared.keys import idempotency_key
from shared.metrics import ApiMetrics
from shared.models import Service
from shared.payments import PaymentRecord, new_payment_id

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


def receipt(payment: PaymentRecord) -> SettleResponse | None:
    """The settlement a paid payment recorded, as x402's PAYMENT-RESPONSE (for a repeat of its request)."""
    if payment.status not in ("paid", "expired") or not payment.transaction:
        return None
    return SettleResponse(success=True, transaction=payment.transaction, network=payment.network, payer=payment.payer)


class CallCore:
    def __init__(
        self, settings: Settings, gate: PaymentGate, jobs: JobStore, redis: Redis, metrics: ApiMetrics
    ) -> None:
        self.settings = settings
        self.gate = gate
        self.jobs = jobs
        self.redis = redis
        self.metrics = metrics

    def probe(self, ctx: CallContext, service: Service) -> None:
        """An unpaid call with no input (how x402 discovery probes a resource): a priced tool answers its 402
        (access rules first); a free one returns, and its input is validated as usual. Nothing is stored."""
        self.gate.check_access(ctx.caller, service)
        if service.pricing.amount_cents > 0 and ctx.caller.api_key is None:
            raise self.gate.payment_required(service, ctx.resource_url)

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
        if verified is not None:
            return await self._start_paid_inline(ctx, service, encoded_input, verified, idempotency, webhook)
        charge = self.gate.charge(ctx, service, token_payment=token_payment)
        record = await self._submit(ctx, service, encoded_input, charge, idempotency, webhook)
        structlog.contextvars.bind_contextvars(job_id=record.id)
        return Started(record, None)

    async def _start_paid_inline(  # noqa: PLR0917 - one call's parts, all needed
        self,
        ctx: CallContext,
        service: Service,
        encoded_input: bytes,
        verified: VerifiedPayment,
        idempotency: Idempotency | None,
        webhook: Webhook | None,
    ) -> Started:
        """An x402 call: its job is recorded `settling` with the payment's intent, released to the queue once the
        payment is paid (here, or by the reconciler when the facilitator's answer was lost)."""
        payment_id = new_payment_id()
        buyer = buyer_of(ctx.caller, verified.payer)
        owner, tenant = ctx.caller.key_client_id or ANONYMOUS, tenant_of(ctx.caller, buyer, ANONYMOUS)
        job = self._record(
            ctx, service, encoded_input, webhook, status="settling", owner=owner, tenant=tenant,
            payment=(payment_id, "x402"),
        )  # fmt: skip
        idem = (idempotency.redis_key, idempotency.value_for(job.id)) if idempotency else None
        fields = {k: v for k, v in msgspec.to_builtins(job).items() if v is not None}
        outcome = await self.gate.settle_inline(ctx, service, verified, payment_id=payment_id, job=fields, idem=idem)
        if outcome.joined_job:  # the same identified payment again: the job it paid for, as it is now
            structlog.contextvars.bind_contextvars(job_id=outcome.joined_job, payment_id=outcome.record.payment_id)
            return Started(await self.jobs.get(outcome.joined_job) or job, receipt(outcome.record))
        structlog.contextvars.bind_contextvars(job_id=job.id, payment_id=payment_id)
        if not outcome.certain:
            return Started(job, None)  # settling: the reconciler releases or fails it
        return Started(await self.release(job, verified.digest, caller_key=ctx.caller.key_client_id), outcome.response)

    async def release(self, job: JobRecord, digest: str, *, caller_key: str) -> JobRecord:
        """Queue a `settling` job whose payment is now paid, consuming its call: once, whoever calls it first."""
        created_ms = now_ms()
        queued = msgspec.structs.replace(
            job, status="queued", deadline=created_ms + int(self.settings.jobs.deadline_s * 1000)
        )
        outcome, reason = await self.jobs.create(queued, caller_key=caller_key, settled_intent=intent_key(digest))
        if outcome == -1:  # cannot be: the payment was made for this job. Said loudly, and the job stays settling.
            log.error("a paid settling job could not be released", job_id=job.id, reason=reason)
        if outcome != 1:
            return await self.jobs.get(job.id) or job
        return queued

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
        payment = (charge.payment_id, charge.paid_with) if charge.payment_id and charge.paid_with else None
        record = self._record(
            ctx, service, encoded_input, webhook, status="queued", owner=charge.owner, tenant=charge.tenant,
            payment=payment,
        )  # fmt: skip
        stored_value = (idempotency.redis_key, idempotency.value_for(record.id)) if idempotency else None
        outcome, stored = await self.jobs.create(
            record,
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
        return await self._existing(idempotency.made(stored, BODY))

    def _record(
        self,
        ctx: CallContext,
        service: Service,
        encoded_input: bytes,
        webhook: Webhook | None,
        *,
        status: JobStatus,
        owner: str,
        tenant: str,
        payment: tuple[str, str] | None,
    ) -> JobRecord:
        created_ms = now_ms()
        return JobRecord(
            id=new_job_id(created_ms),
            service=service.id,
            action=service.upstream.action,
            owner=owner,
            input=encoded_input.decode(),
            request_id=ctx.request_id,
            created_at=created_ms,
            deadline=created_ms + int(self.settings.jobs.deadline_s * 1000),
            status=status,
            tenant=tenant,
            payment_id=payment[0] if payment else None,
            payment_kind=payment[1] if payment else None,
            webhook=webhook.url if webhook else None,
            events=webhook.events if webhook else None,
        )

    async def _existing(self, job_id: str) -> JobRecord:
        existing = await self.jobs.get(job_id)
        if existing is None:
            raise errors.Gone("the job for this Idempotency-Key has expired")
        structlog.contextvars.bind_contextvars(idempotent_replay=True)
        return existing
