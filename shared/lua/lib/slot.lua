-- book_slot(): a reserve-style GCRA on the server's clock (TIME): book the next free slot of a limiter key (one
--   per access key and action, shared by every worker) and return how long to wait for it, in us (0: go now), or
--   -1 when it is further away than `max_wait` us (nothing booked). Used by RESERVE_SLOT, and by START_JOB for a
--   job's first booking (one round trip fewer).
local function book_slot(limiter, interval, max_wait)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local tat = tonumber(redis.call('GET', limiter) or '0')
  local slot = math.max(tat, now)
  local wait = slot - now
  if wait > max_wait then return -1 end
  local next_tat = slot + interval
  redis.call('SET', limiter, string.format('%.0f', next_tat), 'PX', math.ceil((next_tat - now) / 1000) + 1000)
  return wait
end
