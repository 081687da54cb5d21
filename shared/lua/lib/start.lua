--! uses: state, slot
-- start_job(): START_JOB's step (see start_job.lua), also taken by CLAIM for the jobs it starts as it claims them.
-- job, ledger_key: the keys; o: now, channel, retention, expired, min_budget, at; booking: nil, or the upstream
-- slot to book for a job that goes running: {limiter, interval, cap, horizon}.
local function start_job(job, ledger_key, o, booking)
  -- the whole job, read once: this step decides on it and returns it (as the step leaves it)
  local all = redis.call('HGETALL', job)
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
    redis.call('HSET', job, 'status', 'expired', 'finishedAt', o.now, 'error', o.expired)
    if pid then give_back(job, PAY_PREFIX .. pid, ledger_key, o.at, 'expired') end  -- never ran, or waited to retry
    redis.call('PEXPIRE', job, o.retention)
    job_moved(job, status, 'expired', o.now, o.channel, o.retention)
    arq_done(id, f.batch or false)
    redis.call('PUBLISH', o.channel, id)
    return {'expired', 0, redis.call('HGETALL', job)}
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
  redis.call('HSET', job, 'status', changed.status, 'attempts', changed.attempts, 'startedAt', changed.startedAt)
  for field, value in pairs(changed) do
    if at[field] then all[at[field]] = value else all[#all + 1] = field; all[#all + 1] = value end
  end
  local moved = {}
  for i, field in ipairs(JOB_MOVED_FIELDS) do moved[i] = changed[field] or f[field] or false end
  job_moved(job, status, 'running', o.now, o.channel, o.retention, moved)
  if not booking then return {'running', attempt, all} end
  local may_wait = math.min(tonumber(booking.cap), math.max(0, (tonumber(deadline) - now - tonumber(o.min_budget)) * 1000))
  if f.batch and tonumber(booking.horizon) > 0 then may_wait = math.min(may_wait, tonumber(booking.horizon)) end
  return {'running', attempt, all, book_slot(booking.limiter, tonumber(booking.interval), may_wait)}
end
