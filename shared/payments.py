"""Payments: what a caller bought, the token that spends it, and the store both the API and the workers use.

How calls are consumed and given back, why neither tokens nor unpaid offers are stored, and a payment's states:
docs/architecture.md, "Paying" and "State machines".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from typing import Any, Literal

import msgspec
from redis.asyncio import Redis

from shared import keys
from shared.clock import iso, utc_iso
from shared.config import PaymentSettings, X402Settings
from shared.jobs import now_ms
from shared.keys import registered
from shared.models import Service

PaymentStatus = Literal["pending", "settling", "paid", "failed", "unconfirmed", "expired"]
PaymentKind = Literal["offer", "purchase", "inline"]
TOKEN_PREFIX = "s402pt_"
PAYMENT_ID_PREFIX = "pay_"
MAX_CALLS_PER_PAYMENT = 10_000
# A payment's hash outlives its expiry by this much, so GET still says "expired" (and refunds still land).
KEEP_AFTER_EXPIRY_MS = 7 * 86_400_000
MAX_CACHED_OFFERS = 4096
SETTLING = "settling"


class PaymentRecord(msgspec.Struct, rename="camel", frozen=True, kw_only=True):
    """The hash as stored: its field names are the attributes' in camelCase (`rename`)."""

    payment_id: str
    service_id: str
    internal_service_id: str
    amount_cents: int
    amount_atomic: int
    currency: str
    billing_mode: str
    max_calls: int
    remaining_calls: int
    used_calls: int
    status: PaymentStatus
    kind: PaymentKind
    pay_to: str
    provider: str
    provider_id: str
    network: str
    asset: str
    client_id: str = ""
    created_at: int
    expires_at: int
    paid_at: int | None = None
    payer: str | None = None
    transaction: str | None = None
    bound_to: str = ""  # bindClient: the only client this payment pays for ("key:<id>" or an EIP-55 address)
    digest: str = ""  # sha256 of the signed x402 payload that paid (a repeat of it is recognised by this)
    idempotency_hash: str = ""  # sha256 of the purchase's Idempotency-Key: a repeat carrying it gets the token
    fail_reason: str = ""  # a `failed` or `unconfirmed` payment's: why it was not proven paid


class Payment(msgspec.Struct, rename="camel", frozen=True, kw_only=True):
    """A payment as clients see it: the seed's payment object (field names and order), then our additions."""

    payment_id: str
    service_id: str
    internal_service_id: str
    amount_cents: int
    currency: str
    billing_mode: str
    max_calls: int
    remaining_calls: int
    used_calls: int
    status: str
    token: str
    pay_to: str
    provider: str
    provider_id: str
    client_id: str
    expires_at: str | None
    paid_at: str | None
    network: str
    asset: str
    amount_atomic: str
    payer: str | None = None
    transaction: str | None = None
    bound_to: str | None = None


class PaymentStatusView(msgspec.Struct, rename="camel", frozen=True, kw_only=True):
    """A paid payment as anyone but its owner sees it: that it exists, for what, and its status."""

    payment_id: str
    service_id: str
    status: str


def new_payment_id() -> str:
    return PAYMENT_ID_PREFIX + secrets.token_urlsafe(18)


OFFER_PREFIX = PAYMENT_ID_PREFIX + "o."
MAX_PAYMENT_ID = 128


def offer_id(secret: str, service_id: str, calls: int, expires_s: int) -> str:
    """A pending payment's id that carries its own terms under an HMAC: unpaid requests store nothing."""
    terms = f"{service_id}.{calls}.{expires_s}"
    mac = hmac.new(secret.encode(), b"offer|" + terms.encode(), hashlib.sha256).digest()
    return OFFER_PREFIX + terms + "." + base64.urlsafe_b64encode(mac[:12]).decode()


def parse_offer_id(secret: str, payment_id: str) -> tuple[str, int, int] | None:
    """(service id, calls, expiry in seconds) of an offer id of ours, else None (checked in constant time)."""
    if len(payment_id) > MAX_PAYMENT_ID or not payment_id.isascii() or not payment_id.startswith(OFFER_PREFIX):
        return None
    service_id, _, rest = payment_id[len(OFFER_PREFIX) :].partition(".")
    calls, _, rest = rest.partition(".")
    expires_s, _, _ = rest.partition(".")
    if not (calls.isascii() and calls.isdigit() and expires_s.isascii() and expires_s.isdigit()):
        return None
    if not _same(offer_id(secret, service_id, int(calls), int(expires_s)), payment_id):
        return None
    return service_id, int(calls), int(expires_s)


