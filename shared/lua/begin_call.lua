-- BEGIN_CALL: just before an upstream call: a cancel asked for while the job waited stops it here (returns 0; the
-- worker then finishes it as canceled); else 1 (the worker counts the attempt, shared/quality.py).
-- KEYS: job
if redis.call('HGET', KEYS[1], 'cancel') == '1' then return 0 end
return 1
