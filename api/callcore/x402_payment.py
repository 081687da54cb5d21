"""An x402 v2 payment, checked here before anything believes a field of it.

`decode_header` (HTTP `PAYMENT-SIGNATURE`) and `from_object` (MCP `_meta["x402/payment"]`) turn what a caller
sent into a `PaymentPayload`; `verify` then checks it against the requirements we offered, with no I/O:

1. the authorization has the EIP-3009 form (addresses, 32-byte nonce, decimal numbers);
2. `to` is our `payTo`, `value` is exactly the offered amount, `validAfter` has passed, `validBefore` is in the
   future but no further than the offer's `maxTimeoutSeconds` (plus clock skew);
3. the EIP-712 signature (`TransferWithAuthorization` under the asset's domain) recovers to `from`.

Only then is the payment named: its payer in EIP-55 form, and the digest of the whole signed payload (canonical
JSON), which is the only thing a repeat is recognised by. Signatures of smart-contract wallets (EIP-1271,
ERC-6492) cannot be checked without a chain and are refused (`payment_signature_unsupported`).
"""

from __future__ import annotations

import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

import msgspec
import pydantic
from eth_utils.address import to_checksum_address
from x402.extensions.payment_identifier import extract_and_validate_payment_identifier
from x402.http.utils import decode_payment_signature_header
from x402.mechanisms.evm.eip712 import hash_eip3009_authorization
from x402.mechanisms.evm.types import ExactEIP3009Authorization
from x402.mechanisms.evm.verify import verify_eoa_signature
from x402.schemas import PaymentPayload, PaymentRequirements

MAX_HEADER_CHARS = 16_384
CLOCK_SKEW_S = 60  # a validBefore this much past the offer's window is still the offer's (clocks differ)
MIN_VALIDITY_S = 6  # as the facilitator: a payment must stay valid for the time it takes to settle
AUTH_FIELDS = ("from", "to", "value", "validAfter", "validBefore", "nonce")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_NONCE = re.compile(r"0x[0-9a-fA-F]{64}")
_NUMBER = re.compile(r"[0-9]{1,78}")
_SIGNATURE = re.compile(r"0x[0-9a-fA-F]{130}")
_canonical = msgspec.json.Encoder(order="sorted")


class PaymentRejected(Exception):
    """The offered payment cannot pay for this call; `code` is machine-readable, the message says why.
    `definite`: the refusal says no money moved (checked before any transfer), as every local one does."""

    def __init__(self, code: str, message: str, *, definite: bool = True) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.definite = definite


@dataclass(frozen=True)
class VerifiedPayment:
    """A payload whose signature and terms were checked against `requirements`."""

    payload: PaymentPayload
    requirements: PaymentRequirements
    digest: str  # sha256 hex of the canonical JSON of the whole payload
    payer: str  # EIP-55
    nonce: str  # lowercase 0x-hex
    valid_before: int
    payment_identifier: str | None = None  # the x402 payment-identifier extension's id (client-chosen, secret)


def decode_header(header: str) -> PaymentPayload:
    """A `PAYMENT-SIGNATURE` header's payload (raises PaymentRejected for anything else)."""
    if len(header) > MAX_HEADER_CHARS or not header.isascii():
        raise PaymentRejected("payment_malformed", "PAYMENT-SIGNATURE must be base64 of at most 16 KiB")
    try:
        payload = decode_payment_signature_header(header.strip(" \t"))  # HTTP's padding only (api.ratelimits.OWS)
    except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError, pydantic.ValidationError, ValueError):
        raise PaymentRejected(
            "payment_malformed", "PAYMENT-SIGNATURE must be a base64-encoded x402 v2 PaymentPayload"
        ) from None
    except (AttributeError, TypeError):  # JSON that is not an object
        raise PaymentRejected("payment_malformed", "PAYMENT-SIGNATURE must encode a JSON object") from None
    return _version_2(payload)


def from_object(value: Any) -> PaymentPayload:
    """MCP's `_meta["x402/payment"]`: a PaymentPayload object (or its JSON text)."""
    try:
        if isinstance(value, str):
            if len(value) > MAX_HEADER_CHARS:
                raise ValueError("too large")
            value = json.loads(value)
        if not isinstance(value, dict):
            raise ValueError("not an object")
        payload = PaymentPayload.model_validate(value)
    except (ValueError, pydantic.ValidationError, RecursionError):
        raise PaymentRejected(
            "payment_malformed", "_meta['x402/payment'] must be an x402 v2 PaymentPayload object"
        ) from None
    return _version_2(payload)


def _version_2(payload: Any) -> PaymentPayload:
    if not isinstance(payload, PaymentPayload) or payload.x402_version != 2:
        raise PaymentRejected("unsupported_x402_version", "only x402 version 2 payments are accepted")
    return payload


