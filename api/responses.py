"""JSON responses encoded with msgspec (Structs encode directly, no intermediate dicts)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from aiohttp import web

_encoder = msgspec.json.Encoder()


def json_response(data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(body=_encoder.encode(data), status=status, headers=headers, content_type="application/json")


def json_bytes_response(body: bytes, *, status: int = 200) -> web.Response:
    """For documents encoded once at start-up (OpenAPI)."""
    return web.Response(body=body, status=status, content_type="application/json")
