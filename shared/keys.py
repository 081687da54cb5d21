"""Every Redis key server402 writes, and the Lua scripts that change them atomically. Nothing else names keys,
except modules that own theirs and list them in their docstrings: API keys (`shared/apikeys.py`), face-database
tenancy (`workers/tenancy.py`), quality figures (`shared/quality.py`), worker heartbeats (`shared/liveness.py`)
and worker metrics (`shared/metrics.py`).

s402:job:{jobId}              hash   one job (see shared/jobs.py for the fields)
s402:idem:{owner}:{keyHash}   string "jobId bodyHash" for Idempotency-Key, kept as long as the job
s402:rl:{accessKey}:{action}  string GCRA theoretical arrival time (microseconds) of the upstream limiter
s402:jobs:done                channel a finished job's id is published on (blocking waits listen here)
s402:jobs:running             set    ids of running jobs (for metrics: jobs in flight)
s402:queue, arq:job:{jobId}   arq's queue (zset) and job payloads, written by arq and by ENQUEUE_JOB
s402:pay:{paymentId}          hash   one payment (see shared/payments.py for the fields); tokens are not stored
s402:pay:expiry               zset   payment ids by expiry time (ms), swept by the worker's cron (ledger 'expired')
s402:x402:nonce:{digest}      string an x402 authorization being settled or settled (claimed before settling)
s402:ledger                   stream every payment event: created, settled, consumed, credited, expired
"""

from __future__ import annotations

import hashlib

PREFIX = "s402"
QUEUE_NAME = f"{PREFIX}:queue"
ARQ_JOB_PREFIX = "arq:job:"
JOBS_DONE_CHANNEL = f"{PREFIX}:jobs:done"
RUNNING_JOBS = f"{PREFIX}:jobs:running"


def job_key(job_id: str) -> str:
    return f"{PREFIX}:job:{job_id}"


def idempotency_key(owner: str, key: str) -> str:
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"{PREFIX}:idem:{owner}:{digest}"


def payment_key(payment_id: str) -> str:
    return f"{PREFIX}:pay:{payment_id}"


PAYMENT_KEY_PREFIX = f"{PREFIX}:pay:"
PAYMENT_EXPIRY = f"{PREFIX}:pay:expiry"
LEDGER = f"{PREFIX}:ledger"


def x402_nonce_key(network: str, payer: str, nonce: str) -> str:
    digest = hashlib.sha256(f"{network}|{payer.lower()}|{nonce.lower()}".encode()).hexdigest()[:40]
    return f"{PREFIX}:x402:nonce:{digest}"


def rate_limit_key(access_key_id: str, action: str) -> str:
    fingerprint = hashlib.sha256(access_key_id.encode()).hexdigest()[:16]
    return f"{PREFIX}:rl:{fingerprint}:{action}"


# Lua helpers shared by the payment and job scripts (prepended to them).
# ledger(): append one event for a payment, its amounts scaled to `calls` calls (all of them for created/settled).
# give_back(): a paid call that did not run through no fault of the caller is restored, exactly once per job.
_LEDGER_LUA = """
local function ledger(stream, event, at, pkey, calls, extra)
  local f = redis.call('HMGET', pkey, 'paymentId', 'serviceId', 'clientId', 'amountCents', 'amountAtomic',
    'maxCalls', 'provider', 'network', 'payer', 'transaction')
  local max_calls = tonumber(f[6] or '1')
  if max_calls < 1 then max_calls = 1 end
  local cents = math.floor(tonumber(f[4] or '0') / max_calls) * calls
  local atomic = math.floor(tonumber(f[5] or '0') / max_calls) * calls
  local entry = {'event', event, 'at', at, 'paymentId', f[1] or '', 'serviceId', f[2] or '', 'clientId', f[3] or '',
    'amountCents', string.format('%d', cents), 'amountAtomic', string.format('%d', atomic), 'calls', tostring(calls),
    'provider', f[7] or '', 'network', f[8] or '', 'payer', f[9] or '', 'transaction', f[10] or ''}
  for i = 1, #extra do entry[#entry + 1] = extra[i] end
  redis.call('XADD', stream, '*', unpack(entry))
end
local function give_back(job, pkey, stream, at, reason)
  if pkey == '' or reason == '' then return '' end
  if redis.call('HGET', job, 'paymentId') == false then return '' end
  if redis.call('HSETNX', job, 'refunded', reason) == 0 then return '' end
  if redis.call('EXISTS', pkey) == 1 then
    redis.call('HINCRBY', pkey, 'remainingCalls', 1)
    redis.call('HINCRBY', pkey, 'usedCalls', -1)
  end
  ledger(stream, 'credited', at, pkey, 1, {'jobId', redis.call('HGET', job, 'id'), 'reason', reason})
  return reason
end
"""

