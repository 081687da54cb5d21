"""Errors the sandbox answers, as Alibaba answers them: HTTP 4xx/5xx with a JSON body.

    SandboxError(status, code, message)            every answer that is not HTTP 200
    ├── AuthError        SignatureDoesNotMatch 400, IncompleteSignature 400, InvalidAccessKeyId.NotFound 404,
    │                    SignatureNonceUsed 400, InvalidTimeStamp.Expired 400, InvalidTimeStamp.Format 400
    ├── RoutingError     InvalidAction.NotFound 404, InvalidVersion 400, NotFound 404 (unknown path)
    ├── ParameterError   Missing<Param> 400, InvalidParameter 400, IllegalUrlParameter 400
    ├── ImageError       InvalidImage.Download 400, InvalidFile.Decode 400, InvalidFile.Content 400,
    │                    InvalidImage.Region 400
    ├── StateError       InvalidDB.Status 400, InvalidEntity.NotFound 400, InvalidEntity.Exists 400,
    │                    InvalidFace.NotFound 400, InvalidTemplate.NotFound 400, InvalidToken.NotFound 400,
    │                    QuotaExceeded 400
    ├── ThrottlingError  Throttling.User 400
    └── ServerError      InternalError 500, ServiceUnavailable 503

`error_body` renders the body `{"RequestId","Code","Message","HostId","Recommend"}`; app.py's middleware is the
only place that turns a SandboxError into a response.
"""

from __future__ import annotations

from typing import Any

THROTTLING_MESSAGE = "Request was denied due to user flow control."
INTERNAL_ERROR_MESSAGE = "The request processing has failed due to some unknown error."
UNAVAILABLE_MESSAGE = "The request has failed due to a temporary failure of the server."


class SandboxError(Exception):
    status = 400

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        if status is not None:
            self.status = status


class AuthError(SandboxError):
    pass


class RoutingError(SandboxError):
    pass


class ParameterError(SandboxError):
    pass


class ImageError(SandboxError):
    pass


class StateError(SandboxError):
    pass


class ThrottlingError(SandboxError):
    def __init__(self) -> None:
        super().__init__("Throttling.User", THROTTLING_MESSAGE, 400)


class ServerError(SandboxError):
    status = 500


def missing(param: str) -> ParameterError:
    return ParameterError(f"Missing{param}", f"{param} is mandatory for this action.")


def invalid_parameter(param: str, why: str) -> ParameterError:
    return ParameterError("InvalidParameter", f"Specified parameter {param} is not valid: {why}.")


def internal_error(status: int = 500) -> ServerError:
    if status == 503:
        return ServerError("ServiceUnavailable", UNAVAILABLE_MESSAGE, 503)
    return ServerError("InternalError", INTERNAL_ERROR_MESSAGE, 500)


def error_body(error: SandboxError, request_id: str, host_id: str) -> dict[str, Any]:
    return {
        "RequestId": request_id,
        "Code": error.code,
        "Message": error.message,
        "HostId": host_id,
        "Recommend": f"https://api.aliyun.com/troubleshoot?q={error.code}&product=sandbox&requestId={request_id}",
    }
