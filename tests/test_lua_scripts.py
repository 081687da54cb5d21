"""Every Lua script (shared/lua/), row by row: the state in Redis before, the call, the state after, what it returns
and what it publishes.

Each row runs on keys of its own: every key the row names, and every name the scripts build keys from
(shared/keys.py SCRIPT_NAME_TABLE, written into a script when it is loaded: the row's script is loaded with its
own), gets a fresh prefix, so rows never see each other or the rest of the suite. The state after is exact:
`after` lists what changed (None: gone), every other key of `before` must be as it was, and no other key may
exist. The end-to-end tests (test_pipeline_*, test_batches, test_payments, ...) cover the Python that calls these
scripts.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp import web
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import ResponseError
from support import ABOVE_MAXMEMORY, redis_config

from api import apikeys
from api.app import create_app
from api.callcore import settlements
from scripts.embedded_redis import EmbeddedRedis
from shared import keys, lua
from shared.arq_seam import ARQ_IN_PROGRESS_PREFIX, ARQ_JOB_PREFIX, ARQ_RETRY_PREFIX
from shared.catalog import Catalog
from shared.config import Settings
from shared.keys import SCRIPTS
from shared.liveness import workers_key
from shared.lua import Function, Library, assemble, load, lua_literal, lua_table, pack
from shared.quality import quality_key
from workers.health import health_worker_options
from workers.settings import worker_options
from workers.tenancy import NAMESPACE_OWNER_PREFIX, namespace_key

# ---------------------------------------------------------------- states, rows and how a row is checked


@dataclass(frozen=True)
class Hash:
    fields: Mapping[str, str]
    ttl: int | None = None  # ms: the key's time to live is at most this (and not much less)


@dataclass(frozen=True)
class Text:
    value: Any  # str, bytes, or a matcher of the decoded value
    ttl: int | None = None


@dataclass(frozen=True)
class Sorted:
    members: Mapping[str, float]
    ttl: int | None = None


@dataclass(frozen=True)
class Items:
    items: Sequence[str]
    ttl: int | None = None


@dataclass(frozen=True)
class Members:
    members: frozenset[str]


@dataclass(frozen=True)
class Events:
    """A stream's entries (their fields; ids left out)."""

    entries: Sequence[Mapping[str, str]]


State = Hash | Text | Sorted | Items | Members | Events


@dataclass(frozen=True)
class K:
    """A key inside a script's arguments: it gets the row's prefix like the row's KEYS."""

    name: str


@dataclass(frozen=True)
class Row:
    name: str
    keys: Sequence[str]
    args: Sequence[Any]  # a dict is one table (shared.lua.pack)
    returns: Any
    before: Mapping[str, State] = field(default_factory=dict)
    after: Mapping[str, State | None] = field(default_factory=dict)
    published: Sequence[tuple[str, str]] = ()


class Flat:
    """A returned hash as field/value pairs (HGETALL's order is not the test's business)."""

    def __init__(self, fields: Mapping[str, str]) -> None:
        self.fields = dict(fields)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, list) and dict(zip(other[::2], other[1::2], strict=True)) == self.fields

    def __repr__(self) -> str:
        return f"Flat({self.fields!r})"

    __hash__ = None  # type: ignore[assignment]


class Near:
    """A number within `slack` of `target` (for what depends on the server's clock)."""

    def __init__(self, target: int, slack: int) -> None:
        self.target, self.slack = target, slack

    def __eq__(self, other: object) -> bool:
        return isinstance(other, int | float | str) and abs(float(other) - self.target) <= self.slack

    def __repr__(self) -> str:
        return f"Near({self.target}, {self.slack})"

    __hash__ = None  # type: ignore[assignment]


def resolve(value: Any, prefix: str) -> Any:
    if isinstance(value, K):
        return prefix + value.name
    if isinstance(value, dict):
        return {name: resolve(item, prefix) for name, item in value.items()}
    if isinstance(value, list | tuple):
        return [resolve(item, prefix) for item in value]
    return value


def decoded(value: Any) -> Any:
    """Replies as text; bytes that are not UTF-8 (arq's payloads) stay bytes."""
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return value
    if isinstance(value, list):
        return [decoded(item) for item in value]
    return value


async def write(redis: Redis, key: str, state: State) -> None:
    match state:
        case Hash(fields):
            await redis.hset(key, mapping=dict(fields))
        case Text(value):
            await redis.set(key, value)
        case Sorted(members):
            await redis.zadd(key, dict(members))
        case Items(items):
            await redis.rpush(key, *items)
        case Members(members):
            await redis.sadd(key, *members)
        case Events(entries):
            for entry in entries:
                await redis.xadd(key, dict(entry))
    if getattr(state, "ttl", None):
        await redis.pexpire(key, state.ttl)


async def read(redis: Redis, key: str, state: State) -> Any:
    """What `key` holds, in the shape `state` describes."""
    match state:
        case Hash():
            return Hash(decoded_map(await redis.hgetall(key)), state.ttl)
        case Text(value):
            raw = await redis.get(key)
            return Text(raw if isinstance(value, bytes) or raw is None else raw.decode(), state.ttl)
        case Sorted():
            return Sorted({m.decode(): s for m, s in await redis.zrange(key, 0, -1, withscores=True)}, state.ttl)
        case Items():
            return Items(decoded(await redis.lrange(key, 0, -1)), state.ttl)
        case Members():
            return Members(frozenset(decoded(list(await redis.smembers(key)))))
        case Events():
            return Events([decoded_map(fields) for _, fields in await redis.xrange(key)])


