"""Placeholder: filled in by the pages work of issue 5."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
