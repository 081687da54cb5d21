"""Redis key builders, and the names of the Lua scripts that change the keys atomically (the scripts themselves are
files in shared/lua/). A script never spells a key's name: it gets its keys as KEYS, or builds them from the names
SCRIPT_NAME_TABLE writes into it when it is loaded (NAMES: shared/lua/__init__.py). Every key, these and those of
the modules that build their own, is listed in docs/architecture.md, "Redis".
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import structlog
from redis import exceptions as redis_errors

from shared.arq_seam import ARQ_IN_PROGRESS_PREFIX
from shared.lua import Function, Library, load, load_library

PREFIX = "s402"
QUEUE_NAME = f"{PREFIX}:queue"
QUEUE_WAKE = f"{QUEUE_NAME}:wake"  # the scripts that queue jobs publish here
# The batch lane: batch items have their own arq queue and wake-ups, taken by batch-lane workers only
# (workers/lanes.py), so single calls never queue, or wait for CPU, behind a batch.
BATCH_QUEUE_NAME = f"{PREFIX}:queue:batch"
BATCH_QUEUE_WAKE = f"{BATCH_QUEUE_NAME}:wake"
WAKE_OF: Mapping[str, str] = MappingProxyType({QUEUE_NAME: QUEUE_WAKE, BATCH_QUEUE_NAME: BATCH_QUEUE_WAKE})
JOBS_DONE_CHANNEL = f"{PREFIX}:jobs:done"
RUNNING_JOBS = f"{PREFIX}:jobs:running:workers"  # worker id -> how many jobs it holds (shared/metrics.py)


def job_key(job_id: str) -> str:
    return f"{PREFIX}:job:{job_id}"


def idempotency_key(owner: str, key: str) -> str:
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"{PREFIX}:idem:{owner}:{digest}"


def batch_key(batch_id: str) -> str:
    return f"{PREFIX}:batch:{batch_id}"


def batch_idempotency_key(owner: str, key: str) -> str:
    return idempotency_key(owner, "batch\0" + key)


BATCH_KEY_PREFIX = f"{PREFIX}:batch:"
JOB_KEY_PREFIX = f"{PREFIX}:job:"
WEBHOOK_KEY_PREFIX = f"{PREFIX}:wh:"
WEBHOOKS_DUE = f"{PREFIX}:wh:due"


def webhook_key(delivery_id: str) -> str:
    return WEBHOOK_KEY_PREFIX + delivery_id


def webhook_secret_key(owner: str) -> str:
    return f"{PREFIX}:wh:secret:{owner}"


def payment_key(payment_id: str) -> str:
    return f"{PREFIX}:pay:{payment_id}"


PAYMENT_KEY_PREFIX = f"{PREFIX}:pay:"
PAYMENT_EXPIRY = f"{PREFIX}:pay:expiry"
LEDGER = f"{PREFIX}:ledger"


def x402_nonce_key(network: str, payer: str, nonce: str) -> str:
    digest = hashlib.sha256(f"{network}|{payer.lower()}|{nonce.lower()}".encode()).hexdigest()[:40]
    return f"{PREFIX}:x402:nonce:{digest}"


SETTLING_DUE = f"{PREFIX}:x402:settling"  # zset: settlement intents not ended (api/callcore/settlements.py)


def rate_limit_key(access_key_id: str, action: str) -> str:
    fingerprint = hashlib.sha256(access_key_id.encode()).hexdigest()[:16]
    return f"{PREFIX}:rl:{fingerprint}:{action}"


# The names and prefixes the scripts build keys from (the Lua table NAMES), written into them when they are loaded.
SCRIPT_NAME_TABLE: Mapping[str, str] = MappingProxyType(
    {
        "job": JOB_KEY_PREFIX,
        "batch": BATCH_KEY_PREFIX,
        "payment": PAYMENT_KEY_PREFIX,
        "webhook": WEBHOOK_KEY_PREFIX,
        "webhooks_due": WEBHOOKS_DUE,
        "queue": QUEUE_NAME,
        "queue_wake": QUEUE_WAKE,
        "batch_queue": BATCH_QUEUE_NAME,
        "batch_queue_wake": BATCH_QUEUE_WAKE,
        "arq_in_progress": ARQ_IN_PROGRESS_PREFIX,
    }
)

# Every script by its file name, these names written in (every module that runs a script takes it from here).
# The scripts that change these keys together, each in shared/lua/<name>.lua (its KEYS and ARGV at its top):
SCRIPTS = load(SCRIPT_NAME_TABLE)
# The same scripts as the functions of one library, as they run (shared/lua/__init__.py `Library`).
FUNCTIONS = Library(SCRIPT_NAME_TABLE)
_SCRIPT_NAMES = {text: name for name, text in SCRIPTS.items()}


def registered(redis: Any, script: str) -> Function:
    """The function of one of SCRIPTS (given by its text, as the modules name them), called on `redis`."""
    return Function(redis, FUNCTIONS, _SCRIPT_NAMES[script])


# A store that cannot answer or write just now (down, loading, above maxmemory, a replica, a primary without its
# replicas): it changed nothing, and it is the store's state, not the request's. The API answers 503
# (api/middlewares.py); a process starting meets it as a library it cannot load yet, and starts anyway (the first
# call that finds the library missing loads it).
STORE_NOT_NOW = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.OutOfMemoryError,
    redis_errors.ReadOnlyError,
    redis_errors.MasterDownError,
)


async def load_functions(redis: Any) -> bool:
    """FUNCTIONS loaded as a process starts (the first call would load them too). A server without functions
    (Redis before 7.0: shared.lua.FunctionsUnsupported) or an ACL that forbids FUNCTION stops the process here;
    one that cannot take them just now does not (False, logged)."""
    try:
        await load_library(redis, FUNCTIONS)
    except (*STORE_NOT_NOW, OSError) as exc:
        structlog.get_logger("redis").warning("scripts not loaded at startup; loaded at first use",
                                              error=type(exc).__name__)  # fmt: skip
        return False
    return True


CREATE_PAYMENT = SCRIPTS["create_payment"]  # a new paid payment and its ledger events
EXPIRE_PAYMENTS = SCRIPTS["expire_payments"]  # the expiry sweep
ENQUEUE_JOB = SCRIPTS["enqueue_job"]  # a job created, queued and paid for
START_JOB = SCRIPTS["start_job"]  # queued -> running (or expired)
BEGIN_CALL = SCRIPTS["begin_call"]  # a job's cancel checked just before its upstream call
REQUEUE_JOB = SCRIPTS["requeue_job"]  # running -> queued for a retry
FINISH_JOB = SCRIPTS["finish_job"]  # running/queued -> succeeded | failed | canceled | expired
CANCEL_JOB = SCRIPTS["cancel_job"]
CANCEL_JOBS = SCRIPTS["cancel_jobs"]  # some of a canceled batch's jobs
CREATE_BATCH = SCRIPTS["create_batch"]  # a batch stored, paid for and its first window queued
CANCEL_BATCH = SCRIPTS["cancel_batch"]
RESERVE_SLOT = SCRIPTS["reserve_slot"]  # the upstream rate limit's booking (workers/ratelimit.py)
QUALITY_FLUSH = SCRIPTS["quality_flush"]  # a process's quality figures written (shared/quality.py)
