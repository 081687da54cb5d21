"""Batches: `POST /api/batches`, `GET /api/batches/{id}` (`?wait=N`), `GET /api/batches/{id}/results` (JSONL),
`GET /api/batches/{id}/deliveries` and `DELETE /api/batches/{id}`.

A batch is a JSON array of items `{customId, serviceId, input}`, the same as JSON lines
(`Content-Type: application/x-ndjson`), or `{"items": [...], "webhook": URL, "webhookEvents": [...]}`; up to
10,000 items. Every item is checked before anything is stored or charged: one bad item refuses the batch with
every item's problem (422). Paid services are paid by payment tokens (`X-Payment-Token`, comma-separated, one per
service): each must hold enough calls for its service's items, or nothing is charged (402 says what to buy).
The batch is readable with the credential that made it (its API key, else the first token).
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from typing import Any

import msgspec
import structlog
from aiohttp import web

from api import appkeys, errors
from api.callcore.idempotency import Idempotency, checked_key
from api.callcore.parties import Caller, batch_owner, tenant_of, token_owner
from api.callcore.refusals import INVALID_TOKEN, refusal
from api.identity import identify, presented_tokens
from api.json_depth import NESTED_TOO_DEEPLY, too_deep
from api.ownership import owned_batch
from api.request_body import check_json_type
from api.request_options import wait_seconds
from api.responses import json_response
from shared.batches import (
    MAX_CUSTOM_ID,
    MAX_ITEMS,
    BatchItem,
    BatchRecord,
    BatchRefused,
    batch_view,
    encode_input,
    new_batch_id,
)
from shared.jobs import ANONYMOUS, now_ms
from shared.keys import batch_idempotency_key
from shared.models import Service
from shared.payments import PaymentRecord
from shared.webhooks import BATCH_EVENTS, COMPLETED, JOB_EVENTS, WebhookRefused, requested

routes = web.RouteTableDef()
log = structlog.get_logger("api.batches")

JSONL_TYPES = frozenset(
    {"application/x-ndjson", "application/jsonl", "application/x-jsonlines", "application/jsonlines"}
)
ITEM_FIELDS = frozenset({"customId", "serviceId", "input"})
BODY_FIELDS = frozenset({"items", "webhook", "webhookEvents"})
MAX_REPORTED_ERRORS = 100
BATCH = "batch"
YIELD_EVERY = 200  # items validated between two yields to the event loop: other requests are not held up
_decoder = msgspec.json.Decoder()


class ItemError(msgspec.Struct, rename="camel", frozen=True, kw_only=True, omit_defaults=True):
    index: int
    code: str
    message: str
    custom_id: str | None = None
    details: Any = None


@dataclass(frozen=True)
class CheckedItem:
    custom_id: str
    service: Service
    params: dict[str, Any]


@dataclass(frozen=True)
class Webhook:
    url: str
    events: str  # the batch's own (batch.completed)
    job_events: str  # sent by each item's job


# ---------------------------------------------------------------- POST /api/batches


@routes.post("/api/batches")
async def create_batch(request: web.Request) -> web.Response:
    settings = request.app[appkeys.SETTINGS]
    check_json_type(request, "a batch (a JSON array, or JSON lines as application/x-ndjson)", also=tuple(JSONL_TYPES))
    raw = await _read_body(request, settings.batches.max_bytes)
    caller = await identify(request)
    gate = request.app[appkeys.GATE]
    tokens = [gate.token_payment(token) for token in presented_tokens(request)]  # each HMAC checked once
    idempotency = _idempotency(request, caller, tokens, raw)
    if (
        idempotency is not None
        and (earlier := await idempotency.earlier(request.app[appkeys.REDIS], BATCH)) is not None
    ):
        return await _existing(request, earlier)
    items, options, parse_errors = _parse(raw, request.content_type)
    webhook = _webhook(request, options)
    checked = await _check_items(request, caller, items, parse_errors)
    _check_bounds(request, caller, checked, webhook)
    payments = await _payments_for(request, checked, tokens)
    owner = batch_owner(caller, [payment.payment_id for payment, _ in payments])
    if webhook is not None and owner == ANONYMOUS:
        raise errors.BadRequest(
            "a webhook needs an API key, or a payment token that pays for items of this batch (its secret signs "
            "the deliveries)"
        )
    created = now_ms()
    record = BatchRecord(
        id=new_batch_id(created),
        owner=owner,
        total=len(checked),
        status="in_progress",
        created_at=created,
        request_id=request[appkeys.REQUEST_ID],
        window=request.app[appkeys.BATCHES].window,
        deadline_ms=request.app[appkeys.BATCHES].deadline_ms,
        retention_ms=request.app[appkeys.BATCHES].retention_ms,
        webhook=webhook.url if webhook else None,
        events=webhook.events if webhook else None,
        job_events=webhook.job_events if webhook and webhook.job_events else None,
    )
    by_service = {payment.service_id: payment for payment, _ in payments}
    stored_items = [_stored(item, caller, by_service.get(item.service.id), owner) for item in checked]
    counts = _paid_counts(checked)
    plan = [(p.payment_id, p.service_id, counts[p.service_id]) for p, _ in payments]
    stored_value = (idempotency.redis_key, idempotency.value_for(record.id)) if idempotency else None
    try:
        outcome, value = await request.app[appkeys.BATCHES].create(
            record, stored_items, plan, idempotency=stored_value, caller_key=caller.key_client_id
        )
    except BatchRefused as refused:
        raise _refusal(request, refused, payments, counts) from None
    if outcome == 0 and idempotency is not None:  # the same Idempotency-Key won a race: that batch, not charged
        return await _existing(request, idempotency.made(value, BATCH))
    structlog.contextvars.bind_contextvars(batch_id=record.id, items=record.total)
    log.info("batch accepted", services=len(counts), paid_calls=sum(counts.values()))
    view = batch_view(record, retention_ms=settings.jobs.retention_s * 1000)
    return json_response(view, status=201, headers={"Location": view.links["self"]})


async def _read_body(request: web.Request, limit: int) -> bytes:
    """The body, read here against the batch limit (the app's own limit is for single calls)."""
    if request.content_length is not None and request.content_length > limit:
        raise errors.PayloadTooLarge(f"a batch body may be at most {limit} bytes")
    body = bytearray()
    async for chunk in request.content.iter_chunked(1 << 16):
        body += chunk
        if len(body) > limit:
            raise errors.PayloadTooLarge(f"a batch body may be at most {limit} bytes")
    return bytes(body)


def _check_bounds(request: web.Request, caller: Caller, checked: list[CheckedItem], webhook: Webhook | None) -> None:
    """What one request may cause: free items without an API key, and webhook deliveries, are bounded."""
    settings = request.app[appkeys.SETTINGS]
    if caller.api_key is None:
        free = sum(1 for item in checked if item.service.pricing.amount_cents == 0)
        if free > settings.batches.anon_free_items:
            raise errors.InvalidBatch(
                f"without an API key a batch may hold at most {settings.batches.anon_free_items} items of free "
                f"services; this one has {free}"
            )
    if webhook is not None:
        job_events = len(webhook.job_events.split(",")) if webhook.job_events else 0
        deliveries = len(checked) * job_events + 1
        if deliveries > settings.batches.max_deliveries:
            raise errors.BadRequest(
                f"this batch's webhook would make {deliveries} deliveries; at most {settings.batches.max_deliveries} "
                "are allowed per batch: ask for fewer job events (batch.completed alone is one delivery)"
            )


def _parse(raw: bytes, content_type: str) -> tuple[list[Any], dict[str, Any], dict[int, ItemError]]:
    """(items, batch options, errors of items that are not even JSON)."""
    if content_type in JSONL_TYPES:
        return _parse_lines(raw)
    if too_deep(raw):
        raise errors.InvalidJSON(NESTED_TOO_DEEPLY)
    try:
        body = _decoder.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError):  # the latter: strings that are not UTF-8
        raise errors.InvalidJSON("request body must be valid JSON (or JSON lines with application/x-ndjson)") from None
    if isinstance(body, list):
        return body, {}, {}
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        raise errors.InvalidJSON('a batch is a JSON array of items, or an object {"items": [...]}')
    unknown = sorted(set(body) - BODY_FIELDS)
    if unknown:
        raise errors.BadRequest(f"unknown batch field {unknown[0][:40]!r}; expected {', '.join(sorted(BODY_FIELDS))}")
    return body["items"], body, {}