def token_for(secret: str, payment_id: str) -> str:
    mac: bytes = hmac.new(secret.encode(), payment_id.encode(), hashlib.sha256).digest()
    return TOKEN_PREFIX + payment_id + "." + base64.urlsafe_b64encode(mac[:24]).decode()


def payment_id_of(secret: str, token: str) -> str | None:
    """The payment a token spends, or None when the token is not one of ours (checked in constant time)."""
    if len(token) > 200 or not token.isascii() or not token.startswith(TOKEN_PREFIX):
        return None
    payment_id, dot, _ = token[len(TOKEN_PREFIX) :].partition(".")
    if not dot or not payment_id.startswith(PAYMENT_ID_PREFIX):
        return None
    return payment_id if _same(token_for(secret, payment_id), token) else None


def _same(ours: str, theirs: str) -> bool:
    """Constant-time equality of our ASCII text and a caller's text of any characters."""
    return hmac.compare_digest(ours.encode(), theirs.encode("utf-8", "surrogateescape"))


def price_cents(service: Service, calls: int) -> int:
    """What `calls` calls cost: the operator's price buys `maxCalls` calls (1 unless configured), rounded up."""
    return -(-service.pricing.amount_cents * calls // max(service.pricing.max_calls, 1))


def atomic_amount(amount_cents: int, decimals: int) -> int:
    """USD cents in the token's smallest unit (USDC has 6 decimals: 20 cents = 200000)."""
    if decimals < 2:
        raise ValueError("the payment asset needs at least 2 decimals to price in cents")
    return amount_cents * int(10 ** (decimals - 2))


def payment_view(record: PaymentRecord, *, token: str) -> Payment:
    return Payment(
        payment_id=record.payment_id,
        service_id=record.service_id,
        internal_service_id=record.internal_service_id,
        amount_cents=record.amount_cents,
        currency=record.currency,
        billing_mode=record.billing_mode,
        max_calls=record.max_calls,
        remaining_calls=record.remaining_calls,
        used_calls=record.used_calls,
        status=record.status,
        token=token,
        pay_to=record.pay_to,
        provider=record.provider,
        provider_id=record.provider_id,
        client_id=record.client_id,
        expires_at=_iso_s(record.expires_at),
        paid_at=_iso_s(record.paid_at),
        network=record.network,
        asset=record.asset,
        amount_atomic=str(record.amount_atomic),
        payer=record.payer,
        transaction=record.transaction,
        bound_to=record.bound_to or None,
    )


def status_view(record: PaymentRecord) -> PaymentStatusView:
    return PaymentStatusView(payment_id=record.payment_id, service_id=record.service_id, status=record.status)


def _iso_s(ms: int | None) -> str | None:
    return utc_iso(ms) if ms is not None else None


class Settlement(msgspec.Struct, frozen=True, kw_only=True):
    """What the facilitator reported for a settled x402 payment."""

    payer: str
    transaction: str
    network: str


class NonceClaim(msgspec.Struct, frozen=True):
    """Who holds an authorization's claim: nobody before us (`ours`), a settlement of the same payload still
    running (`settling`) or done (`payment_id`), or another payload (`other`: a second signature over one nonce)."""

    ours: bool = False
    settling: bool = False
    payment_id: str = ""
    other: bool = False
    ended: bool = False  # it ended without a proof (failed or unconfirmed)

    @classmethod
    def parse(cls, value: str, digest: str) -> NonceClaim:
        if value == "":
            return cls(ours=True)
        holder, _, held_digest = value.partition(" ")
        if held_digest != digest:
            return cls(other=True)
        if holder in ("failed", "unconfirmed"):
            return cls(ended=True)
        return cls(settling=True) if holder == SETTLING else cls(payment_id=holder)


class PaymentStore:
    """Creates and reads payments. Consumption and refunds happen in the job scripts (shared/lua/lib/payment.lua)."""

    def __init__(self, redis: Redis, settings: PaymentSettings, x402: X402Settings) -> None:
        self.redis = redis
        self.settings = settings
        self.x402 = x402
        self._offers: dict[tuple[str, int, str], tuple[int, dict[str, Any]]] = {}  # this second's (`offer`)
        self._create = registered(redis, keys.CREATE_PAYMENT)
        self._expire = registered(redis, keys.EXPIRE_PAYMENTS)

    def new_record(
        self,
        service: Service,
        *,
        calls: int,
        kind: PaymentKind,
        client_id: str = "",
        payment_id: str | None = None,
        settlement: Settlement | None = None,
        bound_to: str = "",
        digest: str = "",
        idempotency_hash: str = "",
    ) -> PaymentRecord:
        now = now_ms()
        paid = settlement is not None
        ttl_s = self.settings.pending_payment_ttl_s
        if paid:
            ttl_s = self.settings.credit_ttl_s if kind == "inline" else self.settings.token_ttl_s
        cents = price_cents(service, calls)
        return PaymentRecord(
            payment_id=payment_id or new_payment_id(),
            service_id=service.id,
            internal_service_id=service.internal_service_id,
            amount_cents=cents,
            amount_atomic=atomic_amount(cents, self.x402.asset_decimals),
            currency=service.pricing.currency,
            billing_mode=service.pricing.billing_mode,
            max_calls=calls,
            remaining_calls=calls,
            used_calls=0,
            status="paid" if paid else "pending",
            kind=kind,
            pay_to=self.x402.pay_to,
            provider=service.payment.provider,
            provider_id=service.payment.provider_id,
            network=self.x402.network,
            asset=self.x402.asset,
            client_id=client_id,
            created_at=now,
            expires_at=now + ttl_s * 1000,
            paid_at=now if paid else None,
            payer=settlement.payer if settlement else None,
            transaction=settlement.transaction if settlement else None,
            bound_to=bound_to,
            digest=digest,
            idempotency_hash=idempotency_hash,
        )

    def offer(self, service: Service, *, calls: int, client_id: str = "") -> dict[str, Any]:
        """The pending payment a 402 offers, as its JSON body. Not stored: its id carries its terms (see
        `offer_id`). The same for every 402 of one second (service, calls, client): built once a second and kept
        (a small, bounded cache; the body is shared, never changed)."""
        expires_s = now_ms() // 1000 + self.settings.pending_payment_ttl_s
        key = (service.id, calls, client_id)
        cached = self._offers.get(key)
        if cached is not None and cached[0] == expires_s:
            return cached[1]
        payment_id = offer_id(self.settings.token_secret, service.id, calls, expires_s)
        record = self.new_record(service, calls=calls, kind="offer", client_id=client_id, payment_id=payment_id)
        record = msgspec.structs.replace(record, expires_at=expires_s * 1000)
        body: dict[str, Any] = msgspec.to_builtins(payment_view(record, token=""))
        if len(self._offers) >= MAX_CACHED_OFFERS:
            self._offers.clear()
        self._offers[key] = (expires_s, body)
        return body

    def offer_for(self, payment_id: str, resolve: Callable[[str], Service | None]) -> PaymentRecord | None:
        """An offer rebuilt from its id (None when the id is not a genuine offer of a known service)."""
        terms = parse_offer_id(self.settings.token_secret, payment_id)
        service = resolve(terms[0]) if terms else None
        if terms is None or service is None:
            return None
        _, calls, expires_s = terms
        record = self.new_record(service, calls=calls, kind="offer", payment_id=payment_id)
        expires_ms = expires_s * 1000
        created_ms = expires_ms - self.settings.pending_payment_ttl_s * 1000
        status: PaymentStatus = "expired" if expires_ms <= now_ms() else "pending"
        return msgspec.structs.replace(record, expires_at=expires_ms, created_at=created_ms, status=status)

    async def save(self, record: PaymentRecord, *, events: str) -> bool:
        """Store a new paid payment; `events` ('created,settled') go to the ledger in the same script."""
        fields = {k: v for k, v in msgspec.to_builtins(record).items() if v is not None}
        flat: list[Any] = [item for pair in fields.items() for item in pair]
        ttl_ms = record.expires_at - now_ms() + KEEP_AFTER_EXPIRY_MS
        stored = await self._create(
            keys=[keys.payment_key(record.payment_id), keys.PAYMENT_EXPIRY, keys.LEDGER],
            args=[record.payment_id, record.expires_at, max(ttl_ms, 1000), events, iso(now_ms()), *flat],
        )
        return bool(stored)

    async def get(self, payment_id: str) -> PaymentRecord | None:
        if not payment_id.startswith(PAYMENT_ID_PREFIX) or len(payment_id) > MAX_PAYMENT_ID:
            return None
        raw: dict[bytes, bytes] = await self.redis.hgetall(keys.payment_key(payment_id))  # type: ignore[misc]
        if not raw:
            return None
        record = msgspec.convert({k.decode(): v.decode() for k, v in raw.items()}, PaymentRecord, strict=False)
        if record.status != "expired" and record.expires_at <= now_ms():
            return msgspec.structs.replace(record, status="expired")  # the sweep has not reached it yet
        return record

    async def expire_due(self, *, batch: int = 500) -> int:
        now = now_ms()
        swept = await self._expire(keys=[keys.PAYMENT_EXPIRY, keys.LEDGER], args=[now, iso(now), batch])
        return int(swept)
