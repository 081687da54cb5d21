--! uses: start
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
local booking = nil
if KEYS[3] and KEYS[3] ~= '' then
  booking = {limiter = KEYS[3], interval = o.interval, cap = o.cap, horizon = o.horizon}
end
return start_job(KEYS[1], KEYS[2], o, booking)
