"""Every Redis key server402 writes, and the Lua scripts that change them atomically. Nothing else names keys,
except modules that own theirs and list them in their docstrings: API keys (`api/apikeys.py`), face-database
tenancy (`workers/tenancy.py`), MCP task lists (`api/mcp_tasks.py`), quality figures (`shared/quality.py`), worker
heartbeats (`shared/liveness.py`) and worker metrics (`shared/metrics.py`).

s402:job:{jobId}              hash   one job (see shared/jobs.py for the fields)
s402:idem:{owner}:{keyHash}   string "jobId bodyHash" for Idempotency-Key, kept as long as the job
s402:rl:{accessKey}:{action}  string GCRA theoretical arrival time (microseconds) of the upstream limiter
s402:jobs:done                channel a finished job's id is published on (blocking waits listen here)
s402:jobs:running             set    ids of running jobs (for metrics: jobs in flight)
s402:queue, arq:job:{jobId}   arq's queue (zset) and job payloads, written by arq and by ENQUEUE_JOB
s402:queue:wake               channel published on when jobs are queued (workers poll at once: workers/queue.py)
s402:pay:{paymentId}          hash   one payment (see shared/payments.py for the fields); tokens are not stored
s402:pay:expiry               zset   payment ids by expiry time (ms), swept by the worker's cron (ledger 'expired')
s402:x402:nonce:{digest}      string who holds an x402 authorization: "settling <payload digest>",
                                     "<paymentId> <digest>", "failed|unconfirmed <digest>" (api/callcore/settlements.py)
s402:x402:intent:{digest}     hash   a settlement intent; s402:x402:settling zset: those not ended, by when to look
s402:x402:pid:{digest}        string the payload an x402 payment-identifier names (per payer)
s402:anon:rl:{addressHash}    string GCRA state of a client address without an API key (api/ratelimits.py)
s402:tenant:ns:{tenantHash}   string a tenant's face-database namespace id; s402:tenant:nsid:{id} its owner
s402:ledger                   stream every payment event: settling, created, settled, settle_failed, settle_unconfirmed,
                                     consumed, credited, expired
s402:batch:{batchId}          hash   one batch: owner, totals, counters by status, cancel flag (shared/batches.py)
s402:batch:{batchId}:items    list   the batch's items not yet made into jobs (deleted once all are)
s402:batch:{batchId}:jobs     list   its job ids in item order        s402:batch:{batchId}:done  list  in finish order
s402:wh:{deliveryId}          hash   one webhook delivery: target, event, body, attempts (shared/webhooks.py)
s402:wh:{deliveryId}:log      list   its attempts, JSON each
s402:wh:due                   zset   delivery ids by next attempt time (ms)
s402:wh:secret:{owner}        hash   the webhook signing secret's version and rotation time (secrets are derived)
"""

from __future__ import annotations

import hashlib

from arq.constants import in_progress_key_prefix, job_key_prefix, retry_key_prefix

PREFIX = "s402"
QUEUE_NAME = f"{PREFIX}:queue"
QUEUE_WAKE = f"{QUEUE_NAME}:wake"  # ENQUEUE_JOB publishes on KEYS[3] .. ':wake'
ARQ_JOB_PREFIX = job_key_prefix  # arq's keys of a job: its payload, retry counter and in-progress mark
ARQ_RETRY_PREFIX = retry_key_prefix
ARQ_IN_PROGRESS_PREFIX = in_progress_key_prefix
JOBS_DONE_CHANNEL = f"{PREFIX}:jobs:done"
RUNNING_JOBS = f"{PREFIX}:jobs:running"


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


# Lua helpers shared by the payment and job scripts (prepended to them; LEDGER_LUA for scripts elsewhere).
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
-- Why a payment cannot pay for `calls` calls of `service` presented with `caller_key` ('' for no API key), or nil.
-- A payment bound to its buyer (boundTo) pays only for it: a key's only with that key, a wallet's only without
-- any key. Payments stored before boundTo existed are bound when a key bought them.
local function payment_refusal(pkey, service, caller_key, now, calls)
  local p = redis.call('HMGET', pkey, 'status', 'serviceId', 'clientId', 'remainingCalls', 'expiresAt', 'boundTo')
  if not p[1] then return 'payment_required' end
  if p[1] == 'settling' then return 'payment_settling' end
  if p[1] == 'failed' then return 'payment_failed' end
  if p[1] == 'expired' or tonumber(p[5]) <= tonumber(now) then return 'token_expired' end
  if p[1] ~= 'paid' then return 'payment_required' end
  if p[2] ~= service then return 'wrong_service' end
  local bound = p[6]
  if not bound then
    bound = ''
    if p[3] and string.sub(p[3], 1, 4) == 'key:' then bound = p[3] end
  end
  if bound ~= '' then
    local presenter = ''
    if string.sub(bound, 1, 4) == 'key:' then presenter = bound end
    if presenter ~= caller_key then return 'wrong_client' end
  end
  if tonumber(p[4]) < calls then return 'no_calls_left' end
  return nil
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