# Store a new paid payment, due for the expiry sweep, and append its ledger events. (Pending payments are never
# stored: shared/payments.py `offer_id`.)
# KEYS: payment, expiry zset, ledger   ARGV: payment id, expires ms, key ttl ms, events ('created,settled'),
# ISO now, then field/value pairs.   Returns 1, or 0 when the payment exists already (nothing changes).
CREATE_PAYMENT = (
    _LEDGER_LUA
    + """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
for event in string.gmatch(ARGV[4], '[^,]+') do
  ledger(KEYS[3], event, ARGV[5], KEYS[1], tonumber(redis.call('HGET', KEYS[1], 'maxCalls')), {})
end
return 1
"""
)

# Create the job hash and put it on arq's queue in one step, so a job is never accepted without being queued
# (nor queued without its record). With an idempotency key, an existing job for that key wins (and nothing is
# charged). With a payment, one call of it is consumed in the same step: it exists and is paid, has not
# expired, is for this service, is used by the API key it is bound to (if any), and has a call left.
# KEYS: job, arq job payload, arq queue, idempotency key or "", payment or "", ledger
# ARGV: job id, arq payload, score ms, ttl ms, idempotency value, service id, caller's key client id or "",
# now ms, ISO now, then field/value pairs of the job hash.
# Returns {1, idempotency value} created, {0, stored value} an existing job, {-1, failure} nothing happened.
ENQUEUE_JOB = (
    _LEDGER_LUA
    + """
if KEYS[4] ~= '' then
  local existing = redis.call('GET', KEYS[4])
  if existing then return {0, existing} end
end
if KEYS[5] ~= '' then
  local p = redis.call('HMGET', KEYS[5], 'status', 'serviceId', 'clientId', 'remainingCalls', 'expiresAt')
  if not p[1] then return {-1, 'payment_required'} end
  if p[1] == 'expired' or tonumber(p[5]) <= tonumber(ARGV[8]) then return {-1, 'token_expired'} end
  if p[2] ~= ARGV[6] then return {-1, 'wrong_service'} end
  if string.sub(p[3], 1, 4) == 'key:' and p[3] ~= ARGV[7] then return {-1, 'wrong_client'} end
  if tonumber(p[4]) <= 0 then return {-1, 'no_calls_left'} end
  redis.call('HINCRBY', KEYS[5], 'remainingCalls', -1)
  redis.call('HINCRBY', KEYS[5], 'usedCalls', 1)
  ledger(KEYS[6], 'consumed', ARGV[9], KEYS[5], 1, {'jobId', ARGV[1]})
end
if KEYS[4] ~= '' then redis.call('SET', KEYS[4], ARGV[5], 'PX', ARGV[4]) end
redis.call('HSET', KEYS[1], unpack(ARGV, 10))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PSETEX', KEYS[2], ARGV[4], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
return {1, ARGV[5]}
"""
)

# A worker takes a job: queued (or running, when a crashed worker's job comes back) -> running.
# KEYS: job, its payment or "", ledger, running set   ARGV: now ms, channel, retention ms, expired error JSON,
# smallest useful budget ms, ISO now
# Returns {status, attempts}: 'running' means go; 'out_of_time' means a retry waited too long for another call
# (the worker ends the job with its last error); anything else means do nothing. A job that expires here (it
# never ran, or waited too long to retry an upstream failure: never the caller's fault) gives its paid call back.
START_JOB = (
    _LEDGER_LUA
    + """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'missing', 0} end
if status ~= 'queued' and status ~= 'running' then return {status, 0} end
local now = tonumber(ARGV[1])
if now >= tonumber(redis.call('HGET', KEYS[1], 'deadline')) then
  redis.call('HSET', KEYS[1], 'status', 'expired', 'finishedAt', ARGV[1], 'error', ARGV[4])
  give_back(KEYS[1], KEYS[2], KEYS[3], ARGV[6], 'expired')  -- never ran, or was waiting to retry an upstream failure
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  redis.call('PUBLISH', ARGV[2], redis.call('HGET', KEYS[1], 'id'))
  return {'expired', 0}
end
if redis.call('HGET', KEYS[1], 'cancel') == '1' then return {'cancel_requested', 0} end
local attempts = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0')
if attempts > 0 and now + tonumber(ARGV[5]) >= tonumber(redis.call('HGET', KEYS[1], 'deadline')) then
  return {'out_of_time', attempts}
end
redis.call('HSET', KEYS[1], 'status', 'running')
redis.call('HSETNX', KEYS[1], 'startedAt', ARGV[1])
redis.call('SADD', KEYS[4], redis.call('HGET', KEYS[1], 'id'))
return {'running', redis.call('HINCRBY', KEYS[1], 'attempts', 1)}
"""
)

