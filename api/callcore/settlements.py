"""Settlement intents: an x402 payment is recorded before it is settled, so no answer the facilitator loses can
lose the money.

    begin (claim the nonce + record the intent, one script) --/settle--> paid       (the payment is `paid`)
                                                            \\--------> abandoned  (refused: nothing moved, all
                                                             \\                     of it deleted, 402)
                                                              \\-------> uncertain  (timeout, dropped, 5xx, killed:
                                                                                   the payment stays `settling`)
    uncertain --reconciler re-settles the same payload--> paid | failed (not proven paid: nothing to the payer)

An intent is a hash keyed by the payload's digest holding the whole signed payload and the requirements it was
checked against; its payment hash (status `settling`) and, for an inline call, its job (status `settling`)
are written in the same step. The reconciler (api/callcore/reconciler.py) takes due intents from a zset with a
lease, so one process at a time asks the facilitator again; every ending script checks the intent is still
`settling`, so each intent ends exactly once.

s402:x402:intent:{digest}  hash  digest, kind, paymentId, jobId, nonceKey, payload, requirements, validBefore,
                                 stage (settling | paid | done | failed | unconfirmed), attempts, createdAt,
                                 lastError
s402:x402:settling         zset  digests of intents not ended, by when the reconciler should look (ms)
s402:x402:pid:{sha256}     string the digest an x402 payment-identifier names, per payer (as long as the claim)
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import msgspec
from redis.asyncio import Redis

from shared import keys
from shared.keys import LEDGER_LUA, PREFIX, SETTLING_DUE, STATE_LUA

INTENT_PREFIX = f"{PREFIX}:x402:intent:"
IDENTIFIER_PREFIX = f"{PREFIX}:x402:pid:"
SETTLING = "settling"


def intent_key(digest: str) -> str:
    return INTENT_PREFIX + digest


def identifier_key(identifier: str, payer: str) -> str:
    """An x402 payment-identifier's key, scoped by its payer (EIP-55): one client's ids never collide with
    another's, and a 409 tells nothing of anyone else's payments."""
    return IDENTIFIER_PREFIX + hashlib.sha256(f"{payer}|{identifier}".encode()).hexdigest()


class Intent(msgspec.Struct, frozen=True, kw_only=True):
    """The hash as stored."""

    digest: str
    kind: str  # 'inline' | 'purchase'
    paymentId: str
    jobId: str = ""
    nonceKey: str
    payer: str = ""  # EIP-55, as verified
    payload: str  # the PaymentPayload, JSON
    requirements: str  # the PaymentRequirements it was verified against, JSON
    validBefore: int
    stage: str
    attempts: int = 0
    createdAt: int
    lastError: str = ""


# A job that waited `settling` for a payment that will not pay: it fails (kept for the retention time, its
# webhook told job.failed, its waiters woken). Prepended to the ending scripts that need it.
FAIL_SETTLING_JOB = (
    STATE_LUA
    + """
local function fail_settling_job(job, now, err, retention, channel)
  if job == '' or redis.call('HGET', job, 'status') ~= 'settling' then return end
  redis.call('HSET', job, 'status', 'failed', 'finishedAt', now, 'error', err)
  redis.call('PEXPIRE', job, retention)
  job_moved(job, 'settling', 'failed', now, channel, retention)
  redis.call('PUBLISH', channel, redis.call('HGET', job, 'id'))
end
"""
)

# Claim the authorization and record the intent, its payment and its job (if any) in one step.
# KEYS: nonce, intent, due zset, payment, job or "", idempotency key or ""
# ARGV: holder value, claim ttl s, due ms, keep ms, idempotency value, intent pair count, payment pair count,
# then the intent's, the payment's and the job's field/value pairs.   Returns "" when claimed, else the holder.
BEGIN = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return redis.call('GET', KEYS[1]) or '' end
local ni, np = tonumber(ARGV[6]), tonumber(ARGV[7])
local first = 8
redis.call('HSET', KEYS[2], unpack(ARGV, first, first + 2 * ni - 1))
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[3], redis.call('HGET', KEYS[2], 'digest'))
first = first + 2 * ni
redis.call('HSET', KEYS[4], unpack(ARGV, first, first + 2 * np - 1))
redis.call('PEXPIRE', KEYS[4], ARGV[4])
first = first + 2 * np
if KEYS[5] ~= '' then
  redis.call('HSET', KEYS[5], unpack(ARGV, first))
  redis.call('PEXPIRE', KEYS[5], ARGV[4])
end
if KEYS[6] ~= '' then redis.call('SET', KEYS[6], ARGV[5], 'NX', 'PX', ARGV[4]) end
return ''
"""

