"""The webhook sender: every invocation worker runs one, next to its arq loop.

It claims due deliveries (shared/webhooks.py CLAIM_DUE leases each for a while, so workers never send one
delivery at the same time and a dead worker's claim lapses), sends them signed, and records each attempt: a
2xx answer delivers; anything else (or no answer) waits retry_delay_s and tries again, up to
SERVER402_WEBHOOK_MAX_ATTEMPTS; 410 Gone stops at once. Targets are checked again here: an IP literal or a name
that resolves to a private, loopback or link-local address (or to an IPv6 one carrying such an IPv4 address:
NAT64, 6to4, ...) is refused unless the operator allows its network, so a DNS answer cannot aim a webhook inside
the network after it was accepted. The URL sent to is the one the check normalised. Redirects are not followed.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from typing import Any

import aiohttp
import msgspec
import redis.exceptions
import structlog
from aiohttp.abc import ResolveResult
from aiohttp.resolver import ThreadedResolver

from shared.batches import BatchStore, batch_view
from shared.clock import utc_iso
from shared.config import Secret, WebhookSettings
from shared.jobs import JobStore, job_view
from shared.netpolicy import address_allowed
from shared.webhooks import (
    Attempt,
    Delivery,
    DeliveryStore,
    WebhookRefused,
    WebhookSecrets,
    check_target,
    retry_delay_s,
    signature_header,
)

log = structlog.get_logger("workers.webhooks")

POLL_S = 0.1  # an idle sender looks for due deliveries this often
CLAIM = 32  # deliveries taken per look
LEASE_MS = 60_000  # a claimed delivery is not taken again for this long (a dead worker's is retried after it)
USER_AGENT = "server402-webhooks/1"
MAX_ERROR = 200
REFUSED = "refused"  # the target is not allowed (any more): never retried
_json = msgspec.json.Encoder()


class GuardedResolver(ThreadedResolver):
    """Resolves names like aiohttp's default, then keeps only addresses webhooks may reach (shared/netpolicy.py
    address_allowed, which judges an IPv6 address carrying an IPv4 one by that)."""

    def __init__(self, allowed_networks: tuple[str, ...]) -> None:
        super().__init__()
        self.allowed_networks = allowed_networks

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await super().resolve(host, port, family)
        allowed = [r for r in results if address_allowed(r["host"], self.allowed_networks)]
        if not allowed:
            raise OSError(f"{host} resolves only to private or loopback addresses, which webhooks may not reach")
        return allowed


class WebhookSender:
    def __init__(
        self,
        settings: WebhookSettings,
        token_secret: Secret,
        jobs: JobStore,
        batches: BatchStore,
        deliveries: DeliveryStore,
    ) -> None:
        self.settings = settings
        self.jobs = jobs
        self.batches = batches
        self.deliveries = deliveries
        self.secrets = WebhookSecrets(jobs.redis, str(token_secret))
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    def start(self, *, tied_to: asyncio.Task[object] | None = None) -> None:
        """Run in the background; stops with `tied_to` (arq's main task) or `stop()`."""
        self._task = asyncio.create_task(self._run(), name="webhook-sender")
        if tied_to is not None:
            tied_to.add_done_callback(lambda _: self._task.cancel() if self._task else None)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        connector = aiohttp.TCPConnector(resolver=GuardedResolver(self.settings.allowed_networks), limit=64)
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout_s)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers={"User-Agent": USER_AGENT}) as s:
            self._session = s
            while True:
                try:
                    due = await self.deliveries.claim_due(lease_ms=LEASE_MS, count=CLAIM)
                    if due:
                        outcomes = await asyncio.gather(*(self.deliver(d) for d in due), return_exceptions=True)
                        for delivery_id, outcome in zip(due, outcomes, strict=True):
                            if isinstance(outcome, Exception):  # retried when its claim lapses
                                log.error("webhook delivery broke", delivery_id=delivery_id, exc_info=outcome)
                        continue
                except asyncio.CancelledError:
                    raise
                except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
                    log.warning("webhook sender waiting for Redis", error=type(exc).__name__)
                    await asyncio.sleep(1.0)
                except Exception:  # the sender outlives any one failure (a bad record)
                    log.exception("webhook sender failed; going on")
                    await asyncio.sleep(1.0)
                await asyncio.sleep(POLL_S)

    async def deliver(self, delivery_id: str) -> bool:
        """Send one delivery once. True when the receiver took it."""
        delivery = await self.deliveries.get(delivery_id)
        if delivery is None or delivery.status != "pending":
            await self.deliveries.drop(delivery_id)
            return False
        body = await self._body(delivery)
        attempt_no = delivery.attempts + 1
        started = time.perf_counter()
        status_code, error = await self._post(delivery, body)
        attempt = Attempt(
            attempt=attempt_no,
            at=utc_iso(),
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
            status_code=status_code,
            error=error,
        )
        delivered = status_code is not None and 200 <= status_code < 300
        refused = (error or "").startswith(REFUSED)
        give_up = status_code == 410 or refused or attempt_no >= self.settings.max_attempts
        retry_at = None
        if not delivered and not give_up:
            delay_s = retry_delay_s(attempt_no, self.settings.retry_base_s)
            retry_at = time.time_ns() // 1_000_000 + int(delay_s * 1000)
        await self.deliveries.record(delivery, attempt, delivered=delivered, retry_at_ms=retry_at)
        log.info(
            "webhook delivery",
            delivery_id=delivery.id,
            webhook_event=delivery.event,
            attempt=attempt_no,
            status_code=status_code,
            error=error,
            outcome="delivered" if delivered else ("retrying" if retry_at else "failed"),
        )
        return delivered

    async def _post(self, delivery: Delivery, body: bytes) -> tuple[int | None, str | None]:
        assert self._session is not None, "start() the sender first"
        try:
            url = check_target(delivery.url, self.settings.allowed_networks)
        except WebhookRefused as exc:
            return None, f"{REFUSED}: {exc}"
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "webhook-id": delivery.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(
                await self.secrets.signing_secrets(delivery.owner), delivery.id, timestamp, body
            ),
        }
        try:
            async with self._session.post(url, data=body, headers=headers, allow_redirects=False) as answer:
                await answer.read()
                return answer.status, None
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return None, f"{type(exc).__name__}: {str(exc)[:MAX_ERROR]}"

    async def _body(self, delivery: Delivery) -> bytes:
        """Made once, at the first attempt, so every attempt sends the same bytes (and signature input)."""
        if delivery.body is not None:
            return delivery.body.encode()
        data: Any = None
        if delivery.subject.startswith("bat_"):
            batch = await self.batches.get(delivery.subject)
            data = batch_view(batch, retention_ms=self.batches.retention_ms) if batch else None
        else:
            job = await self.jobs.get(delivery.subject)
            data = job_view(job, retention_ms=self.jobs.retention_ms) if job else None
        payload = {"type": delivery.event, "timestamp": utc_iso(delivery.created_at), "data": data}
        body = _json.encode(payload)
        if not await self.deliveries.set_body(delivery.id, body):  # another sender made it first: use theirs
            stored = await self.deliveries.get(delivery.id)
            if stored is not None and stored.body is not None:
                return stored.body.encode()
        return body
