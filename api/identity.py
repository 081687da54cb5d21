"""Who is calling. Jobs belong to their caller; until payments and API keys land every caller is anonymous and
a job id (128 random bits) is the capability to read it."""

from __future__ import annotations

from aiohttp import web

from shared.jobs import ANONYMOUS


def caller_id(request: web.Request) -> str:
    return ANONYMOUS