# Lua helpers for every job transition (prepended to the job scripts, after _LEDGER_LUA). Keys they touch are
# built from the job's own fields (one Redis, not a cluster), so every caller gets them without passing them.
# webhook_event(): a subject (job or batch hash) with a `webhook` whose `events` include `event` gets one
#   delivery, due now (`msg_<subject id>.<event>`: the same event is never delivered twice).
# fan_out(): queue a batch's next items as jobs. A batch keeps at most `window` of its items queued or running:
#   each finished item queues the next, so a big batch never floods the queue (single calls, and single calls'
#   retries, wait behind at most a window of batch items).
# batch_moved(): a job of a batch moved from one status to another: the batch's counters follow; a finished job
#   queues the next item; the last completes the batch (announced on the jobs channel, its webhook event made).
_STATE_LUA = """
local JOB_PREFIX, BATCH_PREFIX, WH_PREFIX, WH_DUE, PAY_PREFIX = '@JOB@', '@BATCH@', '@WH@', '@WHDUE@', '@PAY@'
local QUEUE, QUEUE_WAKE = '@QUEUE@', '@WAKE@'
local WEBHOOK_KEEP_MS = 86400000
local function webhook_event(subject, event, now, retention)
  local f = redis.call('HMGET', subject, 'webhook', 'events', 'id', 'owner')
  if not f[1] or f[1] == '' or not f[2] then return end
  if not string.find(',' .. f[2] .. ',', ',' .. event .. ',', 1, true) then return end
  local id = 'msg_' .. f[3] .. '.' .. event
  local key = WH_PREFIX .. id
  if redis.call('EXISTS', key) == 1 then return end
  redis.call('HSET', key, 'id', id, 'url', f[1], 'owner', f[4] or '', 'event', event, 'subject', f[3],
    'createdAt', now, 'attempts', 0, 'status', 'pending')
  redis.call('PEXPIRE', key, tonumber(retention) + WEBHOOK_KEEP_MS)
  redis.call('ZADD', WH_DUE, now, id)
end
-- Queue the next `count` items of a batch as jobs (its window refills as jobs finish). Items are JSON arrays
-- made at submission: job id, arq payload (hex), then the job hash's field/value pairs; popped from the head.
local function fan_out(bkey, count, now)
  if count <= 0 or redis.call('HGET', bkey, 'cancel') == '1' then return 0 end
  local b = redis.call('HMGET', bkey, 'deadlineMs', 'retentionMs')
  local deadline, ttl = tonumber(now) + tonumber(b[1]), tonumber(b[1]) + tonumber(b[2])
  local made = 0
  while made < count do
    local raw = redis.call('LPOP', bkey .. ':items')
    if not raw then break end
    local item = cjson.decode(raw)
    local id, job = item[1], JOB_PREFIX .. item[1]
    local payload = string.gsub(item[2], '..', function(cc) return string.char(tonumber(cc, 16)) end)
    redis.call('HSET', job, 'createdAt', now, 'deadline', deadline, 'status', 'queued', unpack(item, 3))
    redis.call('PEXPIRE', job, ttl)
    redis.call('PSETEX', 'arq:job:' .. id, ttl, payload)
    redis.call('ZADD', QUEUE, now, id)
    redis.call('RPUSH', bkey .. ':jobs', id)
    made = made + 1
  end
  if made > 0 then
    redis.call('HINCRBY', bkey, 'fanned', made)
    redis.call('PUBLISH', QUEUE_WAKE, '')
  end
  return made
end
local function batch_moved(job, from, to, now, channel, retention)
  local b = redis.call('HGET', job, 'batch')
  if not b then return end
  local bkey = BATCH_PREFIX .. b
  if redis.call('EXISTS', bkey) == 0 then return end
  if from == 'running' and to ~= 'running' then redis.call('HINCRBY', bkey, 'running', -1) end
  if to == 'running' then
    if from ~= 'running' then redis.call('HINCRBY', bkey, 'running', 1) end
    return
  end
  if to == 'queued' then return end
  redis.call('HINCRBY', bkey, to, 1)
  redis.call('RPUSH', bkey .. ':done', redis.call('HGET', job, 'id'))
  local finished = redis.call('HINCRBY', bkey, 'finished', 1)
  if finished < tonumber(redis.call('HGET', bkey, 'total')) then
    fan_out(bkey, 1, now)  -- one out, one in: the batch keeps its window of jobs queued or running
    return
  end
  local final = 'completed'
  if redis.call('HGET', bkey, 'cancel') == '1' then final = 'canceled' end
  redis.call('HSET', bkey, 'status', final, 'completedAt', now)
  for _, k in ipairs({bkey, bkey .. ':done', bkey .. ':jobs'}) do redis.call('PEXPIRE', k, retention) end
  redis.call('DEL', bkey .. ':items')
  webhook_event(bkey, 'batch.completed', now, retention)
  redis.call('PUBLISH', channel, b)
end
-- A job has ended: arq's keys for it go (as arq's own finish would delete them; the worker then skips that).
local function arq_done(id)
  redis.call('DEL', 'arq:job:' .. id, '@ARQRETRY@' .. id, '@ARQPROGRESS@' .. id)
  redis.call('ZREM', QUEUE, id)
end
local function job_moved(job, from, to, now, channel, retention)
  batch_moved(job, from, to, now, channel, retention)
  if to == 'running' then
    if from ~= 'running' and redis.call('HGET', job, 'attempts') == '1' then
      webhook_event(job, 'job.started', now, retention)
    end
  elseif to ~= 'queued' then
    webhook_event(job, 'job.' .. to, now, retention)
  end
end
-- A queued job is canceled: off arq's queue, its paid call given back, announced.
local function cancel_queued(job, ledger_key, now, err, retention, channel, at)
  local id = redis.call('HGET', job, 'id')
  redis.call('HSET', job, 'status', 'canceled', 'finishedAt', now, 'error', err)
  redis.call('HDEL', job, 'retryAt')
  local pid = redis.call('HGET', job, 'paymentId')
  if pid then give_back(job, PAY_PREFIX .. pid, ledger_key, at, 'canceled') end
  redis.call('PEXPIRE', job, retention)
  arq_done(id)
  job_moved(job, 'queued', 'canceled', now, channel, retention)
  redis.call('PUBLISH', channel, id)
end
"""

