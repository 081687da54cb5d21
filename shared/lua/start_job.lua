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
-- the fields this step decides on, read at once (none of them is written before it is read)
local f = redis.call('HMGET', KEYS[1], 'status', 'id', 'deadline', 'paymentId', 'cancel', 'attempts')
local status, id, deadline, pid = f[1], f[2], f[3], f[4]
if not status then return {'missing', 0, {}} end
if status ~= 'queued' and status ~= 'running' then
  arq_done(id)
  return {status, 0, redis.call('HGETALL', KEYS[1])}
end
local now = tonumber(o.now)
if now >= tonumber(deadline) then
  redis.call('HSET', KEYS[1], 'status', 'expired', 'finishedAt', o.now, 'error', o.expired)
  if pid then give_back(KEYS[1], PAY_PREFIX .. pid, KEYS[2], o.at, 'expired') end  -- never ran, or waited to retry
  redis.call('PEXPIRE', KEYS[1], o.retention)
  redis.call('SREM', KEYS[3], id)
  job_moved(KEYS[1], status, 'expired', o.now, o.channel, o.retention)
  arq_done(id)
  redis.call('PUBLISH', o.channel, id)
  return {'expired', 0, redis.call('HGETALL', KEYS[1])}
end
if f[5] == '1' then
  return {'cancel_requested', 0, redis.call('HGETALL', KEYS[1])}
end
local attempts = tonumber(f[6] or '0')
if attempts > 0 and now + tonumber(o.min_budget) >= tonumber(deadline) then
  return {'out_of_time', attempts, redis.call('HGETALL', KEYS[1])}
end
redis.call('HSET', KEYS[1], 'status', 'running')
redis.call('HSETNX', KEYS[1], 'startedAt', o.now)
redis.call('SADD', KEYS[3], id)
local attempt = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
job_moved(KEYS[1], status, 'running', o.now, o.channel, o.retention)
return {'running', attempt, redis.call('HGETALL', KEYS[1])}
