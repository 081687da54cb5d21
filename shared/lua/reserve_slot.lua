-- RESERVE_SLOT: a reserve-style GCRA: book the next free slot for this (access key, action) and say how long to
-- wait for it. All workers share the key, so together they never exceed the rate. Uses the server's clock (TIME).
-- For a job's call (KEYS[2] set) it first checks the job's cancel flag: when the slot is free at once, the call
-- goes out with no other round trip.
-- KEYS: limiter, job hash or ""   ARGV: interval us, max wait us
-- Returns wait us (0: go now), -1 when the slot is too far away, -2 when the job's cancel was asked for.
if KEYS[2] ~= '' and redis.call('HGET', KEYS[2], 'cancel') == '1' then return -2 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(tat, now)
local wait = slot - now
if wait > tonumber(ARGV[2]) then return -1 end
local next_tat = slot + tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX', math.ceil((next_tat - now) / 1000) + 1000)
return wait