LEDGER_LUA = _LEDGER_LUA
_STATE_LUA = (
    _STATE_LUA.replace("@JOB@", JOB_KEY_PREFIX)
    .replace("@BATCH@", BATCH_KEY_PREFIX)
    .replace("@WHDUE@", WEBHOOKS_DUE)
    .replace("@WH@", WEBHOOK_KEY_PREFIX)
    .replace("@PAY@", PAYMENT_KEY_PREFIX)
    .replace("@QUEUE@", QUEUE_NAME)
    .replace("@WAKE@", QUEUE_WAKE)
    .replace("'arq:job:'", repr(ARQ_JOB_PREFIX))
    .replace("@ARQRETRY@", ARQ_RETRY_PREFIX)
    .replace("@ARQPROGRESS@", ARQ_IN_PROGRESS_PREFIX)
)
STATE_LUA = _STATE_LUA  # for job scripts kept elsewhere (api/callcore/settlements.py)

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
# expired, is for this service, is used by the API key it is bound to (if any), and has a call left. A new job is
# counted as a call of its service (a counter hash: shared/quality.py's callCount and lastCallAt). The payment's
# checks are `payment_refusal`'s, shared with CREATE_BATCH.
# KEYS: job, arq job payload, arq queue, idempotency key or "", payment or "", ledger, counter hash or "",
# [the settlement intent the job waited for and the intents' due zset (api/callcore/settlements.py): then the job
# must still be `settling`, and the intent is done once its call is consumed]
# ARGV: job id, arq payload, score ms, ttl ms, idempotency value, service id, caller's key client id or "",
# now ms, ISO now, count field, time field, time, tenant fallback or "" (set: the job acts for the payment's
# client, else for this), then field/value pairs of the job hash.
# Returns {1, idempotency value} created, {0, stored value} an existing job, {-1, failure} nothing happened.
ENQUEUE_JOB = (
    _LEDGER_LUA
    + """
local intent = KEYS[8] or ''
if intent ~= '' and redis.call('HGET', KEYS[1], 'status') ~= 'settling' then  -- released once only
  return {0, ARGV[5]}
end
if KEYS[4] ~= '' then
  local existing = redis.call('GET', KEYS[4])
  if existing then return {0, existing} end
end
local client = ''
if KEYS[5] ~= '' then
  local refused = payment_refusal(KEYS[5], ARGV[6], ARGV[7], ARGV[8], 1)
  if refused then return {-1, refused} end
  redis.call('HINCRBY', KEYS[5], 'remainingCalls', -1)
  redis.call('HINCRBY', KEYS[5], 'usedCalls', 1)
  ledger(KEYS[6], 'consumed', ARGV[9], KEYS[5], 1, {'jobId', ARGV[1]})
  client = redis.call('HGET', KEYS[5], 'clientId') or ''
end
if intent ~= '' then  -- the x402 payment this job waited for is spent on it: its intent is done
  redis.call('HSET', intent, 'stage', 'done')
  redis.call('ZREM', KEYS[9], redis.call('HGET', intent, 'digest'))
end
if KEYS[4] ~= '' then redis.call('SET', KEYS[4], ARGV[5], 'PX', ARGV[4]) end
redis.call('HSET', KEYS[1], unpack(ARGV, 14))
if ARGV[13] ~= '' then
  if client == '' then client = ARGV[13] end
  redis.call('HSET', KEYS[1], 'tenant', client)
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PSETEX', KEYS[2], ARGV[4], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
redis.call('PUBLISH', KEYS[3] .. ':wake', '')
if KEYS[7] ~= '' then
  redis.call('HINCRBY', KEYS[7], ARGV[10], 1)
  redis.call('HSET', KEYS[7], ARGV[11], ARGV[12])
end
return {1, ARGV[5]}
"""
)

