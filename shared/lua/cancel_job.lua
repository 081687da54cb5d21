--! uses: state
-- CANCEL_JOB: a queued job is canceled at once, taken off arq's queue and its paid call given back; a running one
-- is asked to stop.
-- KEYS: job, arq queue, ledger   ARGV: now ms, error JSON, retention ms, channel, ISO now
-- Returns 'canceled', 'cancel_requested', 'missing', or the status of a job that has ended (nothing changes).
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