def _parse_lines(raw: bytes) -> tuple[list[Any], dict[str, Any], dict[int, ItemError]]:
    items: list[Any] = []
    bad: dict[int, ItemError] = {}
    for line in raw.splitlines():
        if not line.strip():
            continue
        if too_deep(line):
            bad[len(items)] = ItemError(index=len(items), code="invalid_json", message="this line is nested too deeply")
            items.append(None)
            continue
        try:
            items.append(_decoder.decode(line))
        except (msgspec.DecodeError, UnicodeDecodeError):
            bad[len(items)] = ItemError(index=len(items), code="invalid_json", message="this line is not valid JSON")
            items.append(None)
    return items, {}, bad


def _webhook(request: web.Request, options: dict[str, Any]) -> Webhook | None:
    try:
        webhook = requested(
            request.query.get("webhook", options.get("webhook")),
            request.query.get("webhookEvents", options.get("webhookEvents")),
            allowed_networks=request.app[appkeys.SETTINGS].webhooks.allowed_networks,
            allowed=(*BATCH_EVENTS, *JOB_EVENTS, COMPLETED),
            default=BATCH_EVENTS,
        )
    except WebhookRefused as exc:
        raise errors.BadRequest(str(exc)) from None
    if webhook is None:
        return None
    target, events = webhook
    own = ",".join(e for e in events if e in BATCH_EVENTS)
    return Webhook(url=target, events=own, job_events=",".join(e for e in events if e in JOB_EVENTS))


