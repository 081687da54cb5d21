"""The error answers of the OpenAPI document: the Error body, and which statuses an operation may answer with and
when. Sets shared by many operations (a caller's credentials, a JSON body, a job, a batch) merge with an
operation's own, later descriptions winning; 429 and 503 carry Retry-After."""

from __future__ import annotations

from typing import Any

REF = "#/components/schemas/{name}"
JSON = "application/json"

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "error": {"type": "string", "description": "What went wrong, for people."},
        "code": {"type": "string", "description": "Stable machine-readable error code."},
        "requestId": {"type": "string"},
        "details": {},
    },
    "required": ["error", "code", "requestId"],
}


def ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(name=name)}


def json_content(schema: dict[str, Any], example: Any = None) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": schema}
    if example is not None:
        media["example"] = example
    return {JSON: media}


def error(description: str) -> dict[str, Any]:
    return {"description": description, "content": json_content(ref("Error"))}


RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}}
# Error answers shared by many operations, merged in order (later descriptions win).
CALLER: dict[int, str] = {
    401: "An invalid or revoked API key (invalid_api_key), or a malformed Authorization header.",
    429: "The request rate of the API key, or without one of the client address, is exceeded; retry after "
    "Retry-After (RateLimit and RateLimit-Policy say the policy and what is left).",
    503: "Storage is temporarily unavailable; retry after Retry-After.",
}
BODY: dict[int, str] = {
    400: "Malformed JSON or a bad body.",
    408: "The body did not arrive within SERVER402_BODY_READ_TIMEOUT_S (nothing changed; the connection closes).",
    413: "Request body too large (SERVER402_MAX_BODY_BYTES).",
    415: "The body is not application/json.",
}
JOB: dict[int, str] = {404: "No such job (or not yours).", 410: "The job has expired and its result was deleted."}
BATCH: dict[int, str] = {404: "No such batch (or not yours)."}
NEEDS_CALLER: dict[int, str] = {401: "Send your API key or a payment token."}


def error_responses(*descriptions: dict[int, str]) -> dict[str, Any]:
    merged: dict[int, str] = {}
    for more in descriptions:
        merged.update(more)
    responses = {}
    for status, description in sorted(merged.items()):
        responses[str(status)] = error(description)
        if status in (429, 503):
            responses[str(status)]["headers"] = RETRY_AFTER
    return responses
