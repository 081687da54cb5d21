--! uses: names, start
-- CLAIM (workers/queue.py): take up to `room` due ids nobody runs, in queue order. A tool job's lease is its score:
-- moved to the lease's end, nobody else finds it due until the lease lapses (the attempt renews it); its id is all
-- the worker needs to run it, and its service (read from the job's hash, NAMES.job) lets the worker book the
-- upstream slot in START_JOB. Any other job (arq's crons) gets arq's in-progress mark, and one that has it is
-- skipped.
-- A tool job of a service in `bookings` is also started here, as START_JOB would start it: one round trip fewer
-- between a call and its upstream request. The worker names the services it ran lately (workers/queue.py); a job
-- of another service, or with no `bookings` (the batch lane's worker, which starts a job only once it has a batch
-- slot), is left to START_JOB.
-- KEYS: queue   ARGV: one msgpack table: now ms, lease ms, mark (other jobs' in-progress time, ms), tool_prefix
-- (the tool jobs' id prefix), room, read (ids to read); optionally `start` (START_JOB's options, and ledger: its
-- ledger key) and bookings (service -> {limiter, interval, cap, horizon}). The in-progress marks' prefix is
-- NAMES.arq_in_progress.
-- Returns {id, score as read, service, started, id, ...} for the ids taken: service '' for a job with no hash and
-- for arq's jobs; started is START_JOB's answer for a job started here, else false (nil to the caller).
local o = cmsgpack.unpack(ARGV[1])
local now, lease, room = tonumber(o.now), tonumber(o.lease), tonumber(o.room)
local marks, jobs, tool = NAMES.arq_in_progress, NAMES.job, o.tool_prefix
local start, bookings = o.start, o.bookings or {}
local claimed = {}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, tonumber(o.read))
for i = 1, #due, 2 do
  if #claimed >= 4 * room then break end
  local id, score = due[i], due[i + 1]
  if string.sub(id, 1, #tool) == tool then
    redis.call('ZADD', KEYS[1], 'XX', now + lease, id)
    claimed[#claimed + 1] = id
    claimed[#claimed + 1] = score
    local service = redis.call('HGET', jobs .. id, 'service') or ''
    claimed[#claimed + 1] = service
    local booking = start and bookings[service]
    claimed[#claimed + 1] = booking and start_job(jobs .. id, start.ledger, start, booking) or false
  elseif redis.call('EXISTS', marks .. id) == 0 then
    redis.call('PSETEX', marks .. id, o.mark, '1')
    claimed[#claimed + 1] = id
    claimed[#claimed + 1] = score
    claimed[#claimed + 1] = ''
    claimed[#claimed + 1] = false
  end
end
return claimed
