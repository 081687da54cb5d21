"""Domain errors. Each knows its HTTP status and its machine-readable code.

The API turns them into `{"error": message, "code": code, "requestId": ...}` in exactly one place
(`api/middlewares.py`); workers record them on the job. Nothing else formats errors.

    Server402Error                    500 internal_error
    ├── BadRequest                    400 bad_request
    │   ├── InvalidJSON               400 invalid_json
    │   ├── ValidationFailed          400 validation_failed   (carries per-field details)
    │   └── UnknownService            400 unknown_service
    ├── NotFound                      404 not_found
    │   └── ServiceNotFound           404 service_not_found
    ├── MethodNotAllowed              405 method_not_allowed
    ├── PayloadTooLarge               413 payload_too_large
    └── ServiceUnavailable            503 service_unavailable (carries retry_after seconds)
        └── StoreUnavailable          503 store_unavailable   (Redis unreachable)
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


class MethodNotAllowed(Server402Error):
    status = 405
    code = "method_not_allowed"


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
