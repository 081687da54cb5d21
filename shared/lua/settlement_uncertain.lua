--! uses: state
-- UNCERTAIN (api/callcore/settlements.py): the answer did not say whether money moved: the intent stays settling,
-- the reconciler looks at `due`, and the ledger (and an inline call's webhook: job.settling) says so once. (Were a
-- reconciler holding it now, a second settle of the payload may go out: a caching facilitator answers it with the
-- first result, any other's refusal proves nothing; the intent still ends once.)
-- KEYS: intent, due zset, payment, ledger, job or ""
-- ARGV: one msgpack table: digest, due ms, at (ISO now), reason, now ms, retention ms.
-- Returns 1, or 0 when the intent is not settling (nothing changes).
local o = cmsgpack.unpack(ARGV[1])
if redis.call('HGET', KEYS[1], 'stage') ~= 'settling' then return 0 end
redis.call('ZADD', KEYS[2], 'XX', o.due, o.digest)
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'lastError', o.reason)
if tonumber(redis.call('HGET', KEYS[1], 'attempts')) == 1 then
  local calls = tonumber(redis.call('HGET', KEYS[3], 'maxCalls'))
  ledger(KEYS[4], 'settling', o.at, KEYS[3], calls, {'reason', o.reason})
  if KEYS[5] ~= '' then webhook_event(KEYS[5], 'job.settling', o.now, o.retention) end
end
return 1