def verify(payload: PaymentPayload, requirements: PaymentRequirements, *, now: int) -> VerifiedPayment:
    """The payment, checked as the module docstring says (raises PaymentRejected)."""
    authorization, signature = _authorization(payload)
    if authorization["to"].lower() != requirements.pay_to.lower():
        raise PaymentRejected("payment_recipient_mismatch", "the authorization does not pay our payTo address")
    if int(authorization["value"]) != int(requirements.amount):
        raise PaymentRejected("payment_amount_mismatch", f"the authorization must be for {requirements.amount}")
    _check_window(int(authorization["validAfter"]), int(authorization["validBefore"]), requirements, now)
    payer = to_checksum_address(authorization["from"])
    if not _signed_by(authorization, signature, requirements, payer):
        raise PaymentRejected("payment_signature_invalid", "the signature is not the payer's over this authorization")
    identifier, valid = extract_and_validate_payment_identifier(payload)
    if not valid.valid:
        raise PaymentRejected(
            "payment_identifier_invalid", "extensions.payment-identifier.info.id must be 16 to 128 of [A-Za-z0-9_-]"
        )
    return VerifiedPayment(
        payload=payload,
        requirements=requirements,
        digest=payload_digest(payload),
        payer=payer,
        nonce=authorization["nonce"].lower(),
        valid_before=int(authorization["validBefore"]),
        payment_identifier=identifier,
    )


def payload_digest(payload: PaymentPayload) -> str:
    """sha256 of the payload's canonical JSON: equal for equal payloads, whatever their spacing or key order."""
    document = payload.model_dump(mode="json", by_alias=True, exclude_none=True)
    return hashlib.sha256(_canonical.encode(document)).hexdigest()


def _authorization(payload: PaymentPayload) -> tuple[dict[str, str], str]:
    inner = payload.payload if isinstance(payload.payload, dict) else {}
    authorization = inner.get("authorization")
    signature = inner.get("signature")
    if not isinstance(authorization, dict) or not all(isinstance(authorization.get(k), str) for k in AUTH_FIELDS):
        raise PaymentRejected(
            "payment_malformed", "the payment has no EIP-3009 authorization (" + ", ".join(AUTH_FIELDS) + ")"
        )
    fields = {k: authorization[k] for k in AUTH_FIELDS}
    if not (
        _ADDRESS.fullmatch(fields["from"]) and _ADDRESS.fullmatch(fields["to"]) and _NONCE.fullmatch(fields["nonce"])
    ):
        raise PaymentRejected("payment_malformed", "from and to must be 20-byte and nonce 32-byte 0x-prefixed hex")
    if not all(_NUMBER.fullmatch(fields[k]) for k in ("value", "validAfter", "validBefore")):
        raise PaymentRejected("payment_malformed", "value, validAfter and validBefore must be decimal integers")
    if not isinstance(signature, str) or not signature.startswith("0x"):
        raise PaymentRejected("payment_malformed", "the payment has no 0x-hex signature")
    if not _SIGNATURE.fullmatch(signature):
        raise PaymentRejected(
            "payment_signature_unsupported",
            "only 65-byte ECDSA signatures of externally owned accounts are accepted (not EIP-1271/ERC-6492)",
        )
    return fields, signature


def _check_window(valid_after: int, valid_before: int, requirements: PaymentRequirements, now: int) -> None:
    if valid_after > now:
        raise PaymentRejected("payment_not_yet_valid", "the authorization's validAfter has not passed yet")
    if valid_before < now + MIN_VALIDITY_S:
        raise PaymentRejected("payment_expired", "the payment authorization has expired (validBefore passed)")
    if valid_before > now + requirements.max_timeout_seconds + CLOCK_SKEW_S:
        raise PaymentRejected(
            "payment_validity_too_long",
            f"validBefore may be at most maxTimeoutSeconds ({requirements.max_timeout_seconds}) from now",
        )


def _signed_by(authorization: dict[str, str], signature: str, requirements: PaymentRequirements, payer: str) -> bool:
    extra = requirements.extra or {}
    message = ExactEIP3009Authorization(
        from_address=authorization["from"],
        to=authorization["to"],
        value=authorization["value"],
        valid_after=authorization["validAfter"],
        valid_before=authorization["validBefore"],
        nonce=authorization["nonce"],
    )
    chain_id = int(str(requirements.network).removeprefix("eip155:"))
    digest = hash_eip3009_authorization(
        message, chain_id, requirements.asset, str(extra.get("name", "")), str(extra.get("version", ""))
    )
    try:
        return verify_eoa_signature(digest, bytes.fromhex(signature[2:]), payer)
    except ValueError:  # a v byte that is neither 27/28 nor 0/1
        return False