# A worker takes a job: queued (or running, when a crashed worker's job comes back) -> running.
# KEYS: job, ledger, running set   ARGV: now ms, channel, retention ms, expired error JSON,
# smallest useful budget ms, ISO now
# Returns {status, attempts, the job hash after the step as field/value pairs (empty when missing)}: 'running'
# means go; 'out_of_time' means a retry waited too long for another call (the worker ends the job with its last
# error); anything else means do nothing. A job found ended (or ended here) has arq's keys deleted (arq_done).
# A job that expires here (it never ran, or waited too long to retry an upstream failure: never the caller's
# fault) gives its paid call back.
START_JOB = (
    _LEDGER_LUA
    + _STATE_LUA
    + """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'missing', 0, {}} end
if status ~= 'queued' and status ~= 'running' then
  arq_done(redis.call('HGET', KEYS[1], 'id'))
  return {status, 0, redis.call('HGETALL', KEYS[1])}
end
local now = tonumber(ARGV[1])
if now >= tonumber(redis.call('HGET', KEYS[1], 'deadline')) then
  redis.call('HSET', KEYS[1], 'status', 'expired', 'finishedAt', ARGV[1], 'error', ARGV[4])
  local pid = redis.call('HGET', KEYS[1], 'paymentId')  -- never ran, or was waiting to retry an upstream failure
  if pid then give_back(KEYS[1], PAY_PREFIX .. pid, KEYS[2], ARGV[6], 'expired') end
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  redis.call('SREM', KEYS[3], redis.call('HGET', KEYS[1], 'id'))
  job_moved(KEYS[1], status, 'expired', ARGV[1], ARGV[2], ARGV[3])
  arq_done(redis.call('HGET', KEYS[1], 'id'))
  redis.call('PUBLISH', ARGV[2], redis.call('HGET', KEYS[1], 'id'))
  return {'expired', 0, redis.call('HGETALL', KEYS[1])}
end
if redis.call('HGET', KEYS[1], 'cancel') == '1' then
  return {'cancel_requested', 0, redis.call('HGETALL', KEYS[1])}
end
local attempts = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0')
if attempts > 0 and now + tonumber(ARGV[5]) >= tonumber(redis.call('HGET', KEYS[1], 'deadline')) then
  return {'out_of_time', attempts, redis.call('HGETALL', KEYS[1])}
end
redis.call('HSET', KEYS[1], 'status', 'running')
redis.call('HSETNX', KEYS[1], 'startedAt', ARGV[1])
redis.call('SADD', KEYS[3], redis.call('HGET', KEYS[1], 'id'))
local attempt = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
job_moved(KEYS[1], status, 'running', ARGV[1], ARGV[2], ARGV[3])
return {'running', attempt, redis.call('HGETALL', KEYS[1])}
"""
)