# A job ends: running/queued -> succeeded | failed | canceled | expired, kept for the retention time, announced.
# A failure that was not the caller's gives the paid call back (refund reason non-empty).
# KEYS: job, its payment or "", ledger, running set   ARGV: status, now ms, payload field ('result' or 'error'),
# payload JSON, retention ms, channel, refund reason or "", ISO now
FINISH_JOB = (
    _LEDGER_LUA
    + """
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'running' and status ~= 'queued' then return 0 end
redis.call('SREM', KEYS[4], redis.call('HGET', KEYS[1], 'id'))
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'finishedAt', ARGV[2], ARGV[3], ARGV[4])
redis.call('HDEL', KEYS[1], 'retryAt')
give_back(KEYS[1], KEYS[2], KEYS[3], ARGV[8], ARGV[7])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PUBLISH', ARGV[6], redis.call('HGET', KEYS[1], 'id'))
return 1
"""
)

# A retryable failure: running -> queued until the retry time (arq re-runs it).
# KEYS: job, running set   ARGV: retry-at ms, last error JSON
REQUEUE_JOB = """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 0 end
redis.call('SREM', KEYS[2], redis.call('HGET', KEYS[1], 'id'))
redis.call('HSET', KEYS[1], 'status', 'queued', 'retryAt', ARGV[1], 'lastError', ARGV[2])
return 1
"""

# Cancel: a queued job is canceled at once, taken off arq's queue and its paid call given back; a running one is
# asked to stop. KEYS: job, arq queue, arq job payload, its payment or "", ledger
# ARGV: job id, now ms, error JSON, retention ms, channel, ISO now
CANCEL_JOB = (
    _LEDGER_LUA
    + """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 'missing' end
if status == 'queued' then
  redis.call('HSET', KEYS[1], 'status', 'canceled', 'finishedAt', ARGV[2], 'error', ARGV[3])
  redis.call('HDEL', KEYS[1], 'retryAt')
  give_back(KEYS[1], KEYS[4], KEYS[5], ARGV[6], 'canceled')
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('DEL', KEYS[3])
  redis.call('PUBLISH', ARGV[5], ARGV[1])
  return 'canceled'
end
if status == 'running' then
  redis.call('HSET', KEYS[1], 'cancel', '1')
  return 'cancel_requested'
end
return status
"""
)

# Payments past their expiry forfeit their unused calls; each gets 'expired' in the ledger once. Payment keys
# are built from ARGV[4] (one Redis, not a cluster).
# KEYS: expiry zset, ledger   ARGV: now ms, ISO now, batch size, payment key prefix   Returns how many were swept.
EXPIRE_PAYMENTS = (
    _LEDGER_LUA
    + """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  local key = ARGV[4] .. id
  local p = redis.call('HMGET', key, 'status', 'remainingCalls', 'expiresAt')
  if p[1] == 'paid' and tonumber(p[3]) <= tonumber(ARGV[1]) then
    redis.call('HSET', key, 'status', 'expired')
    ledger(KEYS[2], 'expired', ARGV[2], key, tonumber(p[2]), {'reason', p[1]})
  end
  redis.call('ZREM', KEYS[1], id)
end
return #ids
"""
)

# Reserve-style GCRA: book the next free slot for this (access key, action) and say how long to wait for it.
# All workers share the key, so together they never exceed the rate. Uses the server's clock (TIME).
# KEYS: limiter   ARGV: interval us, max wait us   Returns wait us, or -1 when the slot is too far away.
RESERVE_SLOT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(tat, now)
local wait = slot - now
if wait > tonumber(ARGV[2]) then return -1 end
local next_tat = slot + tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX', math.ceil((next_tat - now) / 1000) + 1000)
return wait
"""
