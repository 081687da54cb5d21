"""Webhooks: signed deliveries of job and batch events (Standard Webhooks, https://www.standardwebhooks.com).

How a delivery is made with its event, sent, retried and signed, how secrets rotate, and the keys:
docs/architecture.md, "Webhooks" and "Redis".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from typing import Any

import msgspec
from redis.asyncio import Redis

from shared import keys
from shared.clock import iso_ms, utc_iso
from shared.jobs import now_ms
from shared.keys import SCRIPTS, registered
from shared.netpolicy import ip_allowed
from shared.urls import UrlRefused, caller_url

JOB_TERMINAL_EVENTS = ("job.succeeded", "job.failed", "job.canceled", "job.expired")
JOB_EVENTS = ("job.settling", "job.started", *JOB_TERMINAL_EVENTS)
BATCH_EVENTS = ("batch.completed",)
COMPLETED = "job.completed"  # shorthand for every terminal job event (the default of a tool call)
SECRET_PREFIX = "whsec_"
ROTATION_GRACE_S = 86_400
MAX_URL = 2048
MAX_DELAY_S = 6 * 3600
LOG_ENTRIES = 50
_json = msgspec.json.Encoder()


class WebhookRefused(ValueError):
    """A webhook target or event list that cannot be used (the caller's input: 400)."""


def parse_events(raw: Iterable[str] | str | None, *, allowed: tuple[str, ...], default: tuple[str, ...]) -> list[str]:
    """Event names, `job.completed` expanded, in a stable order; unknown names are refused."""
    if raw is None:
        names: list[str] = list(default)
    elif isinstance(raw, str):
        names = [n.strip() for n in raw.split(",") if n.strip()]
    else:
        names = list(raw)
    if not names:
        raise WebhookRefused("webhookEvents must name at least one event")
    chosen: set[str] = set()
    for name in names:
        if not isinstance(name, str):
            raise WebhookRefused("webhookEvents must be event names")
        expanded = JOB_TERMINAL_EVENTS if name == COMPLETED and COMPLETED in allowed else (name,)
        for event in expanded:
            if event not in allowed:
                raise WebhookRefused(f"unknown webhook event {name[:40]!r}; choose from {', '.join(allowed)}")
            chosen.add(event)
    return [e for e in (*JOB_EVENTS, *BATCH_EVENTS) if e in chosen]


def requested(
    url: object,
    raw_events: object,
    *,
    allowed_networks: tuple[str, ...],
    allowed: tuple[str, ...],
    default: tuple[str, ...],
) -> tuple[str, list[str]] | None:
    """A webhook a call or batch asks for (`webhook`, `webhookEvents`, from a query, a body or MCP arguments):
    (target, events), or None when there is none. Raises WebhookRefused for anything that cannot be used."""
    if raw_events is not None and not isinstance(raw_events, str | list):
        raise WebhookRefused("webhookEvents must be event names")
    if url is None:
        if raw_events is not None:
            raise WebhookRefused("webhookEvents needs a webhook URL")
        return None
    return check_target(url, allowed_networks), parse_events(raw_events, allowed=allowed, default=default)


def check_target(url: object, allowed_networks: tuple[str, ...]) -> str:
    """The webhook URL, normalised (shared/urls.py: the sender then connects to the host checked here), if it may
    be used: http(s), a host, no credentials, and not a private, loopback, link-local or otherwise non-public
    address unless the operator allows that network. Host names are checked again, after resolution, on every
    delivery (workers/webhooks.py), so DNS cannot point one inside later."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL or not url.isprintable() or " " in url:
        raise WebhookRefused(f"webhook must be an http or https URL of at most {MAX_URL} characters")
    try:
        target = caller_url(url)
    except UrlRefused as exc:
        raise WebhookRefused(exc.explained("webhook must be an http or https URL")) from None
    inside = target.host.removesuffix(".").endswith((".local", ".internal"))  # names only local resolvers know
    if inside or (target.address is not None and not ip_allowed(target.address, allowed_networks)):
        raise WebhookRefused("webhook targets on private or loopback addresses are not allowed")
    return target.url


# ---------------------------------------------------------------- signing (Standard Webhooks v1)


def derive_secret(token_secret: str, owner: str, version: int) -> str:
    key = hmac.new(token_secret.encode(), f"webhook-secret|{owner}|{version}".encode(), hashlib.sha256).digest()
    return SECRET_PREFIX + base64.b64encode(key[:24]).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class SecretInfo(msgspec.Struct, rename="camel", frozen=True, kw_only=True, omit_defaults=True):
    secret: str
    version: int
    rotated_at: str | None = None
    previous_valid_until: str | None = None


class WebhookSecrets:
    """Each client's signing secret: derived, never stored; rotation bumps its version."""

    def __init__(self, redis: Redis, token_secret: str) -> None:
        self.redis = redis
        self.token_secret = token_secret

    async def _state(self, owner: str) -> tuple[int, int]:
        raw = await self.redis.hmget(keys.webhook_secret_key(owner), ["version", "rotatedAt"])  # type: ignore[misc]
        version = int(raw[0]) if raw[0] else 1
        rotated = int(raw[1]) if raw[1] else 0
        return version, rotated

    async def info(self, owner: str) -> SecretInfo:
        version, rotated = await self._state(owner)
        grace_end = rotated + ROTATION_GRACE_S * 1000
        return SecretInfo(
            secret=derive_secret(self.token_secret, owner, version),
            version=version,
            rotated_at=utc_iso(rotated) if rotated else None,
            previous_valid_until=utc_iso(grace_end) if rotated and grace_end > now_ms() else None,
        )

    async def rotate(self, owner: str) -> SecretInfo:
        key = keys.webhook_secret_key(owner)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hsetnx(key, "version", "1")
            pipe.hincrby(key, "version", 1)
            pipe.hset(key, "rotatedAt", str(now_ms()))
            await pipe.execute()
        return await self.info(owner)

    async def signing_secrets(self, owner: str) -> list[str]:
        """The current secret, and the previous one during its grace period after a rotation."""
        version, rotated = await self._state(owner)
        secrets_ = [derive_secret(self.token_secret, owner, version)]
        if version > 1 and rotated and now_ms() < rotated + ROTATION_GRACE_S * 1000:
            secrets_.append(derive_secret(self.token_secret, owner, version - 1))
        return secrets_


def signature_header(secrets_: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    return " ".join(sign(secret, msg_id, timestamp, body) for secret in secrets_)


# ---------------------------------------------------------------- deliveries


class Delivery(msgspec.Struct, rename="camel", frozen=True, kw_only=True):
    """The delivery hash as stored: its field names are the attributes' in camelCase (`rename`)."""

    id: str
    url: str
    owner: str
    event: str
    subject: str
    created_at: int
    attempts: int = 0
    status: str = "pending"  # pending | delivered | failed
    body: str | None = None
    next_attempt_at: int | None = None
    delivered_at: int | None = None


class Attempt(msgspec.Struct, rename="camel", frozen=True, kw_only=True, omit_defaults=True):
    attempt: int
    at: str
    duration_ms: float
    status_code: int | None = None
    error: str | None = None


class DeliveryView(msgspec.Struct, rename="camel", frozen=True, kw_only=True, omit_defaults=True):
    delivery_id: str
    event: str
    url: str
    status: str
    attempts: int
    created_at: str
    next_attempt_at: str | None = None
    delivered_at: str | None = None
    log: list[Attempt] = []


def delivery_ids(subject_id: str, events: Iterable[str]) -> list[str]:
    return [f"msg_{subject_id}.{event}" for event in events]


def retry_delay_s(attempts: int, base_s: float) -> float:
    """After attempt n (1-based) fails: base * 4^(n-1), capped at 6 hours."""
    return float(min(MAX_DELAY_S, base_s * 4 ** max(0, attempts - 1)))


# Take due deliveries, each leased for a while (shared/lua/claim_deliveries.lua).
CLAIM_DUE = SCRIPTS["claim_deliveries"]


class DeliveryStore:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._claim = registered(redis, CLAIM_DUE)

    async def claim_due(self, *, lease_ms: int, count: int) -> list[str]:
        ids: list[bytes] = await self._claim(keys=[keys.WEBHOOKS_DUE], args=[now_ms(), lease_ms, count])
        return [i.decode() for i in ids]

    async def get(self, delivery_id: str) -> Delivery | None:
        raw: dict[bytes, bytes] = await self.redis.hgetall(keys.webhook_key(delivery_id))  # type: ignore[misc]
        if not raw:
            return None
        return msgspec.convert({k.decode(): v.decode() for k, v in raw.items()}, Delivery, strict=False)

    async def set_body(self, delivery_id: str, body: bytes) -> bool:
        """The body is made once, at the first attempt, so every retry sends the same bytes."""
        return bool(await self.redis.hsetnx(keys.webhook_key(delivery_id), "body", body.decode()))  # type: ignore[misc]

    async def record(self, delivery: Delivery, attempt: Attempt, *, delivered: bool, retry_at_ms: int | None) -> None:
        key = keys.webhook_key(delivery.id)
        fields: dict[str, Any] = {"attempts": attempt.attempt}
        if delivered:
            fields.update(status="delivered", deliveredAt=now_ms())
        elif retry_at_ms is None:
            fields["status"] = "failed"
        else:
            fields["nextAttemptAt"] = retry_at_ms
        finished = delivered or retry_at_ms is None
        ttl_ms = max(1, int(await self.redis.pttl(key)))
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=fields)
            if finished:
                pipe.hdel(key, "nextAttemptAt")
                pipe.zrem(keys.WEBHOOKS_DUE, delivery.id)
            else:
                pipe.zadd(keys.WEBHOOKS_DUE, {delivery.id: retry_at_ms or 0})
            pipe.rpush(key + ":log", _json.encode(attempt))
            pipe.ltrim(key + ":log", -LOG_ENTRIES, -1)
            pipe.pexpire(key + ":log", ttl_ms)
            await pipe.execute()

    async def drop(self, delivery_id: str) -> None:
        await self.redis.zrem(keys.WEBHOOKS_DUE, delivery_id)

    async def views(self, subject_id: str, events: Iterable[str]) -> list[DeliveryView]:
        views = []
        for delivery_id in delivery_ids(subject_id, events):
            delivery = await self.get(delivery_id)
            if delivery is None:
                continue
            raw_log: list[bytes] = await self.redis.lrange(keys.webhook_key(delivery_id) + ":log", 0, -1)  # type: ignore[misc]
            views.append(
                DeliveryView(
                    delivery_id=delivery.id,
                    event=delivery.event,
                    url=delivery.url,
                    status=delivery.status,
                    attempts=delivery.attempts,
                    created_at=iso_ms(delivery.created_at) or "",
                    next_attempt_at=iso_ms(delivery.next_attempt_at) if delivery.status == "pending" else None,
                    delivered_at=iso_ms(delivery.delivered_at),
                    log=[msgspec.json.decode(entry, type=Attempt) for entry in raw_log],
                )
            )
        return views
