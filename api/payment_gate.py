"""The payment step of a tool call. Until the payments issue lands, only tools the operator prices at 0 run;
every other call answers 402 with the seed's `{error, payment}` body (the payment is not yet stored)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from shared import errors
from shared.models import Service

PAYMENT_TTL = timedelta(minutes=15)


async def require_payment(request: web.Request, service: Service) -> None:
    if service.pricing.amount_cents == 0:
        return
    raise errors.PaymentRequired(pending_payment(service))


def pending_payment(service: Service) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "paymentId": "pay_" + secrets.token_urlsafe(18),
        "serviceId": service.id,
        "internalServiceId": service.internal_service_id,
        "amountCents": service.pricing.amount_cents,
        "currency": service.pricing.currency,
        "billingMode": service.pricing.billing_mode,
        "maxCalls": service.pricing.max_calls,
        "remainingCalls": service.pricing.max_calls,
        "usedCalls": 0,
        "status": "pending",
        "token": "",
        "payTo": "",
        "provider": service.payment.provider,
        "providerId": service.payment.provider_id,
        "clientId": "",
        "expiresAt": (now + PAYMENT_TTL).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "paidAt": None,
    }
