--! uses: state
-- START_JOB: a worker takes a job: queued (or running, when a crashed worker's job comes back) -> running.
-- KEYS: job, ledger, running set
-- ARGV: one msgpack table: now ms, channel, retention ms, expired (the error JSON), min_budget (the smallest
-- useful budget, ms), at (ISO now)
-- Returns {status, attempts, the job hash after the step as field/value pairs (empty when missing)}: 'running'
-- means go; 'out_of_time' means a retry waited too long for another call (the worker ends the job with its last
-- error); anything else means do nothing. A job found ended (or ended here) has arq's keys deleted (arq_done).
-- A job that expires here (it never ran, or waited too long to retry an upstream failure: never the caller's
-- fault) gives its paid call back.
local o = cmsgpack.unpack(ARGV[1])
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'missing', 0, {}} end
if status ~= 'queued' and status ~= 'running' then
  arq_done(redis.call('HGET', KEYS[1], 'id'))
  return {status, 0, redis.call('HGETALL', KEYS[1])}
end
local now = tonumber(o.now)
if now >= tonumber(redis.call('HGET', KEYS[1], 'deadline')) then
  redis.call('HSET', KEYS[1], 'status', 'expired', 'finishedAt', o.now, 'error', o.expired)
  local pid = redis.call('HGET', KEYS[1], 'paymentId')  -- never ran, or was waiting to retry an upstream failure
  if pid then give_back(KEYS[1], PAY_PREFIX .. pid, KEYS[2], o.at, 'expired') end
  redis.call('PEXPIRE', KEYS[1], o.retention)
  redis.call('SREM', KEYS[3], redis.call('HGET', KEYS[1], 'id'))
  job_moved(KEYS[1], status, 'expired', o.now, o.channel, o.retention)
  arq_done(redis.call('HGET', KEYS[1], 'id'))
  redis.call('PUBLISH', o.channel, redis.call('HGET', KEYS[1], 'id'))
  return {'expired', 0, redis.call('HGETALL', KEYS[1])}
end
if redis.call('HGET', KEYS[1], 'cancel') == '1' then
  return {'cancel_requested', 0, redis.call('HGETALL', KEYS[1])}
end
local attempts = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0')
if attempts > 0 and now + tonumber(o.min_budget) >= tonumber(redis.call('HGET', KEYS[1], 'deadline')) then
  return {'out_of_time', attempts, redis.call('HGETALL', KEYS[1])}
end
redis.call('HSET', KEYS[1], 'status', 'running')
redis.call('HSETNX', KEYS[1], 'startedAt', o.now)
redis.call('SADD', KEYS[3], redis.call('HGET', KEYS[1], 'id'))
local attempt = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
job_moved(KEYS[1], status, 'running', o.now, o.channel, o.retention)
return {'running', attempt, redis.call('HGETALL', KEYS[1])}
