--! uses: slot
-- RESERVE_SLOT: a reserve-style GCRA: book the next free slot for this (access key, action) and say how long to
-- wait for it. All workers share the key, so together they never exceed the rate. Uses the server's clock (TIME).
-- For a job's call (KEYS[2] set) it first checks the job's cancel flag: when the slot is free at once, the call
-- goes out with no other round trip. (START_JOB makes a job's first booking the same way, lib/slot.lua.)
-- KEYS: limiter, job hash or ""   ARGV: interval us, max wait us
-- Returns wait us (0: go now), -1 when the slot is too far away, -2 when the job's cancel was asked for.
if KEYS[2] ~= '' and redis.call('HGET', KEYS[2], 'cancel') == '1' then return -2 end
return book_slot(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))
