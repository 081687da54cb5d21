"""The one mapping from a payment the job and batch scripts refused (ENQUEUE_JOB, CREATE_BATCH) to its answer."""

from __future__ import annotations

from dataclasses import dataclass

INVALID_TOKEN = "unknown or unpaid payment token"


@dataclass(frozen=True)
class Refusal:
    status: int  # 402, or 403 for a payment bound to another client
    error: str  # the seed's failure text
    code: str
    message: str


REFUSALS: dict[str, Refusal] = {
    "payment_required": Refusal(402, "payment required", "invalid_token", INVALID_TOKEN),
    "token_expired": Refusal(402, "payment token expired", "token_expired", "the payment token has expired"),
    "no_calls_left": Refusal(402, "payment token has no remaining calls", "no_calls_left", "every call has been used"),
    "wrong_service": Refusal(
        402, "payment required", "token_wrong_service", "this payment token pays for another service"
    ),
    "payment_settling": Refusal(
        402,
        "payment required",
        "payment_settling",
        "this payment is still settling: the token pays once GET /api/payments/{id} says paid",
    ),
    "payment_failed": Refusal(
        402, "payment required", "payment_failed", "this payment was not settled: nothing was charged, nothing to spend"
    ),
    "wrong_client": Refusal(
        403,
        "payment token is bound to another client",
        "token_bound_to_other_client",
        "this payment pays only for the client that bought it: present that API key, or (bought with a wallet) "
        "no API key",
    ),
}


def refusal(reason: str) -> Refusal:
    return REFUSALS.get(reason, REFUSALS["payment_required"])
