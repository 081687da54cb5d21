--! uses: names
-- CLAIM (workers/queue.py): take up to `room` due ids nobody runs, in queue order. A tool job's lease is its score:
-- moved to the lease's end, nobody else finds it due until the lease lapses (the attempt renews it); its id is all
-- the worker needs to run it, and its service (read from the job's hash, NAMES.job) lets the worker book the
-- upstream slot in START_JOB. Any other job (arq's crons) gets arq's in-progress mark, and one that has it is
-- skipped.
-- KEYS: queue   ARGV: one msgpack table: now ms, lease ms, mark (other jobs' in-progress time, ms), tool_prefix
-- (the tool jobs' id prefix), room, read (ids to read). The in-progress marks' prefix is NAMES.arq_in_progress.
-- Returns {id, score as read, service, id, score, service, ...} for the ids taken (service '' for a job with no
-- hash, and for arq's jobs).
local o = cmsgpack.unpack(ARGV[1])
local now, lease, room = tonumber(o.now), tonumber(o.lease), tonumber(o.room)
local marks, jobs, tool = NAMES.arq_in_progress, NAMES.job, o.tool_prefix
local claimed = {}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, tonumber(o.read))
for i = 1, #due, 2 do
  if #claimed >= 3 * room then break end
  local id, score = due[i], due[i + 1]
  if string.sub(id, 1, #tool) == tool then
    redis.call('ZADD', KEYS[1], 'XX', now + lease, id)
    claimed[#claimed + 1] = id
    claimed[#claimed + 1] = score
    claimed[#claimed + 1] = redis.call('HGET', jobs .. id, 'service') or ''
  elseif redis.call('EXISTS', marks .. id) == 0 then
    redis.call('PSETEX', marks .. id, o.mark, '1')
    claimed[#claimed + 1] = id
    claimed[#claimed + 1] = score
    claimed[#claimed + 1] = ''
  end
end
return claimed
