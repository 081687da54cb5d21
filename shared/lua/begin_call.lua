-- BEGIN_CALL: just before an upstream call: a cancel asked for while the job waited stops it here (returns 0; the
-- worker then finishes it as canceled); else the attempt is counted (the service's executionCount) and 1 returned.
-- KEYS: job, counter hash or ""   ARGV: counter field
if redis.call('HGET', KEYS[1], 'cancel') == '1' then return 0 end
if KEYS[2] ~= '' then redis.call('HINCRBY', KEYS[2], ARGV[1], 1) end
return 1
