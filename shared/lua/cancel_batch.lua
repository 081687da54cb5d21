--! uses: state
-- CANCEL_BATCH: mark a batch canceled (no more items are queued), then make up to `count` of its items not yet
-- queued into canceled jobs (their paid calls given back); the caller repeats until none is left, and cancels the
-- queued jobs with CANCEL_JOBS.
-- KEYS: batch, arq queue, ledger   ARGV: count, now ms, ISO now, channel, error JSON
-- Returns {status, items still to cancel} (status 'missing' when there is no such batch).
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
