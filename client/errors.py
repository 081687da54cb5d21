"""The one exception of the client: ApiError, for every refusal, failure or unreachable server.

    ApiError(status, code, message, body)
      status   the HTTP status of the answer; for a job found failed while polling, the status its call answers
               with, as the job says (`httpStatus`: 409 canceled, 504 expired or the upstream never answered,
               503 throttled, 502 an upstream failure, 422 an input refused, ...; 502 from a server too old to
               say); 0 when the server could not be reached or did not answer
      code     the API's machine-readable code ("payment_required", "invalid_batch", ...)
      message  one line for a person
      body     the decoded JSON answer (or None): `payment`, `needed`, `itemErrors`, `job`, ...

It never holds a credential: messages come from the server's answers, which never echo tokens or keys.
"""

from __future__ import annotations

from typing import Any

import httpx


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.body = body

    def __str__(self) -> str:
        where = f"HTTP {self.status}, " if self.status else ""
        return f"{self.message} ({where}{self.code})"


def error_of(response: httpx.Response) -> ApiError:
    """The API's JSON error answer, as one ApiError: `error` and `message` joined into one line."""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return ApiError(response.status_code, f"http_{response.status_code}", _reason(response), body)
    error, detail = body.get("error"), body.get("message")
    parts = [str(part) for part in (error, detail) if isinstance(part, str) and part]
    if len(parts) == 2 and parts[1].lower().startswith(parts[0].lower()):
        parts = parts[1:]
    message = ": ".join(parts) or _reason(response)
    code = body.get("code") if isinstance(body.get("code"), str) else f"http_{response.status_code}"
    return ApiError(response.status_code, str(code), message, body)


# The code and message of a job that ended without an error to show, by its status.
_ENDED = {
    "canceled": ("canceled", "the job was canceled"),
    "expired": ("expired", "the job expired before it could run"),
}


def job_error(view: dict[str, Any]) -> ApiError:
    """A job that ended without a result (found while polling), as the error its call answers with: the status
    the job says (`httpStatus`), its error's code and message."""
    status = str(view.get("status", "failed"))
    error = view.get("error") if isinstance(view.get("error"), dict) else {}
    assert isinstance(error, dict)
    http_status = view.get("httpStatus")
    if not isinstance(http_status, int):  # a server older than httpStatus
        http_status = 502
    code, message = _ENDED.get(status, ("failed", "the job failed"))
    return ApiError(http_status, str(error.get("code") or code), str(error.get("message") or message), {"job": view})


def unreachable(base_url: str, exc: httpx.TransportError) -> ApiError:
    kind = type(exc).__name__
    return ApiError(0, "unreachable", f"no answer from {base_url}: {kind}{': ' + str(exc) if str(exc) else ''}")


def _reason(response: httpx.Response) -> str:
    return f"{response.status_code} {response.reason_phrase}".strip()
