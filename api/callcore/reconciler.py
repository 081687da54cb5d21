"""The reconciler: every x402 payment left `settling` is ended exactly once, by asking the facilitator again.

Each API process runs one. A pass leases the due intents (api/callcore/settlements.py `LEASE`: one process at a
time looks at one) and, for each, sends `/settle` again with the very payload it recorded:

- an answer with a transaction (the facilitator's settlement cache answers a repeat of one payload with its
  first result) proves the payment reached our `payTo`: it is paid, and its job is queued or its token usable;
- a refusal made before any transfer (`invalid_...`, "nonce already used" included: the payer may have spent
  that nonce on another transfer, so it proves nothing for us) fails it: nothing was taken, the job fails;
- no answer again: looked at later (backing off to RETRY_CAP_MS), until the authorization is past its
  `validBefore` by GIVE_UP_AFTER_S with still no proof; then it fails as unconfirmed.

Ending is the scripts' (each checks the intent is still settling), so two processes can never both end one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import msgspec
import structlog
from x402.schemas import PaymentPayload, PaymentRequirements

from api.callcore.calls import CallCore
from api.callcore.gate import PaymentGate
from api.callcore.settlements import SETTLING, Intent, SettlementStore
from api.callcore.x402_gate import FacilitatorUnavailable
from api.callcore.x402_payment import PaymentRejected
from shared.jobs import JobError, iso, now_ms

log = structlog.get_logger("api.reconciler")

POLL_S = 1.0
BATCH = 16
RETRY_BASE_MS = 1000
RETRY_CAP_MS = 30_000
GIVE_UP_AFTER_S = 120  # past validBefore no transfer can start: a settle still unproven by then never will be
_error = msgspec.json.Encoder()


def payment_failed_error(reason: str) -> bytes:
    return _error.encode(
        JobError(
            code="payment_failed",
            message=f"the x402 payment was not settled ({reason}): nothing was charged; pay again to run the call",
            retryable=True,
        )
    )


class Reconciler:
    def __init__(self, core: CallCore, gate: PaymentGate, settlements: SettlementStore, retention_ms: int) -> None:
        self.core = core
        self.gate = gate
        self.settlements = settlements
        self.retention_ms = retention_ms
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run_forever(), name="x402-reconciler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run_forever(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception as exc:  # noqa: BLE001 - Redis away, say: the intents wait, the next pass retries
                log.warning("reconciler pass failed", error=type(exc).__name__, detail=str(exc)[:200])
            await asyncio.sleep(POLL_S)

    async def run_once(self) -> int:
        """One pass over the due intents; returns how many it looked at."""
        lease_ms = self.gate.reconcile_after_ms  # longer than one settle can take
        digests = await self.settlements.due(now_ms=now_ms(), lease_ms=lease_ms, limit=BATCH)
        for digest in digests:
            await self.resolve(digest)
        return len(digests)

    async def resolve(self, digest: str) -> None:
        intent = await self.settlements.get(digest)
        if intent is None:
            return
        if intent.stage == "paid" and intent.jobId:  # paid, but the process died before its job was queued
            await self._release(intent)
            return
        if intent.stage != SETTLING:
            return
        try:
            settled = await self.gate.x402.settle_payload(
                PaymentPayload.model_validate_json(intent.payload),
                PaymentRequirements.model_validate_json(intent.requirements),
                payer=(await self._payer(intent)),
            )
        except PaymentRejected as exc:
            if exc.definite:
                await self._fail(intent, exc.code)
            else:
                await self._later(intent, exc.code)
            return
        except FacilitatorUnavailable as exc:
            await self._later(intent, "facilitator_unavailable" if not exc.sent else "no_answer")
            return
        record = await self.gate.payments.get(intent.paymentId)
        if record is None:
            return
        await self.gate.mark_paid(intent, record, settled.settlement)
        log.info("x402 settlement reconciled", payment_id=intent.paymentId, transaction=settled.settlement.transaction)
        if intent.jobId:
            await self._release(intent)

    async def _payer(self, intent: Intent) -> str:
        record = await self.gate.payments.get(intent.paymentId)
        return record.payer or "" if record is not None else ""

    async def _release(self, intent: Intent) -> None:
        job = await self.core.jobs.get(intent.jobId)
        record = await self.gate.payments.get(intent.paymentId)
        if job is None or record is None or job.status != SETTLING:
            return
        caller_key = record.clientId if record.clientId.startswith("key:") else ""
        await self.core.release(job, intent.digest, caller_key=caller_key)

    async def _later(self, intent: Intent, reason: str) -> None:
        if time.time() > intent.validBefore + GIVE_UP_AFTER_S:
            await self._fail(intent, f"unconfirmed after {reason}")
            return
        delay_ms = min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** min(intent.attempts, 10))
        await self.settlements.uncertain(intent, due_ms=now_ms() + delay_ms, now_iso=iso(now_ms()), reason=reason)

    async def _fail(self, intent: Intent, reason: str) -> None:
        ended = await self.settlements.failed(
            intent,
            now_ms=now_ms(),
            now_iso=iso(now_ms()),
            reason=reason,
            job_error=payment_failed_error(reason),
            retention_ms=self.retention_ms,
        )
        if ended:
            log.warning("x402 settlement failed", payment_id=intent.paymentId, reason=reason)
