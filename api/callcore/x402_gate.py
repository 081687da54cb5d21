"""x402 v2 for the call core: the requirements a 402 offers, checking a payment against them, settling it.

Built on the official `x402` SDK: its models and header codecs, `x402ResourceServer` (matching a payload to our
requirements, settling through the facilitator) and `HTTPFacilitatorClient`. What the SDK leaves to us:
- binding a payment to one service (and one bundle size): the requirements carry `extra.serviceId` and
  `extra.calls`, and the SDK's matcher compares `accepted.extra`, so a payment made for one service is refused
  by another of the same price;
- checking the signature and terms locally (`x402_payment.verify`) before anything is stored or sent: a forged
  payment costs a 402, never a facilitator call;
- v1 payloads (`x402Version: 1`) are refused with a clear error instead of the SDK's server crash.
Replays (one authorization nonce claimed once) are the payment gate's (api/callcore/gate.py). Settlement is
`settle_first` (the SDK's "upfront" flow): the money moves, then the call runs, and a call that then fails through
no fault of the payer is given back (see shared/payments.py).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import structlog
from eth_utils.address import to_checksum_address
from x402 import x402ResourceServer
from x402.extensions.bazaar import BAZAAR, OutputConfig, declare_discovery_extension
from x402.extensions.payment_identifier import PAYMENT_IDENTIFIER, declare_payment_identifier_extension
from x402.http import FacilitatorConfig, HTTPFacilitatorClient
from x402.http.facilitator_client_base import AuthHeaders
from x402.http.utils import encode_payment_required_header
from x402.mechanisms.evm.exact import ExactEvmServerScheme
from x402.schemas import PaymentPayload, PaymentRequired, PaymentRequirements, ResourceInfo, SettleResponse

from api.callcore.cdp_auth import CdpAuth
from api.callcore.x402_payment import PaymentRejected, VerifiedPayment, verify
from shared.config import X402Settings, facilitator_headers
from shared.keys import x402_nonce_key
from shared.models import Service
from shared.payments import Settlement, atomic_amount, price_cents

log = structlog.get_logger("api.x402")

# Facilitator refusals that come from checking the payment, before any transfer is sent: nothing can have moved.
# Any other reason (a failed or unexpected transaction) may follow a transfer, so it proves nothing either way.
CHECK_FAILURES = frozenset({"missing_eip712_domain", "network_mismatch", "unsupported_scheme", "invalid_network",
                            "insufficient_funds", "permit2_amount_mismatch"})  # fmt: skip
AFTER_TRANSFER = frozenset({"invalid_exact_evm_transfer_event_mismatch"})


# Refusals that hold whatever the chain's state: the payload itself can never pay us. Any other refusal on a
# second look (nonce used, authorization expired, simulation failed, no balance) may be the state the first,
# lost, settlement left behind: it proves nothing either way.
STATIC_REFUSALS = frozenset({
    "invalid_exact_evm_payload_signature", "invalid_exact_evm_failed_to_verify_signature",
    "invalid_exact_evm_payload_recipient_mismatch", "invalid_exact_evm_payload_authorization_value_mismatch",
    "invalid_exact_evm_token_name_mismatch", "invalid_exact_evm_token_version_mismatch", "missing_eip712_domain",
    "network_mismatch", "unsupported_scheme", "invalid_network",
})  # fmt: skip


def refused_before_transfer(reason: str) -> bool:
    """Whether a facilitator's refusal of a first /settle came from checking the payment, before any transfer."""
    return reason in CHECK_FAILURES or (reason.startswith("invalid_") and reason not in AFTER_TRANSFER)


def never_payable(reason: str) -> bool:
    """Whether a refusal proves, on a second look as on the first, that this payload never paid us."""
    return reason in STATIC_REFUSALS