# A job ends: running/queued -> succeeded | failed | canceled | expired, kept for the retention time, announced.
# A failure that was not the caller's gives the paid call back (refund reason non-empty). The service's quality
# figure for the outcome is counted in the same step (shared/jobs.py prepends shared.quality.QUALITY_LUA, which
# defines quality_result), so a caller holding the answer sees it counted.
# The job's arq keys are deleted (arq_done) whether or not this step ended it: it has ended.
# KEYS: job, its payment or "", ledger, running set, quality hash or ""   ARGV: status, now ms, payload field
# ('result' or 'error'), payload JSON, retention ms, channel, refund reason or "", ISO now, quality counter field,
# latency ms or "", alpha, job id
FINISH_JOB = (
    _LEDGER_LUA
    + _STATE_LUA
    + """
arq_done(ARGV[12])
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'running' and status ~= 'queued' then return 0 end
quality_result(KEYS[5], ARGV[9], ARGV[10], ARGV[11])
redis.call('SREM', KEYS[4], redis.call('HGET', KEYS[1], 'id'))
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'finishedAt', ARGV[2], ARGV[3], ARGV[4])
redis.call('HDEL', KEYS[1], 'retryAt')
give_back(KEYS[1], KEYS[2], KEYS[3], ARGV[8], ARGV[7])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
job_moved(KEYS[1], status, ARGV[1], ARGV[2], ARGV[6], ARGV[5])
redis.call('PUBLISH', ARGV[6], redis.call('HGET', KEYS[1], 'id'))
return 1
"""
)

# Just before an upstream call: a cancel asked for while the job waited stops it here (returns 0; the worker then
# finishes it as canceled); else the attempt is counted (the service's executionCount) and 1 returned.
# KEYS: job, counter hash or ""   ARGV: counter field
BEGIN_CALL = """
if redis.call('HGET', KEYS[1], 'cancel') == '1' then return 0 end
if KEYS[2] ~= '' then redis.call('HINCRBY', KEYS[2], ARGV[1], 1) end
return 1
"""

# A retryable failure: running -> queued until the retry time (arq re-runs it).
# KEYS: job, running set   ARGV: retry-at ms, last error JSON
REQUEUE_JOB = (
    _LEDGER_LUA
    + _STATE_LUA
    + """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 0 end
redis.call('SREM', KEYS[2], redis.call('HGET', KEYS[1], 'id'))
redis.call('HSET', KEYS[1], 'status', 'queued', 'retryAt', ARGV[1], 'lastError', ARGV[2])
batch_moved(KEYS[1], 'running', 'queued', 0, '', 0)
return 1
"""
)

# Cancel: a queued job is canceled at once, taken off arq's queue and its paid call given back; a running one is
# asked to stop. KEYS: job, arq queue, ledger   ARGV: now ms, error JSON, retention ms, channel, ISO now
CANCEL_JOB = (
    _LEDGER_LUA
    + _STATE_LUA
    + """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 'missing' end
if status == 'queued' then
  cancel_queued(KEYS[1], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
  return 'canceled'
end
if status == 'running' then
  redis.call('HSET', KEYS[1], 'cancel', '1')
  return 'cancel_requested'
end
return status
"""
)

# Store a batch and pay for it in one step: every payment must cover its service's items (`payment_refusal`:
# exists, paid, not expired, for that service, presented by the client it is bound to, enough calls left) or
# nothing happens; then its
# calls are consumed (one ledger event per payment), the items stored and the first window of them queued as jobs.
# With an idempotency key, an existing batch for that key wins (nothing is charged).
# KEYS: batch, items list, idempotency key or "", ledger
# ARGV: batch id, now ms, ISO now, ttl ms, idempotency value, caller's key client id or "", window,
# number of payments P, number of batch fields F, number of items N,
# then P x (payment key, service id, calls), F x (field, value), N items (see fan_out).
# Returns {1, idempotency value} created, {0, stored value} an existing batch, {-1, reason, payment index}.
CREATE_BATCH = (
    _LEDGER_LUA
    + _STATE_LUA
    + """
if KEYS[3] ~= '' then
  local existing = redis.call('GET', KEYS[3])
  if existing then return {0, existing, 0} end
end
local np, nf, ni = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
local now = tonumber(ARGV[2])
for i = 0, np - 1 do
  local pkey, service, calls = ARGV[11 + 3 * i], ARGV[12 + 3 * i], tonumber(ARGV[13 + 3 * i])
  local refused = payment_refusal(pkey, service, ARGV[6], now, calls)
  if refused then return {-1, refused, i} end
end
for i = 0, np - 1 do
  local pkey, calls = ARGV[11 + 3 * i], tonumber(ARGV[13 + 3 * i])
  redis.call('HINCRBY', pkey, 'remainingCalls', -calls)
  redis.call('HINCRBY', pkey, 'usedCalls', calls)
  ledger(KEYS[4], 'consumed', ARGV[3], pkey, calls, {'batchId', ARGV[1]})
end
local fields = 11 + 3 * np
redis.call('HSET', KEYS[1], unpack(ARGV, fields, fields + 2 * nf - 1))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
local first = fields + 2 * nf
for i = first, first + ni - 1, 1000 do
  redis.call('RPUSH', KEYS[2], unpack(ARGV, i, math.min(i + 999, first + ni - 1)))
end
redis.call('PEXPIRE', KEYS[2], ARGV[4])
if KEYS[3] ~= '' then redis.call('SET', KEYS[3], ARGV[5], 'PX', ARGV[4]) end
fan_out(KEYS[1], tonumber(ARGV[7]), ARGV[2])
redis.call('PEXPIRE', KEYS[1] .. ':jobs', ARGV[4])
return {1, ARGV[5], 0}
"""
)

