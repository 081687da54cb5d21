--! uses: state
-- CANCEL_JOBS: cancel some jobs (of a batch being canceled): queued ones at once, running ones asked to stop.
-- KEYS: arq queue, ledger   ARGV: now ms, error JSON, retention ms, channel, ISO now, then job ids.
--   Returns {canceled, asked to stop}.
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
