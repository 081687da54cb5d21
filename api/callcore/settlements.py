"""Settlement intents: an x402 payment is recorded before it is settled, so no answer the facilitator loses can
lose the money.

The intent's paths (begin, paid, abandoned, uncertain, then the reconciler), why each ends exactly once, and the
keys: docs/architecture.md, "Paying" and "Redis".
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import msgspec
from redis.asyncio import Redis

from shared import keys
from shared.keys import PREFIX, SCRIPTS, SETTLING_DUE, registered
from shared.lua import pack

INTENT_PREFIX = f"{PREFIX}:x402:intent:"
IDENTIFIER_PREFIX = f"{PREFIX}:x402:pid:"
SETTLING = "settling"


def intent_key(digest: str) -> str:
    return INTENT_PREFIX + digest


def identifier_key(identifier: str, payer: str) -> str:
    """An x402 payment-identifier's key, scoped by its payer (EIP-55): one client's ids never collide with
    another's, and a 409 tells nothing of anyone else's payments."""
    return IDENTIFIER_PREFIX + hashlib.sha256(f"{payer}|{identifier}".encode()).hexdigest()


class Intent(msgspec.Struct, rename="camel", frozen=True, kw_only=True):
    """The hash as stored: its field names are the attributes' in camelCase (`rename`)."""

    digest: str
    kind: str  # 'inline' | 'purchase'
    payment_id: str
    job_id: str = ""
    nonce_key: str
    payer: str = ""  # EIP-55, as verified
    payload: str  # the PaymentPayload, JSON
    requirements: str  # the PaymentRequirements it was verified against, JSON
    valid_before: int
    stage: str
    attempts: int = 0
    created_at: int
    last_error: str = ""


# The scripts that move intents, each in shared/lua/<file>.lua (its KEYS and ARGV at its top).
BEGIN = SCRIPTS["settlement_begin"]  # claim the nonce, record the intent, its payment and its job
PAID = SCRIPTS["settlement_paid"]  # settling | unconfirmed -> paid
ABANDON = SCRIPTS["settlement_abandon"]  # refused at once: what BEGIN wrote goes
UNCERTAIN = SCRIPTS["settlement_uncertain"]  # no answer either way: stays settling, due for the reconciler
FAILED = SCRIPTS["settlement_failed"]  # the reconciler ends it: failed | unconfirmed
LEASE = SCRIPTS["settlement_lease"]  # the reconciler takes due intents
CLAIM_IDENTIFIER = SCRIPTS["identifier_claim"]
RELEASE_IDENTIFIER = SCRIPTS["identifier_release"]


def pairs(fields: dict[str, Any]) -> list[Any]:
    return [item for pair in fields.items() for item in pair if pair[1] is not None]


class SettlementStore:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._begin = registered(redis, BEGIN)
        self._paid = registered(redis, PAID)
        self._abandon = registered(redis, ABANDON)
        self._uncertain = registered(redis, UNCERTAIN)
        self._failed = registered(redis, FAILED)
        self._lease = registered(redis, LEASE)
        self._identify = registered(redis, CLAIM_IDENTIFIER)
        self._release_identifier = registered(redis, RELEASE_IDENTIFIER)

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
        idem_key, idem_value = idempotency or ("", "")
        held = await self._begin(
            keys=[intent.nonce_key, intent_key(intent.digest), SETTLING_DUE, keys.payment_key(intent.payment_id),
                  keys.job_key(intent.job_id) if job is not None else "", idem_key],
            args=[pack(holder=f"{SETTLING} {intent.digest}", claim_ttl=claim_ttl_s, due=due_ms, keep=keep_ms,
                       idempotency=idem_value, intent=pairs(msgspec.to_builtins(intent)), payment=pairs(payment),
                       job=pairs(job) if job is not None else [])],
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
            keys=[intent_key(intent.digest), SETTLING_DUE, intent.nonce_key, keys.payment_key(intent.payment_id),
                  keys.PAYMENT_EXPIRY, keys.LEDGER],
            args=[pack(digest=intent.digest, holder=f"{intent.payment_id} {intent.digest}", at=now_iso,
                       payment_ttl=payment_ttl_ms, expires=expires_ms, release_due=release_due_ms,
                       fields=pairs(fields))],
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
            keys=[intent_key(intent.digest), SETTLING_DUE, intent.nonce_key, keys.payment_key(intent.payment_id),
                  keys.job_key(intent.job_id) if intent.job_id else "", idem_key,
                  identifier_key(identifier, intent.payer) if identifier else ""],
            args=[pack(digest=intent.digest, holder=f"{SETTLING} {intent.digest}", idempotency=idem_value,
                       now=now_ms, error=job_error, retention=retention_ms, channel=keys.JOBS_DONE_CHANNEL)],
        )  # fmt: skip
        return bool(undone)

    async def release_identifier(self, identifier: str, intent: Intent) -> None:
        """An identifier claimed for a payload that recorded nothing (its nonce was another's) names nothing."""
        await self._release_identifier(keys=[identifier_key(identifier, intent.payer)], args=[intent.digest])

    async def uncertain(
        self, intent: Intent, *, due_ms: int, now_iso: str, reason: str, retention_ms: int = 86_400_000
    ) -> None:
        await self._uncertain(
            keys=[intent_key(intent.digest), SETTLING_DUE, keys.payment_key(intent.payment_id), keys.LEDGER,
                  keys.job_key(intent.job_id) if intent.job_id else ""],
            args=[pack(digest=intent.digest, due=due_ms, at=now_iso, reason=reason[:200],
                       now=int(time.time() * 1000), retention=retention_ms)],
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
            keys=[intent_key(intent.digest), SETTLING_DUE, keys.payment_key(intent.payment_id), keys.LEDGER,
                  intent.nonce_key, keys.job_key(intent.job_id) if intent.job_id else ""],
            args=[pack(digest=intent.digest, at=now_iso, reason=reason[:200], now=now_ms, error=job_error,
                       retention=retention_ms, channel=keys.JOBS_DONE_CHANNEL, stage=stage)],
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
