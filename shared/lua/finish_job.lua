--! uses: state
-- FINISH_JOB: a job ends: running/queued -> succeeded | failed | canceled | expired, kept for the retention time,
-- announced. A failure that was not the caller's gives the paid call back (refund reason non-empty). Returns 1 when
-- this step ended the job (the worker then counts its outcome, shared/quality.py), 0 when it had ended already.
-- The job leaves arq's queue (arq_done) whether or not this step ended it: it has ended. The announcement on
-- `channel` carries the job as this step leaves it, what a waiting API would read next, so it need not. Two forms:
-- "<id>\n<field>\n<head>\n<payload>" when the worker's `head` (the job's other fields as a JSON object, as START_JOB
-- left them and this step changes them: shared/jobs.py `announcement_head`) is still true: no cancel was asked for
-- since (the only field another process writes while a job runs), the attempt is the worker's, nothing is given
-- back here; else "<id>\n<its fields as a JSON object>" read here. A job bigger than `announce_max` bytes is
-- announced by its id alone (the worker then sends no head).
-- KEYS: job, its payment or "", ledger
-- ARGV: one msgpack table: id (the job's), status, now ms, field ('result' or 'error'), payload (its JSON),
-- retention ms, channel, refund (reason or ""), at (ISO now), announce_max, head ("" for none), attempts (the
-- worker's attempt, whose record made the head)
local o = cmsgpack.unpack(ARGV[1])
-- every field this step reads of the job, at once (it writes none of JOB_MOVED_FIELDS)
local f = redis.call('HMGET', KEYS[1], 'status', 'retryAt', 'cancel', unpack(JOB_MOVED_FIELDS))
local batch = f[4]
if not f[1] then batch = nil end  -- no job: which queue it was on is not known
arq_done(o.id, batch)
local status = f[1]
if status ~= 'running' and status ~= 'queued' then return 0 end
redis.call('HSET', KEYS[1], 'status', o.status, 'finishedAt', o.now, o.field, o.payload)
if f[2] then redis.call('HDEL', KEYS[1], 'retryAt') end
local refunded = give_back(KEYS[1], KEYS[2], KEYS[3], o.at, o.refund)
redis.call('PEXPIRE', KEYS[1], o.retention)
job_moved(KEYS[1], status, o.status, o.now, o.channel, o.retention, {f[4], f[5], f[6], f[7], f[8], f[9]})
if o.head and o.head ~= '' and not f[3] and refunded == '' and f[5] == o.attempts then  -- the worker's head is the job's
  redis.call('PUBLISH', o.channel, o.id .. '\n' .. o.field .. '\n' .. o.head .. '\n' .. o.payload)
  return 1
end
local all, fields, size = redis.call('HGETALL', KEYS[1]), {}, 0
for i = 1, #all, 2 do
  fields[all[i]] = all[i + 1]
  size = size + #all[i] + #all[i + 1]
end
local message = o.id
if size <= tonumber(o.announce_max) then message = o.id .. '\n' .. cjson.encode(fields) end
redis.call('PUBLISH', o.channel, message)
return 1
