--! uses: state, slot
-- START_JOB: a worker takes a job: queued (or running, when a crashed worker's job comes back) -> running.
-- KEYS: job, ledger, and the upstream limiter of the job's action or "" (then nothing is booked)
-- ARGV: one msgpack table: now ms, channel, retention ms, expired (the error JSON), min_budget (the smallest
-- useful budget, ms), at (ISO now); for a booking also interval (us between slots), cap (the longest wait for a
-- slot, us) and horizon (a batch item's shorter longest wait, us: the job's own batch field says whether it is one)
-- Returns {status, attempts, the job hash after the step as field/value pairs (empty when missing)}: 'running'
-- means go; 'out_of_time' means a retry waited too long for another call (the worker ends the job with its last
-- error); anything else means do nothing. A job found ended (or ended here) leaves arq's queue (arq_done).
-- A job that goes running with a limiter given also gets its slot booked here, as RESERVE_SLOT would (its cancel
-- flag was just read): a fourth element, the wait in us (0: go now; -1: further than the job can wait, nothing
-- booked). The wait allowed is the cap, less than the time left before the deadline less min_budget, and no more
-- than the horizon for a batch item.
-- A job that expires here (it never ran, or waited too long to retry an upstream failure: never the caller's
-- fault) gives its paid call back.
local o = cmsgpack.unpack(ARGV[1])
-- the whole job, read once: this step decides on it and returns it (as the step leaves it)
local all = redis.call('HGETALL', KEYS[1])
local f, at = {}, {}  -- field -> value, field -> its value's place in `all`
for i = 1, #all, 2 do
  f[all[i]] = all[i + 1]
  at[all[i]] = i + 1
end
local status, id, deadline, pid = f.status, f.id, f.deadline, f.paymentId
if not status then return {'missing', 0, {}} end
if status ~= 'queued' and status ~= 'running' then
  arq_done(id, f.batch or false)
  return {status, 0, all}
end
local now = tonumber(o.now)
if now >= tonumber(deadline) then
  redis.call('HSET', KEYS[1], 'status', 'expired', 'finishedAt', o.now, 'error', o.expired)
  if pid then give_back(KEYS[1], PAY_PREFIX .. pid, KEYS[2], o.at, 'expired') end  -- never ran, or waited to retry
  redis.call('PEXPIRE', KEYS[1], o.retention)
  job_moved(KEYS[1], status, 'expired', o.now, o.channel, o.retention)
  arq_done(id, f.batch or false)
  redis.call('PUBLISH', o.channel, id)
  return {'expired', 0, redis.call('HGETALL', KEYS[1])}
end
if f.cancel == '1' then
  return {'cancel_requested', 0, all}
end
local attempts = tonumber(f.attempts or '0')
if attempts > 0 and now + tonumber(o.min_budget) >= tonumber(deadline) then
  return {'out_of_time', attempts, all}
end
local attempt = attempts + 1
local started = f.startedAt or string.format('%.0f', now)  -- the first attempt's
local changed = {status = 'running', attempts = string.format('%d', attempt), startedAt = started}
redis.call('HSET', KEYS[1], 'status', changed.status, 'attempts', changed.attempts, 'startedAt', changed.startedAt)
for field, value in pairs(changed) do
  if at[field] then all[at[field]] = value else all[#all + 1] = field; all[#all + 1] = value end
end
local moved = {}
for i, field in ipairs(JOB_MOVED_FIELDS) do moved[i] = changed[field] or f[field] or false end
job_moved(KEYS[1], status, 'running', o.now, o.channel, o.retention, moved)
if not KEYS[3] or KEYS[3] == '' then return {'running', attempt, all} end
local may_wait = math.min(tonumber(o.cap), math.max(0, (tonumber(deadline) - now - tonumber(o.min_budget)) * 1000))
if f.batch and tonumber(o.horizon) > 0 then may_wait = math.min(may_wait, tonumber(o.horizon)) end
return {'running', attempt, all, book_slot(KEYS[3], tonumber(o.interval), may_wait)}