# The facilitator proved the payment: settling (or unconfirmed: a proof may come late) -> paid (ledger: created,
# settled). A purchase is done; an inline intent stays due until ENQUEUE_JOB releases its job (so a process that
# dies in between leaves it to the reconciler). The nonce claim is rewritten only while it is still this intent's.
# KEYS: intent, due zset, nonce, payment, expiry zset, ledger   ARGV: digest, nonce value, ISO now, payment ttl ms,
# expires ms, release due ms, then the payment's new field/value pairs.   Returns the stage found.
PAID = (
    LEDGER_LUA
    + """
local stage = redis.call('HGET', KEYS[1], 'stage')
if stage ~= 'settling' and stage ~= 'unconfirmed' then return stage or 'missing' end
local holder = redis.call('GET', KEYS[3])
if holder == 'settling ' .. ARGV[1] or holder == 'unconfirmed ' .. ARGV[1] then
  redis.call('SET', KEYS[3], ARGV[2], 'XX', 'KEEPTTL')
end
if redis.call('HGET', KEYS[1], 'kind') == 'purchase' or stage == 'unconfirmed' then
  redis.call('HSET', KEYS[1], 'stage', 'done')  -- an unconfirmed call's job has failed: the call stays a credit
  redis.call('ZREM', KEYS[2], ARGV[1])
else
  redis.call('HSET', KEYS[1], 'stage', 'paid')
  redis.call('ZADD', KEYS[2], ARGV[6], ARGV[1])
end
redis.call('HSET', KEYS[4], unpack(ARGV, 7))
redis.call('PEXPIRE', KEYS[4], ARGV[4])
redis.call('ZADD', KEYS[5], ARGV[5], redis.call('HGET', KEYS[4], 'paymentId'))
local calls = tonumber(redis.call('HGET', KEYS[4], 'maxCalls'))
ledger(KEYS[6], 'created', ARGV[3], KEYS[4], calls, {})
ledger(KEYS[6], 'settled', ARGV[3], KEYS[4], calls, {})
return stage
"""
)

# The facilitator refused at once (nothing moved): what begin wrote goes (the nonce may be used again, the
# payment-identifier names nothing); a job a repeat may have been shown fails, nothing charged (job.failed).
# KEYS: intent, due zset, nonce, payment, job or "", idempotency key or "", identifier key or ""
# ARGV: digest, holder, idempotency value, now ms, job error JSON, retention ms, channel
ABANDON = (
    LEDGER_LUA
    + FAIL_SETTLING_JOB
    + """
if redis.call('HGET', KEYS[1], 'stage') ~= 'settling' then return 0 end
redis.call('DEL', KEYS[1], KEYS[4])
redis.call('ZREM', KEYS[2], ARGV[1])
if redis.call('GET', KEYS[3]) == ARGV[2] then redis.call('DEL', KEYS[3]) end
fail_settling_job(KEYS[5], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
if KEYS[6] ~= '' and redis.call('GET', KEYS[6]) == ARGV[3] then redis.call('DEL', KEYS[6]) end
if KEYS[7] ~= '' and redis.call('GET', KEYS[7]) == ARGV[1] then redis.call('DEL', KEYS[7]) end
return 1
"""
)

# The answer did not say whether money moved: the intent stays settling, the reconciler looks at `due`, and the
# ledger (and an inline call's webhook: job.settling) says so once. (Were a reconciler holding it now, a second
# settle of the payload may go out: a caching facilitator answers it with the first result, any other's refusal
# proves nothing; the intent still ends once.)
# KEYS: intent, due zset, payment, ledger, job or ""   ARGV: digest, due ms, ISO now, reason, now ms, retention ms
UNCERTAIN = (
    LEDGER_LUA
    + STATE_LUA
    + """
if redis.call('HGET', KEYS[1], 'stage') ~= 'settling' then return 0 end
redis.call('ZADD', KEYS[2], 'XX', ARGV[2], ARGV[1])
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'lastError', ARGV[4])
if tonumber(redis.call('HGET', KEYS[1], 'attempts')) == 1 then
  local calls = tonumber(redis.call('HGET', KEYS[3], 'maxCalls'))
  ledger(KEYS[4], 'settling', ARGV[3], KEYS[3], calls, {'reason', ARGV[4]})
  if KEYS[5] ~= '' then webhook_event(KEYS[5], 'job.settling', ARGV[5], ARGV[6]) end
end
return 1
"""
)