def decoded_map(raw: Mapping[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in raw.items()}


async def published_until(redis: Redis, pubsub: PubSub, prefix: str, marker: str) -> list[tuple[str, str]]:
    """Messages on the row's channels up to `marker` (published last, so everything before it has arrived)."""
    await redis.publish(prefix + marker, "")
    seen: list[tuple[str, str]] = []
    for _ in range(1000):
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
        if message is None:
            continue
        channel = message["channel"].decode().removeprefix(prefix)
        if channel == marker:
            return seen
        seen.append((channel, message["data"].decode()))
    raise AssertionError("the end marker never arrived")


WITH_THE_JOB = " + the job"  # how a row names an announcement that carries the job's fields
WITH_THE_HEAD = " (the worker's head)"  # ... of which the worker sent all but the payload


async def announced(redis: Redis, prefix: str, message: tuple[str, str]) -> tuple[str, str]:
    """A message as the row names it: a finished job's announcement by its id, once the fields it carries are
    checked to be the job's hash as the step left it."""
    channel, data = message
    subject, newline, fields = data.partition("\n")
    if newline:
        stored = decoded_map(await redis.hgetall(prefix + keys.job_key(subject)))  # type: ignore[misc]
        if fields.startswith("{"):
            carried = json.loads(fields)
        else:  # the worker's head, the payload after it
            field, _, rest = fields.partition("\n")
            head, _, payload = rest.partition("\n")
            carried = {**json.loads(head), field: payload}
            subject += WITH_THE_HEAD
        assert carried == stored, f"{subject}'s announcement is not the job as it is"
        return channel, subject + WITH_THE_JOB
    return channel, subject


def library(prefix: str) -> Library:
    """The scripts' function library as shared/keys.py builds it, its names under `prefix`."""
    return Library({name: prefix + key for name, key in keys.SCRIPT_NAME_TABLE.items()})


async def check(redis: Redis, script: str, row: Row) -> None:
    prefix = f"lua-test:{uuid.uuid4().hex[:12]}:"
    pubsub = redis.pubsub()
    try:
        for key, state in row.before.items():
            await write(redis, prefix + key, state)
        await pubsub.psubscribe(prefix + "*")
        while (message := await pubsub.get_message(timeout=1.0)) is None or message["type"] != "psubscribe":
            pass
        functions = library(prefix)
        run = Function(redis, functions, script)  # the library loaded by its first call, as in the services
        args = [pack(**resolve(a, prefix)) if isinstance(a, dict) else resolve(a, prefix) for a in row.args]
        result = await run(keys=[prefix + k if k else "" for k in row.keys], args=args)
        published = [
            await announced(redis, prefix, m) for m in await published_until(redis, pubsub, prefix, "end-of-row")
        ]
        assert decoded(result) == row.returns
        assert published == list(row.published)
        expected = {**row.before, **row.after}
        for key, state in expected.items():
            if state is None:
                assert not await redis.exists(prefix + key), f"{key} should be gone"
                continue
            found = await read(redis, prefix + key, state)
            assert found == state, key
            if getattr(state, "ttl", None):
                left = await redis.pttl(prefix + key)
                assert state.ttl - 10_000 < left <= state.ttl, f"{key} expires in {left} ms"
        written = {k.decode().removeprefix(prefix) async for k in redis.scan_iter(match=prefix + "*")}
        assert written == {key for key, state in expected.items() if state is not None}
    finally:
        await pubsub.aclose()
        with contextlib.suppress(ResponseError):  # (not loaded when the row failed before its call)
            await redis.function_delete(library(prefix).name)
        stale = [k async for k in redis.scan_iter(match=prefix + "*")]
        if stale:
            await redis.delete(*stale)


# ---------------------------------------------------------------- the world the rows share

NOW = 1_700_000_000_000
AT = "2023-11-14T22:13:20.000Z"
TIME = "2023-11-14T22:13:20Z"
RETENTION = 60_000
DEADLINE = 10_000
TTL = DEADLINE + RETENTION
WEBHOOK_TTL = RETENTION + 86_400_000
URL = "https://hooks.example/in"
ERROR = '{"code":"canceled","message":"the job was canceled before it ran"}'
EXPIRED = '{"code":"job_expired","message":"the job\'s deadline passed before it ran"}'
CHANNEL = keys.JOBS_DONE_CHANNEL

JOB, JOB2, JOB3 = keys.job_key("job_1"), keys.job_key("job_2"), keys.job_key("job_3")
MARK = ARQ_IN_PROGRESS_PREFIX + "job_1"
QUEUE, WAKE, LEDGER = keys.QUEUE_NAME, keys.QUEUE_WAKE, keys.LEDGER
PAY, PAY2 = keys.payment_key("pay_1"), keys.payment_key("pay_2")
QUALITY = quality_key("svc")
IDEM = keys.idempotency_key("key:k1", "k")
BATCH = keys.batch_key("bat_1")
ITEMS, BATCH_JOBS, DONE = BATCH + ":items", BATCH + ":jobs", BATCH + ":done"
INTENT, DUE, EXPIRY = settlements.intent_key("d1"), keys.SETTLING_DUE, keys.PAYMENT_EXPIRY
NONCE = keys.x402_nonce_key("base", "0xabc", "0x01")
IDENTIFIER = settlements.identifier_key("pid-1", "0xAbC")
ARQ_KEYS: dict[str, State] = {QUEUE: Sorted({"job_1": NOW})}  # a tool job has no other arq key
ARQ_GONE: dict[str, State | None] = dict.fromkeys(ARQ_KEYS)
WOKEN = [(WAKE, "")]
BATCH_QUEUE, BATCH_WOKEN = keys.BATCH_QUEUE_NAME, [(keys.BATCH_QUEUE_WAKE, "")]  # the batch lane's


def fields_of(base: dict[str, str], changes: Mapping[str, object]) -> dict[str, str]:
    merged = {**base, **{k: str(v) for k, v in changes.items() if v is not None}}
    return {k: v for k, v in merged.items() if changes.get(k, "") is not None}


def flat(fields: Mapping[str, str]) -> list[str]:
    return [item for pair in fields.items() for item in pair]


def job(status: str = "queued", **changes: object) -> dict[str, str]:
    base = {"id": "job_1", "service": "svc", "owner": "key:k1", "createdAt": str(NOW - 1000)}
    return fields_of({**base, "deadline": str(NOW + DEADLINE), "status": status, "attempts": "0"}, changes)


def payment(**changes: object) -> dict[str, str]:
    """A paid payment of 3 calls for 300 cents (100 a call)."""
    base = {"paymentId": "pay_1", "serviceId": "svc", "clientId": "", "amountCents": "300", "amountAtomic": "3000",
            "maxCalls": "3", "remainingCalls": "3", "usedCalls": "0", "status": "paid",
            "expiresAt": str(NOW + 60_000), "provider": "x402", "network": "base", "payer": "0xabc",
            "transaction": "0xt"}  # fmt: skip
    return fields_of(base, changes)


def entry(event: str, calls: int, **extra: str) -> dict[str, str]:
    """A ledger event of `payment()`'s (`extra` may rename its payment)."""
    return {"event": event, "at": AT, "paymentId": "pay_1", "serviceId": "svc", "clientId": "",
            "amountCents": str(100 * calls), "amountAtomic": str(1000 * calls), "calls": str(calls),
            "provider": "x402", "network": "base", "payer": "0xabc", "transaction": "0xt", **extra}  # fmt: skip


def batch(**changes: object) -> dict[str, str]:
    base = {"id": "bat_1", "owner": "key:k1", "total": "2", "status": "in_progress", "window": "1",
            "deadlineMs": str(DEADLINE), "retentionMs": str(RETENTION), "createdAt": str(NOW - 1000),
            "fanned": "1", "running": "0", "finished": "0"}  # fmt: skip
    return fields_of(base, changes)


def item(job_id: str, **fields: str) -> str:
    """A batch item as CREATE_BATCH stores it: job id, "", the job's field/value pairs."""
    pairs = ["id", job_id, "service", "svc", "owner", "key:k1", "batch", "bat_1", *flat(fields)]
    return json.dumps([job_id, "", *pairs])


def item_job(job_id: str, status: str = "queued", deadline: int = NOW + DEADLINE, **fields: object) -> dict[str, str]:
    """The job an item becomes."""
    base = {"createdAt": str(NOW), "deadline": str(deadline), "status": status, "id": job_id, "service": "svc"}
    return fields_of({**base, "owner": "key:k1", "batch": "bat_1"}, fields)


def webhook(subject: str, event: str) -> dict[str, str]:
    return {"id": f"msg_{subject}.{event}", "url": URL, "owner": "key:k1", "event": event, "subject": subject,
            "createdAt": str(NOW), "attempts": "0", "status": "pending"}  # fmt: skip


def told(subject: str, event: str) -> dict[str, State]:
    """A webhook delivery made for `event`, due now."""
    delivery = f"msg_{subject}.{event}"
    return {keys.webhook_key(delivery): Hash(webhook(subject, event), ttl=WEBHOOK_TTL),
            keys.WEBHOOKS_DUE: Sorted({delivery: NOW})}  # fmt: skip


def intent(**changes: object) -> dict[str, str]:
    base = {"digest": "d1", "kind": "inline", "paymentId": "pay_1", "jobId": "job_1", "nonceKey": "n",
            "payload": "{}", "requirements": "{}", "validBefore": "1700000600", "stage": "settling",
            "attempts": "0", "createdAt": str(NOW)}  # fmt: skip
    return fields_of(base, changes)


# ---------------------------------------------------------------- payments


CREATE_PAYMENT = [
    Row("a new payment is stored, due for the sweep, its events in the ledger",
        keys=[PAY, EXPIRY, LEDGER], args=["pay_1", NOW + 60_000, 90_000, "created,settled", AT, *flat(payment())],
        returns=1,
        after={PAY: Hash(payment(), ttl=90_000), EXPIRY: Sorted({"pay_1": NOW + 60_000}),
               LEDGER: Events([entry("created", 3), entry("settled", 3)])}),
    Row("a payment stored already stays as it is",
        before={PAY: Hash(payment(remainingCalls=1))},
        keys=[PAY, EXPIRY, LEDGER], args=["pay_1", NOW + 60_000, 90_000, "created", AT, *flat(payment())],
        returns=0),
]  # fmt: skip

EXPIRE_PAYMENTS = [
    Row("a paid payment past its expiry forfeits its unused calls",
        before={PAY: Hash(payment(expiresAt=NOW - 1, remainingCalls=2, usedCalls=1)),
                EXPIRY: Sorted({"pay_1": NOW - 1})},
        keys=[EXPIRY, LEDGER], args=[NOW, AT, 500], returns=1,
        after={PAY: Hash(payment(expiresAt=NOW - 1, remainingCalls=2, usedCalls=1, status="expired")),
               EXPIRY: None, LEDGER: Events([entry("expired", 2, reason="paid")])}),
    Row("entries of payments not paid, gone or extended are only dropped",
        before={PAY: Hash(payment(status="failed", expiresAt=NOW - 1)),
                PAY2: Hash(payment(paymentId="pay_2", expiresAt=NOW + 1000)),
                EXPIRY: Sorted({"pay_1": NOW - 1, "pay_2": NOW - 1, "pay_3": NOW - 1})},
        keys=[EXPIRY, LEDGER], args=[NOW, AT, 500], returns=3, after={EXPIRY: None}),
    Row("at most `batch` at once, and none not yet due",
        before={EXPIRY: Sorted({"pay_1": NOW - 2, "pay_2": NOW - 1, "pay_3": NOW + 5})},
        keys=[EXPIRY, LEDGER], args=[NOW, AT, 1], returns=1,
        after={EXPIRY: Sorted({"pay_2": NOW - 1, "pay_3": NOW + 5})}),
]  # fmt: skip

# ---------------------------------------------------------------- jobs

CREATED = job(createdAt=NOW)
SCORE = NOW - 86_400_000
QUEUED: dict[str, State | None] = {JOB: Hash(CREATED, ttl=TTL),
                                   QUEUE: Sorted({"job_1": SCORE})}  # fmt: skip
CONSUMED: dict[str, State | None] = {PAY: Hash(payment(remainingCalls=2, usedCalls=1)),
                                     LEDGER: Events([entry("consumed", 1, jobId="job_1")])}  # fmt: skip


def enqueue_keys(idem: str = "", pay: str = "", *intent_keys: str) -> list[str]:
    return [JOB, QUEUE, idem, pay, LEDGER, *intent_keys]


def enqueue(*, idempotency: str = "", caller: str = "", tenant: str = "") -> list[Any]:
    return [dict(id="job_1", score=SCORE, ttl=TTL, idempotency=idempotency, service="svc",
                 caller=caller, now=NOW, at=AT, tenant=tenant, fields=flat(CREATED))]  # fmt: skip


REFUSALS = [
    ("no such payment", None, "", "payment_required"),
    ("a payment still settling", payment(status="settling"), "", "payment_settling"),
    ("a payment that failed", payment(status="failed"), "", "payment_failed"),
    ("an expired payment", payment(status="expired"), "", "token_expired"),
    ("a payment at its expiry time", payment(expiresAt=NOW), "", "token_expired"),
    ("a payment without an expiry (a damaged hash)", payment(expiresAt=None), "", "token_expired"),
    ("a payment without its calls left (a damaged hash)", payment(remainingCalls=None), "", "no_calls_left"),
    ("a payment not paid", payment(status="pending"), "", "payment_required"),
    ("a payment for another service", payment(serviceId="other"), "", "wrong_service"),
    ("a key's payment without its key", payment(boundTo="key:k1"), "", "wrong_client"),
    ("a key's payment with another key", payment(boundTo="key:k1"), "key:k2", "wrong_client"),
    ("a wallet's payment with a key", payment(boundTo="0xabc"), "key:k1", "wrong_client"),
    ("a key's payment stored before boundTo, without its key", payment(clientId="key:k1"), "", "wrong_client"),
    ("a payment with no call left", payment(remainingCalls=0, usedCalls=3), "", "no_calls_left"),
]

ENQUEUE_JOB = [
    Row("a free call is stored and queued, and the workers woken",
        keys=enqueue_keys(), args=enqueue(), returns=[1, ""], after=QUEUED, published=WOKEN),
    Row("an idempotency key is kept as long as its job",
        keys=enqueue_keys(IDEM), args=enqueue(idempotency="job_1 h"), returns=[1, "job_1 h"],
        after={**QUEUED, IDEM: Text("job_1 h", ttl=TTL)}, published=WOKEN),
    Row("the job an idempotency key names already wins: nothing written, nothing charged",
        before={IDEM: Text("job_0 h"), PAY: Hash(payment())},
        keys=enqueue_keys(IDEM, PAY), args=enqueue(idempotency="job_1 h"), returns=[0, "job_0 h"]),
    Row("a paid call spends one call of its payment",
        before={PAY: Hash(payment())},
        keys=enqueue_keys("", PAY), args=enqueue(), returns=[1, ""], after={**QUEUED, **CONSUMED}, published=WOKEN),
    Row("a key's payment pays when its key presents it; the job acts for the payment's client",
        before={PAY: Hash(payment(clientId="key:k1", boundTo="key:k1"))},
        keys=enqueue_keys("", PAY), args=enqueue(caller="key:k1", tenant="anon"), returns=[1, ""],
        after={**QUEUED, JOB: Hash({**CREATED, "tenant": "key:k1"}, ttl=TTL),
               PAY: Hash(payment(clientId="key:k1", boundTo="key:k1", remainingCalls=2, usedCalls=1)),
               LEDGER: Events([entry("consumed", 1, clientId="key:k1", jobId="job_1")])},
        published=WOKEN),
    Row("a wallet's payment pays without a key; a payment naming no client leaves the job the fallback tenant",
        before={PAY: Hash(payment(boundTo="0xabc"))},
        keys=enqueue_keys("", PAY), args=enqueue(tenant="wallet:0xabc"), returns=[1, ""],
        after={**QUEUED, JOB: Hash({**CREATED, "tenant": "wallet:0xabc"}, ttl=TTL),
               PAY: Hash(payment(boundTo="0xabc", remainingCalls=2, usedCalls=1)),
               LEDGER: Events([entry("consumed", 1, jobId="job_1")])},
        published=WOKEN),
    *(Row(f"{name}: refused ({reason}), nothing written",
          before={PAY: Hash(paid)} if paid else {},
          keys=enqueue_keys("", PAY), args=enqueue(caller=caller), returns=[-1, reason])
      for name, paid, caller, reason in REFUSALS),
    Row("a job that waited for its x402 payment is released once: its call spent, its intent done",
        before={JOB: Hash(job("settling", createdAt=NOW)), PAY: Hash(payment()),
                INTENT: Hash(intent(stage="paid")), DUE: Sorted({"d1": NOW})},
        keys=enqueue_keys("", PAY, INTENT, DUE), args=enqueue(), returns=[1, ""],
        after={**QUEUED, **CONSUMED, INTENT: Hash(intent(stage="done")), DUE: None}, published=WOKEN),
    Row("a job no longer settling is not released again",
        before={JOB: Hash(CREATED), PAY: Hash(payment()), INTENT: Hash(intent(stage="paid")),
                DUE: Sorted({"d1": NOW})},
        keys=enqueue_keys("", PAY, INTENT, DUE), args=enqueue(idempotency="job_1 h"), returns=[0, "job_1 h"]),
]  # fmt: skip

HOOKED = {"webhook": URL, "events": "job.started,job.succeeded"}
START = [dict(now=NOW, channel=K(CHANNEL), retention=RETENTION, expired=EXPIRED, min_budget=1000, at=AT)]
STARTED = job("running", attempts=1, startedAt=NOW, **HOOKED)
RESTARTED = job("running", attempts=2, startedAt=NOW - 500, **HOOKED)
EXPIRED_JOB = job("expired", deadline=NOW, paymentId="pay_1", finishedAt=NOW, error=EXPIRED, refunded="expired")
BATCH_STARTED = job("running", attempts=1, startedAt=NOW, batch="bat_1")

START_JOB = [
    Row("a missing job: missing", keys=[JOB, LEDGER], args=START, returns=["missing", 0, []]),
    Row("an ended job does not start, and it leaves arq's queue",
        before={JOB: Hash(job("succeeded")), **ARQ_KEYS},
        keys=[JOB, LEDGER], args=START, returns=["succeeded", 0, Flat(job("succeeded"))], after=ARQ_GONE),
    Row("queued -> running: its first attempt, job.started told",
        before={JOB: Hash(job(**HOOKED))},
        keys=[JOB, LEDGER], args=START, returns=["running", 1, Flat(STARTED)],
        after={JOB: Hash(STARTED), **told("job_1", "job.started")}),
    Row("running again (its worker died): the next attempt, startedAt kept, nothing told",
        before={JOB: Hash(job("running", attempts=1, startedAt=NOW - 500, **HOOKED))},
        keys=[JOB, LEDGER], args=START, returns=["running", 2, Flat(RESTARTED)],
        after={JOB: Hash(RESTARTED)}),
    Row("past its deadline -> expired: its paid call given back, off arq's queue, announced",
        before={JOB: Hash(job("running", deadline=NOW, paymentId="pay_1")),
                PAY: Hash(payment(remainingCalls=2, usedCalls=1)),
                **ARQ_KEYS},
        keys=[JOB, LEDGER], args=START, returns=["expired", 0, Flat(EXPIRED_JOB)],
        after={JOB: Hash(EXPIRED_JOB, ttl=RETENTION), PAY: Hash(payment()), **ARQ_GONE,
               LEDGER: Events([entry("credited", 1, jobId="job_1", reason="expired")])},
        published=[(CHANNEL, "job_1")]),
    Row("a cancel asked for while it waited: it does not start",
        before={JOB: Hash(job(cancel=1))},
        keys=[JOB, LEDGER], args=START, returns=["cancel_requested", 0, Flat(job(cancel=1))]),
    Row("a retry with less than the smallest useful budget left: out of time",
        before={JOB: Hash(job(attempts=1, deadline=NOW + 500))},
        keys=[JOB, LEDGER], args=START,
        returns=["out_of_time", 1, Flat(job(attempts=1, deadline=NOW + 500))]),
    Row("a batch's job starting counts as running in its batch",
        before={JOB: Hash(job(batch="bat_1")), BATCH: Hash(batch())},
        keys=[JOB, LEDGER], args=START, returns=["running", 1, Flat(BATCH_STARTED)],
        after={JOB: Hash(BATCH_STARTED), BATCH: Hash(batch(running=1))}),
]  # fmt: skip


def book(*, horizon: int = 0) -> list[Any]:
    """START's options with a booking: a slot every 100 ms, waits of at most 5 s (`horizon`: a batch item's)."""
    return [dict(START[0], interval=100_000, cap=5_000_000, horizon=horizon)]


RUNNING = job("running", attempts=1, startedAt=NOW)
BOOKING = [JOB, LEDGER, keys.rate_limit_key("AK", "DetectFace")]


def start_job(now_us: int) -> list[Row]:
    """START_JOB's rows, and those that book the job's upstream slot as it starts (the server's clock)."""
    limiter = BOOKING[2]
    return [*START_JOB, *[
        Row("queued -> running, its slot free at once: booked, 0 (go now: the cancel flag was read in this step)",
            before={JOB: Hash(job(**HOOKED))}, keys=BOOKING, args=book(), returns=["running", 1, Flat(STARTED), 0],
            after={JOB: Hash(STARTED), limiter: Text(Near(now_us + 100_000, 250_000), ttl=1100),
                   **told("job_1", "job.started")}),
        Row("a slot a little ahead is booked: its wait (us)",
            before={JOB: Hash(job()), limiter: Text(str(now_us + 300_000))}, keys=BOOKING, args=book(),
            returns=["running", 1, Flat(RUNNING), Near(300_000, 250_000)],
            after={JOB: Hash(RUNNING), limiter: Text(str(now_us + 400_000), ttl=1400)}),
        Row("a slot further away than the cap: -1, nothing booked (the attempt is counted: the worker retries)",
            before={JOB: Hash(job()), limiter: Text(str(now_us + 6_000_000))}, keys=BOOKING, args=book(),
            returns=["running", 1, Flat(RUNNING), -1], after={JOB: Hash(RUNNING)}),
        Row("no wait past the deadline less the smallest useful budget: -1, nothing booked",
            before={JOB: Hash(job(deadline=NOW + 1500)), limiter: Text(str(now_us + 600_000))}, keys=BOOKING,
            args=book(), returns=["running", 1, Flat(job("running", attempts=1, startedAt=NOW, deadline=NOW + 1500)),
                                  -1],
            after={JOB: Hash(job("running", attempts=1, startedAt=NOW, deadline=NOW + 1500))}),
        Row("a batch item (its record says so) waits no longer than its horizon: -1, nothing booked",
            before={JOB: Hash(job(batch="bat_1")), BATCH: Hash(batch()), limiter: Text(str(now_us + 200_000))},
            keys=BOOKING, args=book(horizon=10_000), returns=["running", 1, Flat(BATCH_STARTED), -1],
            after={JOB: Hash(BATCH_STARTED), BATCH: Hash(batch(running=1))}),
        Row("a single call is not held to a batch item's horizon, whatever the options say",
            before={JOB: Hash(job()), limiter: Text(str(now_us + 200_000))}, keys=BOOKING, args=book(horizon=10_000),
            returns=["running", 1, Flat(RUNNING), Near(200_000, 150_000)],
            after={JOB: Hash(RUNNING), limiter: Text(str(now_us + 300_000), ttl=1300)}),
        Row("a job whose cancel was asked for books nothing",
            before={JOB: Hash(job(cancel=1))}, keys=BOOKING, args=book(),
            returns=["cancel_requested", 0, Flat(job(cancel=1))]),
        Row("an ended job books nothing",
            before={JOB: Hash(job("succeeded")), **ARQ_KEYS}, keys=BOOKING, args=book(),
            returns=["succeeded", 0, Flat(job("succeeded"))], after=ARQ_GONE),
    ]]  # fmt: skip


def finish(
    status: str = "succeeded",
    field: str = "result",
    payload: str = '{"ok":true}',
    *,
    refund: str = "",
    announce_max: int = 16_384,
    head: dict[str, str] | None = None,
    attempts: int = 1,
) -> list[Any]:
    """FINISH's options; `head`: the worker's announcement head (the job's fields but the payload)."""
    return [dict(id="job_1", status=status, now=NOW, field=field, payload=payload, retention=RETENTION,
                 channel=K(CHANNEL), refund=refund, at=AT, announce_max=announce_max,
                 head=json.dumps(head) if head is not None else "", attempts=attempts)]  # fmt: skip


SUCCEEDED = job("succeeded", attempts=1, finishedAt=NOW, result='{"ok":true}')
FAILED_JOB = job("failed", attempts=1, paymentId="pay_1", finishedAt=NOW, error=ERROR)
RUNS = {JOB: Hash(job("running", attempts=1))}
PAID_RUN = {JOB: Hash(job("running", attempts=1, paymentId="pay_1")),
            PAY: Hash(payment(remainingCalls=2, usedCalls=1))}  # fmt: skip
BATCH_RUN = {JOB: Hash(job("running", attempts=1, batch="bat_1"))}
BATCH_DONE = job("succeeded", attempts=1, batch="bat_1", finishedAt=NOW, result='{"ok":true}')
HEAD = {k: v for k, v in SUCCEEDED.items() if k != "result"}  # what the worker would send for RUNS

FINISH_JOB = [
    Row("running -> succeeded: the result kept for the retention time, off arq's queue, announced: 1",
        before={JOB: Hash(job("running", attempts=1, retryAt=NOW - 10)),
                **ARQ_KEYS},
        keys=[JOB, "", LEDGER], args=finish(), returns=1,
        after={JOB: Hash(SUCCEEDED, ttl=RETENTION), **ARQ_GONE}, published=[(CHANNEL, "job_1" + WITH_THE_JOB)]),
    Row("running -> failed through no fault of the caller: its paid call given back",
        before=PAID_RUN, keys=[JOB, PAY, LEDGER],
        args=finish("failed", "error", ERROR, refund="upstream"), returns=1,
        after={JOB: Hash({**FAILED_JOB, "refunded": "upstream"}), PAY: Hash(payment()),
               LEDGER: Events([entry("credited", 1, jobId="job_1", reason="upstream")])},
        published=[(CHANNEL, "job_1" + WITH_THE_JOB)]),
    Row("running -> failed by the caller's input: the call stays charged",
        before=PAID_RUN, keys=[JOB, PAY, LEDGER], args=finish("failed", "error", ERROR), returns=1,
        after={JOB: Hash(FAILED_JOB)}, published=[(CHANNEL, "job_1" + WITH_THE_JOB)]),
    Row("a call given back already is not given back again",
        before={**PAID_RUN, JOB: Hash(job("running", attempts=1, paymentId="pay_1", refunded="expired"))},
        keys=[JOB, PAY, LEDGER], args=finish("failed", "error", ERROR, refund="upstream"), returns=1,
        after={JOB: Hash({**FAILED_JOB, "refunded": "expired"})}, published=[(CHANNEL, "job_1" + WITH_THE_JOB)]),
    Row("queued with its cancel asked for -> canceled: its paid call given back",
        before={JOB: Hash(job(cancel=1, paymentId="pay_1")), PAY: Hash(payment(remainingCalls=2, usedCalls=1))},
        keys=[JOB, PAY, LEDGER], args=finish("canceled", "error", ERROR, refund="canceled"), returns=1,
        after={JOB: Hash(job("canceled", cancel=1, paymentId="pay_1", finishedAt=NOW, error=ERROR,
                             refunded="canceled")),
               PAY: Hash(payment()), LEDGER: Events([entry("credited", 1, jobId="job_1", reason="canceled")])},
        published=[(CHANNEL, "job_1" + WITH_THE_JOB)]),
    Row("a job that has ended stays as it is (0: the worker counts nothing), and it still leaves arq's queue",
        before={JOB: Hash(job("canceled")), **ARQ_KEYS}, keys=[JOB, "", LEDGER], args=finish(), returns=0,
        after=ARQ_GONE),
    Row("a batch's job finishing leaves the batch lane's queue and queues the batch's next item there",
        before={**BATCH_RUN, BATCH: Hash(batch(running=1)), ITEMS: Items([item("job_2")]),
                BATCH_JOBS: Items(["job_1"]), BATCH_QUEUE: Sorted({"job_1": NOW + 5000})},
        keys=[JOB, "", LEDGER], args=finish(), returns=1,
        after={JOB: Hash(BATCH_DONE),
               BATCH: Hash(batch(fanned=2, succeeded=1, finished=1)), ITEMS: None,
               BATCH_JOBS: Items(["job_1", "job_2"]), DONE: Items(["job_1"]),
               JOB2: Hash(item_job("job_2"), ttl=TTL),
               BATCH_QUEUE: Sorted({"job_2": NOW})},
        published=[*BATCH_WOKEN, (CHANNEL, "job_1" + WITH_THE_JOB)]),
    Row("the last job of a batch completes it: kept for the retention time, batch.completed told, announced",
        before={**BATCH_RUN, BATCH: Hash(batch(total=1, running=1, webhook=URL, events="batch.completed")),
                BATCH_JOBS: Items(["job_1"])},
        keys=[JOB, "", LEDGER], args=finish(), returns=1,
        after={JOB: Hash(BATCH_DONE),
               BATCH: Hash(batch(total=1, succeeded=1, finished=1, status="completed", completedAt=NOW,
                                 webhook=URL, events="batch.completed"), ttl=RETENTION),
               BATCH_JOBS: Items(["job_1"], ttl=RETENTION), DONE: Items(["job_1"], ttl=RETENTION),
               **told("bat_1", "batch.completed")},
        published=[(CHANNEL, "bat_1"), (CHANNEL, "job_1" + WITH_THE_JOB)]),
    Row("the worker's head still true (no cancel since, its attempt, nothing given back): it is announced with the "
        "payload as it is, and nothing is read back",
        before=RUNS, keys=[JOB, "", LEDGER], args=finish(head=HEAD), returns=1,
        after={JOB: Hash(SUCCEEDED, ttl=RETENTION)},
        published=[(CHANNEL, "job_1" + WITH_THE_HEAD + WITH_THE_JOB)]),
    Row("a cancel asked for while it ran: the head is not true, the job is read and announced",
        before={JOB: Hash(job("running", attempts=1, cancel=1))}, keys=[JOB, "", LEDGER], args=finish(head=HEAD),
        returns=1, after={JOB: Hash({**SUCCEEDED, "cancel": "1"})}, published=[(CHANNEL, "job_1" + WITH_THE_JOB)]),
    Row("another attempt started it since (a lost lease): the head is not true",
        before={JOB: Hash(job("running", attempts=2))}, keys=[JOB, "", LEDGER], args=finish(head=HEAD),
        returns=1, after={JOB: Hash({**SUCCEEDED, "attempts": "2"})}, published=[(CHANNEL, "job_1" + WITH_THE_JOB)]),
    Row("a paid call given back here: the head is not true",
        before=PAID_RUN, keys=[JOB, PAY, LEDGER],
        args=finish("failed", "error", ERROR, refund="upstream_failed", head=HEAD), returns=1,
        after={JOB: Hash({**FAILED_JOB, "refunded": "upstream_failed"}), PAY: Hash(payment()),
               LEDGER: Events([entry("credited", 1, jobId="job_1", reason="upstream_failed")])},
        published=[(CHANNEL, "job_1" + WITH_THE_JOB)]),
    Row("a job too big to announce whole is announced by its id alone",
        before=RUNS, keys=[JOB, "", LEDGER], args=finish(announce_max=10), returns=1,
        after={JOB: Hash(SUCCEEDED)}, published=[(CHANNEL, "job_1")]),
]  # fmt: skip

BEGIN_CALL = [
    Row("a cancel asked for stops the call: 0",
        before={JOB: Hash(job("running", cancel=1))}, keys=[JOB], args=[], returns=0),
    Row("otherwise the call may go: 1", before={JOB: Hash(job("running"))}, keys=[JOB], args=[], returns=1),
]  # fmt: skip

REQUEUE_JOB = [
    Row("running -> queued until its retry time, its last error kept",
        before=RUNS, keys=[JOB], args=[NOW + 500, ERROR], returns=1,
        after={JOB: Hash(job(attempts=1, retryAt=NOW + 500, lastError=ERROR))}),
    Row("a job not running is left alone: 0",
        before={JOB: Hash(job("canceled"))}, keys=[JOB], args=[NOW + 500, ERROR], returns=0),
    Row("a batch's job waiting for its retry no longer counts as running in its batch",
        before={**BATCH_RUN, BATCH: Hash(batch(running=1))}, keys=[JOB], args=[NOW + 500, ERROR],
        returns=1,
        after={JOB: Hash(job(attempts=1, batch="bat_1", retryAt=NOW + 500, lastError=ERROR)),
               BATCH: Hash(batch())}),
]  # fmt: skip

CANCEL = [NOW, ERROR, RETENTION, K(CHANNEL), AT]
CANCELED_JOB = job("canceled", paymentId="pay_1", lastError="e", finishedAt=NOW, error=ERROR, refunded="canceled")

CANCEL_JOB = [
    Row("queued -> canceled at once: off arq's queue, its paid call given back, announced",
        before={JOB: Hash(job(paymentId="pay_1", retryAt=NOW + 100, lastError="e")),
                PAY: Hash(payment(remainingCalls=2, usedCalls=1)), **ARQ_KEYS},
        keys=[JOB, QUEUE, LEDGER], args=CANCEL, returns="canceled",
        after={JOB: Hash(CANCELED_JOB, ttl=RETENTION), PAY: Hash(payment()), **ARQ_GONE,
               LEDGER: Events([entry("credited", 1, jobId="job_1", reason="canceled")])},
        published=[(CHANNEL, "job_1")]),
    Row("running: asked to stop",
        before={JOB: Hash(job("running"))}, keys=[JOB, QUEUE, LEDGER], args=CANCEL, returns="cancel_requested",
        after={JOB: Hash(job("running", cancel=1))}),
    Row("ended: left as it is",
        before={JOB: Hash(job("succeeded"))}, keys=[JOB, QUEUE, LEDGER], args=CANCEL, returns="succeeded"),
    Row("settling (its payment not known yet): left as it is",
        before={JOB: Hash(job("settling"))}, keys=[JOB, QUEUE, LEDGER], args=CANCEL, returns="settling"),
    Row("missing", keys=[JOB, QUEUE, LEDGER], args=CANCEL, returns="missing"),
    Row("a batch's queued job canceled counts in its batch",
        before={JOB: Hash(job(batch="bat_1")), BATCH: Hash(batch(fanned=2))},
        keys=[JOB, QUEUE, LEDGER], args=CANCEL, returns="canceled",
        after={JOB: Hash(job("canceled", batch="bat_1", finishedAt=NOW, error=ERROR), ttl=RETENTION),
               BATCH: Hash(batch(fanned=2, canceled=1, finished=1)), DONE: Items(["job_1"])},
        published=[(CHANNEL, "job_1")]),
]  # fmt: skip

CANCEL_JOBS = [
    Row("queued ones canceled, running ones asked to stop, the others left",
        before={JOB: Hash(job(paymentId="pay_1")), PAY: Hash(payment(remainingCalls=2, usedCalls=1)),
                JOB2: Hash(job("running", id="job_2")), JOB3: Hash(job("succeeded", id="job_3"))},
        keys=[QUEUE, LEDGER], args=[*CANCEL, "job_1", "job_2", "job_3", "job_4"], returns=[1, 1],
        after={JOB: Hash(job("canceled", paymentId="pay_1", finishedAt=NOW, error=ERROR, refunded="canceled")),
               PAY: Hash(payment()), LEDGER: Events([entry("credited", 1, jobId="job_1", reason="canceled")]),
               JOB2: Hash(job("running", id="job_2", cancel=1))},
        published=[(CHANNEL, "job_1")]),
    Row("no jobs: nothing", keys=[QUEUE, LEDGER], args=CANCEL, returns=[0, 0]),
]  # fmt: skip

# ---------------------------------------------------------------- batches

BATCH_FIELDS = {"id": "bat_1", "owner": "key:k1", "total": "2", "status": "in_progress", "window": "1",
                "deadlineMs": str(DEADLINE), "retentionMs": str(RETENTION), "createdAt": str(NOW)}  # fmt: skip
BATCH_TTL = 2 * DEADLINE + RETENTION


def create_batch(*payments: tuple[str, str, int], idempotency: str = "", window: int = 1) -> list[Any]:
    return [dict(id="bat_1", now=NOW, at=AT, ttl=BATCH_TTL, idempotency=idempotency, caller="key:k1",
                 window=window, payments=[(K(key), service, calls) for key, service, calls in payments],
                 fields=flat(BATCH_FIELDS)), item("job_1"), item("job_2")]  # fmt: skip


PAYMENT2 = {"paymentId": "pay_2", "serviceId": "svc2"}

CREATE_BATCH = [
    Row("a free batch is stored and its first window queued as jobs",
        keys=[BATCH, ITEMS, "", LEDGER], args=create_batch(), returns=[1, "", 0],
        after={BATCH: Hash({**BATCH_FIELDS, "fanned": "1"}, ttl=BATCH_TTL),
               ITEMS: Items([item("job_2")], ttl=BATCH_TTL), BATCH_JOBS: Items(["job_1"], ttl=BATCH_TTL),
               JOB: Hash(item_job("job_1"), ttl=TTL),
               BATCH_QUEUE: Sorted({"job_1": NOW})},
        published=BATCH_WOKEN),
    Row("every payment pays for its items, one ledger event each; the idempotency key kept",
        before={PAY: Hash(payment()), PAY2: Hash(payment(**PAYMENT2))},
        keys=[BATCH, ITEMS, IDEM, LEDGER], args=create_batch((PAY, "svc", 2), (PAY2, "svc2", 1),
                                                             idempotency="bat_1 h", window=2),
        returns=[1, "bat_1 h", 0],
        after={BATCH: Hash({**BATCH_FIELDS, "fanned": "2"}, ttl=BATCH_TTL), IDEM: Text("bat_1 h", ttl=BATCH_TTL),
               BATCH_JOBS: Items(["job_1", "job_2"], ttl=BATCH_TTL),
               JOB: Hash(item_job("job_1"), ttl=TTL),
               JOB2: Hash(item_job("job_2"), ttl=TTL),
               BATCH_QUEUE: Sorted({"job_1": NOW, "job_2": NOW}),
               PAY: Hash(payment(remainingCalls=1, usedCalls=2)),
               PAY2: Hash(payment(**PAYMENT2, remainingCalls=2, usedCalls=1)),
               LEDGER: Events([entry("consumed", 2, batchId="bat_1"),
                               entry("consumed", 1, **PAYMENT2, batchId="bat_1")])},
        published=BATCH_WOKEN),
    Row("the batch an idempotency key names already wins: nothing written, nothing charged",
        before={IDEM: Text("bat_0 h"), PAY: Hash(payment())},
        keys=[BATCH, ITEMS, IDEM, LEDGER], args=create_batch((PAY, "svc", 1), idempotency="bat_1 h"),
        returns=[0, "bat_0 h", 0]),
    Row("one payment short of its calls: refused with its index, nothing written, nothing charged",
        before={PAY: Hash(payment()), PAY2: Hash(payment(**PAYMENT2, remainingCalls=1, usedCalls=2))},
        keys=[BATCH, ITEMS, "", LEDGER], args=create_batch((PAY, "svc", 1), (PAY2, "svc2", 2)),
        returns=[-1, "no_calls_left", 1]),
]  # fmt: skip

CANCEL_BATCH_ARGS = [1, NOW, AT, K(CHANNEL), ERROR]
CANCELED_ITEM = item_job("job_2", "canceled", NOW, paymentId="pay_1", paymentKind="token", finishedAt=NOW, error=ERROR,
                         refunded="canceled")  # fmt: skip

CANCEL_BATCH = [
    Row("missing", keys=[BATCH, QUEUE, LEDGER], args=CANCEL_BATCH_ARGS, returns=["missing", 0]),
    Row("in progress -> canceling, and up to `count` of its items become canceled jobs, their paid calls given back",
        before={BATCH: Hash(batch(total=3, running=1)), BATCH_JOBS: Items(["job_1"]),
                ITEMS: Items([item("job_2", paymentId="pay_1", paymentKind="token"), item("job_3")]),
                PAY: Hash(payment(remainingCalls=2, usedCalls=1))},
        keys=[BATCH, QUEUE, LEDGER], args=CANCEL_BATCH_ARGS, returns=["canceling", 1],
        after={BATCH: Hash(batch(total=3, running=1, fanned=2, status="canceling", cancel=1, canceled=1,
                                 finished=1)),
               ITEMS: Items([item("job_3")]), BATCH_JOBS: Items(["job_1", "job_2"]), DONE: Items(["job_2"]),
               JOB2: Hash(CANCELED_ITEM, ttl=RETENTION), PAY: Hash(payment()),
               LEDGER: Events([entry("credited", 1, jobId="job_2", reason="canceled")])},
        published=[(CHANNEL, "job_2")]),
    Row("the last items canceled end the batch: canceled, kept for the retention time, announced",
        before={BATCH: Hash(batch(status="canceling", cancel=1, canceled=1, finished=1)),
                ITEMS: Items([item("job_2")]), BATCH_JOBS: Items(["job_1"]), DONE: Items(["job_1"])},
        keys=[BATCH, QUEUE, LEDGER], args=[500, NOW, AT, K(CHANNEL), ERROR], returns=["canceled", 0],
        after={BATCH: Hash(batch(fanned=2, status="canceled", cancel=1, canceled=2, finished=2, completedAt=NOW),
                           ttl=RETENTION),
               ITEMS: None, BATCH_JOBS: Items(["job_1", "job_2"], ttl=RETENTION),
               DONE: Items(["job_1", "job_2"], ttl=RETENTION),
               JOB2: Hash(item_job("job_2", "canceled", NOW, finishedAt=NOW, error=ERROR), ttl=RETENTION)},
        published=[(CHANNEL, "bat_1"), (CHANNEL, "job_2")]),
    Row("a completed batch stays as it is",
        before={BATCH: Hash(batch(status="completed"))}, keys=[BATCH, QUEUE, LEDGER], args=CANCEL_BATCH_ARGS,
        returns=["completed", 0]),
]  # fmt: skip

# ---------------------------------------------------------------- the upstream's rate limit (the server's clock)

LIMITER = keys.rate_limit_key("AK", "DetectFace")
BOOK = [100_000, 1_000_000]  # interval us, max wait us


def reserve_slot(now_us: int) -> list[Row]:
    return [
        Row("a job whose cancel was asked for books nothing: -2",
            before={JOB: Hash(job("running", cancel=1))}, keys=[LIMITER, JOB], args=BOOK, returns=-2),
        Row("a free slot is booked now: 0, the job's call may go",
            before={JOB: Hash(job("running"))}, keys=[LIMITER, JOB], args=BOOK, returns=0,
            after={LIMITER: Text(Near(now_us + 100_000, 1_000_000), ttl=1100)}),
        Row("a slot further away than the caller can wait: nothing booked, -1",
            before={LIMITER: Text(str(now_us + 5_000_000))}, keys=[LIMITER, ""], args=BOOK, returns=-1),
        Row("a slot a little ahead is booked: its wait (us)",
            before={LIMITER: Text(str(now_us + 300_000))}, keys=[LIMITER, ""], args=BOOK,
            returns=Near(300_000, 250_000), after={LIMITER: Text(str(now_us + 400_000), ttl=1400)}),
    ]  # fmt: skip


# ---------------------------------------------------------------- x402 settlement intents

KEEP = 3_600_000
BEGIN_KEYS = [NONCE, INTENT, DUE, PAY, JOB, IDEM]


def begin(job_fields: dict[str, str] | None, **intent_changes: object) -> list[Any]:
    return [dict(holder="settling d1", claim_ttl=600, due=NOW + 5000, keep=KEEP, idempotency="job_1 h",
                 intent=flat(intent(**intent_changes)), payment=flat(payment(status="settling")),
                 job=flat(job_fields) if job_fields is not None else [])]  # fmt: skip


RECORDED = {NONCE: Text("settling d1", ttl=600_000), INTENT: Hash(intent(), ttl=KEEP),
            DUE: Sorted({"d1": NOW + 5000}), PAY: Hash(payment(status="settling"), ttl=KEEP)}  # fmt: skip

SETTLEMENT_BEGIN = [
    Row("a free authorization is claimed; the intent, its payment, its job and the idempotency key recorded",
        keys=BEGIN_KEYS, args=begin(job("settling")), returns="",
        after={**RECORDED, JOB: Hash(job("settling"), ttl=KEEP), IDEM: Text("job_1 h", ttl=KEEP)}),
    Row("a purchase records no job and no idempotency key",
        keys=[NONCE, INTENT, DUE, PAY, "", ""], args=begin(None, kind="purchase", jobId=""), returns="",
        after={**RECORDED, INTENT: Hash(intent(kind="purchase", jobId=""), ttl=KEEP)}),
    Row("an idempotency key another job holds stays its",
        before={IDEM: Text("job_0 h")}, keys=BEGIN_KEYS, args=begin(job("settling")), returns="",
        after={**RECORDED, JOB: Hash(job("settling"), ttl=KEEP)}),
    Row("an authorization claimed already: its holder, nothing written",
        before={NONCE: Text("pay_0 d0")}, keys=BEGIN_KEYS, args=begin(job("settling")), returns="pay_0 d0"),
]  # fmt: skip

PAID_KEYS = [INTENT, DUE, NONCE, PAY, EXPIRY, LEDGER]
PAID_ARGS = [dict(digest="d1", holder="pay_1 d1", at=AT, payment_ttl=90_000, expires=NOW + 60_000,
                  release_due=NOW + 30_000, fields=["status", "paid", "paidAt", str(NOW)])]  # fmt: skip
PROVEN = {PAY: Hash(payment(paidAt=NOW), ttl=90_000), EXPIRY: Sorted({"pay_1": NOW + 60_000}),
          LEDGER: Events([entry("created", 3), entry("settled", 3)])}  # fmt: skip

SETTLEMENT_PAID = [
    Row("an inline payment proven: settling -> paid, due until its job is released, the nonce its payment's",
        before={INTENT: Hash(intent()), DUE: Sorted({"d1": NOW}), NONCE: Text("settling d1"),
                PAY: Hash(payment(status="settling"))},
        keys=PAID_KEYS, args=PAID_ARGS, returns="settling",
        after={**PROVEN, INTENT: Hash(intent(stage="paid")), DUE: Sorted({"d1": NOW + 30_000}),
               NONCE: Text("pay_1 d1")}),
    Row("a purchase proven is done at once; a nonce another payload holds is not rewritten",
        before={INTENT: Hash(intent(kind="purchase")), DUE: Sorted({"d1": NOW}), NONCE: Text("settling d9"),
                PAY: Hash(payment(status="settling"))},
        keys=PAID_KEYS, args=PAID_ARGS, returns="settling",
        after={**PROVEN, INTENT: Hash(intent(kind="purchase", stage="done")), DUE: None}),
    Row("a late proof of an unconfirmed payment: paid, the intent done (its call a credit)",
        before={INTENT: Hash(intent(stage="unconfirmed")), DUE: Sorted({"d1": NOW}), NONCE: Text("unconfirmed d1"),
                PAY: Hash(payment(status="unconfirmed"))},
        keys=PAID_KEYS, args=PAID_ARGS, returns="unconfirmed",
        after={**PROVEN, INTENT: Hash(intent(stage="done")), DUE: None, NONCE: Text("pay_1 d1")}),
    Row("an intent that has ended: its stage, nothing moves",
        before={INTENT: Hash(intent(stage="done")), PAY: Hash(payment())}, keys=PAID_KEYS, args=PAID_ARGS,
        returns="done"),
    Row("no intent: missing", keys=PAID_KEYS, args=PAID_ARGS, returns="missing"),
]  # fmt: skip

ABANDON_KEYS = [INTENT, DUE, NONCE, PAY, JOB, IDEM, IDENTIFIER]
ABANDON_ARGS = [dict(digest="d1", holder="settling d1", idempotency="job_1 h", now=NOW, error=ERROR,
                     retention=RETENTION, channel=K(CHANNEL))]  # fmt: skip
BEGUN = {INTENT: Hash(intent()), DUE: Sorted({"d1": NOW}), PAY: Hash(payment(status="settling"))}
BEGUN_GONE: dict[str, State | None] = dict.fromkeys(BEGUN)
FAILED_HOOKED = {"webhook": URL, "events": "job.failed"}

SETTLEMENT_ABANDON = [
    Row("refused at once: what begin wrote goes, the waiting job fails (job.failed told), announced",
        before={**BEGUN, NONCE: Text("settling d1"), JOB: Hash(job("settling", **FAILED_HOOKED)),
                IDEM: Text("job_1 h"), IDENTIFIER: Text("d1")},
        keys=ABANDON_KEYS, args=ABANDON_ARGS, returns=1,
        after={**BEGUN_GONE, NONCE: None, IDEM: None, IDENTIFIER: None,
               JOB: Hash(job("failed", finishedAt=NOW, error=ERROR, **FAILED_HOOKED), ttl=RETENTION),
               **told("job_1", "job.failed")},
        published=[(CHANNEL, "job_1")]),
    Row("claims that are no longer this payload's stay",
        before={**BEGUN, NONCE: Text("settling d0"), IDEM: Text("job_0 h"), IDENTIFIER: Text("d0")},
        keys=[INTENT, DUE, NONCE, PAY, "", IDEM, IDENTIFIER], args=ABANDON_ARGS, returns=1, after=BEGUN_GONE),
    Row("an intent that has ended: 0, nothing moves",
        before={**BEGUN, INTENT: Hash(intent(stage="paid")), NONCE: Text("settling d1")},
        keys=ABANDON_KEYS, args=ABANDON_ARGS, returns=0),
]  # fmt: skip

UNCERTAIN_KEYS = [INTENT, DUE, PAY, LEDGER, JOB]
UNCERTAIN_ARGS = [dict(digest="d1", due=NOW + 10_000, at=AT, reason="timeout", now=NOW, retention=RETENTION)]
SETTLING_HOOKED = {"webhook": URL, "events": "job.settling"}

SETTLEMENT_UNCERTAIN = [
    Row("the first answer that says nothing: due again later, said once in the ledger and to the job's webhook",
        before={**BEGUN, JOB: Hash(job("settling", **SETTLING_HOOKED))},
        keys=UNCERTAIN_KEYS, args=UNCERTAIN_ARGS, returns=1,
        after={INTENT: Hash(intent(attempts=1, lastError="timeout")), DUE: Sorted({"d1": NOW + 10_000}),
               LEDGER: Events([entry("settling", 3, reason="timeout")]), **told("job_1", "job.settling")}),
    Row("later ones are only counted; an intent no longer due is not made due",
        before={INTENT: Hash(intent(attempts=1, lastError="dropped")), PAY: Hash(payment(status="settling")),
                JOB: Hash(job("settling", **SETTLING_HOOKED))},
        keys=UNCERTAIN_KEYS, args=UNCERTAIN_ARGS, returns=1,
        after={INTENT: Hash(intent(attempts=2, lastError="timeout"))}),
    Row("an intent not settling: 0, nothing moves",
        before={**BEGUN, INTENT: Hash(intent(stage="paid"))}, keys=UNCERTAIN_KEYS, args=UNCERTAIN_ARGS, returns=0),
]  # fmt: skip


def failed_args(stage: str) -> list[Any]:
    return [dict(digest="d1", at=AT, reason="invalid", now=NOW, error=ERROR, retention=RETENTION,
                 channel=K(CHANNEL), stage=stage)]  # fmt: skip


FAILED_KEYS = [INTENT, DUE, PAY, LEDGER, NONCE, JOB]

SETTLEMENT_FAILED = [
    Row("never payable: the intent and its payment failed, the nonce marked, the waiting job failed, announced",
        before={**BEGUN, NONCE: Text("settling d1"), JOB: Hash(job("settling"))},
        keys=FAILED_KEYS, args=failed_args("failed"), returns=1,
        after={INTENT: Hash(intent(stage="failed", lastError="invalid")), DUE: None,
               PAY: Hash(payment(status="failed", failReason="invalid")), NONCE: Text("failed d1"),
               LEDGER: Events([entry("settle_failed", 3, reason="invalid")]),
               JOB: Hash(job("failed", finishedAt=NOW, error=ERROR), ttl=RETENTION)},
        published=[(CHANNEL, "job_1")]),
    Row("no proof either way: unconfirmed; a nonce no longer this intent's is kept",
        before={**BEGUN, INTENT: Hash(intent(kind="purchase")), NONCE: Text("settling d0")},
        keys=[INTENT, DUE, PAY, LEDGER, NONCE, ""], args=failed_args("unconfirmed"), returns=1,
        after={INTENT: Hash(intent(kind="purchase", stage="unconfirmed", lastError="invalid")), DUE: None,
               PAY: Hash(payment(status="unconfirmed", failReason="invalid")),
               LEDGER: Events([entry("settle_unconfirmed", 3, reason="invalid")])}),
    Row("an intent that has ended: 0, nothing moves",
        before={**BEGUN, INTENT: Hash(intent(stage="done"))}, keys=FAILED_KEYS, args=failed_args("failed"),
        returns=0),
]  # fmt: skip

IDENTIFIER_CLAIM = [
    Row("an identifier naming nothing now names the digest: ''",
        keys=[IDENTIFIER], args=["d1", 600], returns="", after={IDENTIFIER: Text("d1", ttl=600_000)}),
    Row("an identifier naming a payload already: its digest",
        before={IDENTIFIER: Text("d0")}, keys=[IDENTIFIER], args=["d1", 600], returns="d0"),
]  # fmt: skip

IDENTIFIER_RELEASE = [
    Row("an identifier naming the digest names nothing",
        before={IDENTIFIER: Text("d1")}, keys=[IDENTIFIER], args=["d1"], returns=0, after={IDENTIFIER: None}),
    Row("an identifier naming another digest stays",
        before={IDENTIFIER: Text("d0")}, keys=[IDENTIFIER], args=["d1"], returns=0),
]  # fmt: skip

SETTLEMENT_LEASE = [
    Row("due intents, at most `limit`, are leased: due again once the lease ends",
        before={DUE: Sorted({"d1": NOW - 10, "d2": NOW - 5, "d3": NOW + 100})},
        keys=[DUE], args=[NOW, 30_000, 1], returns=["d1"],
        after={DUE: Sorted({"d1": NOW + 30_000, "d2": NOW - 5, "d3": NOW + 100})}),
    Row("none due: none taken",
        before={DUE: Sorted({"d3": NOW + 100})}, keys=[DUE], args=[NOW, 30_000, 10], returns=[]),
]  # fmt: skip

# ---------------------------------------------------------------- workers: claiming jobs, webhook deliveries


def claim(room: int, **starts: Any) -> list[Any]:
    return [dict(now=NOW, lease=5000, mark=300_000, tool_prefix="job_", room=room, read=room + 16, **starts)]


def starting(*services: str) -> dict[str, Any]:
    """CLAIM's options to start the jobs of `services` as it claims them: START's, and a booking for each (a slot
    every 100 ms, waits of at most 5 s)."""
    booking = dict(limiter=K(BOOKING[2]), interval=100_000, cap=5_000_000, horizon=0)
    return dict(start=dict(START[0], ledger=K(LEDGER)), bookings={service: booking for service in services})


CLAIM_JOBS = [
    Row("a due tool job is leased: moved to the lease's end (no mark); its id, score as read, service, and nil",
        before={QUEUE: Sorted({"job_1": NOW - 100}), JOB: Hash(job())}, keys=[QUEUE], args=claim(2),
        returns=["job_1", str(NOW - 100), "svc", None],
        after={MARK: None, QUEUE: Sorted({"job_1": NOW + 5000}), JOB: Hash(job())}),
    Row("a due tool job with no hash (gone) is leased too, its service ''",
        before={QUEUE: Sorted({"job_1": NOW - 100})}, keys=[QUEUE], args=claim(2, **starting("svc")),
        returns=["job_1", str(NOW - 100), "", None], after={MARK: None, QUEUE: Sorted({"job_1": NOW + 5000})}),
    Row("a cron marked already (running elsewhere) is skipped; another of arq's crons gets arq's full mark",
        before={QUEUE: Sorted({"cron:a": NOW - 100, "cron:sweep": NOW - 50}), ARQ_IN_PROGRESS_PREFIX + "cron:a":
                Text("1")}, keys=[QUEUE], args=claim(2, **starting("svc")),
        returns=["cron:sweep", str(NOW - 50), "", None],
        after={ARQ_IN_PROGRESS_PREFIX + "cron:sweep": Text("1", ttl=300_000),
               QUEUE: Sorted({"cron:a": NOW - 100, "cron:sweep": NOW - 50})}),
    Row("no more than the worker has room for, and none not yet due",
        before={QUEUE: Sorted({"job_1": NOW - 100, "job_2": NOW - 50, "job_3": NOW + 1000})},
        keys=[QUEUE], args=claim(1), returns=["job_1", str(NOW - 100), "", None],
        after={QUEUE: Sorted({"job_1": NOW + 5000, "job_2": NOW - 50, "job_3": NOW + 1000})}),
    Row("a job of a service it has no booking for is only claimed: START_JOB starts it",
        before={QUEUE: Sorted({"job_1": NOW - 100}), JOB: Hash(job())}, keys=[QUEUE],
        args=claim(2, **starting("other")),
        returns=["job_1", str(NOW - 100), "svc", None],
        after={QUEUE: Sorted({"job_1": NOW + 5000}), JOB: Hash(job())}),
    Row("a job it cannot start (a cancel asked for) gets START_JOB's answer, and is left as it was",
        before={QUEUE: Sorted({"job_1": NOW - 100}), JOB: Hash(job(cancel=1))}, keys=[QUEUE],
        args=claim(2, **starting("svc")),
        returns=["job_1", str(NOW - 100), "svc", ["cancel_requested", 0, Flat(job(cancel=1))]],
        after={QUEUE: Sorted({"job_1": NOW + 5000}), JOB: Hash(job(cancel=1))}),
    Row("an ended job it claims leaves arq's queue as START_JOB would take it off",
        before={QUEUE: Sorted({"job_1": NOW - 100}), JOB: Hash(job("succeeded"))}, keys=[QUEUE],
        args=claim(2, **starting("svc")),
        returns=["job_1", str(NOW - 100), "svc", ["succeeded", 0, Flat(job("succeeded"))]],
        after={QUEUE: None, JOB: Hash(job("succeeded"))}),
]  # fmt: skip


def claim_jobs(now_us: int) -> list[Row]:
    """CLAIM's rows, and the one that starts a job as it claims it, booking its slot (the server's clock)."""
    limiter = BOOKING[2]
    return [*CLAIM_JOBS,
        Row("a due tool job of a service it has a booking for is also started: START_JOB's answer, its slot booked",
            before={QUEUE: Sorted({"job_1": NOW - 100}), JOB: Hash(job(**HOOKED))}, keys=[QUEUE],
            args=claim(2, **starting("svc")),
            returns=["job_1", str(NOW - 100), "svc", ["running", 1, Flat(STARTED), 0]],
            after={QUEUE: Sorted({"job_1": NOW + 5000}), JOB: Hash(STARTED),
                   limiter: Text(Near(now_us + 100_000, 250_000), ttl=1100), **told("job_1", "job.started")}),
    ]  # fmt: skip


CLAIM_DELIVERIES = [
    Row("due deliveries, at most `count`, are leased: due again once the lease ends",
        before={keys.WEBHOOKS_DUE: Sorted({"m1": NOW - 10, "m2": NOW - 5, "m3": NOW + 100})},
        keys=[keys.WEBHOOKS_DUE], args=[NOW, 30_000, 1], returns=["m1"],
        after={keys.WEBHOOKS_DUE: Sorted({"m1": NOW + 30_000, "m2": NOW - 5, "m3": NOW + 100})}),
    Row("none due: none taken",
        before={keys.WEBHOOKS_DUE: Sorted({"m3": NOW + 100})}, keys=[keys.WEBHOOKS_DUE], args=[NOW, 30_000, 32],
        returns=[]),
]  # fmt: skip


# ---------------------------------------------------------------- API keys and their rate limit (api/apikeys.py)

API_KEY, API_KEYS, API_RATE = apikeys.apikey_key("k1"), apikeys.KEYS_SET, apikeys.apikey_rate_key("k1")
KEY_FIELDS = {"id": "k1", "name": "ci", "hash": "ab12", "services": "*", "rate": "5.0", "burst": "10",
              "createdAt": "2023-11-14T22:13:20.000000Z", "revokedAt": ""}  # fmt: skip
REVOKED_AT = "2023-11-15T08:00:00.000000Z"

APIKEY_CREATE = [
    Row("a new key is stored and listed",
        keys=[API_KEY, API_KEYS], args=["k1", *flat(KEY_FIELDS)], returns=1,
        after={API_KEY: Hash(KEY_FIELDS), API_KEYS: Members(frozenset({"k1"}))}),
    Row("an id taken already: 0, nothing changes (the caller draws another)",
        before={API_KEY: Hash({**KEY_FIELDS, "name": "old"}), API_KEYS: Members(frozenset({"k1"}))},
        keys=[API_KEY, API_KEYS], args=["k1", *flat(KEY_FIELDS)], returns=0),
]  # fmt: skip

APIKEY_REVOKE = [
    Row("an active key is revoked now; its rate-limit state goes",
        before={API_KEY: Hash(KEY_FIELDS), API_RATE: Text("1700000000000000")},
        keys=[API_KEY, API_RATE], args=[REVOKED_AT], returns=1,
        after={API_KEY: Hash({**KEY_FIELDS, "revokedAt": REVOKED_AT}), API_RATE: None}),
    Row("a key revoked already keeps its first revocation time",
        before={API_KEY: Hash({**KEY_FIELDS, "revokedAt": AT}), API_RATE: Text("1700000000000000")},
        keys=[API_KEY, API_RATE], args=[REVOKED_AT], returns=1, after={API_RATE: None}),
    Row("an unknown key: 0, nothing changes",
        before={API_RATE: Text("1700000000000000")}, keys=[API_KEY, API_RATE], args=[REVOKED_AT], returns=0),
]  # fmt: skip

RATE = 10_000_000  # us between requests (one each 10 s: the state outlives the row's checks), burst 3


def rate_check(now_us: int) -> list[Row]:
    other = f"{keys.PREFIX}:anon:rl:{'0' * 32}"
    return [
        Row("a fresh limit lets a request go: counted, two of the burst left, all back in one interval",
            keys=[API_RATE], args=[RATE, 3, 1], returns=[[0, 2, Near(RATE, 1_000_000), 1]],
            after={API_RATE: Text(Near(now_us + RATE, 1_000_000), ttl=RATE // 1000)}),
        Row("within the burst: counted, one fewer left",
            before={API_RATE: Text(str(now_us + RATE))}, keys=[API_RATE], args=[RATE, 3, 1],
            returns=[[0, 1, Near(2 * RATE, 1_000_000), 1]],
            after={API_RATE: Text(str(now_us + 2 * RATE), ttl=2 * RATE // 1000)}),
        Row("the burst spent: refused with the wait, nothing changes",
            before={API_RATE: Text(str(now_us + 3 * RATE))}, keys=[API_RATE], args=[RATE, 3, 1],
            returns=[[Near(RATE, 1_000_000), 0, Near(3 * RATE, 1_000_000), 0]]),
        Row("several wanted at once (the waiting checks and a lease): as many granted as the burst has room for, "
            "all counted",
            before={API_RATE: Text(str(now_us + RATE))}, keys=[API_RATE], args=[RATE, 3, 5],
            returns=[[0, 0, Near(3 * RATE, 1_000_000), 2]],
            after={API_RATE: Text(str(now_us + 3 * RATE), ttl=3 * RATE // 1000)}),
        Row("fewer wanted than there is room for: just those counted",
            keys=[API_RATE], args=[RATE, 3, 2], returns=[[0, 1, Near(2 * RATE, 1_000_000), 2]],
            after={API_RATE: Text(Near(now_us + 2 * RATE, 1_000_000), ttl=2 * RATE // 1000)}),
        Row("checks gathered into one call, in order: the same key twice counts twice, the second refused at its "
            "burst; another key on its own",
            before={API_RATE: Text(str(now_us + RATE))}, keys=[API_RATE, other, API_RATE],
            args=[RATE, 2, 1, RATE, 3, 1, RATE, 2, 1],
            returns=[[0, 0, Near(2 * RATE, 1_000_000), 1], [0, 2, Near(RATE, 1_000_000), 1],
                     [Near(RATE, 1_000_000), 0, Near(2 * RATE, 1_000_000), 0]],
            after={API_RATE: Text(str(now_us + 2 * RATE), ttl=2 * RATE // 1000),
                   other: Text(Near(now_us + RATE, 1_000_000), ttl=RATE // 1000)}),
    ]  # fmt: skip


# ---------------------------------------------------------------- tenants' namespaces (workers/tenancy.py)

NAMESPACE = namespace_key("key:k1")
OWNER_A, OWNER_B = NAMESPACE_OWNER_PREFIX + "aaaa", NAMESPACE_OWNER_PREFIX + "bbbb"
CLAIM_ARGS = [K(NAMESPACE_OWNER_PREFIX), "key:k1", "aaaa", "bbbb"]

NAMESPACE_CLAIM = [
    Row("a tenant without one gets the first candidate nobody holds, its owner recorded",
        before={OWNER_A: Text("key:k2")}, keys=[NAMESPACE], args=CLAIM_ARGS, returns="bbbb",
        after={NAMESPACE: Text("bbbb"), OWNER_B: Text("key:k1")}),
    Row("a tenant keeps the id it has: nothing claimed",
        before={NAMESPACE: Text("zzzz")}, keys=[NAMESPACE], args=CLAIM_ARGS, returns="zzzz"),
    Row("every candidate taken: '', nothing written (the caller draws more)",
        before={OWNER_A: Text("key:k2"), OWNER_B: Text("key:k3")}, keys=[NAMESPACE], args=CLAIM_ARGS, returns=""),
]  # fmt: skip

# ---------------------------------------------------------------- workers' heartbeats (shared/liveness.py)

WORKERS = workers_key("invocation")


def worker_heartbeat(now_us: int) -> list[Row]:
    now = now_us // 1000
    return [
        Row("the first beat makes the set: the worker at the server's time (returned), the key kept for the ttl",
            keys=[WORKERS], args=["w1", 15_000], returns=Near(now, 1000),
            after={WORKERS: Sorted({"w1": Near(now, 1000)}, ttl=15_000)}),
        Row("a beat moves its worker to now and drops the workers silent for longer than the ttl",
            before={WORKERS: Sorted({"w0": now - 60_000, "w1": now - 5000, "w2": now - 1000})},
            keys=[WORKERS], args=["w1", 15_000], returns=Near(now, 1000),
            after={WORKERS: Sorted({"w1": Near(now, 1000), "w2": now - 1000}, ttl=15_000)}),
    ]  # fmt: skip


# ---------------------------------------------------------------- quality figures (shared/quality.py)

QUALITY2 = quality_key("svc2")


def quality_rows(*rows: dict[str, Any]) -> list[Any]:
    return [dict(rows=list(rows))]


def counted(
    counts: dict[str, int] | None = None, last_call: str = "", latency: list[float] | None = None
) -> dict[str, Any]:
    return {"counts": counts or {}, "last_call": last_call, "latency": latency or []}


QUALITY_FLUSH = [
    Row("counts are added to each service's hash, and lastCallAt written when there was none",
        before={QUALITY: Hash({"callCount": "4", "successCount": "2"})}, keys=[QUALITY, QUALITY2],
        args=quality_rows(counted({"callCount": 2, "successCount": 1, "errorCount": 1}, TIME),
                          counted({"paymentRequireds": 3})),
        returns=2,
        after={QUALITY: Hash({"callCount": "6", "successCount": "3", "errorCount": "1", "lastCallAt": TIME}),
               QUALITY2: Hash({"paymentRequireds": "3"})}),
    Row("lastCallAt keeps the later time: another process's earlier one does not move it back",
        before={QUALITY: Hash({"lastCallAt": "2030-01-01T00:00:00Z"})}, keys=[QUALITY],
        args=quality_rows(counted({"callCount": 1}, "2029-12-31T23:59:59Z")), returns=1,
        after={QUALITY: Hash({"lastCallAt": "2030-01-01T00:00:00Z", "callCount": "1"})}),
    Row("the latency's mean moves by the run: decay * mean + add; the run's last sample kept",
        before={QUALITY: Hash({"latencyMs": "100.0"})}, keys=[QUALITY],
        args=quality_rows(counted({"successCount": 1}, "", [0.8, 40.0, 200.0, 200.0])), returns=1,
        after={QUALITY: Hash({"successCount": "1", "latencyMs": "120.0", "lastLatencyMs": "200.0"})}),
    Row("with no mean before, the run's own (fresh) is the mean",
        keys=[QUALITY], args=quality_rows(counted({"successCount": 2}, "", [0.64, 52.0, 180.0, 100.0])),
        returns=1, after={QUALITY: Hash({"successCount": "2", "latencyMs": "180.0", "lastLatencyMs": "100.0"})}),
]  # fmt: skip


# ---------------------------------------------------------------- every script, its table

TABLES: dict[str, list[Row] | Callable[[int], list[Row]]] = {
    "create_payment": CREATE_PAYMENT,
    "expire_payments": EXPIRE_PAYMENTS,
    "enqueue_job": ENQUEUE_JOB,
    "start_job": start_job,
    "finish_job": FINISH_JOB,
    "begin_call": BEGIN_CALL,
    "requeue_job": REQUEUE_JOB,
    "cancel_job": CANCEL_JOB,
    "cancel_jobs": CANCEL_JOBS,
    "create_batch": CREATE_BATCH,
    "cancel_batch": CANCEL_BATCH,
    "reserve_slot": reserve_slot,
    "quality_flush": QUALITY_FLUSH,
    "settlement_begin": SETTLEMENT_BEGIN,
    "settlement_paid": SETTLEMENT_PAID,
    "settlement_abandon": SETTLEMENT_ABANDON,
    "settlement_uncertain": SETTLEMENT_UNCERTAIN,
    "settlement_failed": SETTLEMENT_FAILED,
    "settlement_lease": SETTLEMENT_LEASE,
    "identifier_claim": IDENTIFIER_CLAIM,
    "identifier_release": IDENTIFIER_RELEASE,
    "claim_jobs": claim_jobs,
    "claim_deliveries": CLAIM_DELIVERIES,
    "apikey_create": APIKEY_CREATE,
    "apikey_revoke": APIKEY_REVOKE,
    "rate_check": rate_check,
    "namespace_claim": NAMESPACE_CLAIM,
    "worker_heartbeat": worker_heartbeat,
}


def cases() -> list[Any]:
    found = []
    for script, table in TABLES.items():
        rows = table(0) if callable(table) else table
        found += [pytest.param(script, index, id=f"{script}: {row.name}") for index, row in enumerate(rows)]
    return found


@pytest.mark.parametrize(("script", "index"), cases())
async def test_script(redis: Redis, script: str, index: int) -> None:
    table = TABLES[script]
    if callable(table):
        seconds, micros = await redis.time()
        table = table(seconds * 1_000_000 + micros)
    await check(redis, script, table[index])


def test_the_library_holds_every_script_once_with_each_part_once_at_its_top() -> None:
    """What runs (shared/keys.py FUNCTIONS) is every script of SCRIPTS as a function: each part once, before the
    first function; each file's text the body of its function, unchanged. Other names give another library, with
    other function names (two versions side by side never call each other's code)."""
    code = keys.FUNCTIONS.code
    first = code.index("redis.register_function(")
    for part, text in {**lua.parts(), "names": lua.names_part(keys.SCRIPT_NAME_TABLE)}.items():
        assert code.count(text) == 1 and code.index(text) < first, part
    for name, text in lua.files().items():
        function = keys.FUNCTIONS.functions[name]
        assert f"redis.register_function('{function}', function(KEYS, ARGV)\n{text}\nend)" in code, name
    assert set(keys.FUNCTIONS.functions) == set(SCRIPTS)
    other = library("elsewhere:")
    assert other.name != keys.FUNCTIONS.name
    assert not set(other.functions.values()) & set(keys.FUNCTIONS.functions.values())


async def command_calls(redis: Redis) -> tuple[int, int]:
    """How many FCALLs and FUNCTION LOADs the server has run."""
    stats = await redis.info("commandstats")
    return tuple(int(stats.get(name, {}).get("calls", 0)) for name in ("cmdstat_fcall", "cmdstat_function|load"))


async def test_a_function_the_server_lost_is_loaded_again_and_called(redis: Redis) -> None:
    """A server without the library (new, restarted without its data, FUNCTION FLUSH): the call loads it and is
    made again; a call of a library the server has is one FCALL; any other error is the caller's, with no load."""
    functions = library(f"lua-test:{uuid.uuid4().hex[:12]}:")
    call = Function(redis, functions, "begin_call")

    async def counted(keys: list[str]) -> tuple[Any, tuple[int, int]]:
        before = await command_calls(redis)
        try:
            answer: Any = await call(keys=keys)
        except ResponseError as exc:
            answer = exc
        after = await command_calls(redis)
        return answer, (after[0] - before[0], after[1] - before[1])

    try:
        assert await counted(["lua-test:no-job"]) == (1, (2, 1))  # missing: FCALL, FUNCTION LOAD, FCALL
        assert await counted(["lua-test:no-job"]) == (1, (1, 0))
        await redis.function_delete(functions.name)
        assert await counted(["lua-test:no-job"]) == (1, (2, 1))  # lost, and loaded again
        await redis.set("lua-test:a-string", "x")
        answer, calls = await counted(["lua-test:a-string"])
        assert isinstance(answer, ResponseError) and "WRONGTYPE" in str(answer) and calls == (1, 0)
    finally:
        await redis.delete("lua-test:a-string")
        await redis.function_delete(functions.name)


async def test_calls_that_find_the_library_missing_together_load_it_once(redis: Redis) -> None:
    functions = library(f"lua-test:{uuid.uuid4().hex[:12]}:")
    call = Function(redis, functions, "begin_call")
    before = await command_calls(redis)
    try:
        assert await asyncio.gather(*(call(keys=["lua-test:no-job"]) for _ in range(20))) == [1] * 20
        after = await command_calls(redis)
        assert after[1] - before[1] == 1
        assert 20 < after[0] - before[0] <= 40  # refused FCALLs made again once the one load was done
    finally:
        await redis.function_delete(functions.name)


async def test_a_server_without_functions_stops_a_process_as_it_starts(tmp_path: Path, settings: Settings) -> None:
    """A server whose FUNCTION command is unknown (as Redis before 7.0 answers) is refused as the API and the
    workers start, with the version needed, rather than failing every call."""
    server = EmbeddedRedis(tmp_path, extra_args=("--rename-command", "FUNCTION", "")).start()
    client = Redis.from_url(server.url)
    try:
        with pytest.raises(lua.FunctionsUnsupported, match=r"Redis 7\.0"):
            await keys.load_functions(client)
        old = msgspec.structs.replace(settings, redis_url=server.url)
        app = create_app(old, Catalog.load(old.operator_file))
        runner = web.AppRunner(app)
        with pytest.raises(lua.FunctionsUnsupported):
            await runner.setup()
        await runner.cleanup()
        catalog = Catalog.load(old.operator_file)
        for options in (worker_options(old, catalog), worker_options(old, catalog, lane="batch"),
                        health_worker_options(old, catalog)):  # fmt: skip
            ctx: dict[str, Any] = {"redis": client}
            with pytest.raises(lua.FunctionsUnsupported):
                await options["on_startup"](ctx)
            assert set(ctx) == {"redis"}  # stopped before anything was started
    finally:
        await client.aclose()
        server.stop()


async def test_a_server_that_cannot_take_the_library_just_now_does_not_stop_a_process(redis: Redis) -> None:
    """Above maxmemory (or a replica, or Redis down) the library is not loaded as a process starts, and the
    process starts: the first call that finds the library missing loads it."""
    async with redis_config(redis, **ABOVE_MAXMEMORY):
        assert await keys.load_functions(redis) is False
    assert await keys.load_functions(redis) is True


# Every name a part defines at its top (its functions and tables): a script may use one only through `--! uses:`.
_TOP_NAME = re.compile(r"^local\s+(?:function\s+)?([A-Za-z_][A-Za-z0-9_]*(?:\s*,\s*[A-Za-z_][A-Za-z0-9_]*)*)", re.M)


def _defined_at_top(text: str) -> set[str]:
    return {name.strip() for found in _TOP_NAME.findall(text) for name in found.split(",")}


_LUA_TOKENS = re.compile(r"--\[\[.*?\]\]|--[^\n]*|'(?:\\.|[^'\\\n])*'|\"(?:\\.|[^\"\\\n])*\"", re.S)


def _strip_comments_and_strings(text: str) -> str:
    """Lua code without its comments, each string literal made '' (one pass: a string may hold `--`, a comment
    quotes)."""
    return _LUA_TOKENS.sub(lambda m: "" if m.group(0).startswith("--") else "''", text)


def test_each_script_uses_only_the_parts_it_names_and_writes_none_of_their_tables() -> None:
    """In the library every part is in scope of every function, so `--! uses:` is no longer what makes a script
    run: this test is. A script (or part) that names another part's function or table without using that part,
    itself or through a part it uses, would run as a function and fail as a script (EVAL of SCRIPTS' text). And a
    part's top-level table now lives as long as the library: no function may assign into one (a value left by
    one call would be read by the next). (A write through another name for the same table, `local t = P`, is not
    seen: no script makes one.)"""
    all_parts = {**lua.parts(), "names": lua.names_part(keys.SCRIPT_NAME_TABLE)}
    defined = {part: _defined_at_top(text) for part, text in all_parts.items()}
    owners = {name: part for part, names in defined.items() for name in names}

    def reachable(text: str) -> set[str]:
        return set(lua.in_order(lua.uses(text), all_parts))

    for name, text in {**lua.files(), **{f"lib/{p}": t for p, t in lua.parts().items()}}.items():
        code = _strip_comments_and_strings(text)
        own = _defined_at_top(text) if name.startswith("lib/") else set()
        allowed = reachable(text) | ({name.removeprefix("lib/")} if name.startswith("lib/") else set())
        for identifier in set(re.findall(r"(?<![.:\w])([A-Za-z_]\w*)", code)):
            owner = owners.get(identifier)
            if owner is not None and identifier not in own:
                assert owner in allowed, f"{name} uses {identifier} of lib/{owner}.lua without `--! uses: {owner}`"
        for written, statement, at in _writes(code, set(owners)):
            at_top = name == f"lib/{owners[written]}" and _assigned_at_top(code, at)
            assert at_top, f"{name} writes {statement!r}, into lib/{owners[written]}.lua's top (kept across calls)"


def _writes(code: str, names: set[str]) -> list[tuple[str, str, int]]:
    """Every write into a part-level name in `code` (the name, the text, where): `N = `, `N.a = `, `N[k].b = `,
    `table.insert(N, ...)`, `table.remove(N)`; a `local` declaration is not one (it makes a name, or shadows it)."""
    found = []
    pattern = r"(?<![.:\w])(NAME)(?:\s*(?:\[[^\]]*\]|\.\w+))*\s*=(?!=)|table\.(?:insert|remove)\(\s*(NAME)\b"
    for name in names:
        for match in re.finditer(pattern.replace("NAME", re.escape(name)), code):
            line = code[code.rfind("\n", 0, match.start()) + 1 : match.start()]
            if not re.fullmatch(r"\s*local\s+(?:\w+\s*,\s*)*", line):  # `local N =`, `local a, N =`
                found.append((name, match.group(0), match.start()))
    return found


def _assigned_at_top(code: str, at: int) -> bool:
    """Whether position `at` of a part's code is outside every function (the part filling its own table once, as
    the library loads): the blocks open before it, and none of them a function's."""
    blocks: list[str] = []
    for token in re.finditer(r"\b(function|do|if|repeat|end|until)\b", code[:at]):
        word = token.group(1)
        if word in ("end", "until"):
            if blocks:
                blocks.pop()
        else:
            blocks.append(word)
    return "function" not in blocks


def test_every_script_has_a_table() -> None:
    assert set(TABLES) == set(SCRIPTS)


def test_no_script_spells_a_key() -> None:
    """Keys come in as KEYS or are built from NAMES, which only SCRIPT_NAME_TABLE (shared/keys.py) writes: loaded
    with empty names, no script text names one of shared/keys.py's or arq's."""
    for name, text in load(dict.fromkeys(keys.SCRIPT_NAME_TABLE, "")).items():
        for prefix in (f"{keys.PREFIX}:", ARQ_JOB_PREFIX, ARQ_RETRY_PREFIX, ARQ_IN_PROGRESS_PREFIX):
            assert prefix not in text, name


def test_the_scripts_hold_shared_keys_names_and_no_call_sends_them() -> None:
    """SCRIPTS (shared.lua's, shared/keys.py's) are loaded with SCRIPT_NAME_TABLE: a script that reads NAMES holds
    the table once, before its code; the others do not hold it; none reads names from an ARGV."""
    assert SCRIPTS is keys.SCRIPTS
    assert dict(SCRIPTS) == dict(load(keys.SCRIPT_NAME_TABLE))
    table = "local NAMES = " + lua_table(keys.SCRIPT_NAME_TABLE) + "\n"
    readers = {name for name, text in SCRIPTS.items() if "NAMES." in text}
    assert {"enqueue_job", "finish_job", "claim_jobs", "expire_payments", "settlement_abandon"} <= readers
    for name, text in SCRIPTS.items():
        assert text.count(table) == (name in readers), name
        assert name not in readers or text.index(table) < text.index("NAMES."), name
        assert "cmsgpack.unpack(ARGV[2])" not in text, name


def test_every_script_is_the_same_text_on_every_run() -> None:
    """Two interpreters (other hash seeds, so other set and dict orders where any were left) load the same text."""
    here = hashlib.sha256(repr(sorted(SCRIPTS.items())).encode()).hexdigest()
    code = "import hashlib; from shared.keys import SCRIPTS; "
    code += "print(hashlib.sha256(repr(sorted(SCRIPTS.items())).encode()).hexdigest())"
    for seed in ("1", "2"):
        run = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": seed},
                             capture_output=True, text=True, check=True)  # fmt: skip
        assert run.stdout.strip() == here


def test_a_lua_table_names_its_fields_and_escapes_its_strings() -> None:
    assert lua_table({"job": "s402:job:", "a-b": "x", "end": "y", "_1": ""}) == (
        '{_1 = "", ["a-b"] = "x", ["end"] = "y", job = "s402:job:"}'
    )
    assert lua_literal('a"b\\c') == '"a\\034b\\092c"'
    assert lua_literal("\n\0é") == '"\\010\\000\\195\\169"'
    assert lua_literal("\x012") == '"\\0012"'  # always three digits: the 2 after the escape stays a 2
    assert lua_table({}) == "{}"


class Text_(str):
    """A str subclass: not a str to lua_table."""


@pytest.mark.parametrize("value", [b"s402:", 1, 1.5, None, True, Text_("x"), ["x"]])
def test_a_lua_table_holds_str_values_only(value: Any) -> None:
    with pytest.raises(TypeError):
        lua_table({"name": value})


@pytest.mark.parametrize("name", [1, b"job", None, Text_("job")])
def test_a_lua_table_names_fields_with_str_only(name: Any) -> None:
    with pytest.raises(TypeError):
        lua_table({name: "x"})


async def test_a_lua_table_reads_back_as_the_same_bytes(redis: Redis) -> None:
    values = {"plain": "s402:job:", "quote": 'say "hi"', "backslash": "a\\b", "lines": "a\nb\r\n", "nul": "a\0b",
              "digits": "\x01" + "23", "utf8": "é✓ 💸", "brackets": "]]==]", "long": "x" * 300, "empty": "",
              "a-b": "dash", "end": "a keyword"}  # fmt: skip
    script = f"local T = {lua_table(values)}\nlocal out = {{}}\nfor i, n in ipairs(ARGV) do out[i] = T[n] end\n"
    script += "return out"
    assert await redis.eval(script, 0, *values) == [value.encode() for value in values.values()]  # type: ignore[misc]


def test_a_script_gets_each_part_it_uses_once_after_the_parts_that_part_uses() -> None:
    parts = {"a": "-- a\n", "b": "--! uses: a\n-- b\n", "c": "--! uses: b, a\n-- c\n"}
    assert assemble("--! uses: c, a\n-- main\n", parts) == (
        "-- a\n" + "--! uses: a\n-- b\n" + "--! uses: b, a\n-- c\n" + "--! uses: c, a\n-- main\n"
    )
    assert assemble("-- uses nothing\n", parts) == "-- uses nothing\n"


def test_parts_that_use_each_other_or_do_not_exist_are_refused() -> None:
    with pytest.raises(ValueError, match="use each other"):
        assemble("--! uses: a\n", {"a": "--! uses: b\n", "b": "--! uses: a\n"})
    with pytest.raises(ValueError, match=r"no Lua part lib/missing\.lua"):
        assemble("--! uses: missing\n", {})