async def _check_items(
    request: web.Request, caller: Caller, items: list[Any], problems: dict[int, ItemError]
) -> list[CheckedItem]:
    if not items:
        raise errors.InvalidBatch("a batch needs at least one item")
    if len(items) > MAX_ITEMS:
        raise errors.InvalidBatch(f"a batch holds at most {MAX_ITEMS} items; this one has {len(items)}")
    checked: list[CheckedItem] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        if index and index % YIELD_EVERY == 0:
            await asyncio.sleep(0)
        if index in problems:
            continue
        try:
            checked.append(_check_item(request, caller, item, seen))
        except ItemProblem as problem:
            custom_id = item.get("customId") if isinstance(item, dict) else None
            problems[index] = ItemError(
                index=index,
                custom_id=custom_id if isinstance(custom_id, str) else None,
                code=problem.code,
                message=problem.message,
                details=problem.details,
            )
    if problems:
        first = [problems[i] for i in sorted(problems)[:MAX_REPORTED_ERRORS]]
        summary = f"{len(problems)} of {len(items)} items are invalid; nothing was charged. First: {first[0].message}"
        raise errors.InvalidBatch(summary, item_errors=first, invalid_count=len(problems))
    return checked


class ItemProblem(Exception):
    def __init__(self, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.details = code, message, details


def _check_item(request: web.Request, caller: Caller, item: Any, seen: set[str]) -> CheckedItem:
    if not isinstance(item, dict):
        raise ItemProblem("invalid_item", "an item must be an object {customId, serviceId, input}")
    unknown = sorted(set(item) - ITEM_FIELDS)
    if unknown:
        expected = "expected customId, serviceId, input"
        raise ItemProblem("invalid_item", f"unknown item field {unknown[0][:40]!r}; {expected}")
    custom_id = item.get("customId")
    if not isinstance(custom_id, str) or not 1 <= len(custom_id) <= MAX_CUSTOM_ID or not custom_id.isprintable():
        raise ItemProblem("invalid_custom_id", f"customId must be 1 to {MAX_CUSTOM_ID} printable characters")
    if custom_id in seen:
        raise ItemProblem("duplicate_custom_id", "customId is used by another item of this batch")
    seen.add(custom_id)
    service_key = item.get("serviceId")
    service = request.app[appkeys.CATALOG].resolve(service_key) if isinstance(service_key, str) else None
    if service is None:
        raise ItemProblem("service_not_found", "serviceId is not a service of the catalog; see /api/catalog")
    try:
        request.app[appkeys.GATE].check_access(caller, service)
    except (errors.Unauthorized, errors.Forbidden) as exc:
        raise ItemProblem(exc.code, exc.message) from None
    params = item.get("input", {})
    if not isinstance(params, dict):
        raise ItemProblem("validation_failed", "input must be an object of the tool's parameters")
    try:
        params = request.app[appkeys.VALIDATORS].validate(service.id, params)
    except errors.ValidationFailed as exc:
        raise ItemProblem(exc.code, exc.message, exc.details) from None
    return CheckedItem(custom_id=custom_id, service=service, params=params)


def _paid_counts(checked: list[CheckedItem]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in checked:
        if item.service.pricing.amount_cents > 0:
            counts[item.service.id] = counts.get(item.service.id, 0) + 1
    return counts


async def _payments_for(
    request: web.Request, checked: list[CheckedItem], tokens: list[str | None]
) -> list[tuple[PaymentRecord, str]]:
    """The payment paying for each paid service of the batch, in the header's order (tokens: their payments, None
    for one that is not ours); 402 when a service has none (saying what to buy), 400 for two tokens of one service
    or one that pays for no item."""
    store = request.app[appkeys.PAYMENTS]
    counts = _paid_counts(checked)
    found: dict[str, tuple[PaymentRecord, str]] = {}
    for payment_id in tokens:
        record = await store.get(payment_id) if payment_id else None
        if record is None:
            raise _payment_required(request, counts, "invalid_token", INVALID_TOKEN)
        if record.service_id in found:
            raise errors.BadRequest(f"send one payment token per service ({record.service_id} has two)")
        if record.service_id not in counts:  # every token must pay: the first one owns the batch
            raise errors.BadRequest(f"a payment token for {record.service_id} pays for no item of this batch")
        found[record.service_id] = (record, record.payment_id)
    missing = {service: calls for service, calls in counts.items() if service not in found}
    if missing:
        names = ", ".join(f"{calls} call(s) of {service}" for service, calls in missing.items())
        raise _payment_required(
            request,
            missing,
            "payment_required",
            f"this batch needs {names}: buy them with POST /api/payments and send the tokens in X-Payment-Token",
        )
    return [found[service] for service in found if service in counts]


def _payment_required(
    request: web.Request, counts: dict[str, int], code: str, message: str, error: str = "payment required"
) -> errors.Server402Error:
    catalog = request.app[appkeys.CATALOG]
    store = request.app[appkeys.PAYMENTS]
    needed = []
    for service_id, calls in counts.items():
        service = catalog.resolve(service_id)
        assert service is not None  # counted from resolved items
        offer = store.offer(service, calls=calls)
        needed.append({"serviceId": service_id, "calls": calls, "payment": offer})
    return errors.BatchPaymentRequired(needed, error=error, code=code, message=message)


def _refusal(
    request: web.Request, refused: BatchRefused, payments: list[tuple[PaymentRecord, str]], counts: dict[str, int]
) -> errors.Server402Error:
    payment = payments[refused.index][0]
    found = refusal(refused.reason)
    error, code, message = found.error, found.code, found.message
    if found.status == 403:
        return errors.Forbidden(error, code=code)
    if refused.reason == "no_calls_left":
        needs = counts[payment.service_id]
        message = f"the token for {payment.service_id} has fewer calls left than this batch's {needs}"
    return _payment_required(request, {payment.service_id: counts[payment.service_id]}, code, message, error)


def _stored(item: CheckedItem, caller: Caller, payment: PaymentRecord | None, owner: str) -> BatchItem:
    paid = item.service.pricing.amount_cents > 0 and payment is not None
    tenant = tenant_of(caller, payment.client_id or token_owner(payment.payment_id) if payment else None, ANONYMOUS)
    return BatchItem(
        custom_id=item.custom_id,
        service=item.service.id,
        action=item.service.upstream.action,
        payment_id=payment.payment_id if paid and payment else "",
        tenant=tenant,
        input=encode_input(item.params),
    )


# ---------------------------------------------------------------- idempotency


def _idempotency(request: web.Request, caller: Caller, tokens: list[str | None], raw: bytes) -> Idempotency | None:
    """The batch's Idempotency-Key, scoped as a call's: the API key, else the first token's payment."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    checked_key(key)
    first = tokens[0] if tokens else None
    scope = caller.key_client_id or (token_owner(first) if first else "invalid" if tokens else ANONYMOUS)
    digest = hashlib.sha256()
    for part in (request.content_type.encode(), request.query_string.encode(), raw):
        digest.update(part + b"\0")
    return Idempotency(batch_idempotency_key(scope, key), digest.hexdigest())


async def _existing(request: web.Request, batch_id: str) -> web.Response:
    record = await request.app[appkeys.BATCHES].get(batch_id)
    if record is None:
        raise errors.Gone("the batch for this Idempotency-Key has expired")
    structlog.contextvars.bind_contextvars(batch_id=batch_id, idempotent_replay=True)
    view = batch_view(record, retention_ms=request.app[appkeys.SETTINGS].jobs.retention_s * 1000)
    return json_response(view, status=200, headers={"Location": view.links["self"]})


# ---------------------------------------------------------------- reading and canceling


@routes.get("/api/batches/{batch_id}")
async def get_batch(request: web.Request) -> web.Response:
    record = await owned_batch(request)
    wait_s = wait_seconds(request)
    if wait_s > 0 and not record.done:
        waited = await request.app[appkeys.WAITER].wait_for(
            record.id, wait_s, request.app[appkeys.BATCHES].get, lambda batch: batch.done, current=record
        )
        record = waited or record
    return json_response(batch_view(record, retention_ms=request.app[appkeys.SETTINGS].jobs.retention_s * 1000))


@routes.get("/api/batches/{batch_id}/results")
async def batch_results(request: web.Request) -> web.StreamResponse:
    record = await owned_batch(request)
    offset = _offset(request)
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson", "Batch-Status": record.status})
    await response.prepare(request)
    encoder = msgspec.json.Encoder()
    async for page in request.app[appkeys.BATCHES].results(record.id, offset):
        buffer = bytearray()
        for line in page:
            encoder.encode_into(line, buffer, len(buffer))
            buffer += b"\n"
        await response.write(bytes(buffer))
    await response.write_eof()
    return response


def _offset(request: web.Request) -> int:
    raw = request.query.get("offset", "0")
    if not raw.isdigit() or len(raw) > 9:
        raise errors.BadRequest("offset must be a whole number of result lines already read")
    return int(raw)


@routes.delete("/api/batches/{batch_id}")
async def cancel_batch(request: web.Request) -> web.Response:
    record = await owned_batch(request)
    if record.done:  # as for a job: nothing is left to cancel
        raise errors.Conflict(f"the batch has already finished ({record.status})")
    store = request.app[appkeys.BATCHES]
    status = await store.cancel(record.id, request.app[appkeys.JOBS])
    log.info("batch canceled", status=status)
    current = await store.get(record.id) or record
    return json_response(batch_view(current, retention_ms=request.app[appkeys.SETTINGS].jobs.retention_s * 1000))