MAX_CACHED_HEADERS = 4096
SETTLE_SLACK_S = 2.0  # beyond the HTTP timeout, for connecting and reading: a settle never takes longer
SETTLEMENT_PENDING = "settlement_pending"
TOOL_PATH = "/api/tools/"


class FacilitatorUnavailable(Exception):
    """The facilitator gave no answer that says what happened. `sent`: the request may have reached it (a timeout,
    a dropped connection, a 5xx, garbage), so the money may have moved; else it cannot have (no connection)."""

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


@dataclass(frozen=True)
class Settled:
    settlement: Settlement
    response: SettleResponse  # PAYMENT-RESPONSE (HTTP) or _meta["x402/payment-response"] (MCP)


def compact_schema(schema: Any) -> Any:
    """A JSON Schema without its descriptions: what a 402 header can carry (clients read about 8 KB of one)."""
    if isinstance(schema, dict):
        return {k: compact_schema(v) for k, v in schema.items() if k not in ("description", "examples", "title")}
    if isinstance(schema, list):
        return [compact_schema(item) for item in schema]
    return schema


def auth_for(x402: X402Settings) -> StaticAuth | CdpAuth:
    """The facilitator's credentials: a CDP API key's per-request JWT, else a static bearer and headers."""
    if x402.cdp_api_key_id:
        return CdpAuth(x402.cdp_api_key_id, str(x402.cdp_api_key_secret), x402.facilitator_url)
    return StaticAuth(x402)


class StaticAuth:
    """The operator's facilitator credentials (a bearer token, extra headers) on every facilitator request."""

    def __init__(self, x402: X402Settings) -> None:
        self._headers = facilitator_headers(x402)

    def get_auth_headers(self) -> AuthHeaders:
        return AuthHeaders(verify=self._headers, settle=self._headers, supported=self._headers, bazaar=self._headers)


