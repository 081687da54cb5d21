--! uses: names, payment
-- Helpers for every job transition. Keys they touch are built from the job's own fields and NAMES (written in
-- when the script is loaded; one Redis, not a cluster), so every caller gets them without passing them.
-- webhook_event(): a subject (job or batch hash) with a `webhook` whose `events` include `event` gets one
--   delivery, due now (`msg_<subject id>.<event>`: the same event is never delivered twice).
-- fan_out(): queue a batch's next items as jobs. A batch keeps at most `window` of its items queued or running:
--   each finished item queues the next, so a big batch never floods the queue (single calls, and single calls'
--   retries, wait behind at most a window of batch items).
-- batch_moved(): a job of a batch moved from one status to another: the batch's counters follow; a finished job
--   queues the next item; the last completes the batch (announced on the jobs channel, its webhook event made).
local JOB_PREFIX, BATCH_PREFIX, WH_PREFIX, WH_DUE, PAY_PREFIX =
  NAMES.job, NAMES.batch, NAMES.webhook, NAMES.webhooks_due, NAMES.payment
local QUEUE, BATCH_QUEUE, BATCH_QUEUE_WAKE = NAMES.queue, NAMES.batch_queue, NAMES.batch_queue_wake
local WEBHOOK_KEEP_MS = 86400000
local function webhook_from(f, event, now, retention)  -- f: the subject's webhook, events, id, owner
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
local function webhook_event(subject, event, now, retention)
  webhook_from(redis.call('HMGET', subject, 'webhook', 'events', 'id', 'owner'), event, now, retention)
end
-- Queue the next `count` items of a batch as jobs (its window refills as jobs finish). Items are JSON arrays
-- made at submission: job id, '' (once arq's payload, now unused), then the job hash's field/value pairs; popped
-- from the head.
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
    redis.call('HSET', job, 'createdAt', now, 'deadline', deadline, 'status', 'queued', unpack(item, 3))
    redis.call('PEXPIRE', job, ttl)
    redis.call('ZADD', BATCH_QUEUE, now, id)  -- the batch lane's queue (workers/lanes.py)
    redis.call('RPUSH', bkey .. ':jobs', id)
    made = made + 1
  end
  if made > 0 then
    redis.call('HINCRBY', bkey, 'fanned', made)
    redis.call('PUBLISH', BATCH_QUEUE_WAKE, '')
  end
  return made
end
local function batch_moved(job, from, to, now, channel, retention, b, id)  -- b, id: the job's, when read already
  if b == nil then b = redis.call('HGET', job, 'batch') end
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
  redis.call('RPUSH', bkey .. ':done', id or redis.call('HGET', job, 'id'))
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
-- A job has ended: it leaves arq's queue (as arq's own finish would take it off; the worker then skips that). A
-- tool job has no other arq key: no payload (its id says what to run), no in-progress mark (CLAIM), no try counter
-- (START_JOB counts attempts).
-- `batch`: the job's batch field (its queue is the batch lane's), false for none, nil when not read (both queues).
local function arq_done(id, batch)
  if batch ~= false then redis.call('ZREM', BATCH_QUEUE, id) end
  if not batch then redis.call('ZREM', QUEUE, id) end
end
-- A job moved from one status to another: its batch follows, its webhook is told. `f`: the job's JOB_MOVED_FIELDS
-- as the step leaves them (false for a missing one), when the script has read them already; nil: read here.
local JOB_MOVED_FIELDS = {'batch', 'attempts', 'webhook', 'events', 'id', 'owner'}
local function job_moved(job, from, to, now, channel, retention, f)
  if f == nil then f = redis.call('HMGET', job, unpack(JOB_MOVED_FIELDS)) end
  batch_moved(job, from, to, now, channel, retention, f[1], f[5])
  local hook = {f[3], f[4], f[5], f[6]}
  if to == 'running' then
    if from ~= 'running' and f[2] == '1' then
      webhook_from(hook, 'job.started', now, retention)
    end
  elseif to ~= 'queued' then
    webhook_from(hook, 'job.' .. to, now, retention)
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
