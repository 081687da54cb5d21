"""The API's errors. Each knows its HTTP status and its machine-readable code.

A raised one becomes `{"error": message, "code": code, "requestId": ...}` in `api/middlewares.py`. The tree, and
the modules that decide the statuses of other answers (a failed job, a refused payment token, JSON-RPC on /mcp):
docs/architecture.md, "Errors and HTTP statuses".
"""

from __future__ import annotations

from typing import Any, ClassVar


class Server402Error(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str = "internal error", *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.message, "code": self.code}
        if self.details is not None:
            body["details"] = self.details
        return body

    def headers(self) -> dict[str, str]:
        return {}


class BadRequest(Server402Error):
    status = 400
    code = "bad_request"


class InvalidJSON(BadRequest):
    code = "invalid_json"


class ValidationFailed(BadRequest):
    code = "validation_failed"


class UnknownService(BadRequest):
    code = "unknown_service"


class NotFound(Server402Error):
    status = 404
    code = "not_found"


class ServiceNotFound(NotFound):
    code = "service_not_found"


class Unauthorized(Server402Error):
    status = 401
    code = "api_key_required"

    def __init__(self, message: str = "api key required", *, code: str = "api_key_required") -> None:
        super().__init__(message)
        self.code = code  # type: ignore[misc]

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="server402"'}


class Forbidden(Server402Error):
    status = 403
    code = "forbidden"

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code  # type: ignore[misc]


class PaymentRequired(Server402Error):
    """402: `error` is the seed's failure text ("payment required", "payment token expired", ...); `code` and
    `message` say exactly what was wrong; `payment` is a fresh pending payment that would pay for the call."""

    status = 402
    code = "payment_required"

    def __init__(
        self,
        payment: dict[str, Any],
        *,
        headers: dict[str, str] | None = None,
        error: str = "payment required",
        code: str = "payment_required",
        message: str | None = None,
    ) -> None:
        super().__init__(error)
        self.code = code  # type: ignore[misc]
        self.payment = payment
        self._headers = headers or {}
        self.detail = message

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.message, "code": self.code}
        if self.detail:
            body["message"] = self.detail
        body["payment"] = self.payment
        return body

    def headers(self) -> dict[str, str]:
        return {"X-Payment-Required": "true", **self._headers}


class JobNotFound(NotFound):
    code = "job_not_found"


class Conflict(Server402Error):
    status = 409
    code = "conflict"


class SettlementInProgress(Conflict):
    """The same signed payment is being settled by another request: retry to get that request's outcome."""

    code = "settlement_in_progress"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "1"}


class PaymentIdentifierReused(Conflict):
    """An x402 payment-identifier already named another payment."""

    code = "payment_identifier_reused"


class Gone(Server402Error):
    status = 410
    code = "gone"


class UnsupportedMediaType(Server402Error):
    status = 415
    code = "unsupported_media_type"


class IdempotencyMismatch(Server402Error):
    status = 422
    code = "idempotency_key_reused"


class InvalidBatch(Server402Error):
    """A batch refused as a whole: nothing was stored or charged. `item_errors`: the first problems, by item."""

    status = 422
    code = "invalid_batch"

    def __init__(self, message: str, *, item_errors: list[Any] | None = None, invalid_count: int = 0) -> None:
        super().__init__("invalid batch")
        self.detail = message
        self.item_errors = item_errors or []
        self.invalid_count = invalid_count

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.message, "code": self.code, "message": self.detail}
        if self.item_errors:
            body["itemErrors"] = self.item_errors
            body["invalidCount"] = self.invalid_count
        return body


class BatchPaymentRequired(Server402Error):
    """402 for a batch: `needed` lists, per service, the calls it needs and a pending payment for them."""

    status = 402
    code = "payment_required"

    def __init__(
        self, needed: list[dict[str, Any]], *, error: str = "payment required", code: str, message: str
    ) -> None:
        super().__init__(error)
        self.code = code  # type: ignore[misc]
        self.needed = needed
        self.detail = message

    def body(self) -> dict[str, Any]:
        return {"error": self.message, "code": self.code, "message": self.detail, "needed": self.needed}

    def headers(self) -> dict[str, str]:
        return {"X-Payment-Required": "true"}


class JobFailed(Server402Error):
    """A job that ended without a result, answered with the status its error calls for."""

    def __init__(self, status: int, code: str, message: str, job: Any, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # type: ignore[misc]
        self.code = code  # type: ignore[misc]
        self.job = job
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        return {"error": self.message, "code": self.code, "job": self.job}

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.retry_after else {}


class TooManyRequests(Server402Error):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class MethodNotAllowed(Server402Error):
    status = 405
    code = "method_not_allowed"

    def __init__(self, message: str, *, allowed: frozenset[str] = frozenset()) -> None:
        super().__init__(message)
        self.allowed = allowed

    def headers(self) -> dict[str, str]:
        return {"Allow": ", ".join(sorted(self.allowed))} if self.allowed else {}


class RequestTimeout(Server402Error):
    """408: the request's body did not fully arrive in time (a slow or stalled sender); the connection is closed."""

    status = 408
    code = "request_timeout"

    def headers(self) -> dict[str, str]:
        return {"Connection": "close"}


class PayloadTooLarge(Server402Error):
    status = 413
    code = "payload_too_large"


class ServiceUnavailable(Server402Error):
    status = 503
    code = "service_unavailable"

    def __init__(self, message: str = "service unavailable", *, retry_after: int = 1, details: Any = None) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class StoreUnavailable(ServiceUnavailable):
    code = "store_unavailable"
