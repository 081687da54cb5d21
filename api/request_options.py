"""How a request asks to be answered, read the same way by every route and MCP: `Prefer` (wait or respond-async),
`?wait=N` (long polls), and a tool call's webhook (query parameters, or MCP arguments).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from aiohttp import web

from api import appkeys, errors
from api.callcore.calls import Webhook
from shared.webhooks import COMPLETED, JOB_EVENTS, WebhookRefused, requested

_PREFER_WAIT = re.compile(r"(?:^|[,;\s])wait\s*=\s*(\d+(?:\.\d+)?)", re.IGNORECASE)


@dataclass(frozen=True)
class Preference:
    respond_async: bool
    wait_s: float
    applied: str


def parse_prefer(header: str, *, default_s: float, max_s: float) -> Preference:
    lowered = header.lower()
    match = _PREFER_WAIT.search(lowered)
    if match:
        wait_s = min(float(match.group(1)), max_s)
        return Preference(respond_async=False, wait_s=wait_s, applied=f"wait={wait_s:g}")
    if "respond-async" in lowered:
        return Preference(respond_async=True, wait_s=0, applied="respond-async")
    return Preference(respond_async=False, wait_s=default_s, applied="")


def wait_seconds(request: web.Request) -> float:
    """`?wait=N`: seconds to long-poll, at most SERVER402_WAIT_MAX_S."""
    raw = request.query.get("wait", "")
    if raw == "":
        return 0.0
    try:
        wait_s = float(raw)
    except ValueError:
        raise errors.BadRequest("wait must be a number of seconds") from None
    if not math.isfinite(wait_s) or wait_s < 0:
        raise errors.BadRequest("wait must be a number of seconds")
    return min(wait_s, request.app[appkeys.SETTINGS].jobs.wait_max_s)


def call_webhook(request: web.Request) -> Webhook | None:
    """`?webhook=URL&webhookEvents=a,b` of a tool call: (url, comma-separated events), checked; or None."""
    return checked_webhook(request, request.query.get("webhook"), request.query.get("webhookEvents"))


def checked_webhook(request: web.Request, url: object, raw_events: object) -> Webhook | None:
    """A tool call's webhook (HTTP query or MCP arguments): (url, comma-separated events), or None; 400 when the
    target or the events cannot be used."""
    try:
        webhook = requested(
            url,
            raw_events,
            allowed_networks=request.app[appkeys.SETTINGS].webhooks.allowed_networks,
            allowed=(*JOB_EVENTS, COMPLETED),
            default=(COMPLETED,),
        )
    except WebhookRefused as exc:
        raise errors.BadRequest(str(exc)) from None
    return Webhook(webhook[0], ",".join(webhook[1])) if webhook else None