# The reconciler ends an intent without a proof: `failed` (the payload can never pay: nothing was taken) or
# `unconfirmed` (no answer proved it either way before the authorization lapsed: the payer may have been
# debited; the operator resolves it, and a late proof still turns it paid). Its job fails; a repeat is refused.
# KEYS: intent, due zset, payment, ledger, nonce, job or ""
# ARGV: digest, ISO now, reason, now ms, job error JSON, retention ms, channel, stage
FAILED = (
    LEDGER_LUA
    + FAIL_SETTLING_JOB
    + """
if redis.call('HGET', KEYS[1], 'stage') ~= 'settling' then return 0 end
redis.call('HSET', KEYS[1], 'stage', ARGV[8], 'lastError', ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[3], 'status', ARGV[8], 'failReason', ARGV[3])
if redis.call('GET', KEYS[5]) == 'settling ' .. ARGV[1] then
  redis.call('SET', KEYS[5], ARGV[8] .. ' ' .. ARGV[1], 'XX', 'KEEPTTL')
end
local calls = tonumber(redis.call('HGET', KEYS[3], 'maxCalls'))
ledger(KEYS[4], 'settle_' .. ARGV[8], ARGV[2], KEYS[3], calls, {'reason', ARGV[3]})
fail_settling_job(KEYS[6], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
return 1
"""
)

# An x402 payment-identifier names one payload: SET NX, else the digest it names.
# KEYS: identifier key   ARGV: digest, ttl s   Returns "" when it named none before, else the digest it names.
CLAIM_IDENTIFIER = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return '' end
return redis.call('GET', KEYS[1]) or ''
"""

# KEYS: identifier key   ARGV: digest   Deletes it while it names that digest.
RELEASE_IDENTIFIER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"""

