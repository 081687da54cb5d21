-- BEGIN (api/callcore/settlements.py): claim the x402 authorization and record the intent, its payment and its job
-- (if any) in one step.
-- KEYS: nonce, intent, due zset, payment, job or "", idempotency key or ""
-- ARGV: one msgpack table: holder (the claim's value), claim_ttl s, due ms, keep ms, idempotency (its value),
-- intent, payment, job (the field/value pairs of each; job empty without a job).
-- Returns "" when claimed, else the holder.
local o = cmsgpack.unpack(ARGV[1])
if not redis.call('SET', KEYS[1], o.holder, 'NX', 'EX', o.claim_ttl) then return redis.call('GET', KEYS[1]) or '' end
redis.call('HSET', KEYS[2], unpack(o.intent))
redis.call('PEXPIRE', KEYS[2], o.keep)
redis.call('ZADD', KEYS[3], o.due, redis.call('HGET', KEYS[2], 'digest'))
redis.call('HSET', KEYS[4], unpack(o.payment))
redis.call('PEXPIRE', KEYS[4], o.keep)
if KEYS[5] ~= '' then
  redis.call('HSET', KEYS[5], unpack(o.job))
  redis.call('PEXPIRE', KEYS[5], o.keep)
end
if KEYS[6] ~= '' then redis.call('SET', KEYS[6], o.idempotency, 'NX', 'PX', o.keep) end
return ''
