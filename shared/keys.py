"""Every Redis key server402 writes, and the Lua scripts that change them atomically. Nothing else names keys.

s402:job:{jobId}              hash   one job (see shared/jobs.py for the fields)
s402:idem:{owner}:{keyHash}   string "jobId bodyHash" for Idempotency-Key, kept as long as the job
s402:rl:{accessKey}:{action}  string GCRA theoretical arrival time (microseconds) of the upstream limiter
s402:jobs:done                channel a finished job's id is published on (blocking waits listen here)
s402:queue, arq:job:{jobId}   arq's queue (zset) and job payloads, written by arq and by ENQUEUE_JOB
"""

from __future__ import annotations

import hashlib

PREFIX = "s402"
QUEUE_NAME = f"{PREFIX}:queue"
ARQ_JOB_PREFIX = "arq:job:"
JOBS_DONE_CHANNEL = f"{PREFIX}:jobs:done"


def job_key(job_id: str) -> str:
    return f"{PREFIX}:job:{job_id}"


def idempotency_key(owner: str, key: str) -> str:
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"{PREFIX}:idem:{owner}:{digest}"


def rate_limit_key(access_key_id: str, action: str) -> str:
    fingerprint = hashlib.sha256(access_key_id.encode()).hexdigest()[:16]
    return f"{PREFIX}:rl:{fingerprint}:{action}"


# Create the job hash and put it on arq's queue in one step, so a job is never accepted without being queued
# (nor queued without its record). With an idempotency key, an existing job for that key wins.
# KEYS: job, arq job payload, arq queue, idempotency key or ""   ARGV: job id, arq payload, score ms,
# ttl ms, idempotency value, then field/value pairs of the job hash.
ENQUEUE_JOB = """
if KEYS[4] ~= '' then
  local existing = redis.call('GET', KEYS[4])
  if existing then return {0, existing} end
  redis.call('SET', KEYS[4], ARGV[5], 'PX', ARGV[4])
end
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PSETEX', KEYS[2], ARGV[4], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
return {1, ARGV[5]}
"""

# A worker takes a job: queued (or running, when a crashed worker's job comes back) -> running.
# KEYS: job   ARGV: now ms, channel, retention ms, expired error JSON, smallest useful budget ms
# Returns {status, attempts}: 'running' means go; 'out_of_time' means a retry waited too long for another call
# (the worker ends the job with its last error); anything else means do nothing.
START_JOB = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'missing', 0} end
if status ~= 'queued' and status ~= 'running' then return {status, 0} end
local now = tonumber(ARGV[1])
if now >= tonumber(redis.call('HGET', KEYS[1], 'deadline')) then
  redis.call('HSET', KEYS[1], 'status', 'expired', 'finishedAt', ARGV[1], 'error', ARGV[4])
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
return {'running', redis.call('HINCRBY', KEYS[1], 'attempts', 1)}
"""

# A job ends: running/queued -> succeeded | failed | canceled | expired, kept for the retention time, announced.
# KEYS: job   ARGV: status, now ms, payload field ('result' or 'error'), payload JSON, retention ms, channel
FINISH_JOB = """
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'running' and status ~= 'queued' then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'finishedAt', ARGV[2], ARGV[3], ARGV[4])
redis.call('HDEL', KEYS[1], 'retryAt')
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PUBLISH', ARGV[6], redis.call('HGET', KEYS[1], 'id'))
return 1
"""

# A retryable failure: running -> queued until the retry time (arq re-runs it).
# KEYS: job   ARGV: retry-at ms, last error JSON
REQUEUE_JOB = """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'queued', 'retryAt', ARGV[1], 'lastError', ARGV[2])
return 1
"""

# Cancel: a queued job is canceled at once and taken off arq's queue; a running one is asked to stop.
# KEYS: job, arq queue, arq job payload   ARGV: job id, now ms, error JSON, retention ms, channel
CANCEL_JOB = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 'missing' end
if status == 'queued' then
  redis.call('HSET', KEYS[1], 'status', 'canceled', 'finishedAt', ARGV[2], 'error', ARGV[3])
  redis.call('HDEL', KEYS[1], 'retryAt')
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
