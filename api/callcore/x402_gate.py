"""x402 v2 for the API: the requirements a 402 offers, and settling a `PAYMENT-SIGNATURE` before the call runs.

Built on the official `x402` SDK: its models and header codecs, `x402ResourceServer` (matching a payload to our
requirements, settling through the facilitator) and `HTTPFacilitatorClient`. What the SDK leaves to us:
- binding a payment to one service (and one bundle size): the requirements carry `extra.serviceId` and
  `extra.calls`, and the SDK's matcher compares `accepted.extra`, so a payment made for one service is refused
  by another of the same price;
- replays: the authorization nonce is claimed in Redis (SET NX) before settling, so concurrent copies of one
  signed payment settle (and run) once; a failed settlement releases the claim;
- v1 payloads (`x402Version: 1`) are refused with a clear error instead of the SDK's server crash.
Settlement is `settle_first` (the SDK's "upfront" flow): the money moves, then the call runs, and a call that
then fails through no fault of the payer is given back (see shared/payments.py).
"""

from __future__ import annotations

import asyncio
import binascii
import json
import re
import time
from dataclasses import dataclass

import pydantic
import structlog
from x402 import x402ResourceServer
from x402.http import FacilitatorConfig, HTTPFacilitatorClient
from x402.http.utils import decode_payment_signature_header, encode_payment_required_header
from x402.http.utils import encode_payment_response_header as encode_settle_header
from x402.mechanisms.evm.exact import ExactEvmServerScheme
from x402.schemas import PaymentPayload, PaymentRequired, PaymentRequirements, ResourceInfo, SettleResponse

from shared.config import Settings
from shared.keys import x402_nonce_key
from shared.models import Service
from shared.payments import PaymentStore, Settlement, atomic_amount, price_cents

log = structlog.get_logger("api.x402")

FACILITATOR_TIMEOUT_S = 15.0
MAX_CACHED_HEADERS = 4096
MAX_HEADER_CHARS = 16_384
NONCE_CLAIM_MARGIN_S = 60
AUTH_FIELDS = ("from", "to", "value", "validAfter", "validBefore", "nonce")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_NONCE = re.compile(r"0x[0-9a-fA-F]{64}")


