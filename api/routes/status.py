"""Placeholder: filled in by the status work of issue 5."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
