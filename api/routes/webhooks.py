"""Webhook signing secrets and delivery logs.

`GET /api/webhooks/secret` shows the caller's signing secret (`whsec_...`, Standard Webhooks), `POST
/api/webhooks/secret/rotate` replaces it (the previous one still signs alongside for a day). The caller is its API
key, else its payment token: the same identity its jobs and batches belong to, whose deliveries the secret signs.
`GET /api/jobs/{id}/deliveries` and `GET /api/batches/{id}/deliveries` list deliveries with every attempt.
"""

from __future__ import annotations

from aiohttp import web

from api import appkeys, errors
from api.callcore.parties import token_owner
from api.identity import identify, token_payments
from api.ownership import owned_batch, owned_job
from api.responses import json_response
from shared.webhooks import (
    BATCH_EVENTS,
    JOB_EVENTS,
    DeliveryStore,
    WebhookSecrets,
)

routes = web.RouteTableDef()


async def _owner(request: web.Request) -> str:
    caller = await identify(request)
    if caller.api_key is not None:
        return caller.key_client_id
    payment_id = next(iter(token_payments(request)), None)
    if payment_id is None or await request.app[appkeys.PAYMENTS].get(payment_id) is None:
        raise errors.Unauthorized("send your API key or a payment token to see its webhook secret")
    return token_owner(payment_id)


def _secrets(request: web.Request) -> WebhookSecrets:
    return WebhookSecrets(request.app[appkeys.REDIS], str(request.app[appkeys.SETTINGS].payments.token_secret))


@routes.get("/api/webhooks/secret")
async def get_secret(request: web.Request) -> web.Response:
    return json_response(await _secrets(request).info(await _owner(request)), headers={"Cache-Control": "no-store"})


@routes.post("/api/webhooks/secret/rotate")
async def rotate_secret(request: web.Request) -> web.Response:
    return json_response(await _secrets(request).rotate(await _owner(request)), headers={"Cache-Control": "no-store"})


@routes.get("/api/jobs/{job_id}/deliveries")
async def job_deliveries(request: web.Request) -> web.Response:
    record = await owned_job(request)
    views = await DeliveryStore(request.app[appkeys.REDIS]).views(record.id, JOB_EVENTS)
    return json_response({"deliveries": views})


@routes.get("/api/batches/{batch_id}/deliveries")
async def batch_deliveries(request: web.Request) -> web.Response:
    record = await owned_batch(request)
    views = await DeliveryStore(request.app[appkeys.REDIS]).views(record.id, BATCH_EVENTS)
    return json_response({"deliveries": views})