class PaymentRejected(Exception):
    """The offered payment cannot pay for this call; `code` is machine-readable, the message says why."""

    def __init__(self, code: str, message: str, *, nonce_key: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.nonce_key = nonce_key  # set for a replay: the claim may name the payment it already bought


class FacilitatorUnavailable(Exception):
    """The facilitator could not be reached or answered garbage; nothing was charged."""


@dataclass(frozen=True)
class Settled:
    settlement: Settlement
    response_header: str  # PAYMENT-RESPONSE
    nonce_key: str  # the claim, to be pointed at the payment the settlement paid for


class X402Gate:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._facilitator = HTTPFacilitatorClient(
            FacilitatorConfig(url=settings.facilitator_url, timeout=FACILITATOR_TIMEOUT_S)
        )
        self._server = x402ResourceServer(self._facilitator)
        self._server.register(settings.x402_network, ExactEvmServerScheme())  # type: ignore[no-untyped-call,arg-type]
        self._ready = False
        self._init_lock = asyncio.Lock()
        # PAYMENT-REQUIRED headers already encoded: the same for every 402 of a (service, calls, url, error), and a
        # sixth of a 402's CPU to build (pydantic models, JSON, base64). Bounded: cleared when full.
        self._headers: dict[tuple[str, int, int, str, str], str] = {}

    def requirements(self, service: Service, calls: int) -> PaymentRequirements:
        settings = self.settings
        amount = atomic_amount(price_cents(service, calls), settings.x402_asset_decimals)
        return PaymentRequirements(
            scheme="exact",
            network=settings.x402_network,
            asset=settings.x402_asset,
            amount=str(amount),
            pay_to=settings.x402_pay_to,
            max_timeout_seconds=settings.x402_timeout_s,
            extra={
                "name": settings.x402_asset_name,
                "version": settings.x402_asset_version,
                "paymentFlow": "upfront",
                "serviceId": service.id,
                "calls": calls,
            },
        )

    def payment_required_header(self, service: Service, calls: int, resource_url: str, error: str) -> str:
        key = (service.id, service.pricing.amount_cents, calls, resource_url, error)
        header = self._headers.get(key)
        if header is None:
            required = PaymentRequired(
                error=error,
                resource=ResourceInfo(url=resource_url, description=service.name[:200], mime_type="application/json"),
                accepts=[self.requirements(service, calls)],
            )
            header = encode_payment_required_header(required)
            if len(self._headers) >= MAX_CACHED_HEADERS:
                self._headers.clear()
            self._headers[key] = header
        return header

    async def settle(self, header: str, service: Service, calls: int, store: PaymentStore) -> Settled:
        payload = _decode(header)
        wanted = self.requirements(service, calls)
        if self._server.find_matching_requirements([wanted], payload) is None:
            raise PaymentRejected(
                "payment_mismatch",
                f"the payment does not match what {service.id} asks for ({calls} call(s)): check amount, asset, "
                "network, payTo and extra.serviceId against the PAYMENT-REQUIRED header",
            )
        payer, nonce, valid_before = _authorization(payload)
        ttl_s = min(valid_before - int(time.time()), 7 * 86_400) + NONCE_CLAIM_MARGIN_S
        if ttl_s <= NONCE_CLAIM_MARGIN_S:
            raise PaymentRejected("payment_expired", "the payment authorization has expired (validBefore passed)")
        nonce_key = x402_nonce_key(self.settings.x402_network, payer, nonce)
        if not await store.claim_nonce(nonce_key, ttl_s):
            raise PaymentRejected(
                "payment_replayed", "this payment authorization was already used", nonce_key=nonce_key
            )
        try:
            result = await self._settle(payload, wanted)
        except BaseException:
            await store.release_nonce(nonce_key)
            raise
        if not result.success:
            await store.release_nonce(nonce_key)
            reason = result.error_reason or "settlement_failed"
            raise PaymentRejected(reason, f"the facilitator refused the payment: {result.error_message or reason}")
        settlement = Settlement(
            payer=result.payer or payer,
            transaction=result.transaction or "",
            network=result.network or self.settings.x402_network,
        )
        log.info("x402 settled", payer=settlement.payer, transaction=settlement.transaction, service_id=service.id)
        return Settled(settlement=settlement, response_header=encode_settle_header(result), nonce_key=nonce_key)

    def nonce_key_of(self, header: str) -> str | None:
        """The claim key of a signed payment, without checking it (None when it is not one)."""
        try:
            payer, nonce, _ = _authorization(_decode(header))
        except PaymentRejected:
            return None
        return x402_nonce_key(self.settings.x402_network, payer, nonce)

    async def aclose(self) -> None:
        await self._facilitator.aclose()

    async def _settle(self, payload: PaymentPayload, requirements: PaymentRequirements) -> SettleResponse:
        await self._ensure_ready()
        try:
            return await self._server.settle_payment(payload, requirements, phase="before-handler")
        except (OSError, ValueError, RuntimeError) as exc:  # httpx errors are OSError-like; bad answers ValueError
            log.warning("x402 facilitator failed", error=type(exc).__name__, detail=str(exc)[:200])
            raise FacilitatorUnavailable(str(exc)) from exc
        except Exception as exc:
            if type(exc).__module__.startswith("httpx"):
                log.warning("x402 facilitator unreachable", error=type(exc).__name__)
                raise FacilitatorUnavailable(str(exc)) from exc
            raise

    async def _ensure_ready(self) -> None:
        """`initialize()` fetches `/supported` with a blocking client: once, in a thread, retried until it works."""
        if self._ready:
            return
        async with self._init_lock:
            try:
                await asyncio.to_thread(self._server.initialize)
            except Exception as exc:
                log.warning("x402 facilitator not ready", error=type(exc).__name__, detail=str(exc)[:200])
                raise FacilitatorUnavailable("the payment facilitator is not reachable") from exc
            self._ready = True


def _decode(header: str) -> PaymentPayload:
    if len(header) > MAX_HEADER_CHARS:
        raise PaymentRejected("payment_malformed", "the payment header is too large")
    try:
        payload = decode_payment_signature_header(header.strip())
    except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError, pydantic.ValidationError, ValueError):
        raise PaymentRejected(
            "payment_malformed", "PAYMENT-SIGNATURE must be a base64-encoded x402 v2 PaymentPayload"
        ) from None
    except AttributeError:  # JSON that is not an object
        raise PaymentRejected("payment_malformed", "PAYMENT-SIGNATURE must encode a JSON object") from None
    if not isinstance(payload, PaymentPayload) or payload.x402_version != 2:
        raise PaymentRejected("unsupported_x402_version", "only x402 version 2 payments are accepted")
    return payload


def _authorization(payload: PaymentPayload) -> tuple[str, str, int]:
    """(payer, nonce, validBefore) of an EIP-3009 authorization whose fields have the right form, so a malformed
    payment is refused here (402) instead of by the facilitator's parser (which would look like an outage)."""
    authorization = payload.payload.get("authorization") if isinstance(payload.payload, dict) else None
    if not isinstance(authorization, dict) or not all(isinstance(authorization.get(k), str) for k in AUTH_FIELDS):
        raise PaymentRejected(
            "payment_malformed", "the payment has no EIP-3009 authorization (" + ", ".join(AUTH_FIELDS) + ")"
        )
    payer, recipient, nonce = authorization["from"], authorization["to"], authorization["nonce"]
    if not (_ADDRESS.fullmatch(payer) and _ADDRESS.fullmatch(recipient) and _NONCE.fullmatch(nonce)):
        raise PaymentRejected("payment_malformed", "from and to must be 20-byte and nonce 32-byte 0x-prefixed hex")
    numbers = [authorization[k] for k in ("value", "validAfter", "validBefore")]
    if not all(n.isdigit() and len(n) <= 78 for n in numbers):
        raise PaymentRejected("payment_malformed", "value, validAfter and validBefore must be decimal integers")
    return payer, nonce, int(authorization["validBefore"])
