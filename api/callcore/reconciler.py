"""The reconciler: every x402 payment left `settling` is ended exactly once, by asking the facilitator again.

Each API process runs one. What each answer proves, and when an intent ends `unconfirmed`: docs/architecture.md,
"Paying".
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
from api.callcore.x402_gate import FacilitatorUnavailable, never_payable
from api.callcore.x402_payment import PaymentRejected
from shared.clock import iso
from shared.jobs import JobError, now_ms

log = structlog.get_logger("api.reconciler")

POLL_S = 1.0
STOP_RETRY_S = 0.5
BATCH = 16
RETRY_BASE_MS = 1000
RETRY_CAP_MS = 30_000
_error = msgspec.json.Encoder()


FAILED_STAGE, UNCONFIRMED = "failed", "unconfirmed"


def ending_error(stage: str, reason: str, payment_id: str) -> bytes:
    """The error of a call whose payment ended without a proof: only `failed` may say nothing was charged."""
    if stage == FAILED_STAGE:
        error = JobError(
            code="payment_failed",
            message=f"the x402 payment can never be settled ({reason}): nothing was charged; pay again to run it",
            retryable=True,
        )
    else:
        error = JobError(
            code="payment_unconfirmed",
            message=f"the x402 payment could not be confirmed ({reason}): the call did not run, and whether your "
            f"wallet was debited is not known; the operator checks payment {payment_id} on chain and, if it was "
            "paid, it becomes a credit for this call",
            retryable=False,
        )
    return _error.encode(error)


class Reconciler:
    def __init__(self, core: CallCore, gate: PaymentGate, settlements: SettlementStore, retention_ms: int) -> None:
        self.core = core
        self.gate = gate
        self.settlements = settlements
        self.retention_ms = retention_ms
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run_forever(), name="x402-reconciler")

    async def stop(self) -> None:
        """Stop the loop: cancelled until it ends (a client library may swallow one cancellation mid-call)."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=STOP_RETRY_S)
        with contextlib.suppress(asyncio.CancelledError):
            task.result()

    def stopping(self) -> bool:
        return self._stopping

    async def _run_forever(self) -> None:
        while not self.stopping():
            try:
                await self.run_once()
            except Exception as exc:  # noqa: BLE001 - Redis away, say: the intents wait, the next pass retries
                if self.stopping():  # a stop that a client library turned into an error
                    return
                log.warning("reconciler pass failed", error=type(exc).__name__, detail=str(exc)[:200])
            await asyncio.sleep(POLL_S)

    async def run_once(self) -> int:
        """One pass over the due intents, each leased just before it is looked at (a lease outlasts one bounded
        settle); returns how many it looked at."""
        lease_ms = self.gate.reconcile_after_ms
        for looked in range(BATCH):
            digests = await self.settlements.due(now_ms=now_ms(), lease_ms=lease_ms, limit=1)
            if not digests:
                return looked
            await self.resolve(digests[0])
        return BATCH

    async def resolve(self, digest: str) -> None:
        intent = await self.settlements.get(digest)
        if intent is None:  # expired: nothing is left to end
            await self.settlements.forget(digest)
            return
        if intent.stage == "paid" and intent.job_id:  # paid, but the process died before its job was queued
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
            if never_payable(exc.code):
                await self._end(intent, FAILED_STAGE, exc.code)
            else:
                await self._later(intent, exc.code)
            return
        except FacilitatorUnavailable as exc:
            await self._later(intent, "facilitator_unavailable" if not exc.sent else "no_answer")
            return
        record = await self.gate.payments.get(intent.payment_id)
        if record is None:
            return
        await self.gate.mark_paid(intent, record, settled.settlement)
        log.info("x402 settlement reconciled", payment_id=intent.payment_id, transaction=settled.settlement.transaction)
        if intent.job_id:
            await self._release(intent)

    async def _payer(self, intent: Intent) -> str:
        record = await self.gate.payments.get(intent.payment_id)
        return record.payer or "" if record is not None else ""

    async def _release(self, intent: Intent) -> None:
        job = await self.core.jobs.get(intent.job_id)
        record = await self.gate.payments.get(intent.payment_id)
        if job is None or record is None or job.status != SETTLING:
            return
        caller_key = record.client_id if record.client_id.startswith("key:") else ""
        await self.core.release(job, intent.digest, caller_key=caller_key)

    async def _later(self, intent: Intent, reason: str) -> None:
        if time.time() > intent.valid_before + self.gate.settings.x402.reconcile_grace_s:
            await self._end(intent, UNCONFIRMED, reason)
            return
        delay_ms = min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** min(intent.attempts, 10))
        await self.settlements.uncertain(
            intent, due_ms=now_ms() + delay_ms, now_iso=iso(now_ms()), reason=reason, retention_ms=self.retention_ms
        )

    async def _end(self, intent: Intent, stage: str, reason: str) -> None:
        ended = await self.settlements.failed(
            intent,
            stage=stage,
            now_ms=now_ms(),
            now_iso=iso(now_ms()),
            reason=reason,
            job_error=ending_error(stage, reason, intent.payment_id),
            retention_ms=self.retention_ms,
        )
        if ended and stage == UNCONFIRMED:
            log.error("x402 settlement unconfirmed: check the chain", payment_id=intent.payment_id, reason=reason)
        elif ended:
            log.warning("x402 settlement failed", payment_id=intent.payment_id, reason=reason)
