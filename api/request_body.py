"""Reading a request's JSON body, for every route that takes one.

A body must say it is JSON (`application/json` or a `+json` type): `text/plain`, forms and a body without a
Content-Type are 415, so a cross-site "simple" request (which a browser sends without a preflight) never reaches a
handler with input it can act on. An empty body needs no type.
"""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from api import errors
from api.json_depth import NESTED_TOO_DEEPLY, too_deep


def is_json_type(content_type: str) -> bool:
    return content_type == "application/json" or content_type.endswith("+json")


def has_body(request: web.Request) -> bool:
    return request.can_read_body and request.content_length != 0


def check_json_type(request: web.Request, what: str, *, also: tuple[str, ...] = ()) -> None:
    """415 for a body that is not declared JSON (nor one of `also`); `what` says what to send."""
    if has_body(request) and not (is_json_type(request.content_type) or request.content_type in also):
        raise errors.UnsupportedMediaType(f"send {what} with Content-Type: application/json")


async def read_json_object(request: web.Request, what: str = "the tool's parameters") -> dict[str, Any]:
    check_json_type(request, what)
    raw = await request.read()
    if too_deep(raw):
        raise errors.InvalidJSON(NESTED_TOO_DEEPLY)
    try:
        body = msgspec.json.decode(raw) if raw.strip() else {}
    except (msgspec.DecodeError, UnicodeDecodeError):  # msgspec raises the latter for strings that are not UTF-8
        raise errors.InvalidJSON("request body must be valid JSON") from None
    if not isinstance(body, dict):
        raise errors.InvalidJSON(f"request body must be a JSON object of {what}")
    return body
