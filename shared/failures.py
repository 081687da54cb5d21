"""Failure kinds: what went wrong with a call, decided once, and what each kind means for its answer.

The worker's upstream boundary (`workers/upstream.py` `kind_of`) gives every upstream failure a kind, stored on the
job's error (`shared.jobs.JobError.kind`); the retry decision, the health verdict, the API's answer and the job
view's `httpStatus` all come from it, through `failure`. The kinds: docs/architecture.md, "Errors and HTTP statuses".
"""

from __future__ import annotations

from typing import Literal, NamedTuple

Kind = Literal["throttled", "unavailable", "server", "operator", "input", "canceled", "expired", "unpaid"]
UpstreamKind = Literal["throttled", "unavailable", "server", "operator", "input"]

THROTTLING = "Throttling"  # the prefix of the upstream's throttling codes
# Upstream codes that mean the gateway's own credentials or subscription are wrong: not the caller's fault.
OPERATOR_CODES = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "SignatureNonceUsed", "InvalidTimeStamp",
                  "InvalidApi.NotPurchase", "AuthFailed", "Forbidden")  # fmt: skip


class Failure(NamedTuple):
    kind: Kind
    status: int  # the HTTP status of the call's answer
    retryable: bool
    retry_after_s: int | None = None


_FAILURES: dict[Kind, Failure] = {
    entry.kind: entry
    for entry in (
        Failure("throttled", 503, True, retry_after_s=1),
        Failure("unavailable", 504, True),
        Failure("server", 502, True),
        Failure("operator", 502, False),
        Failure("input", 422, False),
        Failure("canceled", 409, False),
        Failure("expired", 504, True),
        Failure("unpaid", 402, True),
    )
}
# Job statuses that are their own kind, whatever the job's error says.
_ENDED_AS: dict[str, Kind] = {"canceled": "canceled", "expired": "expired"}
# Codes of our own that name their kind (for errors written without one).
_OWN_CODES: dict[str, Kind] = {
    "canceled": "canceled",
    "job_expired": "expired",
    "payment_failed": "unpaid",
    "UpstreamUnavailable": "unavailable",
}


def failure(kind: Kind) -> Failure:
    """What a kind means for the answer: its HTTP status, whether a retry may help, its Retry-After."""
    return _FAILURES[kind]


def ended_failure(job_status: str, kind: Kind | None) -> Failure:
    """The failure of a job that ended without a result: a canceled or expired job is so whatever its error
    says; a failed job without an error counts as refused input."""
    return _FAILURES[_ENDED_AS.get(job_status) or kind or "input"]


def kind_of_code(code: str, *, retryable: bool) -> Kind:
    """The kind of a job error written without one (stored before kinds existed, or built by code that names
    none), from its code and retryable flag: the answer it had before kinds."""
    if (own := _OWN_CODES.get(code)) is not None:
        return own
    if code.startswith(THROTTLING):
        return "throttled"
    if retryable:
        return "server"
    if code.startswith(OPERATOR_CODES):
        return "operator"
    return "input"