# Take up to ARGV[3] due intents, each leased until now + lease (one process at a time looks at one).
# KEYS: due zset   ARGV: now ms, lease ms, limit   Returns the digests taken.
LEASE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, digest in ipairs(due) do redis.call('ZADD', KEYS[1], 'XX', tonumber(ARGV[1]) + tonumber(ARGV[2]), digest) end
return due
"""


def pairs(fields: dict[str, Any]) -> list[Any]:
    return [item for pair in fields.items() for item in pair if pair[1] is not None]


class SettlementStore:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._begin = redis.register_script(BEGIN)
        self._paid = redis.register_script(PAID)
        self._abandon = redis.register_script(ABANDON)
        self._uncertain = redis.register_script(UNCERTAIN)
        self._failed = redis.register_script(FAILED)
        self._lease = redis.register_script(LEASE)
        self._identify = redis.register_script(CLAIM_IDENTIFIER)
        self._release_identifier = redis.register_script(RELEASE_IDENTIFIER)

    async def claim_identifier(self, identifier: str, payer: str, digest: str, ttl_s: int) -> str:
        """Empty when `identifier` (of `payer`) names `digest` now, else the digest it named before."""
        named = await self._identify(keys=[identifier_key(identifier, payer)], args=[digest, max(ttl_s, 1)])
        text = named.decode() if isinstance(named, bytes) else str(named)
        return "" if text == digest else text

    async def begin(
        self,
        intent: Intent,
        *,
        claim_ttl_s: int,
        due_ms: int,
        keep_ms: int,
        payment: dict[str, Any],
        job: dict[str, Any] | None = None,
        idempotency: tuple[str, str] | None = None,
    ) -> str:
        """Claim the nonce and record everything; "" when claimed, else the value holding the claim."""
        intent_pairs = pairs(msgspec.structs.asdict(intent))
        payment_pairs = pairs(payment)
        idem_key, idem_value = idempotency or ("", "")
        held = await self._begin(
            keys=[intent.nonceKey, intent_key(intent.digest), SETTLING_DUE, keys.payment_key(intent.paymentId),
                  keys.job_key(intent.jobId) if job is not None else "", idem_key],
            args=[f"{SETTLING} {intent.digest}", claim_ttl_s, due_ms, keep_ms, idem_value,
                  len(intent_pairs) // 2, len(payment_pairs) // 2, *intent_pairs, *payment_pairs,
                  *(pairs(job) if job is not None else [])],
        )  # fmt: skip
        return held.decode() if isinstance(held, bytes) else str(held)

    async def paid(
        self,
        intent: Intent,
        *,
        now_iso: str,
        payment_ttl_ms: int,
        expires_ms: int,
        release_due_ms: int,
        fields: dict[str, Any],
    ) -> str:
        """settling | unconfirmed -> paid; returns the stage found (another means another process ended it)."""
        found = await self._paid(
            keys=[intent_key(intent.digest), SETTLING_DUE, intent.nonceKey, keys.payment_key(intent.paymentId),
                  keys.PAYMENT_EXPIRY, keys.LEDGER],
            args=[intent.digest, f"{intent.paymentId} {intent.digest}", now_iso, payment_ttl_ms, expires_ms,
                  release_due_ms, *pairs(fields)],
        )  # fmt: skip
        return found.decode() if isinstance(found, bytes) else str(found)

    async def abandon(
        self,
        intent: Intent,
        idempotency: tuple[str, str] | None,
        *,
        identifier: str | None,
        now_ms: int,
        job_error: bytes,
        retention_ms: int,
    ) -> bool:
        """Undo a refused intent; False when it had already ended (a reconciler got there first)."""
        idem_key, idem_value = idempotency or ("", "")
        undone = await self._abandon(
            keys=[intent_key(intent.digest), SETTLING_DUE, intent.nonceKey, keys.payment_key(intent.paymentId),
                  keys.job_key(intent.jobId) if intent.jobId else "", idem_key,
                  identifier_key(identifier, intent.payer) if identifier else ""],
            args=[intent.digest, f"{SETTLING} {intent.digest}", idem_value, now_ms, job_error, retention_ms,
                  keys.JOBS_DONE_CHANNEL],
        )  # fmt: skip
        return bool(undone)

    async def release_identifier(self, identifier: str, intent: Intent) -> None:
        """An identifier claimed for a payload that recorded nothing (its nonce was another's) names nothing."""
        await self._release_identifier(keys=[identifier_key(identifier, intent.payer)], args=[intent.digest])

    async def uncertain(
        self, intent: Intent, *, due_ms: int, now_iso: str, reason: str, retention_ms: int = 86_400_000
    ) -> None:
        await self._uncertain(
            keys=[intent_key(intent.digest), SETTLING_DUE, keys.payment_key(intent.paymentId), keys.LEDGER,
                  keys.job_key(intent.jobId) if intent.jobId else ""],
            args=[intent.digest, due_ms, now_iso, reason[:200], int(time.time() * 1000), retention_ms],
        )  # fmt: skip

    async def failed(
        self,
        intent: Intent,
        *,
        stage: str,
        now_ms: int,
        now_iso: str,
        reason: str,
        job_error: bytes,
        retention_ms: int,
    ) -> bool:
        """settling -> failed | unconfirmed (see FAILED); False when it had already ended."""
        ended = await self._failed(
            keys=[intent_key(intent.digest), SETTLING_DUE, keys.payment_key(intent.paymentId), keys.LEDGER,
                  intent.nonceKey, keys.job_key(intent.jobId) if intent.jobId else ""],
            args=[intent.digest, now_iso, reason[:200], now_ms, job_error, retention_ms, keys.JOBS_DONE_CHANNEL,
                  stage],
        )  # fmt: skip
        return bool(ended)

    async def forget(self, digest: str) -> None:
        """A due entry whose intent is gone (expired): nothing is left to end."""
        await self.redis.zrem(SETTLING_DUE, digest)

    async def due(self, *, now_ms: int, lease_ms: int, limit: int) -> list[str]:
        taken: list[bytes] = await self._lease(keys=[SETTLING_DUE], args=[now_ms, lease_ms, limit])
        return [digest.decode() for digest in taken]

    async def get(self, digest: str) -> Intent | None:
        raw: dict[bytes, bytes] = await self.redis.hgetall(intent_key(digest))  # type: ignore[misc]
        if not raw:
            return None
        return msgspec.convert({k.decode(): v.decode() for k, v in raw.items()}, Intent, strict=False)
