"""The HTTP side of who is calling: the API key a request presents (`Authorization: Bearer ...` or `X-API-Key`),
checked and rate-limited once per request, and the payment tokens it presents (`X-Payment-Token`). What they let
the caller do is the call core's (api/callcore/parties.py).
"""

from __future__ import annotations

from aiohttp import web

from api import appkeys, errors
from api.callcore.gate import CallContext
from api.callcore.parties import ANONYMOUS_CALLER, Caller, readers
from api.ratelimits import OWS, check_key_rate, presented_key
from shared.payments import payment_id_of

CALLER = web.RequestKey("caller", Caller)


async def identify(request: web.Request) -> Caller:
    """The caller, authenticated and rate-limited once per request (kept on the request)."""
    if CALLER in request:
        return request[CALLER]
    presented = _presented_key(request)
    caller = ANONYMOUS_CALLER
    if presented is not None:
        api_key = await request.app[appkeys.API_KEYS].authenticate(presented)
        if api_key is None:
            raise errors.Unauthorized("invalid api key", code="invalid_api_key")
        await check_key_rate(request, api_key)
        caller = Caller(api_key=api_key)
    request[CALLER] = caller
    return caller


async def call_context(request: web.Request) -> CallContext:
    """What the call core needs of this request: its caller, its id and the resource a 402 names."""
    caller = await identify(request)
    return CallContext(
        caller=caller,
        request_id=request[appkeys.REQUEST_ID],
        resource_url=request.app[appkeys.SETTINGS].server.public_url + request.path,
    )


def _presented_key(request: web.Request) -> str | None:
    """The key presented (api/ratelimits.py reads it); an Authorization header of another scheme is a 401."""
    authorization = request.headers.get("Authorization")
    if "X-API-Key" not in request.headers and authorization is not None and presented_key(request) is None:
        raise errors.Unauthorized("Authorization must be 'Bearer <api key>'", code="invalid_api_key")
    return presented_key(request)


def presented_tokens(request: web.Request) -> list[str]:
    """`X-Payment-Token`: one token, or (for a batch) several, comma-separated."""
    tokens = request.headers.get("X-Payment-Token", "").split(",")
    return [token.strip(OWS) for token in tokens if token.strip(OWS)]


def token_payments(request: web.Request) -> list[str]:
    """The payments of the genuine tokens the request presents (HMAC-checked, in the header's order)."""
    secret = request.app[appkeys.SETTINGS].payments.token_secret
    return [payment_id for token in presented_tokens(request) if (payment_id := payment_id_of(secret, token))]


async def job_readers(request: web.Request) -> frozenset[str]:
    """Every owner this request may read jobs and batches of."""
    return readers(await identify(request), token_payments(request))
