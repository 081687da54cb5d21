"""Who is calling: an API key (`Authorization: Bearer ...` or `X-API-Key`), a payment token, or nobody.

- A presented key must be valid (401 otherwise) and within its request rate (429 with Retry-After).
- Jobs belong to whoever created them: the API key, else the payment token that paid (present it again to
  read the job), else nobody in particular: then the job id (128 random bits) is the capability to read it.
- Face databases and templates live in a tenant namespace: the key, else the x402 payer's address.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from aiohttp import web

from api import keys
from shared import errors
from shared.apikeys import ApiKey
from shared.jobs import ANONYMOUS
from shared.payments import payment_id_of

BEARER = "bearer "


@dataclass(frozen=True)
class Caller:
    api_key: ApiKey | None

    @property
    def key_client_id(self) -> str:
        return self.api_key.client_id if self.api_key else ""


CALLER = web.RequestKey("caller", Caller)


def token_owner(payment_id: str) -> str:
    return "pay:" + payment_id


async def identify(request: web.Request) -> Caller:
    """The caller, authenticated and rate-limited once per request."""
    if CALLER in request:
        return request[CALLER]
    presented = _presented_key(request)
    caller = Caller(api_key=None)
    if presented is not None:
        api_key = await request.app[keys.API_KEYS].authenticate(presented)
        if api_key is None:
            raise errors.Unauthorized("invalid api key", code="invalid_api_key")
        wait_s = await request.app[keys.API_KEYS].check_rate(api_key)
        if wait_s > 0:
            raise errors.TooManyRequests(
                f"api key rate limit exceeded ({api_key.rate:g}/s)", retry_after=max(1, math.ceil(wait_s))
            )
        caller = Caller(api_key=api_key)
    request[CALLER] = caller
    return caller


def _presented_key(request: web.Request) -> str | None:
    header = request.headers.get("X-API-Key")
    if header is not None:
        return header.strip()
    authorization = request.headers.get("Authorization")
    if authorization is None:
        return None
    if not authorization.lower().startswith(BEARER):
        raise errors.Unauthorized("Authorization must be 'Bearer <api key>'", code="invalid_api_key")
    return authorization[len(BEARER) :].strip()


async def job_readers(request: web.Request) -> frozenset[str]:
    """Every owner this request may read jobs of: its key, the token it presents, and anonymous jobs."""
    caller = await identify(request)
    readers = {ANONYMOUS}
    if caller.api_key:
        readers.add(caller.key_client_id)
    for token in request.headers.get("X-Payment-Token", "").split(","):  # a batch may be paid by several
        payment_id = payment_id_of(request.app[keys.SETTINGS].token_secret, token.strip()) if token.strip() else None
        if payment_id:
            readers.add(token_owner(payment_id))
    return frozenset(readers)