# Cancel a batch: mark it (no more items are queued), then make up to `count` of its items not yet queued into
# canceled jobs (their paid calls given back); the caller repeats until none is left, and cancels the queued
# jobs with CANCEL_JOBS. KEYS: batch, arq queue, ledger   ARGV: count, now ms, ISO now, channel, error JSON
# Returns {status, items still to cancel} (status 'missing' when there is no such batch).
CANCEL_BATCH = (
    _LEDGER_LUA
    + _STATE_LUA
    + """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'missing', 0} end
if status == 'in_progress' then redis.call('HSET', KEYS[1], 'cancel', '1', 'status', 'canceling') end
local retention = redis.call('HGET', KEYS[1], 'retentionMs')
for _ = 1, tonumber(ARGV[1]) do
  local raw = redis.call('LPOP', KEYS[1] .. ':items')
  if not raw then break end
  local item = cjson.decode(raw)
  local job = JOB_PREFIX .. item[1]
  redis.call('HSET', job, 'createdAt', ARGV[2], 'deadline', ARGV[2], 'status', 'queued', unpack(item, 3))
  redis.call('HINCRBY', KEYS[1], 'fanned', 1)
  redis.call('RPUSH', KEYS[1] .. ':jobs', item[1])
  cancel_queued(job, KEYS[3], ARGV[2], ARGV[5], retention, ARGV[4], ARGV[3])
end
return {redis.call('HGET', KEYS[1], 'status'), redis.call('LLEN', KEYS[1] .. ':items')}
"""
)

# Cancel some jobs (of a batch being canceled): queued ones at once, running ones asked to stop.
# KEYS: arq queue, ledger   ARGV: now ms, error JSON, retention ms, channel, ISO now, then job ids.
# Returns {canceled, asked to stop}.
CANCEL_JOBS = (
    _LEDGER_LUA
    + _STATE_LUA
    + """
local canceled, asked = 0, 0
for i = 6, #ARGV do
  local job = JOB_PREFIX .. ARGV[i]
  local status = redis.call('HGET', job, 'status')
  if status == 'queued' then
    cancel_queued(job, KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
    canceled = canceled + 1
  elseif status == 'running' then
    redis.call('HSET', job, 'cancel', '1')
    asked = asked + 1
  end
end
return {canceled, asked}
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
# All workers share the key, so together they never exceed the rate. Uses the server's clock (TIME). For a job's
# call (KEYS[2] set) it first checks the job's cancel flag, and when the slot is free at once it counts the
# attempt (KEYS[3], field ARGV[3]) in the same step: the call goes out with no other round trip.
# KEYS: limiter, job hash or "", counter hash or ""   ARGV: interval us, max wait us, counter field
# Returns wait us (0: counted), -1 when the slot is too far away, -2 when the job's cancel was asked for.
RESERVE_SLOT = """
if KEYS[2] ~= '' and redis.call('HGET', KEYS[2], 'cancel') == '1' then return -2 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(tat, now)
local wait = slot - now
if wait > tonumber(ARGV[2]) then return -1 end
local next_tat = slot + tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX', math.ceil((next_tat - now) / 1000) + 1000)
if wait == 0 and KEYS[3] ~= '' then redis.call('HINCRBY', KEYS[3], ARGV[3], 1) end
return wait
"""