class X402Gate:
    def __init__(self, settings: X402Settings) -> None:
        self.settings = settings
        self._facilitator = HTTPFacilitatorClient(
            FacilitatorConfig(
                url=settings.facilitator_url,
                timeout=settings.facilitator_timeout_s,
                auth_provider=auth_for(settings),
            )
        )
        self._server = x402ResourceServer(self._facilitator)
        self._server.register(settings.network, ExactEvmServerScheme())  # type: ignore[no-untyped-call,arg-type]
        # PAYMENT-REQUIRED headers already encoded: the same for every 402 of a (service, calls, url, error), and a
        # sixth of a 402's CPU to build (pydantic models, JSON, base64). Bounded: cleared when full.
        self._headers: dict[tuple[str, int, int, str, str], str] = {}
        # x402's idempotency extension: a client-chosen id per payment (required when the operator says so)
        self._identifier_declaration = declare_payment_identifier_extension(required=settings.require_payment_id)
        self._declared: dict[str, dict[str, Any]] = {}  # bazaar declarations, one per tool

    def _discovery(self, service: Service, resource_url: str) -> dict[str, Any]:
        """x402's bazaar discovery extension for a tool's endpoint: how to call it (POST, its JSON input schema and
        an example) and what it answers, so discovery services can list it. Not for other resources (purchases)."""
        if not urlsplit(resource_url).path.startswith(TOOL_PATH):
            return {}
        declared = self._declared.get(service.id)
        if declared is None:
            declared = declare_discovery_extension(
                input=dict(service.example_request or {}),
                input_schema=compact_schema(service.input_schema),
                body_type="json",
                output=OutputConfig(),
            )
            info = declared[BAZAAR.key]["info"]
            info["input"]["method"] = "POST"
            info["output"] = {"type": "json", "schema": compact_schema(service.output_schema)}
            self._declared[service.id] = declared
        return declared

    def requirements(self, service: Service, calls: int) -> PaymentRequirements:
        settings = self.settings
        amount = atomic_amount(price_cents(service, calls), settings.asset_decimals)
        return PaymentRequirements(
            scheme="exact",
            network=settings.network,
            asset=settings.asset,
            amount=str(amount),
            pay_to=settings.pay_to,
            max_timeout_seconds=settings.timeout_s,
            extra={
                "name": settings.asset_name,
                "version": settings.asset_version,
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
                extensions={PAYMENT_IDENTIFIER: self._identifier_declaration, **self._discovery(service, resource_url)},
            )
            header = encode_payment_required_header(required)
            if len(self._headers) >= MAX_CACHED_HEADERS:
                self._headers.clear()
            self._headers[key] = header
        return header

    def check(self, payload: PaymentPayload, service: Service, calls: int) -> VerifiedPayment:
        """The payment, verified locally against what we offer for `calls` calls of `service` (raises
        PaymentRejected): nothing is read, written or sent before this."""
        wanted = self.requirements(service, calls)
        if self._server.find_matching_requirements([wanted], payload) is None:
            raise PaymentRejected(
                "payment_mismatch",
                f"the payment does not match what {service.id} asks for ({calls} call(s)): check amount, asset, "
                "network, payTo and extra.serviceId against the PAYMENT-REQUIRED header",
            )
        return verify(payload, wanted, now=int(time.time()))

    async def settle(self, payment: VerifiedPayment) -> Settled:
        """Settle a verified payment (raises PaymentRejected when the facilitator refuses it,
        FacilitatorUnavailable when it cannot say)."""
        return await self.settle_payload(payment.payload, payment.requirements, payer=payment.payer)

    async def settle_payload(
        self, payload: PaymentPayload, requirements: PaymentRequirements, *, payer: str
    ) -> Settled:
        """Settle a payload checked before (the reconciler asks again with the one it recorded)."""
        result = await self._settle(payload, requirements)
        if result.success and not result.transaction:
            raise FacilitatorUnavailable("the facilitator said success without a transaction", sent=True)
        if not result.success and (result.transaction or result.error_reason == SETTLEMENT_PENDING):
            # a transaction was sent (pending, or failed after broadcast): what it did is for the reconciler
            raise FacilitatorUnavailable(f"settlement not final: {result.error_reason}", sent=True)
        if not result.success:
            reason = result.error_reason or "settlement_failed"
            message = f"the facilitator refused the payment: {result.error_message or reason}"
            raise PaymentRejected(reason, message, definite=refused_before_transfer(reason))
        settlement = Settlement(
            payer=to_checksum_address(result.payer) if result.payer else payer,
            transaction=result.transaction or "",
            network=result.network or self.settings.network,
        )
        log.info("x402 settled", payer=settlement.payer, transaction=settlement.transaction)
        return Settled(settlement=settlement, response=result)

    def nonce_key(self, payment: VerifiedPayment) -> str:
        return x402_nonce_key(self.settings.network, payment.payer, payment.nonce)

    async def aclose(self) -> None:
        await self._facilitator.aclose()

    async def _settle(self, payload: PaymentPayload, requirements: PaymentRequirements) -> SettleResponse:
        """One /settle, every answer seen (the SDK's server would send a second one after a pending answer and
        show only that), bounded as a whole: no answer in time is no answer."""
        try:
            async with asyncio.timeout(self.settings.facilitator_timeout_s + SETTLE_SLACK_S):
                return await self._facilitator.settle(payload, requirements)
        except TimeoutError as exc:
            log.warning("x402 facilitator gave no answer in time", sent=True)
            raise FacilitatorUnavailable("the facilitator did not answer in time", sent=True) from exc
        except Exception as exc:
            if not isinstance(exc, (OSError, ValueError, RuntimeError)) and not type(exc).__module__.startswith(
                "httpx"
            ):
                raise
            sent = not isinstance(exc, httpx.ConnectError)  # connected (or may have): the settle may have run
            log.warning("x402 facilitator gave no answer", error=type(exc).__name__, sent=sent, detail=str(exc)[:200])
            raise FacilitatorUnavailable(str(exc)[:200], sent=sent) from exc
